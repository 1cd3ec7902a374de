"""The REST API: `create_app(settings=None, engine=None) -> FastAPI`.

Versioned JSON routes under `/v1` (OpenAPI at `/docs` and `/openapi.json`), health at `/healthz`
and `/readyz`, Prometheus at `/metrics`. Every error is a JSON body `{"error": code, "detail": ...}`;
validation errors name the field; unhandled errors answer 500 with an `error_id` and keep the
traceback in the server log. Events are acknowledged only after the store has committed them.
Raw user ids are never logged: logs and metrics carry route templates, not paths or query strings.

Run it with `shoprec serve` (uvicorn, factory `shoprec.service.app:create_app`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import traceback
import uuid
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shoprec.data.schemas import Event
from shoprec.errors import NotBuiltError
from shoprec.service import models as m
from shoprec.service.auth import ADMIN, EVENTS, READ, ApiError, KeyRing, limit_by_ip, require
from shoprec.service.builds import AnswersKeeper, BuildManager, StoreFollower, VersionWatcher
from shoprec.service.metrics import MetricsMiddleware, ServiceMetrics
from shoprec.service.ratelimit import TokenBucketLimiter
from shoprec.settings import Settings, get_settings

log = logging.getLogger("shoprec.service")


_ATTR_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
                429: "rate_limited", 503: "not_ready"}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": m.ErrorBody, "description": name.replace("_", " ")}
    for code, name in [(401, "unauthorized"), (403, "forbidden"), (422, "validation_error"), (429, "rate_limited")]
}


# -- errors ---------------------------------------------------------------------------------------

class FastJSONResponse(JSONResponse):
    """orjson-encoded JSON. Read routes return it directly: their dicts are built to the response
    model already, and FastAPI's re-validation through pydantic cost more than the search itself."""

    def render(self, content: Any) -> bytes:
        import orjson

        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=_plain)


def _error(status: int, error: str, detail: Any, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


def _field_name(loc: tuple) -> tuple[str, str]:
    """("body", "events", 3, "timestamp") -> ("events[3].timestamp", "body")."""
    where = str(loc[0]) if loc else ""
    name = ""
    for part in loc[1:]:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or where, where


def validation_details(errors: list[dict[str, Any]], prefix: tuple = ()) -> list[dict[str, str]]:
    out = []
    for err in errors:
        field, where = _field_name(tuple(prefix) + tuple(err.get("loc", ())))
        reason = err.get("msg", "invalid")
        if err.get("type") == "missing":
            reason = "field required"
        out.append({"field": field, "reason": reason, "location": where})
    return out


def invalid(field: str, reason: str, location: str = "query") -> ApiError:
    """A 422 naming one field, for checks that span parameters (price_min <= price_max, ...)."""
    exc = ApiError(422, "validation_error", "")
    exc.fields = [{"field": field, "reason": reason, "location": location}]
    return exc


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "validation_error", validation_details(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if getattr(exc, "fields", None):
            return _error(exc.status_code, "validation_error", exc.fields)
        code = getattr(exc, "error", None) or _ERROR_CODES.get(exc.status_code, "error")
        return _error(exc.status_code, code, exc.detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(NotBuiltError)
    async def _not_built(request: Request, exc: NotBuiltError) -> JSONResponse:
        return _error(503, "not_ready", "no artifact version is loaded yet: run `shoprec build` (or POST /v1/admin/build)",
                      headers={"Retry-After": "30"})


class CatchAllMiddleware:
    """Turn any unhandled exception into a 500 JSON body with an error id; log the traceback."""

    def __init__(self, app, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = [False]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            error_id = uuid.uuid4().hex[:16]
            route = getattr(scope.get("route"), "path", "unmatched")
            # Route template only: the raw path and query could hold user ids.
            log.error("unhandled error %s on %s %s: %s", error_id, scope.get("method"), route,
                      "".join(traceback.format_exception(exc)))
            self.metrics.errors.inc()
            if started[0]:
                raise
            response = _error(500, "internal_error", "the server failed to handle this request; quote error_id when reporting it",
                              error_id=error_id)
            await response(scope, receive, send)


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`, by Content-Length up front or by counting a streamed body."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _error(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                    return
                break
        if length is not None:
            if length > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # No length (chunked): read it here, bounded, then replay it to the app.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = [False]

        async def replay():
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send) -> None:
        message = f"request body exceeds {self.max_bytes} bytes; split it into smaller batches"
        await _error(413, "payload_too_large", message)(scope, receive, send)


# -- helpers --------------------------------------------------------------------------------------

def _engine(request: Request):
    engine = request.app.state.engine
    if engine is None:
        raise ApiError(503, "not_ready", "the engine is not loaded yet", headers={"Retry-After": "5"})
    return engine


def _plain(value: Any) -> Any:
    """JSON-safe copy of product fields (numpy scalars/arrays, datetimes come out of artifacts)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _hits(ranked) -> list[dict[str, Any]]:
    return [
        {
            "id": str(h.id),
            "score": float(h.score),
            "reason": h.reason or "",
            "sources": {str(k): float(v) for k, v in (h.sources or {}).items()},
            "highlights": dict(h.highlights or {}),
            "product": h.product,  # JSON-safe already; FastJSONResponse converts any stray numpy value
        }
        for h in ranked.hits
    ]


def _context(device: str | None, locale: str | None) -> dict[str, Any] | None:
    context = {k: v for k, v in (("device", device), ("locale", locale)) if v}
    return context or None


def _split_ids(values: list[str]) -> list[str]:
    """Repeated parameters or comma-separated lists (`cart=a&cart=b` or `cart=a,b`)."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def make_filters(category: str | None, brands: list[str], price_min: float | None, price_max: float | None,
                 available: bool | None, attributes: dict[str, list[str]]):
    """`shoprec.search.filters.SearchFilters` from the query parameters; None when nothing filters."""
    wanted = {"category": category, "brand": brands or None, "price_min": price_min, "price_max": price_max,
              "available": available, "attributes": attributes or None}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    if not wanted:
        return None
    from pydantic import ValidationError

    from shoprec.search.filters import SearchFilters

    try:
        return SearchFilters(**wanted)
    except ValidationError as exc:
        error = ApiError(422, "validation_error", "")
        error.fields = [dict(d, location="query") for d in validation_details(list(exc.errors()))]
        raise error from None


def _scenarios(engine) -> dict[str, Any]:
    scenarios = getattr(engine, "scenarios", None)
    if scenarios:
        return scenarios
    from shoprec.recommend.scenarios import SCENARIOS

    return SCENARIOS


def pseudonym(engine: Any, settings: Settings, user: str) -> str:
    """The user's pseudonym: the engine's when it has one, else `shoprec.data.privacy.pseudonymize`."""
    if engine is not None and hasattr(engine, "pseudonym"):
        return engine.pseudonym(user)
    from shoprec.data.privacy import pseudonymize

    return pseudonymize(user, settings.pseudonym_key)


# -- the app --------------------------------------------------------------------------------------

def create_app(settings: Settings | None = None, engine: Any = None, build_mode: str = "process",
               build_models: list[str] | None = None, watch_interval_s: float = 2.0) -> FastAPI:
    """The FastAPI application. With `engine=None` it opens `Engine.open(settings)` at startup.

    build_mode: "process" runs `POST /v1/admin/build` as a `shoprec build` subprocess (default:
    serving keeps its CPU share), "thread" calls the engine in-process. build_models: the models
    that build fits (default: the build's own default list). watch_interval_s: how often to look
    for a new `current` artifact version written by another process (0 disables)."""
    settings = settings or get_settings()
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.engine is None:
            from shoprec.engine import Engine, limit_compute_threads

            limit_compute_threads(settings.service.compute_threads)
            sys.setswitchinterval(settings.service.switch_interval_ms / 1000)
            t0 = time.perf_counter()
            from shoprec.result_cache import SharedAnswers

            shared = (SharedAnswers.beside(settings.artifacts_dir, settings.service.shared_answers_size)
                      if settings.service.shared_answers_size > 0 else None)
            app.state.engine = Engine.open(settings, shared_answers=shared, warm_answers=True)
            log.info("engine opened in %.1fs serving version %s", time.perf_counter() - t0, app.state.engine.version)
        watcher = None
        if watch_interval_s and watch_interval_s > 0:
            shared = getattr(app.state.engine, "shared_answers", None)
            # A new version is loaded and warmed by the feed keeper first (at idle priority: the
            # frequent queries' candidates and the active shoppers' feeds, shared), so the workers
            # read what it computed instead of computing it beside their requests.
            keeper_first = (lambda version: shared.keeper_serves(version) is not False) if shared is not None else None
            watcher = VersionWatcher(settings.artifacts_dir, lambda: app.state.engine, app.state.metrics, watch_interval_s,
                                     ready_to_load=keeper_first, wait_max_s=settings.service.keeper_first_max_s)
            watcher.start()
        follower = None
        if settings.service.follow_interval_s > 0:
            follower = StoreFollower(lambda: app.state.engine, settings.service.follow_interval_s)
            follower.start()
        keeper = AnswersKeeper(lambda: app.state.engine, 1.0, feed_grace_s=settings.service.pending_feed_s)
        keeper.start()
        try:
            yield
        finally:
            keeper.stop()
            if follower is not None:
                follower.stop()
            if watcher is not None:
                watcher.stop()
            app.state.builds.wait(timeout=0)
            if owns_engine and app.state.engine is not None and hasattr(app.state.engine, "close"):
                app.state.engine.close()

    app = FastAPI(
        title="shoprec",
        version=_package_version(),
        description="E-commerce search and recommendation API. Send a key in `X-API-Key` (or `Authorization: Bearer`).",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.keyring = KeyRing(settings.service)
    app.state.limiter = TokenBucketLimiter(settings.service.rate_limit_per_minute)
    app.state.metrics = ServiceMetrics(lambda: getattr(app.state.engine, "version", None))
    app.state.builds = BuildManager(settings, lambda: app.state.engine, app.state.metrics, mode=build_mode,
                                    models=build_models, reload=not (watch_interval_s and watch_interval_s > 0))

    _install_error_handlers(app)
    # Outermost last: CORS wraps everything so even errors carry CORS headers.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.service.max_request_bytes)
    app.add_middleware(CatchAllMiddleware, metrics=app.state.metrics)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.service.cors_origins,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["X-API-Key", "Authorization", "Content-Type"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
    _add_routes(app)
    _add_ui(app)
    return app


def _package_version() -> str:
    from shoprec import __version__

    return __version__


def _add_routes(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    read, events_scope, admin = Depends(require(READ)), Depends(require(EVENTS)), Depends(require(ADMIN))

    # -- operations -------------------------------------------------------------------------------
    @app.get("/healthz", response_model=m.Health, tags=["operations"], dependencies=[Depends(limit_by_ip)])
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=m.Ready, tags=["operations"], dependencies=[Depends(limit_by_ip)],
             responses={503: {"model": m.Ready}})
    def readyz(request: Request):  # in a thread: reading the processes may wait for the answers file's housekeeping
        """Readiness: an artifact version is loaded and served."""
        engine = request.app.state.engine
        version = getattr(engine, "version", None) if engine is not None else None
        if version:
            ready = {"ready": True, "version": version, "worker": os.getpid()}
            shared = getattr(engine, "shared_answers", None)
            if shared is not None:
                ready["serving_processes"] = sum(v == version for v in shared.serving_processes().values())
            return ready
        detail = "engine not loaded" if engine is None else "no artifact version built yet"
        return JSONResponse({"ready": False, "version": None, "detail": detail}, status_code=503)

    @app.get("/metrics", tags=["operations"], dependencies=[Depends(limit_by_ip)], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    def metrics(request: Request) -> Response:
        """Prometheus exposition: request counts and latency per route and status, versions, events, builds."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    # -- search and recommendations ---------------------------------------------------------------
    @app.get("/v1/search", response_model=m.SearchResponse, tags=["search"], dependencies=[read])
    async def search(
        request: Request,
        q: str = Query("", max_length=500, description="the shopper's words (any language); empty browses by filters"),
        user: str | None = Query(None, min_length=1, max_length=200, description="raw user id (pseudonymised by the engine)"),
        category: str | None = Query(None, min_length=1, max_length=500, description="category path prefix, e.g. `Electronics > Audio`"),
        brand: list[str] = Query([], description="brand (repeatable: any of)"),
        price_min: float | None = Query(None, ge=0, le=1e12),
        price_max: float | None = Query(None, ge=0, le=1e12),
        available: bool | None = Query(None, description="only in-stock (true) or out-of-stock (false) items"),
        page: int | None = Query(None, ge=1, le=1000, description="1-based page; with `size` instead of k/offset"),
        size: int | None = Query(None, ge=1, le=m.MAX_K),
        k: int = Query(20, ge=1, le=m.MAX_K),
        offset: int = Query(0, ge=0, le=10_000),
        device: str | None = Query(None, max_length=32),
        locale: str | None = Query(None, max_length=35),
        sort: Literal["relevance", "price_asc", "price_desc", "rating", "newest"] = Query("relevance"),
    ) -> dict[str, Any]:
        """Hybrid product search. Attribute filters: `attr.<name>=value` (repeatable: any of)."""
        if price_min is not None and price_max is not None and price_min > price_max:
            raise invalid("price_max", f"must be >= price_min ({price_min})")
        attributes: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if key.startswith("attr."):
                name = key[5:]
                if not _ATTR_NAME.match(name):
                    raise invalid(key, "attribute names are 1-64 letters, digits, '_' or '-'")
                if len(value) > 200:
                    raise invalid(key, "value longer than 200 characters")
                attributes.setdefault(name, []).append(value)
        if page is not None or size is not None:
            k = size or k
            offset = ((page or 1) - 1) * k
        filters = make_filters(category, brand, price_min, price_max, available, attributes)
        engine = _engine(request)
        ranked = engine.search(q, user=user, filters=filters, k=k, offset=offset, context=_context(device, locale),
                               sort=sort)
        info = dict(ranked.info or {})
        did_you_mean = info.pop("did_you_mean", None) or info.pop("corrected_query", None)
        return FastJSONResponse({"query": q, "hits": _hits(ranked), "total": int(ranked.total), "offset": offset, "k": k,
                                 "facets": ranked.facets or {}, "did_you_mean": did_you_mean, "version": engine.version,
                                 "info": _plain(info)})

    @app.get("/v1/recommend/{scenario}", response_model=m.RecommendResponse, tags=["recommend"], dependencies=[read])
    async def recommend(
        request: Request,
        scenario: str = PathParam(min_length=1, max_length=64, description="home, similar, frequently_bought_together, cart, welcome, cross_category, ..."),
        user: str | None = Query(None, min_length=1, max_length=200),
        item: str | None = Query(None, min_length=1, max_length=200, description="the item page (similar, frequently_bought_together)"),
        cart: list[str] = Query([], description="cart item ids (repeatable or comma-separated)"),
        k: int = Query(20, ge=1, le=m.MAX_K),
        device: str | None = Query(None, max_length=32),
        locale: str | None = Query(None, max_length=35),
    ) -> dict[str, Any]:
        """Recommendations for one slot of the shop."""
        engine = _engine(request)
        scenarios = _scenarios(engine)
        if scenario not in scenarios:
            raise ApiError(404, "not_found", f"unknown scenario {scenario!r}; known: {', '.join(sorted(scenarios))}")
        cart_ids = _split_ids(cart)
        if len(cart_ids) > 100:
            raise invalid("cart", "at most 100 items")
        if any(len(c) > 200 for c in cart_ids):
            raise invalid("cart", "item ids are at most 200 characters")
        needs = getattr(scenarios[scenario], "needs", None)
        if needs == "item" and not item:
            raise invalid("item", f"required by the {scenario!r} scenario")
        if needs == "cart" and not cart_ids:
            raise invalid("cart", f"required by the {scenario!r} scenario")
        ranked = engine.recommend(user, scenario=scenario, k=k, item=item, cart=cart_ids or None, context=_context(device, locale))
        return FastJSONResponse({"scenario": scenario, "hits": _hits(ranked), "version": engine.version,
                                 "info": _plain(dict(ranked.info or {}))})

    @app.get("/v1/items/{item_id}/similar", response_model=m.RecommendResponse, tags=["recommend"], dependencies=[read])
    async def similar(request: Request, item_id: str = PathParam(min_length=1, max_length=200), k: int = Query(20, ge=1, le=m.MAX_K)) -> dict[str, Any]:
        """Items similar to one item (content and behaviour)."""
        engine = _engine(request)
        try:
            ranked = engine.similar(item_id, k=k)
        except KeyError:
            raise ApiError(404, "not_found", "unknown item id") from None
        if (ranked.info or {}).get("unknown_item"):
            raise ApiError(404, "not_found", "unknown item id")
        return FastJSONResponse({"scenario": "similar", "hits": _hits(ranked), "version": engine.version,
                                 "info": _plain(dict(ranked.info or {}))})

    @app.get("/v1/suggest", response_model=m.SuggestResponse, tags=["search"], dependencies=[read])
    async def suggest(request: Request, q: str = Query(..., min_length=1, max_length=100, description="prefix typed so far"),
                k: int = Query(10, ge=1, le=50)) -> dict[str, Any]:
        """Query autocompletion."""
        return {"prefix": q, "suggestions": [str(s) for s in _engine(request).suggest(q, k=k)]}

    # -- events -----------------------------------------------------------------------------------
    def _record(request: Request, events: list[Event]) -> dict[str, int]:
        engine = _engine(request)
        metrics = request.app.state.metrics
        metrics.event_queue_depth.inc(len(events))
        try:
            accepted = int(engine.record_events(events))  # returns after the store has committed
        finally:
            metrics.event_queue_depth.dec(len(events))
        duplicates = max(0, len(events) - accepted)
        metrics.events.labels("accepted").inc(accepted)
        metrics.events.labels("duplicate").inc(duplicates)
        return {"received": len(events), "accepted": accepted, "duplicates": duplicates}

    @app.post("/v1/events", response_model=m.EventsAccepted, tags=["events"], dependencies=[events_scope])
    async def post_event(request: Request, event: m.EventIn) -> dict[str, int]:
        """Record one shopper action; answered after it is committed. Resending the same event_id is a no-op."""
        # Inline on the event loop: one small commit (~0.2 ms) costs less than a hop to a worker
        # thread, which then waits for the interpreter lock behind the request being computed.
        return _record(request, [event])

    @app.post("/v1/events/batch", response_model=m.EventsAccepted, tags=["events"], dependencies=[events_scope])
    def post_events(request: Request, batch: m.EventBatch) -> dict[str, int]:
        """Record up to 1000 events in one commit; idempotent by event_id."""
        return _record(request, batch.events)

    # -- catalog and users (admin) ----------------------------------------------------------------
    @app.put("/v1/admin/products", response_model=m.ProductsUpserted, tags=["admin"], dependencies=[admin])
    def upsert_products(request: Request, batch: m.ProductBatch) -> dict[str, Any]:
        """Insert or update up to 1000 products (store + incremental indexes)."""
        result = _engine(request).upsert_products(batch.products) or {}
        return {"received": len(batch.products), **_plain(dict(result))}

    @app.delete("/v1/admin/products/{product_id}", response_model=m.Deleted, tags=["admin"], dependencies=[admin])
    def delete_product(request: Request, product_id: str = PathParam(min_length=1, max_length=200)) -> dict[str, int]:
        """Delete one product from the store and the serving indexes."""
        deleted = int(_engine(request).delete_products([product_id]))
        if not deleted:
            raise ApiError(404, "not_found", "no product with this id")
        return {"deleted": deleted}

    @app.get("/v1/users/{user_id}/profile", tags=["users"], dependencies=[admin])
    def profile(request: Request, user_id: str = PathParam(min_length=1, max_length=200)) -> dict[str, Any]:
        """A user's profile (affinities, recent items). Personal data: admin keys only."""
        return _plain(dict(_engine(request).profile(user_id) or {}))

    @app.delete("/v1/admin/users/{user_id}", response_model=m.UserForgotten, tags=["admin"], dependencies=[admin])
    def forget_user(request: Request, user_id: str = PathParam(min_length=1, max_length=200)) -> dict[str, Any]:
        """Forget a user everywhere: events, profile, online state."""
        result = _plain(dict(_engine(request).forget_user(user_id) or {}))
        return {"forgotten": True, **result}

    # -- experiments ------------------------------------------------------------------------------
    @app.get("/v1/experiments/{experiment_id}/assignment", response_model=m.Assignment, tags=["experiments"], dependencies=[read])
    def assignment(request: Request, experiment_id: str = PathParam(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$"),
                   user: str = Query(..., min_length=1, max_length=200)) -> dict[str, Any]:
        """The user's arm in an experiment (`shoprec.evaluation.abtest`): deterministic, same in every process."""
        from shoprec.evaluation.abtest import assign, load_experiment

        engine = _engine(request)
        try:
            experiment = load_experiment(engine.store, experiment_id)
        except KeyError:
            raise ApiError(404, "not_found", f"no experiment {experiment_id!r}: define it in the store first") from None
        variant = assign(pseudonym(engine, settings, user), experiment)
        return {"experiment": experiment_id, "variant": variant, "arms": [a.name for a in experiment.arms]}

    # -- builds -----------------------------------------------------------------------------------
    @app.post("/v1/admin/build", response_model=m.BuildStatus, status_code=202, tags=["admin"], dependencies=[admin],
              responses={409: {"model": m.BuildStatus, "description": "a build is already running"}})
    def start_build(request: Request):
        """Start a rebuild in the background. Once it has published its version, each serving process swaps
        to it atomically: the feed keeper first, then the workers one at a time (`GET /readyz` counts
        the processes serving each version)."""
        status, started = request.app.state.builds.start()
        if not started:
            return JSONResponse(m.BuildStatus(**status).model_dump(mode="json"), status_code=409)
        return status

    @app.get("/v1/admin/builds", response_model=m.BuildList, tags=["admin"], dependencies=[admin])
    def list_builds(request: Request) -> dict[str, Any]:
        """Recent builds, newest first, and the version being served."""
        engine = request.app.state.engine
        return {"builds": request.app.state.builds.list(), "serving_version": getattr(engine, "version", None)}


def _add_ui(app: FastAPI) -> None:
    """The storefront (`/`), admin dashboard (`/admin`), their static files and the admin analytics API."""
    from shoprec.service.admin_api import mount_admin_api
    from shoprec.service.web import mount_web

    mount_admin_api(app)
    mount_web(app)
