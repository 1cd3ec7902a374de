"""Events through the API with a real engine (empty: nothing built yet) and a real SQLite store."""

from __future__ import annotations

import pytest

from shoprec.engine import Engine

PUBLIC = {"X-API-Key": "test-public"}
ADMIN = {"X-API-Key": "test-admin"}


@pytest.fixture
def engine(settings):
    engine = Engine.open(settings)
    yield engine
    engine.close()


def view(event_id: str, user: str = "alice@example.com", item: str = "p1") -> dict:
    return {"event_id": event_id, "user_id": user, "item_id": item, "type": "view", "timestamp": "2024-03-01T10:00:00Z"}


def test_events_are_idempotent_by_event_id(settings, engine, client_for):
    client = client_for(settings, engine)
    first = client.post("/v1/events", json=view("e1"), headers=PUBLIC)
    assert first.status_code == 200 and first.json() == {"received": 1, "accepted": 1, "duplicates": 0}
    again = client.post("/v1/events", json=view("e1"), headers=PUBLIC)
    assert again.json() == {"received": 1, "accepted": 0, "duplicates": 1}
    batch = {"events": [view("e1"), view("e2"), view("e3"), view("e2")]}
    answer = client.post("/v1/events/batch", json=batch, headers=PUBLIC)
    assert answer.json() == {"received": 4, "accepted": 2, "duplicates": 2}
    stored = engine.store.read_events()
    assert sorted(stored.column("event_id").to_pylist()) == ["e1", "e2", "e3"]
    # Raw ids never reach the store: the engine pseudonymised them.
    assert set(stored.column("user_id").to_pylist()) == {engine.pseudonym("alice@example.com")}
    metrics = client.get("/metrics").text
    assert 'shoprec_events_total{outcome="accepted"} 3.0' in metrics
    assert 'shoprec_events_total{outcome="duplicate"} 3.0' in metrics


def test_forget_user_removes_events_and_online_state(settings, engine, client_for):
    client = client_for(settings, engine)
    client.post("/v1/events/batch", json={"events": [view("a1", item="p7"), view("a2", item="p8"),
                                                     view("b1", user="bob", item="p7")]}, headers=PUBLIC)
    forgot = client.delete("/v1/admin/users/alice@example.com", headers=ADMIN)
    assert forgot.status_code == 200 and forgot.json()["forgotten"] is True and forgot.json()["rows_removed"] >= 2
    assert "alice" not in forgot.text
    assert engine.store.read_events().column("event_id").to_pylist() == ["b1"]


def test_empty_engine_is_live_but_not_ready(settings, engine, client_for):
    client = client_for(settings, engine)
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["detail"] == "no artifact version built yet"
    answer = client.get("/v1/search", params={"q": "shoes"}, headers=PUBLIC)
    assert answer.status_code == 200 and answer.json()["hits"] == [] and answer.json()["version"] is None


def test_scenarios_are_checked_before_the_engine(settings, engine, client_for):
    client = client_for(settings, engine)
    unknown = client.get("/v1/recommend/nonsense", headers=PUBLIC)
    assert unknown.status_code == 404 and "home" in unknown.json()["detail"]
    needs_item = client.get("/v1/recommend/similar", headers=PUBLIC)
    assert needs_item.status_code == 422 and needs_item.json()["detail"][0]["field"] == "item"
    needs_cart = client.get("/v1/recommend/cart", headers=PUBLIC)
    assert needs_cart.status_code == 422 and needs_cart.json()["detail"][0]["field"] == "cart"


def test_experiment_assignment_is_deterministic(settings, engine, client_for):
    from shoprec.evaluation.abtest import Arm, Experiment, save_experiment

    save_experiment(engine.store, Experiment(id="ranker-v2", arms=[Arm(name="control", share=0.5), Arm(name="ltr", share=0.5)],
                                             sequential=True))
    client = client_for(settings, engine)

    def ask(i):
        return client.get("/v1/experiments/ranker-v2/assignment", params={"user": f"user-{i}"}, headers=PUBLIC).json()

    answers = [ask(i) for i in range(40)]
    assert answers == [ask(i) for i in range(40)]
    assert {a["variant"] for a in answers} == {"control", "ltr"}  # users are spread over both arms
    assert answers[0]["arms"] == ["control", "ltr"]
    missing = client.get("/v1/experiments/nope/assignment", params={"user": "u"}, headers=PUBLIC)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    bad = client.get("/v1/experiments/bad id!/assignment", params={"user": "u"}, headers=PUBLIC)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "experiment_id"


def test_malformed_values_are_422_not_500(settings, engine, client_for):
    client = client_for(settings, engine)
    event = {"event_id": "x", "user_id": "u", "item_id": "p", "type": "view", "timestamp": "0001-01-01T00:00:00+00:01"}
    answer = client.post("/v1/events", json=event, headers=PUBLIC)
    assert answer.status_code == 422 and answer.json()["detail"][0]["location"] == "body"
    product = {"id": "p1", "title": "Mug", "category": False}
    answer = client.put("/v1/admin/products", json={"products": [product]}, headers=ADMIN)
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "products[0]"


def test_values_storage_cannot_take_are_rejected(settings, engine, client_for):
    client = client_for(settings, engine)
    headers = {**PUBLIC, "Content-Type": "application/json"}
    surrogate = b'{"event_id":"1","user_id":"u","item_id":"\\ud800","type":"view","timestamp":1}'
    answer = client.post("/v1/events", content=surrogate, headers=headers)
    assert answer.status_code == 422 and "item_id" in answer.json()["detail"][0]["reason"]
    not_a_number = b'{"event_id":"2","user_id":"u","item_id":"i","type":"rating","value":NaN,"timestamp":1}'
    answer = client.post("/v1/events", content=not_a_number, headers=headers)
    assert answer.status_code == 422 and "NaN" in answer.json()["detail"][0]["reason"]
    assert engine.store.read_events().num_rows == 0
