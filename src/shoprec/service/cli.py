"""`shoprec serve`: run the REST API (and web UI) with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

APP = "shoprec.service.app:create_app"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default: settings.service.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: settings.service.port, 8000)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes; each loads the artifacts and keeps its own rate-limit buckets and metrics")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--access-log", action="store_true",
                        help="log one line per request (method, route template, status, ms; never raw paths or query strings)")


def log_config(level: str, access: bool) -> dict:
    """uvicorn's logging config plus the shoprec loggers (applied in every worker process)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["shoprec"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["shoprec"] = {"class": "logging.StreamHandler", "formatter": "shoprec", "stream": "ext://sys.stderr"}
    config["loggers"]["shoprec"] = {"handlers": ["shoprec"], "level": level.upper(), "propagate": False}
    config["loggers"]["shoprec.service.access"] = {"level": "INFO" if access else "WARNING"}
    return config


def _uvicorn_options(args: argparse.Namespace) -> dict:
    return dict(
        factory=True,
        # No uvicorn access log: it prints raw paths and query strings, which carry user ids.
        # Per-route counts and latencies are in /metrics instead.
        access_log=False, log_level=args.log_level, timeout_graceful_shutdown=10,
        log_config=log_config(args.log_level, args.access_log),
    )


def run(args: argparse.Namespace) -> int:
    import socket

    import uvicorn

    from shoprec.service import keeper
    from shoprec.settings import get_settings

    settings = get_settings()
    host = args.host or settings.service.host
    port = args.port if args.port is not None else settings.service.port
    workers = max(1, args.workers)
    with_keeper = keeper.wanted(settings)
    if workers > 1 and hasattr(socket, "SO_REUSEPORT") and port:
        return _run_reuse_port(args, host, port, workers, with_keeper)
    process = _start_keeper() if with_keeper else None
    try:
        uvicorn.run(APP, host=host, port=port, workers=workers, **_uvicorn_options(args))
    finally:
        if process is not None:
            _stop([process])
    return 0


def _start_keeper():
    """The feed keeper process (`shoprec.service.keeper`)."""
    import multiprocessing as mp
    import os

    from shoprec.service.keeper import main

    process = mp.get_context("spawn").Process(target=main, args=(os.getpid(),), name="shoprec-feed-keeper", daemon=False)
    process.start()
    return process


def _stop(processes: list) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: workers finish in-flight requests, the keeper its feed
    for process in processes:
        process.join(15)
        if process.is_alive():
            process.kill()


def end_with_parent(signum: int, parent: int) -> bool:
    """Linux: have the kernel send `signum` to this process when the one that started it (`parent`)
    ends, even by kill -9. Returns False when the parent is gone already."""
    import ctypes
    import os

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            logging.getLogger(__name__).warning("could not ask the kernel to end this process with its parent")
    return os.getppid() == parent


def _serve_worker(args: argparse.Namespace, host: str, port: int, parent: int) -> None:
    """One worker process listening on its own SO_REUSEPORT socket.

    uvicorn's own workers share one listening socket, and whichever is idle first accepts a burst
    of keep-alive connections and keeps them: under load one worker did all the work. With a
    socket each, the kernel spreads new connections across the workers by hash. Ends (as on SIGTERM)
    when the supervisor does, even by kill -9: else it would go on serving, unsupervised, on the port."""
    import signal
    import socket

    import uvicorn

    if not end_with_parent(signal.SIGTERM, parent):
        return

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    # Not listening yet: uvicorn listens once the app has started (artifacts loaded, queries warmed),
    # so the kernel never hands a connection to a worker that cannot answer it.
    uvicorn.Server(uvicorn.Config(APP, host=host, port=port, **_uvicorn_options(args))).run(sockets=[sock])


def _run_reuse_port(args: argparse.Namespace, host: str, port: int, workers: int, with_keeper: bool) -> int:
    """Start `workers` processes on one port (and the feed keeper); restart any that dies; stop
    them all on SIGTERM/SIGINT."""
    import multiprocessing as mp
    import os
    import signal
    import time

    ctx = mp.get_context("spawn")
    stopping = False

    def start() -> mp.Process:
        process = ctx.Process(target=_serve_worker, args=(args, host, port, os.getpid()), name="shoprec-worker", daemon=False)
        process.start()
        return process

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    starts = [start] * workers + ([_start_keeper] if with_keeper else [])
    processes = [begin() for begin in starts]
    while not stopping:
        time.sleep(0.5)
        for i, process in enumerate(processes):
            if not process.is_alive() and not stopping:
                print(f"{process.name} {process.pid} exited with {process.exitcode}; starting another", flush=True)
                processes[i] = starts[i]()
    _stop(processes)
    return 0
