"""`shoprec serve`: run the REST API (and web UI) with uvicorn."""

from __future__ import annotations

import argparse


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


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from shoprec.settings import get_settings

    settings = get_settings()
    host = args.host or settings.service.host
    port = args.port if args.port is not None else settings.service.port
    uvicorn.run(
        "shoprec.service.app:create_app", factory=True, host=host, port=port, workers=max(1, args.workers),
        # No uvicorn access log: it prints raw paths and query strings, which carry user ids.
        # Per-route counts and latencies are in /metrics instead.
        access_log=False, log_level=args.log_level, timeout_graceful_shutdown=10,
        log_config=log_config(args.log_level, args.access_log),
    )
    return 0
