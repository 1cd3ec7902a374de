"""API keys with scopes, and the FastAPI dependencies that check them (plus rate limits).

Keys come only from settings (`service.public_keys`, `service.admin_keys`, i.e. shoprec.toml or
`SHOPREC_SERVICE__PUBLIC_KEYS='["..."]'`). Public keys may read and send events; admin keys may do
everything. A key travels in `X-API-Key` or `Authorization: Bearer <key>`.
Missing or unknown key -> 401; known key without the scope -> 403; over the limit -> 429.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shoprec.service.ratelimit import TokenBucketLimiter
from shoprec.settings import ServiceSettings

READ, EVENTS, ADMIN = "read", "events", "admin"
PUBLIC_SCOPES = frozenset({READ, EVENTS})
ADMIN_SCOPES = frozenset({READ, EVENTS, ADMIN})

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="public or admin API key")
_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key fingerprint (never the key itself) and what it may do."""

    key_id: str
    role: str
    scopes: frozenset[str]


def key_fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class KeyRing:
    """The configured keys; lookups compare in constant time."""

    def __init__(self, service: ServiceSettings):
        self._keys = [(k.encode(), "admin", ADMIN_SCOPES) for k in service.admin_keys if k]
        self._keys += [(k.encode(), "public", PUBLIC_SCOPES) for k in service.public_keys if k]

    def lookup(self, key: str) -> Principal | None:
        raw = key.encode()
        found = None
        for candidate, role, scopes in self._keys:
            # Check every key (no early exit) so timing does not reveal which prefix matched.
            if hmac.compare_digest(candidate, raw) and found is None:
                found = Principal(key_fingerprint(key), role, scopes)
        return found


class ApiError(HTTPException):
    """An HTTPException whose JSON body carries a stable `error` code."""

    def __init__(self, status_code: int, error: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.error = error


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit(request: Request, bucket: str) -> None:
    limiter: TokenBucketLimiter = request.app.state.limiter
    decision = limiter.acquire(bucket)
    if not decision.allowed:
        request.app.state.metrics.rate_limited.inc()
        raise ApiError(
            429, "rate_limited",
            f"rate limit of {limiter.per_minute} requests/minute exceeded; retry after {decision.retry_after_s}s",
            headers={"Retry-After": str(decision.retry_after_s)},
        )


def require(scope: str):
    """Dependency factory: the caller must present a key holding `scope`; returns the Principal."""

    # async: pure CPU work of microseconds, so it runs on the event loop instead of a thread hop.
    async def dependency(
        request: Request,
        api_key: str | None = Depends(_api_key_header),
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Principal:
        key = api_key or (bearer.credentials if bearer else None)
        if not key:
            _limit(request, "ip:" + client_ip(request))
            raise ApiError(401, "unauthorized", "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>",
                           headers={"WWW-Authenticate": "Bearer"})
        principal = request.app.state.keyring.lookup(key)
        if principal is None:
            # Unknown keys spend the caller's IP bucket, which slows down key guessing.
            _limit(request, "ip:" + client_ip(request))
            raise ApiError(401, "unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        _limit(request, "key:" + principal.key_id)
        if scope not in principal.scopes:
            raise ApiError(403, "forbidden", f"this {principal.role} key lacks the '{scope}' scope; use an admin key")
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


async def limit_by_ip(request: Request) -> None:
    """Dependency for anonymous routes (health, readiness, metrics): a bucket per client IP."""
    _limit(request, "ip:" + client_ip(request))
