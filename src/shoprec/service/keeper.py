"""The feed keeper: a process beside the serving workers that computes shoppers' home feeds after their events.

A worker answers on one event loop, so a feed computed there (6-8 ms at demo scale) delays every
request queued behind it, and a thread would not help: the interpreter lock is one per process. The
keeper follows the store as the workers do; when a shopper's events change their feed, it computes
it into the answers the workers share (`result_cache.SharedAnswers`), at idle CPU priority, so the
shopper's next request (seconds later, as a rule) reads it instead of waiting for it.

It also loads each new artifact version and warms it with what serving leaves of the CPU (active
shoppers' feeds and the frequent queries' candidate sets, which the workers then read instead of
computing them while they load the version; at start it skips the queries, which the workers
search before they serve). Until no worker serves the previous version (they announce theirs:
`SharedAnswers.served_versions`), it keeps feeds for both. A feed the keeper has not kept yet is
computed by the worker as before: answers come sooner, never different.
"""

from __future__ import annotations

import logging
import logging.config
import threading

from shoprec.settings import Settings, get_settings

log = logging.getLogger(__name__)

VERSION_CHECK_S = 2.0


def wanted(settings: Settings) -> bool:
    """Whether `shoprec serve` starts a keeper: it needs shared answers and reusable answers."""
    return (settings.service.feed_keeper and settings.service.shared_answers_size > 0
            and settings.service.result_cache_size > 0 and settings.recommend.exploration_share <= 0)


def keep(settings: Settings | None = None, stop: threading.Event | None = None) -> None:
    """Run the keeper in this process until `stop` is set (the process entry point of `shoprec serve`)."""
    from shoprec.engine import Engine, Pacer, limit_compute_threads
    from shoprec.result_cache import SharedAnswers
    from shoprec.service.builds import VersionWatcher, idle_cpu_priority

    settings = settings or get_settings()
    stop = stop or threading.Event()
    idle_cpu_priority()
    limit_compute_threads(settings.service.compute_threads)
    # Not serving: a new version warms at full speed; the idle priority, not pauses, keeps it off the workers' CPU.
    settings = settings.model_copy(update={"service": settings.service.model_copy(update={"background_share": 1.0})})
    shared = SharedAnswers.beside(settings.artifacts_dir, settings.service.shared_answers_size, wait_ms=50)
    shared.announce_keeper()
    # New versions load in the workers' own watcher, in its thread: the feeds of the version they
    # serve are kept meanwhile. Made first, so a version published while this one loads is noticed.
    watcher = VersionWatcher(settings.artifacts_dir, lambda: engine, interval_s=VERSION_CHECK_S)
    engine = Engine.open(settings, shared_answers=shared, warm_answers=True, warm_searches_at_start=False,
                         hold_previous=True)
    log.info("feed keeper following the store for version %s", engine.version)
    watcher.start()
    pace, kept = Pacer(1.0), 0
    try:
        while not stop.wait(settings.service.follow_interval_s):
            try:
                versions = shared.served_versions()
                if engine.previous_version is not None and engine.previous_version not in versions:
                    log.info("no worker serves version %s any more; keeping %s", engine.previous_version, engine.version)
                    engine.release_previous()
                kept += engine.keep_feeds(pace, versions)
            except Exception:  # a failure costs the workers some computing, never an answer
                log.exception("keeping feeds failed; retrying")
    finally:
        log.info("feed keeper stopping after %d feeds", kept)
        watcher.stop()  # a version half loaded is dropped with the process
        engine.close()
        shared.close()


def main(parent: int) -> None:
    """Entry point of the keeper process (spawned by `shoprec serve`, process `parent`): runs until
    SIGTERM, or until the process that started it is gone (killed with -9, or ended by a signal
    uvicorn re-raised)."""
    import os
    import signal

    from shoprec.service.cli import end_with_parent, log_config

    logging.config.dictConfig(log_config("info", False))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # At idle CPU priority on a busy machine the keeper may get no CPU for seconds, and would not notice
    # a kill -9 of its parent in time itself (holding a whole served version in memory meanwhile). Its
    # writes are SQLite transactions: a kill loses none that committed.
    if not end_with_parent(signal.SIGKILL, parent):
        return

    def watch_parent() -> None:  # where the kernel cannot be told (not Linux)
        while not stop.wait(0.5):
            if os.getppid() != parent:
                log.info("the serving process that started the feed keeper is gone; stopping")
                stop.set()

    threading.Thread(target=watch_parent, name="shoprec-keeper-parent", daemon=True).start()
    keep(stop=stop)
