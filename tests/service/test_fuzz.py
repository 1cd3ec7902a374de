"""Schemathesis fuzzes every operation of the OpenAPI spec against the app (ASGI): no 5xx, ever.

Driven from a plain test (schemathesis' pytest fixture loader does not work with pytest 9), one
Hypothesis run per operation over a real engine serving a built version of the tiny shop.
Command-line equivalent against a running server:
    schemathesis run http://127.0.0.1:8000/openapi.json -H "X-API-Key: admin-demo-key" \\
        --checks not_a_server_error --exclude-path /v1/admin/build
"""

from __future__ import annotations

from collections import Counter

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis==4.32.5")
from hypothesis import HealthCheck, given, settings as hypothesis_settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

ADMIN = {"X-API-Key": "test-admin"}
EXAMPLES_PER_OPERATION = 30


@pytest.mark.slow
def test_no_operation_answers_5xx(served_engine):
    from shoprec.service.app import create_app

    settings, engine = served_engine
    app = create_app(settings, engine=engine, watch_interval_s=0)
    # The build endpoint starts a real rebuild process; test_api.py covers it.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/v1/admin/build")
    statuses: Counter = Counter()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call(headers=ADMIN)
            statuses[(operation.label, response.status_code)] += 1
            case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then fail once
            failures.append(f"{operation.label}: {str(exc)[:800]}")
    by_status = Counter()
    for (_, status), n in statuses.items():
        by_status[status] += n
    print(f"\nschemathesis {schemathesis.__version__ if hasattr(schemathesis, '__version__') else ''}: "
          f"{operations} operations, {sum(statuses.values())} requests, by status {dict(sorted(by_status.items()))}")
    assert operations >= 14
    assert not failures, "\n".join(failures)
    assert not any(status >= 500 for status in by_status)
