"""Store fixtures shared by the data tests: every backend, each test isolated.

SQLite runs on tmp_path. PostgreSQL runs on $SHOPREC_TEST_POSTGRES_URL in a fresh schema per test
(selected through the connection's search_path, dropped afterwards). Without that variable the
PostgreSQL cases skip, except under CI (env CI set), where `.ci/run` starts a server: they fail.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

from shoprec.data.store import open_store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def postgres_url_or_skip() -> str:
    url = os.environ.get("SHOPREC_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI is set but SHOPREC_TEST_POSTGRES_URL is not: .ci/run should have started PostgreSQL")
        pytest.skip("SHOPREC_TEST_POSTGRES_URL not set (source .ci/postgres.sh to start a throwaway server)")
    return url


def with_search_path(url: str, schema: str) -> str:
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """A store URL of each backend, private to this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'shop.db'}"
        return
    import psycopg

    url = postgres_url_or_skip()
    schema = f"shoprec_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
