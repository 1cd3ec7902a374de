"""Search filters (category subtree, brand, price range, availability, attributes) and price bands.

The lexical index applies `SearchFilters` inside tantivy; `SearchFilters.matches(row)` checks one
product (a `Product` or a catalog dict) the same way, for callers that filter outside tantivy.
Matching is case-insensitive (NFKC + casefold) on category paths, brands and attribute values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shoprec.text.tokenize import normalize

# Upper bounds of the price bands used for the "price_band" facet (labels "<10", ..., "1000+").
PRICE_BAND_BOUNDS: tuple[float, ...] = (10, 25, 50, 100, 250, 500, 1000)
_PATH_SPLIT = re.compile(r"\s*(?:>|/|\|)\s*")


def price_band(price: float | None) -> str:
    """The facet label of a price: "<10", "<25", ..., "1000+"; "" when unknown."""
    if price is None or price != price:  # NaN check without numpy
        return ""
    for bound in PRICE_BAND_BOUNDS:
        if price < bound:
            return f"<{bound:g}"
    return f"{PRICE_BAND_BOUNDS[-1]:g}+"


def category_parts(category: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """A category path as its parts: "Electronics > Audio" or ["Electronics", "Audio"]."""
    if not category:
        return []
    parts = _PATH_SPLIT.split(category) if isinstance(category, str) else [str(p) for p in category]
    return [" ".join(p.split()) for p in parts if p and p.strip()]


def category_key(parts: list[str]) -> str:
    """The normalised key of a category path (parts joined with " > ", NFKC, casefolded)."""
    return " > ".join(normalize(p).strip() for p in parts)


def category_prefix_keys(category: str | list[str] | None) -> list[str]:
    """Keys of every ancestor path of `category`, most general first (for subtree filters)."""
    parts = category_parts(category)
    return [category_key(parts[: i + 1]) for i in range(len(parts))]


def attribute_key(key: str, value: Any) -> str:
    """The normalised "key=value" string an attribute is indexed and filtered by."""
    return f"{normalize(str(key)).strip()}={normalize(str(value)).strip()}"


def attribute_pairs(attributes: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Flatten attributes into (key, value) string pairs; list values give one pair per element."""
    pairs: list[tuple[str, str]] = []
    for key, value in (attributes or {}).items():
        values = value if isinstance(value, (list, tuple, set)) else [value]
        for v in values:
            if v is None or v == "" or isinstance(v, (dict, list)):
                continue
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            pairs.append((str(key), text))
    return pairs


class SearchFilters(BaseModel):
    """Restrictions on the result set; every field is optional and all given ones must hold."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = None  # category path prefix, e.g. "Electronics > Audio" matches the subtree
    brand: list[str] = Field(default_factory=list)  # any of these brands
    price_min: float | None = None
    price_max: float | None = None
    available: bool | None = None
    attributes: dict[str, str | list[str]] = Field(default_factory=dict)  # key -> value or any of values

    @field_validator("brand", mode="before")
    @classmethod
    def _brand_list(cls, v: Any) -> Any:
        if v is None:
            return []
        return [v] if isinstance(v, str) else v

    @field_validator("attributes", mode="before")
    @classmethod
    def _attribute_values(cls, v: Any) -> Any:
        if v is None:
            return {}
        if isinstance(v, Mapping):
            return {str(k): ([str(x) for x in val] if isinstance(val, (list, tuple, set)) else str(val))
                    for k, val in v.items()}
        return v

    @model_validator(mode="after")
    def _price_order(self) -> "SearchFilters":
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError(f"price_min ({self.price_min}) is greater than price_max ({self.price_max})")
        return self

    def is_empty(self) -> bool:
        return (not self.category and not self.brand and self.price_min is None and self.price_max is None
                and self.available is None and not self.attributes)

    def category_key(self) -> str | None:
        parts = category_parts(self.category)
        return category_key(parts) if parts else None

    def brand_keys(self) -> list[str]:
        return sorted({normalize(b).strip() for b in self.brand if b and b.strip()})

    def attribute_keys(self) -> dict[str, list[str]]:
        """{attribute name: ["name=value", ...]} (any value of a name matches; all names must)."""
        out: dict[str, list[str]] = {}
        for key, value in self.attributes.items():
            values = value if isinstance(value, list) else [value]
            out[key] = sorted({attribute_key(key, v) for v in values})
        return out

    def matches(self, product: Any) -> bool:
        """Whether one product (a `Product` or a dict with the same keys) passes every filter."""
        get = (lambda name, default=None: product.get(name, default)) if isinstance(product, Mapping) \
            else (lambda name, default=None: getattr(product, name, default))
        wanted_category = self.category_key()
        if wanted_category is not None and wanted_category not in category_prefix_keys(get("category")):
            return False
        brands = self.brand_keys()
        if brands and normalize(get("brand") or "").strip() not in brands:
            return False
        price = get("price")
        if self.price_min is not None and (price is None or price < self.price_min):
            return False
        if self.price_max is not None and (price is None or price > self.price_max):
            return False
        if self.available is not None and bool(get("available", True)) != self.available:
            return False
        if self.attributes:
            have = {attribute_key(k, v) for k, v in attribute_pairs(get("attributes") or {})}
            for options in self.attribute_keys().values():
                if not have.intersection(options):
                    return False
        return True


def as_filters(filters: SearchFilters | Mapping[str, Any] | None) -> SearchFilters | None:
    """Accept a `SearchFilters`, a plain dict of the same fields, or None."""
    if filters is None or isinstance(filters, SearchFilters):
        return filters
    if isinstance(filters, Mapping):
        data = dict(filters)
        if "in_stock" in data and "available" not in data:
            data["available"] = data.pop("in_stock")
        return SearchFilters(**data)
    raise TypeError(f"filters must be SearchFilters or a dict, not {type(filters).__name__}")
