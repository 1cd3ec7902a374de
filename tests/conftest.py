"""Shared fixtures: a small demo shop taken through the real pipeline (generate -> ingest -> build)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoprec.settings import Settings

FAST_MODELS = {"models": ["pop", "itemknn", "als", "content", "sasrec"],
               "model_overrides": {"sasrec": {"epochs": 3}, "als": {"iterations": 5}}}


def build_demo_shop(root: Path, n_products: int = 400, n_users: int = 200, seed: int = 3):
    """Generate, ingest and build a demo shop under `root`; returns (shop, settings)."""
    from shoprec.build import BuildConfig, build
    from shoprec.data.demo import generate_demo
    from shoprec.data.ingest import ingest_file

    shop = generate_demo(n_products=n_products, n_users=n_users, seed=seed)
    shop.write(root / "demo")
    settings = Settings(store_url=f"sqlite:///{root / 'shop.db'}", artifacts_dir=root / "artifacts",
                        embedding_cache_dir=root / "embedding-cache")
    ingest_file(root / "demo" / "products.jsonl", kind="catalog", store_url=settings.store_url, settings=settings)
    ingest_file(root / "demo" / "events.jsonl", kind="events", store_url=settings.store_url, settings=settings)
    build(settings, BuildConfig(**FAST_MODELS))
    return shop, settings


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that point a `shoprec` subprocess at these settings."""
    env = dict(os.environ)
    env.update({"SHOPREC_STORE_URL": settings.store_url, "SHOPREC_ARTIFACTS_DIR": str(settings.artifacts_dir),
                "SHOPREC_EMBEDDING_CACHE_DIR": str(settings.embedding_cache_dir), "OMP_NUM_THREADS": "1"})
    return env


@pytest.fixture(scope="session")
def shoprec_env():
    """Function: settings -> environment for a `shoprec` subprocess."""
    return settings_env


@pytest.fixture(scope="session")
def demo_shop(tmp_path_factory):
    """One small demo shop for every test that needs a built engine (built once per session)."""
    return build_demo_shop(tmp_path_factory.mktemp("demo-shop"))
