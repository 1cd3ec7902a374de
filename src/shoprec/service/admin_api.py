"""Admin analytics API behind the admin dashboard (admin scope): statistics over time, search
analytics, artifact versions, the experiment registry, A/B results and merchandising rules.

Aggregations are columnar (pyarrow group-bys over the events table) and cached briefly, since the
dashboard polls them and the table can hold millions of events.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from shoprec.service.auth import ADMIN, ApiError, require

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require(ADMIN))])
CACHE_SECONDS = 15.0
_CACHE_LOCK = threading.Lock()


def _cached(request: Request, key: str, compute):
    """`compute()` at most every CACHE_SECONDS per app and key (one engine per app, so per store)."""
    now = time.monotonic()
    with _CACHE_LOCK:
        cache = request.app.state.admin_cache
        hit = cache.get(key)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    value = compute()
    with _CACHE_LOCK:
        cache[key] = (now, value)
    return value


def _engine(request: Request):
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise ApiError(503, "not_ready", "the engine is not loaded yet")
    return engine


def event_stats(events) -> dict[str, Any]:
    """Events per day and type, plus totals: {"days": [...], "series": {type: [counts]}, "totals": {...}}."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if events.num_rows == 0:
        return {"days": [], "series": {}, "totals": {}}
    day = pc.floor(pc.divide(events.column("timestamp"), 86400.0))
    table = pa.table({"day": day, "type": events.column("type")})
    grouped = table.group_by(["day", "type"]).aggregate([("type", "count")]).to_pydict()
    days = sorted(set(grouped["day"]))
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[int]] = {}
    for d, kind, count in zip(grouped["day"], grouped["type"], grouped["type_count"]):
        series.setdefault(kind, [0] * len(days))[index[d]] = count
    iso = [time.strftime("%Y-%m-%d", time.gmtime(d * 86400)) for d in days]
    return {"days": iso, "series": series, "totals": {k: int(sum(v)) for k, v in series.items()}}


def search_analytics(events, top: int = 20) -> dict[str, Any]:
    """Top queries, click-through (a click carrying the query in the same session) and zero-result queries."""
    import pyarrow.compute as pc

    types = events.column("type")
    searches = events.filter(pc.equal(types, "search"))
    clicks = events.filter(pc.and_(pc.equal(types, "click"), pc.is_valid(events.column("query"))))
    lower = pc.utf8_lower(searches.column("query"))
    counts = searches.append_column("q", lower).group_by("q").aggregate([("q", "count")]).sort_by([("q_count", "descending")])
    clicked = clicks.append_column("q", pc.utf8_lower(clicks.column("query"))).group_by("q").aggregate([("q", "count")])
    click_map = dict(zip(clicked.column("q").to_pylist(), clicked.column("q_count").to_pylist()))
    rows = []
    for q, n in zip(counts.column("q").to_pylist()[:top], counts.column("q_count").to_pylist()[:top]):
        rows.append({"query": q, "searches": int(n), "clicks": int(click_map.get(q, 0)), "ctr": round(click_map.get(q, 0) / n, 3)})
    total = searches.num_rows
    return {"searches": total, "clicks": clicks.num_rows, "ctr": round(clicks.num_rows / total, 3) if total else 0.0, "top_queries": rows}


def experiment_results(events) -> dict[str, Any]:
    """Per experiment arm (context.experiment / context.arm of events): users, clicks, purchases, revenue."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ctx = events.column("context")
    exp = pc.struct_field(pc.extract_regex(ctx, r'"experiment"\s*:\s*"(?P<v>[^"]*)"'), "v")
    arm = pc.struct_field(pc.extract_regex(ctx, r'"arm"\s*:\s*"(?P<v>[^"]*)"'), "v")
    table = pa.table({"experiment": exp, "arm": arm, "user": events.column("user_id"), "type": events.column("type"),
                      "revenue": pc.multiply(pc.fill_null(events.column("price"), 0.0), pc.cast(pc.fill_null(events.column("quantity"), 1), pa.float64()))})
    table = table.filter(pc.and_(pc.is_valid(table.column("experiment")), pc.is_valid(table.column("arm"))))
    out: dict[str, Any] = {}
    if table.num_rows == 0:
        return out
    users = table.group_by(["experiment", "arm"]).aggregate([("user", "count_distinct")]).to_pylist()
    for row in users:
        out.setdefault(row["experiment"], {})[row["arm"]] = {"users": row["user_count_distinct"], "clicks": 0, "purchases": 0, "revenue": 0.0}
    for kind in ("click", "purchase"):
        part = table.filter(pc.equal(table.column("type"), kind))
        for row in part.group_by(["experiment", "arm"]).aggregate([("user", "count"), ("revenue", "sum")]).to_pylist():
            cell = out[row["experiment"]][row["arm"]]
            cell[f"{kind}s"] = row["user_count"]
            if kind == "purchase":
                cell["revenue"] = round(row["revenue_sum"], 2)
    for arms in out.values():
        for cell in arms.values():
            cell["ctr_per_user"] = round(cell["clicks"] / max(cell["users"], 1), 3)
            cell["conversion"] = round(cell["purchases"] / max(cell["users"], 1), 3)
            cell["revenue_per_user"] = round(cell["revenue"] / max(cell["users"], 1), 2)
    return out


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    """Catalog and event statistics over time."""
    engine = _engine(request)

    def compute():
        events = engine.store.read_events()
        return {"engine": engine.stats(), "events": event_stats(events)}

    return _cached(request, "stats", compute)


@router.get("/search-analytics")
def search_stats(request: Request) -> dict[str, Any]:
    """Top queries with click-through, and zero-result queries."""
    engine = _engine(request)

    def compute():
        out = search_analytics(engine.store.read_events())
        out["zero_result_queries"] = sorted(
            ({"query": k, **v} for k, v in engine.store.list_records("zero_result")),
            key=lambda r: -r.get("count", 0))[:50]
        return out

    return _cached(request, "search", compute)


@router.get("/versions")
def versions(request: Request) -> dict[str, Any]:
    """Artifact versions with their manifests (build history), newest first."""
    from shoprec.artifacts import ArtifactStore

    engine = _engine(request)
    store = ArtifactStore(engine.settings.artifacts_dir)
    items = []
    for name in reversed(store.versions()):
        manifest = store.manifest(name)
        items.append({"version": name, "created_at": manifest.get("created_at"), "seconds": manifest.get("total_seconds"),
                      "counts": manifest.get("counts"), "data_hash": manifest.get("data_hash"),
                      "steps": {k: v.get("seconds") for k, v in manifest.get("steps", {}).items()},
                      "ranker": manifest.get("steps", {}).get("ranker", {})})
    return {"serving": engine.version, "versions": items}


@router.get("/runs")
def runs(request: Request, kind: str | None = None) -> dict[str, Any]:
    """The experiment registry: every recorded benchmark, evaluation and A/B test."""
    engine = _engine(request)
    records = engine.store.list_records("run")
    rows = [dict(value, id=key) for key, value in records if kind is None or value.get("kind") == kind]
    return {"runs": list(reversed(rows))}


@router.get("/report", response_class=HTMLResponse)
def report(request: Request, kind: str | None = None) -> HTMLResponse:
    """The registry rendered as the same self-contained HTML report as `shoprec report`."""
    from shoprec.evaluation.registry import list_runs
    from shoprec.evaluation.report import render_report

    engine = _engine(request)
    return HTMLResponse(render_report(list_runs(engine.store), kind_filter=[kind] if kind else None))


@router.get("/experiments")
def experiments(request: Request) -> dict[str, Any]:
    """Configured experiments and their live per-arm results from logged events."""
    engine = _engine(request)
    configured = {key: value for key, value in engine.store.list_records("experiment")}
    live = _cached(request, "experiments", lambda: experiment_results(engine.store.read_events()))
    return {"experiments": configured, "results": live}


@router.get("/rules")
def list_rules(request: Request) -> dict[str, Any]:
    engine = _engine(request)
    return {"rules": [value for _, value in engine.store.list_records("rule")]}


@router.put("/rules/{rule_id}")
def put_rule(request: Request, rule_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create or replace a merchandising rule (pin / boost / bury / hide for a query or category)."""
    from pydantic import ValidationError

    from shoprec.search.rules import Rule

    engine = _engine(request)
    try:
        rule = Rule.model_validate({**body, "id": rule_id})
    except ValidationError as exc:
        detail = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        raise ApiError(422, "validation_error", json.dumps(detail)) from None
    engine.store.put_record("rule", rule.id, rule.model_dump(mode="json"))
    engine.reload_rules()
    return rule.model_dump(mode="json")


@router.delete("/rules/{rule_id}")
def delete_rule(request: Request, rule_id: str) -> dict[str, Any]:
    engine = _engine(request)
    if not engine.store.delete_record("rule", rule_id):
        raise ApiError(404, "not_found", f"no rule {rule_id!r}")
    engine.reload_rules()
    return {"deleted": rule_id}


def mount_admin_api(app: FastAPI) -> None:
    app.state.admin_cache = {}
    app.include_router(router)
