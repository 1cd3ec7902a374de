"""Python client of the shoprec REST API (httpx), with retries and backoff.

    client = ShoprecClient("http://127.0.0.1:8000", api_key="public-demo-key")
    result = client.search("wireless earbuds", brand=["Acme"], k=10)
    client.send_events([{"user_id": "alice", "item_id": "p1", "type": "view"}])

Retries (exponential backoff with jitter, honouring `Retry-After`) cover 429, 502/503/504 and
connection errors; 500 is retried only for idempotent calls. Events get an `event_id` (UUID) and a
timestamp before the first attempt when they lack one, so a retried batch is never stored twice.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import httpx

from shoprec.data.schemas import Event, Product
from shoprec.service.models import (
    MAX_EVENTS_PER_BATCH,
    MAX_PRODUCTS_PER_BATCH,
    Assignment,
    BuildList,
    BuildStatus,
    EventsAccepted,
    RecommendResponse,
    SearchResponse,
)

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class ShoprecAPIError(Exception):
    """A non-2xx answer: `status`, the stable `error` code and the server's `detail`."""

    def __init__(self, status: int, error: str, detail: Any, error_id: str | None = None):
        self.status, self.error, self.detail, self.error_id = status, error, detail, error_id
        suffix = f" (error_id {error_id})" if error_id else ""
        super().__init__(f"HTTP {status} {error}: {detail}{suffix}")


class ShoprecClient:
    """Typed methods over `/v1`; one pooled connection per client (use it as a context manager)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 10.0,
                 retries: int = 3, backoff_s: float = 0.2, max_backoff_s: float = 10.0,
                 http_client: httpx.Client | None = None, transport: httpx.BaseTransport | None = None,
                 sleep=time.sleep):
        headers = {"X-API-Key": api_key} if api_key else {}
        if http_client is not None:
            http_client.headers.update(headers)
            self._http = http_client
        else:
            self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers, transport=transport)
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self.attempts = 0  # total HTTP attempts made (retries included), for monitoring

    # -- plumbing ---------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ShoprecClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None and "retry-after" in response.headers:
            try:
                return min(self.max_backoff_s, float(response.headers["retry-after"]))
            except ValueError:
                pass
        base = min(self.max_backoff_s, self.backoff_s * (2 ** attempt))
        return base * (0.5 + random.random() / 2)  # jitter spreads retries of many clients apart

    def request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        """One API call with retries; returns the decoded JSON (or text for non-JSON answers)."""
        last_exc: Exception | None = None
        for attempt in range(self.retries + 1):
            response = None
            self.attempts += 1
            try:
                response = self._http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError,
                    httpx.ConnectTimeout, httpx.ReadTimeout, httpx.PoolTimeout) as exc:
                # A non-idempotent call may have reached the server before the connection broke.
                if not idempotent and not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    raise
                last_exc = exc
            else:
                retryable = response.status_code in RETRY_STATUSES or (idempotent and response.status_code == 500)
                if response.status_code < 400:
                    return response.json() if response.headers.get("content-type", "").startswith("application/json") else response.text
                if not retryable or attempt == self.retries:
                    raise self._error(response)
            if attempt < self.retries:
                self._sleep(self._delay(attempt, response))
        assert last_exc is not None
        raise last_exc

    @staticmethod
    def _error(response: httpx.Response) -> ShoprecAPIError:
        try:
            body = response.json()
        except ValueError:
            body = {"error": "http_error", "detail": response.text[:500]}
        return ShoprecAPIError(response.status_code, body.get("error", "http_error"), body.get("detail", ""), body.get("error_id"))

    # -- reads ------------------------------------------------------------------------------------
    def search(self, q: str, *, user: str | None = None, category: str | None = None, brand: Iterable[str] = (),
               price_min: float | None = None, price_max: float | None = None, available: bool | None = None,
               attributes: Mapping[str, str | Iterable[str]] | None = None, k: int = 20, offset: int = 0,
               device: str | None = None, locale: str | None = None) -> SearchResponse:
        params: list[tuple[str, Any]] = [("q", q), ("k", k), ("offset", offset)]
        params += [(name, value) for name, value in (("user", user), ("category", category), ("price_min", price_min),
                                                      ("price_max", price_max), ("device", device), ("locale", locale))
                   if value is not None]
        if available is not None:
            params.append(("available", "true" if available else "false"))
        params += [("brand", b) for b in brand]
        for name, values in (attributes or {}).items():
            params += [(f"attr.{name}", v) for v in ([values] if isinstance(values, str) else values)]
        return SearchResponse.model_validate(self.request("GET", "/v1/search", params=params))

    def recommend(self, scenario: str = "home", *, user: str | None = None, item: str | None = None,
                  cart: Iterable[str] = (), k: int = 20, device: str | None = None, locale: str | None = None) -> RecommendResponse:
        params: list[tuple[str, Any]] = [("k", k)]
        params += [(n, v) for n, v in (("user", user), ("item", item), ("device", device), ("locale", locale)) if v is not None]
        params += [("cart", c) for c in cart]
        return RecommendResponse.model_validate(self.request("GET", f"/v1/recommend/{_seg(scenario)}", params=params))

    def similar(self, item: str, k: int = 20) -> RecommendResponse:
        return RecommendResponse.model_validate(self.request("GET", f"/v1/items/{_seg(item)}/similar", params={"k": k}))

    def suggest(self, prefix: str, k: int = 10) -> list[str]:
        return list(self.request("GET", "/v1/suggest", params={"q": prefix, "k": k})["suggestions"])

    def assignment(self, experiment: str, user: str) -> Assignment:
        return Assignment.model_validate(self.request("GET", f"/v1/experiments/{_seg(experiment)}/assignment", params={"user": user}))

    def health(self) -> bool:
        return self.request("GET", "/healthz").get("status") == "ok"

    def ready(self) -> bool:
        try:
            return bool(self.request("GET", "/readyz").get("ready"))
        except ShoprecAPIError as exc:
            if exc.status == 503:
                return False
            raise

    # -- writes -----------------------------------------------------------------------------------
    def send_events(self, events: Iterable[Event | Mapping[str, Any]], batch_size: int = 500) -> EventsAccepted:
        """Send events in batches; each is acknowledged only once committed. Safe to call again on failure."""
        prepared = [_prepare_event(e) for e in events]
        received = accepted = duplicates = 0
        batch_size = max(1, min(batch_size, MAX_EVENTS_PER_BATCH))
        for start in range(0, len(prepared), batch_size):
            body = {"events": prepared[start:start + batch_size]}
            answer = self.request("POST", "/v1/events/batch", json=body)
            received += answer["received"]
            accepted += answer["accepted"]
            duplicates += answer["duplicates"]
        return EventsAccepted(received=received, accepted=accepted, duplicates=duplicates)

    def send_event(self, event: Event | Mapping[str, Any]) -> EventsAccepted:
        return EventsAccepted.model_validate(self.request("POST", "/v1/events", json=_prepare_event(event)))

    def upsert_products(self, products: Iterable[Product | Mapping[str, Any]], batch_size: int = 500) -> dict[str, int]:
        totals: dict[str, int] = {}
        items = [p.model_dump(mode="json") if isinstance(p, Product) else dict(p) for p in products]
        batch_size = max(1, min(batch_size, MAX_PRODUCTS_PER_BATCH))
        for start in range(0, len(items), batch_size):
            answer = self.request("PUT", "/v1/admin/products", json={"products": items[start:start + batch_size]})
            for key, value in answer.items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        return totals

    def delete_product(self, product_id: str) -> int:
        return int(self.request("DELETE", f"/v1/admin/products/{_seg(product_id)}")["deleted"])

    def profile(self, user: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/users/{_seg(user)}/profile")

    def forget_user(self, user: str) -> dict[str, Any]:
        return self.request("DELETE", f"/v1/admin/users/{_seg(user)}")

    def build(self) -> BuildStatus:
        """Start a background rebuild (not retried on 5xx: a second build would run)."""
        try:
            return BuildStatus.model_validate(self.request("POST", "/v1/admin/build", idempotent=False))
        except ShoprecAPIError as exc:
            if exc.status == 409:  # one is already running: report that one
                return self.builds().builds[0]
            raise

    def builds(self) -> BuildList:
        return BuildList.model_validate(self.request("GET", "/v1/admin/builds"))

    def wait_for_build(self, build_id: str, timeout_s: float = 600.0, poll_s: float = 1.0) -> BuildStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            for status in self.builds().builds:
                if status.id == build_id and status.state != "running":
                    return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"build {build_id} still running after {timeout_s}s")
            self._sleep(poll_s)


def _seg(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _prepare_event(event: Event | Mapping[str, Any]) -> dict[str, Any]:
    body = event.model_dump(mode="json", exclude_none=True) if isinstance(event, Event) else dict(event)
    body.setdefault("event_id", uuid.uuid4().hex)
    body.setdefault("timestamp", datetime.now(timezone.utc).isoformat())
    return body
