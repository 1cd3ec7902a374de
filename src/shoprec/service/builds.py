"""Background rebuilds for `POST /v1/admin/build`, and the watcher that swaps in new versions.

The build is the offline role: by default it runs as a separate `shoprec build` process (idle CPU
priority, its own GIL) so serving latency holds while it trains. It is done once it has published
its version (the artifacts' `current` link). A watcher thread in every serving process then
`reload()`s, which swaps that process to the new complete version atomically: the feed keeper
first, then the workers one at a time (`VersionWatcher`, `Engine.reload`). Without a watcher the
process that ran the build reloads before reporting it done. Builds by cron are swapped in alike.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shoprec.settings import Settings

log = logging.getLogger("shoprec.service.builds")


def settings_environment(settings: Settings) -> dict[str, str]:
    """`SHOPREC_*` variables that reproduce `settings` in a child process (nested sections as JSON)."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        env[f"SHOPREC_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


class BuildManager:
    """At most one rebuild at a time per artifact root, whichever serving process is asked (a lock
    file), with the statuses shared by all of them (`<artifacts_dir>/.builds/`) for `GET /v1/admin/builds`."""

    def __init__(self, settings: Settings, get_engine: Callable[[], Any], metrics, mode: str = "process",
                 models: list[str] | None = None, history: int = 20, idle_priority: bool = True,
                 reload: bool = True):
        """reload: swap this process's engine to the version built before the build is reported done
        (False where a `VersionWatcher` swaps it: the build is done once it is published)."""
        if mode not in ("process", "thread"):
            raise ValueError(f"build mode must be 'process' or 'thread', not {mode!r}")
        self.settings = settings
        self.get_engine = get_engine
        self.metrics = metrics
        self.mode = mode
        self.models = models
        self.idle_priority = idle_priority
        self.reload = reload
        self.history = history
        self._dir = Path(settings.artifacts_dir) / ".builds"
        self._lock = threading.Lock()
        self._held: Any = None  # the lock file, open and locked while this process builds
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[dict[str, Any], bool]:
        """Start a rebuild; returns (status, started). When one is already running (in this process or
        another serving the same artifacts), returns its status unstarted."""
        with self._lock:
            while not self._take_lock():
                running = next((s for s in self.list() if s["state"] == "running"), None)
                if running is not None:
                    return running, False
                time.sleep(0.01)  # the holder is between taking the lock and writing its status, or has just finished
            now = datetime.now(timezone.utc)
            status = {"id": uuid.uuid4().hex[:12], "state": "running", "started_at": now.isoformat(),
                      "file": f"{now:%Y%m%dT%H%M%S%f}-{os.getpid()}.json"}
            self._write(status)
            self.metrics.build_in_progress.set(1)
        self._thread = threading.Thread(target=self._run, args=(status,), name=f"shoprec-build-{status['id']}", daemon=True)
        self._thread.start()
        return self._public(status), True

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def list(self) -> list[dict[str, Any]]:
        """The last `history` builds of any serving process, newest first. A build whose process ended
        before it finished is reported failed."""
        files = sorted(self._dir.glob("*.json"), reverse=True) if self._dir.exists() else []
        for stale in files[max(self.history, 100):]:
            stale.unlink(missing_ok=True)
        out = []
        for path in files[:self.history]:
            status = self._read(path)
            if status is None:
                continue
            if status["state"] == "running" and self._held is None and self._take_lock():
                try:  # nobody holds the lock: read again, its holder writes the end before letting go
                    status = self._read(path)
                    if status is not None and status["state"] == "running":
                        status.update(state="failed", error="interrupted: the serving process running it ended first")
                        self._write(status)
                finally:
                    self._release_lock()
            if status is not None:
                out.append(self._public(status))
        return out

    def _take_lock(self) -> bool:
        import fcntl

        self._dir.mkdir(parents=True, exist_ok=True)
        handle = open(self._dir / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._held = handle
        return True

    def _release_lock(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.close()  # closing the file lets go of the lock (so does the process ending)

    def _write(self, status: dict[str, Any]) -> None:
        path = self._dir / status["file"]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, path)  # readers see the old status or the new one, never half of one

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # removed meanwhile, or not a status
            return None

    @staticmethod
    def _public(status: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if k != "file"}

    def _run(self, status: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        try:
            version = self._build_process() if self.mode == "process" else self._build_thread()
            engine = self.get_engine()
            if engine is not None and self.reload:
                engine.reload()
                self.metrics.reloads.inc()
            status.update(state="succeeded", version=version)
        except Exception as exc:  # the build's failure is reported in its status, not raised into the server
            log.exception("build %s failed", status["id"])
            status.update(state="failed", error=str(exc)[-2000:])
        finally:
            status.update(finished_at=datetime.now(timezone.utc).isoformat(), seconds=round(time.perf_counter() - t0, 3))
            self.metrics.builds.labels(status["state"]).inc()
            with self._lock:
                self._write(status)
                self._release_lock()
                self.metrics.build_in_progress.set(0)

    def _build_thread(self) -> str:
        if self.models is None:
            return self.get_engine().rebuild()
        from shoprec.build import BuildConfig, build

        return build(self.settings, BuildConfig(models=self.models))

    def _build_process(self) -> str | None:
        from shoprec.artifacts import ArtifactStore

        env = dict(os.environ)
        env.update(settings_environment(self.settings))
        proc = subprocess.run(
            [sys.executable, "-m", "shoprec.cli", "build"] + (["--models", ",".join(self.models)] if self.models else []),
            env=env, capture_output=True, text=True, preexec_fn=idle_cpu_priority if self.idle_priority else None,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
            raise RuntimeError(f"shoprec build exited with {proc.returncode}: " + "\n".join(tail))
        versions = ArtifactStore(self.settings.artifacts_dir).versions()
        return versions[-1] if versions else None


def idle_cpu_priority() -> None:
    """Run this process (and the threads and children it starts) only on CPU time nothing else wants.

    Linux SCHED_IDLE: a serving worker that wakes up preempts the build at once, where `nice 10`
    (before) only lowered the build's share of the two cores. Elsewhere the lowest nice level."""
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)


class _Every:
    """A daemon thread calling `tick()` every `interval_s` until `stop()`."""

    name = "shoprec-every"

    def __init__(self, get_engine: Callable[[], Any], interval_s: float):
        self.get_engine = get_engine
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()

    def tick(self) -> None:
        raise NotImplementedError


class VersionWatcher(_Every):
    """Reload the engine when `<artifacts>/current` points somewhere new (checked every `interval_s`)."""

    name = "shoprec-version-watcher"

    def __init__(self, artifacts_dir: Path, get_engine: Callable[[], Any], metrics=None, interval_s: float = 2.0,
                 ready_to_load: Callable[[str], bool] | None = None, wait_max_s: float = 0.0):
        """ready_to_load(version): whether to load a new version now; asked every `interval_s`
        for up to `wait_max_s`, then it loads anyway (the workers wait for the feed keeper)."""
        super().__init__(get_engine, interval_s)
        self.link = Path(artifacts_dir) / "current"
        self.metrics = metrics
        self.ready_to_load = ready_to_load
        self.wait_max_s = wait_max_s
        self._last = self._target()

    def _target(self) -> str | None:
        try:
            return os.readlink(self.link)
        except OSError:
            return None

    def tick(self) -> None:
        target = self._target()
        if target is None or target == self._last:
            return
        self._last = target
        if self.ready_to_load is not None:
            deadline = time.monotonic() + self.wait_max_s
            t0 = time.monotonic()
            while not self._ready(Path(target).name) and time.monotonic() < deadline:
                if self._stop.wait(self.interval_s):
                    return
            log.info("loading artifact version %s after waiting %.0fs", Path(target).name, time.monotonic() - t0)
        engine = self.get_engine()
        try:
            if engine is not None and engine.reload():
                if self.metrics is not None:
                    self.metrics.reloads.inc()
                log.info("swapped to artifact version %s", getattr(engine, "version", None))
        except Exception:
            log.exception("reload after %s changed failed; still serving the previous version", self.link)

    def _ready(self, version: str) -> bool:
        try:
            return bool(self.ready_to_load(version))
        except Exception:  # the wait is an optimisation: when it cannot tell, load
            log.exception("could not tell whether to load %s yet; loading it", version)
            return True


class StoreFollower(_Every):
    """Apply what other processes wrote to the store (events, catalog changes, forgotten users) to
    this worker's engine every `interval_s`: with `--workers N` a shopper's next request may reach
    another worker than the event did (see `shoprec.changes`)."""

    name = "shoprec-store-follower"

    def tick(self) -> None:
        engine = self.get_engine()
        try:
            if engine is not None and hasattr(engine, "follow"):
                engine.follow()
        except Exception:
            log.exception("following the store failed; retrying in %.1fs", self.interval_s)


class AnswersKeeper(_Every):
    """Keep the engine's shared answers file within its size and its WAL short (`SharedAnswers.maintain`),
    off the request path; and let the engine answer home feeds pending in the feed keeper
    (`Engine.feed_grace_s`) while a keeper is alive."""

    name = "shoprec-answers-keeper"

    def __init__(self, get_engine: Callable[[], Any], interval_s: float, feed_grace_s: float = 0.0):
        super().__init__(get_engine, interval_s)
        self.feed_grace_s = feed_grace_s

    def tick(self) -> None:
        engine = self.get_engine()
        shared = getattr(engine, "shared_answers", None)
        try:
            if shared is not None:
                shared.maintain()
                if hasattr(engine, "feed_grace_s"):
                    engine.feed_grace_s = self.feed_grace_s if self.feed_grace_s > 0 and shared.live_keepers() else 0.0
        except Exception:
            log.exception("maintaining the shared answers failed; retrying in %.1fs", self.interval_s)
