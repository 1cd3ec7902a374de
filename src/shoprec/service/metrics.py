"""Prometheus metrics of the service, and the ASGI middleware that times every request.

Labels use the route template (`/v1/items/{item_id}/similar`), never the raw path, so ids never
reach the metrics and the label set stays small. Each app gets its own registry (tests build many).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily

access_log = logging.getLogger("shoprec.service.access")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _VersionCollector:
    """`shoprec_artifact_info{version=...} 1` read at scrape time from the serving engine."""

    def __init__(self, get_version: Callable[[], str | None]):
        self.get_version = get_version

    def collect(self):
        family = GaugeMetricFamily("shoprec_artifact_info", "artifact (model) version being served", labels=["version"])
        version = self.get_version()
        family.add_metric([version or "none"], 1.0 if version else 0.0)
        yield family


class ServiceMetrics:
    def __init__(self, get_version: Callable[[], str | None]):
        disable_created_metrics()  # the *_created series only add noise to every scrape
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("shoprec_http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=r)
        self.latency = Histogram("shoprec_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("shoprec_http_requests_in_flight", "requests being served", registry=r)
        self.event_queue_depth = Gauge("shoprec_event_queue_depth", "events received and not yet committed to the store", registry=r)
        self.events = Counter("shoprec_events", "events received, by outcome", ["outcome"], registry=r)
        self.build_in_progress = Gauge("shoprec_build_in_progress", "1 while a rebuild runs", registry=r)
        self.builds = Counter("shoprec_builds", "finished rebuilds by state", ["state"], registry=r)
        self.reloads = Counter("shoprec_artifact_reloads", "artifact versions swapped in", registry=r)
        self.rate_limited = Counter("shoprec_rate_limited", "requests refused with 429", registry=r)
        self.errors = Counter("shoprec_unhandled_errors", "requests that ended in an unhandled exception (500)", registry=r)
        r.register(_VersionCollector(get_version))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def route_template(scope, status: int) -> str:
    """The matched route's path template; routes outside FastAPI's API routes are matched here."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return route.path
    app = scope.get("app")
    if status != 404 and app is not None:
        from starlette.routing import Match

        for candidate in app.router.routes:
            if candidate.matches(scope)[0] == Match.FULL:
                return getattr(candidate, "path", "other")
    return "unmatched"


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task overhead): count and time by route template."""

    def __init__(self, app, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status_holder = [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            template = route_template(scope, status_holder[0])
            method = scope.get("method", "")
            seconds = time.perf_counter() - t0
            self.metrics.latency.labels(method, template).observe(seconds)
            self.metrics.requests.labels(method, template, str(status_holder[0])).inc()
            if access_log.isEnabledFor(logging.INFO):  # route template only: paths and queries can hold user ids
                access_log.info("%s %s %d %.1fms", method, template, status_holder[0], seconds * 1000)
