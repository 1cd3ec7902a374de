"""The ranked-list type that search, recommendation, ranking, evaluation and the API all share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hit:
    """One ranked result: item id, score, why it is here, and optional per-source detail."""

    id: str
    score: float
    reason: str = ""
    sources: dict[str, float] = field(default_factory=dict)
    highlights: dict[str, str] = field(default_factory=dict)
    product: dict[str, Any] | None = None


@dataclass
class RankedList:
    """An ordered list of hits plus list-level information (facets, total, corrected query)."""

    hits: list[Hit]
    total: int = 0
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]
