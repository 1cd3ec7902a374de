"""The data model: products, users and behaviour events (pydantic), and their JSON schema.

`shoprec schema` prints the JSON schema; ingestion validates every row against these models.
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def normalize_text(value: str | None, strip_html: bool = False) -> str:
    """Unicode NFC, HTML entities/tags removed (optionally), whitespace collapsed."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value))
    if strip_html:
        text = html.unescape(_TAG.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


def to_utc(value: Any) -> datetime:
    """Parse an ISO string, epoch seconds/milliseconds or datetime into an aware UTC datetime."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"timestamp out of range: {value!r}") from exc
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return to_utc(float(text))
        return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    raise ValueError(f"not a timestamp: {value!r}")


class EventType(str, Enum):
    impression = "impression"
    view = "view"
    click = "click"
    add_to_cart = "add_to_cart"
    remove_from_cart = "remove_from_cart"
    purchase = "purchase"
    rating = "rating"
    search = "search"


# Implicit-feedback strength of each event type, used when events become training interactions.
EVENT_WEIGHTS: dict[str, float] = {
    "impression": 0.0,
    "view": 1.0,
    "click": 1.0,
    "search": 0.0,
    "add_to_cart": 3.0,
    "remove_from_cart": -1.0,
    "purchase": 5.0,
    "rating": 2.0,
}


class Product(BaseModel):
    """One catalog item. `category` is a path, most general first (["Electronics", "Audio", "Earbuds"])."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1)
    description: str = ""
    category: list[str] = Field(default_factory=list)
    brand: str = ""
    price: float | None = Field(default=None, ge=0)
    currency: str = "USD"
    attributes: dict[str, Any] = Field(default_factory=dict)
    image_url: str = ""
    language: str = "en"
    available: bool = True
    rating: float | None = Field(default=None, ge=0, le=5)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, v: Any) -> str:
        return normalize_text(str(v)) if v is not None else v

    @field_validator("title", "brand", mode="before")
    @classmethod
    def _clean(cls, v: Any) -> str:
        return normalize_text(v, strip_html=True) if v is not None else ""

    @field_validator("description", mode="before")
    @classmethod
    def _clean_description(cls, v: Any) -> str:
        return normalize_text(v, strip_html=True)

    @field_validator("category", mode="before")
    @classmethod
    def _category_path(cls, v: Any) -> list[str]:
        if v is None or v == "":
            return []
        if isinstance(v, str):
            parts = re.split(r"\s*(?:>|/|\|)\s*", v)
        else:
            parts = list(v)
        return [normalize_text(p) for p in parts if normalize_text(p)]

    @field_validator("created_at", "updated_at", mode="before")
    @classmethod
    def _time(cls, v: Any) -> datetime | None:
        return None if v in (None, "") else to_utc(v)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", v):
            raise ValueError("currency must be a 3-letter ISO 4217 code")
        return v.upper()

    def text(self) -> str:
        """The text the language model embeds: title, brand, category and description."""
        parts = [self.title, self.brand, " > ".join(self.category), self.description]
        return " | ".join(p for p in parts if p)


class User(BaseModel):
    """A shopper. `id` is pseudonymised at ingest; raw ids never reach models or logs."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, v: Any) -> str:
        return str(v) if v is not None else v


class Event(BaseModel):
    """One shopper action. `event_id` makes ingestion idempotent; `item_id` is optional for searches."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1, max_length=200)
    session_id: str = ""
    item_id: str | None = None
    type: EventType
    value: float | None = None
    quantity: int = Field(default=1, ge=0)
    price: float | None = Field(default=None, ge=0)
    query: str | None = None
    timestamp: datetime
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("event_id", "user_id", "session_id", "item_id", mode="before")
    @classmethod
    def _ids_to_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    @field_validator("timestamp", mode="before")
    @classmethod
    def _time(cls, v: Any) -> datetime:
        return to_utc(v)

    @field_validator("query", mode="before")
    @classmethod
    def _query(cls, v: Any) -> str | None:
        return normalize_text(v) or None if v is not None else None

    @model_validator(mode="after")
    def _item_required(self) -> "Event":
        if self.type != EventType.search and not self.item_id:
            raise ValueError(f"item_id is required for {self.type.value} events")
        if self.type == EventType.search and not self.query:
            raise ValueError("query is required for search events")
        if self.type == EventType.rating and self.value is None:
            raise ValueError("value is required for rating events")
        return self


def json_schema() -> dict[str, Any]:
    """The documented JSON schema of the three record types."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "shoprec data model",
        "definitions": {
            "Product": Product.model_json_schema(),
            "User": User.model_json_schema(),
            "Event": Event.model_json_schema(),
        },
    }
