"""Shared fixtures for the service tests: settings in tmp_path, app clients."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from shoprec.settings import ServiceSettings, Settings

PUBLIC = {"X-API-Key": "test-public"}
ADMIN = {"X-API-Key": "test-admin"}


def build_settings(tmp_path, **service) -> Settings:
    options = dict(public_keys=["test-public"], admin_keys=["test-admin"], cors_origins=["http://shop.example"],
                   rate_limit_per_minute=10_000, max_request_bytes=50_000)
    options.update(service)
    return Settings(store_url=f"sqlite:///{tmp_path / 'shop.db'}", artifacts_dir=tmp_path / "artifacts",
                    embedding_cache_dir=tmp_path / "cache", service=ServiceSettings(**options))


def build_client(settings: Settings, engine=None) -> TestClient:
    """A client on the app without running its lifespan (so no engine is opened unless given)."""
    from shoprec.service.app import create_app

    app = create_app(settings, engine=engine, watch_interval_s=0)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def make_settings(tmp_path):
    """Factory: settings in tmp_path with service overrides (`make_settings(rate_limit_per_minute=3)`)."""
    return lambda **service: build_settings(tmp_path, **service)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return build_settings(tmp_path)


@pytest.fixture
def client_for():
    """Factory: a TestClient for an app built from settings (and an optional engine)."""
    return build_client


CATEGORIES = [
    (["Electronics", "Audio", "Earbuds"], ["Sonik", "Auralis"], "wireless earbuds"),
    (["Electronics", "Audio", "Headphones"], ["Sonik", "Bassline"], "over-ear headphones"),
    (["Home", "Kitchen", "Mugs"], ["Claywork", "Brewco"], "ceramic coffee mug"),
    (["Sports", "Running", "Shoes"], ["Stride", "Pacer"], "running shoes"),
]
COLORS = ["red", "blue", "black", "white"]


def tiny_shop(n_per_category: int = 10, n_users: int = 40, seed: int = 3):
    """A small catalog (4 categories) and shoppers who mostly browse and buy in one favourite category."""
    import numpy as np

    from shoprec.data.schemas import Event, Product

    rng = np.random.default_rng(seed)
    products = []
    for c, (path, brands, noun) in enumerate(CATEGORIES):
        for j in range(n_per_category):
            color = COLORS[j % len(COLORS)]
            products.append(Product(
                id=f"p{c}{j:02d}", title=f"{brands[j % 2]} {color} {noun} model {j}", brand=brands[j % 2],
                description=f"A {color} {noun} from {brands[j % 2]}.", category=path, price=float(10 + 7 * j + 40 * c),
                attributes={"color": color}, available=j != n_per_category - 1,
            ))
    events = []
    for u in range(n_users):
        favourite = u % len(CATEGORIES)
        for s in range(12):
            c = favourite if rng.random() < 0.85 else int(rng.integers(len(CATEGORIES)))
            j = int(rng.integers(n_per_category))
            kind = "purchase" if rng.random() < 0.15 else "view"
            events.append(Event(event_id=f"ev-{u}-{s}", user_id=f"shopper-{u}", item_id=f"p{c}{j:02d}", type=kind,
                                session_id=f"s{u}-{s // 4}", timestamp=1_700_000_000 + u * 1000 + s * 60))
    return products, events


@pytest.fixture(scope="session")
def served_engine(tmp_path_factory):
    """(settings, Engine) over a built artifact version of the tiny shop (built once per session)."""
    from shoprec.build import BuildConfig, build
    from shoprec.engine import Engine

    root = tmp_path_factory.mktemp("served")
    settings = build_settings(root, rate_limit_per_minute=0)
    products, events = tiny_shop()
    loader = Engine(settings)
    loader.upsert_products(products)
    loader.record_events(events)
    loader.close()
    build(settings, BuildConfig(models=["pop", "itemknn", "als"]))
    engine = Engine.open(settings)
    assert engine.version is not None
    yield settings, engine
    engine.close()
