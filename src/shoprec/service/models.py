"""Request and response bodies of the REST API (pydantic; shared by the service and the Python client).

Kept free of FastAPI imports so `shoprec.client` can use them without the server stack.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shoprec.data.schemas import Event, Product

# Upper bounds that keep one request cheap; larger batches are split by the client.
MAX_EVENTS_PER_BATCH = 1000
MAX_PRODUCTS_PER_BATCH = 1000
MAX_K = 200


def _check_json_values(value: Any, where: str = "") -> None:
    """Reject what JSON parsing lets through but storage and models cannot take: lone UTF-16
    surrogates (`"\\ud800"`, not encodable as UTF-8), NaN/Infinity and integers beyond 64 bits."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where or 'value'}: not valid Unicode (lone surrogate escape)") from None
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where or 'value'}: NaN and Infinity are not allowed")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{where or 'value'}: integer out of the 64-bit range")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_values(key, where)
            _check_json_values(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_values(item, f"{where}[{i}]")


def _as_value_error(data: Any, handler: Any) -> Any:
    """Run the model's validation, turning TypeError/OverflowError from field validators into 422s.

    pydantic reports only ValueError/AssertionError as validation errors; anything else would end
    in a 500 (e.g. `"category": false`, or a year-1 timestamp shifted out of range)."""
    _check_json_values(data)
    try:
        return handler(data)
    except (TypeError, OverflowError, OSError) as exc:
        raise ValueError(f"invalid value ({type(exc).__name__}: {exc})") from None


class EventIn(Event):
    """An event as the API receives it (the `Event` schema; malformed values answer 422, never 500)."""

    model_config = ConfigDict(title="Event")

    @model_validator(mode="wrap")
    @classmethod
    def _safe(cls, data: Any, handler: Any) -> Any:
        return _as_value_error(data, handler)


class ProductIn(Product):
    """A product as the API receives it (the `Product` schema; malformed values answer 422, never 500)."""

    model_config = ConfigDict(title="Product")

    @model_validator(mode="wrap")
    @classmethod
    def _safe(cls, data: Any, handler: Any) -> Any:
        return _as_value_error(data, handler)


class FieldError(BaseModel):
    """One invalid input: where it was (`query`, `path`, `body`, `header`) and why."""

    field: str
    reason: str
    location: str = ""


class ErrorBody(BaseModel):
    """Every non-2xx answer: a stable machine code plus a human explanation."""

    error: str = Field(description="stable code: unauthorized, forbidden, rate_limited, validation_error, ...")
    detail: str | list[FieldError] = ""
    error_id: str | None = Field(default=None, description="set on 500s; quote it to the operator (it is in the server log)")


class HitOut(BaseModel):
    id: str
    score: float
    reason: str = ""
    sources: dict[str, float] = Field(default_factory=dict)
    highlights: dict[str, str] = Field(default_factory=dict)
    product: dict[str, Any] | None = None


class SearchResponse(BaseModel):
    query: str
    hits: list[HitOut]
    total: int = 0
    offset: int = 0
    k: int = 20
    facets: dict[str, dict[str, int]] = Field(default_factory=dict)
    did_you_mean: str | None = None
    version: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class RecommendResponse(BaseModel):
    scenario: str
    hits: list[HitOut]
    version: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class SuggestResponse(BaseModel):
    prefix: str
    suggestions: list[str]


class EventBatch(BaseModel):
    """Up to 1000 events; each `event_id` is the idempotency key (resending is safe)."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventsAccepted(BaseModel):
    """Returned only after the events are committed to the store."""

    received: int
    accepted: int = Field(description="new events stored")
    duplicates: int = Field(description="events whose event_id was already stored (ignored)")


class ProductBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    products: list[ProductIn] = Field(min_length=1, max_length=MAX_PRODUCTS_PER_BATCH)


class ProductsUpserted(BaseModel):
    model_config = ConfigDict(extra="allow")

    received: int


class Deleted(BaseModel):
    deleted: int


class UserForgotten(BaseModel):
    model_config = ConfigDict(extra="allow")

    forgotten: bool = True


class Assignment(BaseModel):
    experiment: str
    variant: str = Field(description="the arm this user sees")
    arms: list[str] = Field(default_factory=list, description="every arm, control first")


class BuildStatus(BaseModel):
    id: str
    state: Literal["running", "succeeded", "failed"]
    started_at: datetime
    finished_at: datetime | None = None
    version: str | None = None
    seconds: float | None = None
    error: str | None = None


class BuildList(BaseModel):
    builds: list[BuildStatus]
    serving_version: str | None = None


class Health(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    ready: bool
    version: str | None = None
    detail: str = ""
    worker: int | None = Field(None, description="the answering server process (several run with --workers)")
    serving_processes: int | None = Field(
        None, description="processes of this machine serving the same version (the workers and the feed keeper, "
                          "once each has loaded and warmed it); null without shared answers")
