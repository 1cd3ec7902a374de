"""Auth scopes, rate limits, body size, validation bodies, error hygiene, CORS (no engine needed)."""

from __future__ import annotations

import logging

PUBLIC = {"X-API-Key": "test-public"}
ADMIN = {"X-API-Key": "test-admin"}


def test_missing_and_unknown_keys_get_401_with_a_clear_body(settings, client_for):
    client = client_for(settings)
    missing = client.get("/v1/search", params={"q": "shoes"})
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert "X-API-Key" in missing.json()["detail"]
    unknown = client.get("/v1/search", params={"q": "shoes"}, headers={"X-API-Key": "nope"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == "unknown API key"


def test_public_key_cannot_use_admin_routes_but_admin_key_can(settings, client_for):
    client = client_for(settings)
    for method, path in [("GET", "/v1/admin/builds"), ("DELETE", "/v1/admin/users/alice"),
                         ("GET", "/v1/users/alice/profile"), ("DELETE", "/v1/admin/products/p1")]:
        answer = client.request(method, path, headers=PUBLIC)
        assert answer.status_code == 403, path
        assert answer.json()["error"] == "forbidden" and "admin" in answer.json()["detail"]
    assert client.get("/v1/admin/builds", headers=ADMIN).status_code == 200
    # Bearer tokens work the same as X-API-Key.
    assert client.get("/v1/admin/builds", headers={"Authorization": "Bearer test-admin"}).status_code == 200


def test_public_key_passes_auth_for_reads_and_events(settings, client_for):
    client = client_for(settings)  # no engine loaded: past auth, the answer is 503 not_ready
    answer = client.get("/v1/search", params={"q": "shoes"}, headers=PUBLIC)
    assert answer.status_code == 503 and answer.json()["error"] == "not_ready"
    event = {"event_id": "e1", "user_id": "alice", "item_id": "p1", "type": "view", "timestamp": "2024-01-01T00:00:00Z"}
    assert client.post("/v1/events", json=event, headers=PUBLIC).status_code == 503


def test_rate_limit_answers_429_with_retry_after(make_settings, client_for):
    client = client_for(make_settings(rate_limit_per_minute=3))
    codes = [client.get("/v1/admin/builds", headers=ADMIN).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = client.get("/v1/admin/builds", headers=ADMIN)
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1  # 3/minute: a token every 20 s
    # Another key has its own bucket; anonymous health checks are limited per IP.
    assert client.get("/v1/admin/builds", headers=PUBLIC).status_code == 403
    health = [client.get("/healthz").status_code for _ in range(4)]
    assert health == [200, 200, 200, 429]
    metrics_text = client_for(make_settings()).get("/metrics").text
    assert "shoprec_rate_limited_total" in metrics_text


def test_body_over_the_limit_gets_413(make_settings, client_for):
    client = client_for(make_settings(max_request_bytes=2_000))
    big = {"events": [{"event_id": f"e{i}", "user_id": "u", "item_id": "p", "type": "view",
                       "timestamp": "2024-01-01T00:00:00Z"} for i in range(100)]}
    answer = client.post("/v1/events/batch", json=big, headers=PUBLIC)
    assert answer.status_code == 413 and answer.json()["error"] == "payload_too_large"

    def chunks():  # no Content-Length: the body is counted as it streams
        for _ in range(10):
            yield b"x" * 500

    streamed = client.post("/v1/events/batch", content=chunks(), headers={**PUBLIC, "Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_validation_errors_name_the_field(settings, client_for):
    client = client_for(settings)
    answer = client.get("/v1/search", params={"q": "x", "k": 0, "price_min": -1}, headers=PUBLIC)
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "validation_error"
    fields = {d["field"]: d["reason"] for d in body["detail"]}
    assert set(fields) == {"k", "price_min"}
    assert "greater than or equal" in fields["k"]

    crossed = client.get("/v1/search", params={"q": "x", "price_min": 10, "price_max": 5}, headers=PUBLIC)
    assert crossed.status_code == 422 and crossed.json()["detail"][0]["field"] == "price_max"

    bad_attr = client.get("/v1/search", params={"q": "x", "attr.col or": "red"}, headers=PUBLIC)
    assert bad_attr.status_code == 422 and bad_attr.json()["detail"][0]["field"] == "attr.col or"

    batch = {"events": [{"event_id": "e1", "user_id": "u", "item_id": "p", "type": "view", "timestamp": "2024-01-01"},
                        {"event_id": "e2", "user_id": "u", "type": "purchase", "timestamp": "not a time"}]}
    answer = client.post("/v1/events/batch", json=batch, headers=PUBLIC)
    assert answer.status_code == 422
    assert [d["field"] for d in answer.json()["detail"]] == ["events[1].timestamp"]
    assert answer.json()["detail"][0]["location"] == "body"

    missing = client.post("/v1/events", json={"user_id": "u"}, headers=PUBLIC)
    assert {"event_id", "type", "timestamp"} <= {d["field"] for d in missing.json()["detail"]}

    not_json = client.post("/v1/events", content=b"{not json", headers={**PUBLIC, "Content-Type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["error"] == "validation_error"


def test_unhandled_errors_never_leak_a_stack_trace(settings, caplog, client_for):
    client = client_for(settings)

    def explode():
        raise RuntimeError("secret internal detail")

    client.app.add_api_route("/v1/explode", explode)
    with caplog.at_level(logging.ERROR, logger="shoprec.service"):
        answer = client.get("/v1/explode")
    assert answer.status_code == 500
    body = answer.json()
    assert body["error"] == "internal_error" and len(body["error_id"]) == 16
    assert "secret" not in answer.text and "Traceback" not in answer.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert body["error_id"] in logged and "Traceback" in logged and "secret internal detail" in logged
    assert 'shoprec_unhandled_errors_total 1.0' in client.get("/metrics").text


def test_unknown_route_and_method_are_json(settings, client_for):
    client = client_for(settings)
    assert client.get("/v2/nothing").json()["error"] == "not_found"
    wrong = client.delete("/v1/search", headers=PUBLIC)
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


def test_cors_allows_configured_origins_only(settings, client_for):
    client = client_for(settings)
    preflight = client.options("/v1/search", headers={"Origin": "http://shop.example", "Access-Control-Request-Method": "GET",
                                                      "Access-Control-Request-Headers": "X-API-Key"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://shop.example"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    simple = client.get("/healthz", headers={"Origin": "http://shop.example"})
    assert simple.headers["access-control-allow-origin"] == "http://shop.example"
    # Errors carry CORS headers too, so browsers can read the JSON body.
    denied = client.get("/v1/search", params={"q": "x"}, headers={"Origin": "http://shop.example"})
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == "http://shop.example"
    foreign = client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers


def test_health_ready_and_docs(settings, client_for):
    client = client_for(settings)
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["ready"] is False
    spec = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/recommend/{scenario}", "/v1/events", "/v1/events/batch", "/v1/admin/products",
            "/v1/admin/build", "/v1/experiments/{experiment_id}/assignment"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_metrics_use_route_templates_not_raw_ids(settings, client_for):
    client = client_for(settings)
    client.get("/v1/users/alice-raw-id/profile", headers=ADMIN)
    client.get("/v1/items/item-xyz/similar", headers=PUBLIC)
    text = client.get("/metrics").text
    assert 'route="/v1/users/{user_id}/profile"' in text
    assert 'route="/v1/items/{item_id}/similar"' in text
    assert "alice-raw-id" not in text and "item-xyz" not in text
    assert "shoprec_http_request_duration_seconds_bucket" in text
    assert 'shoprec_artifact_info{version="none"} 0.0' in text
    assert "shoprec_event_queue_depth 0.0" in text and "shoprec_build_in_progress 0.0" in text
