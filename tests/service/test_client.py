"""The Python client: retries and backoff on 429/5xx/connection errors, typed results, idempotent events."""

from __future__ import annotations

import json

import httpx
import pytest

from shoprec.client import ShoprecAPIError, ShoprecClient


def scripted(responses):
    """A transport answering from a list (a Response, or an exception to raise), recording requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses[min(len(seen) - 1, len(responses) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), seen


def ok_events(n=1):
    return httpx.Response(200, json={"received": n, "accepted": n, "duplicates": 0})


def test_retries_on_503_and_429_honouring_retry_after():
    transport, seen = scripted([httpx.Response(503, json={"error": "not_ready", "detail": ""}),
                                httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "rate_limited", "detail": ""}),
                                ok_events()])
    sleeps: list[float] = []
    client = ShoprecClient("http://shop", api_key="k", transport=transport, retries=3, sleep=sleeps.append)
    result = client.send_events([{"user_id": "alice", "item_id": "p1", "type": "view"}])
    assert result.accepted == 1 and len(seen) == 3
    assert sleeps[1] == 7.0 and 0 < sleeps[0] <= 0.2
    # The same event id (and timestamp) on every attempt, so a retry never stores it twice.
    bodies = [json.loads(r.content) for r in seen]
    assert len({b["events"][0]["event_id"] for b in bodies}) == 1
    assert len({b["events"][0]["timestamp"] for b in bodies}) == 1
    assert seen[0].headers["X-API-Key"] == "k"


def test_retries_connection_errors_then_gives_up():
    transport, seen = scripted([httpx.ConnectError("refused")])
    client = ShoprecClient("http://shop", transport=transport, retries=2, sleep=lambda s: None)
    with pytest.raises(httpx.ConnectError):
        client.suggest("sho")
    assert len(seen) == 3


def test_client_errors_are_not_retried_and_carry_the_body():
    body = {"error": "validation_error", "detail": [{"field": "k", "reason": "too big"}]}
    transport, seen = scripted([httpx.Response(422, json=body)])
    client = ShoprecClient("http://shop", transport=transport, retries=3, sleep=lambda s: None)
    with pytest.raises(ShoprecAPIError) as info:
        client.search("shoes", k=5000)
    assert info.value.status == 422 and info.value.error == "validation_error" and len(seen) == 1


def test_build_is_not_retried_on_500_but_reads_are():
    transport, seen = scripted([httpx.Response(500, json={"error": "internal_error", "detail": "", "error_id": "abc"})])
    client = ShoprecClient("http://shop", transport=transport, retries=2, sleep=lambda s: None)
    with pytest.raises(ShoprecAPIError) as info:
        client.build()
    assert info.value.error_id == "abc" and len(seen) == 1
    with pytest.raises(ShoprecAPIError):
        client.suggest("x")
    assert len(seen) == 1 + 3


def test_search_sends_filters_as_query_parameters():
    answer = {"query": "shoes", "hits": [{"id": "p1", "score": 1.5, "reason": "matches shoes"}], "total": 1}
    transport, seen = scripted([httpx.Response(200, json=answer)])
    client = ShoprecClient("http://shop", transport=transport)
    result = client.search("shoes", brand=["Acme", "Zed"], price_max=50, available=True, attributes={"color": ["red", "blue"]})
    assert result.hits[0].id == "p1" and result.total == 1
    params = seen[0].url.params
    assert params.get_list("brand") == ["Acme", "Zed"] and params["price_max"] == "50"
    assert params.get_list("attr.color") == ["red", "blue"] and params["available"] == "true"


def test_large_event_lists_are_split_into_batches():
    transport, seen = scripted([ok_events(400), ok_events(400), ok_events(200)])
    client = ShoprecClient("http://shop", transport=transport)
    events = [{"user_id": "u", "item_id": f"p{i}", "type": "view"} for i in range(1000)]
    result = client.send_events(events, batch_size=400)
    assert [len(json.loads(r.content)["events"]) for r in seen] == [400, 400, 200]
    assert result.received == 1000 and result.accepted == 1000
