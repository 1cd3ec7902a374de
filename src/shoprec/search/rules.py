"""Merchandising rules: pin, boost, bury or hide products for a query and/or a category.

A rule applies when its `query` (if set) equals the shopper's query after normalisation (NFKC,
casefold, whitespace collapsed) — or, with `match="contains"`, when the rule's words all occur in
the query — and its `category` (if set) is the browsed category or one of its ancestors. A rule
with neither applies everywhere.

`apply_rules` runs hide, then boost/bury, then pin:
- hide removes the products;
- boost / bury add / subtract `weight` x the score spread (max - min of the list, 1 when flat),
  so weight 1.0 moves a product across the whole list whatever the ranker's score scale;
- pin puts the products at `position` (1 = top) in the given order, adding them when the list
  lacks them (pass `insert_missing=False` to pin only products already retrieved).

Rules are stored with the Store records API (`kind="rule"`): `save_rule`, `delete_rule`, `load_rules`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shoprec.errors import ShoprecError
from shoprec.search.filters import category_prefix_keys
from shoprec.text.tokenize import normalize, tokenize

RECORD_KIND = "rule"
_SPACE = re.compile(r"\s+")


class Rule(BaseModel):
    """One merchandising rule (see the module docstring for when and how it applies)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    query: str | None = None
    category: str | None = None  # category path, e.g. "Electronics > Audio"; matches the subtree
    action: Literal["pin", "boost", "bury", "hide"]
    product_ids: list[str] = Field(min_length=1)
    position: int | None = Field(default=None, ge=1)  # pin only: 1 = top (default 1)
    weight: float = Field(default=1.0, ge=0.0)  # boost / bury strength, in score spreads
    match: Literal["exact", "contains"] = "exact"
    enabled: bool = True

    @model_validator(mode="after")
    def _check(self) -> "Rule":
        if self.position is not None and self.action != "pin":
            raise ValueError("position is only meaningful for pin rules")
        return self

    def applies(self, query: str | None, category: str | list[str] | None) -> bool:
        """Whether this rule fires for the shopper's query and browsed category."""
        if not self.enabled:
            return False
        if self.query is not None and self.query.strip():
            wanted = _normalize_query(self.query)
            given = _normalize_query(query or "")
            if self.match == "exact":
                if wanted != given:
                    return False
            elif not set(tokenize(wanted)) <= set(tokenize(given)):
                return False
        if self.category is not None and self.category.strip():
            rule_path = category_prefix_keys(self.category)
            if not rule_path or rule_path[-1] not in category_prefix_keys(category):
                return False
        return True


def _normalize_query(text: str) -> str:
    return _SPACE.sub(" ", normalize(text)).strip()


def apply_rules(query: str | None, category: str | list[str] | None, hits: Sequence[tuple[str, float]],
                rules: Iterable[Rule], insert_missing: bool = True) -> list[tuple[str, float, str]]:
    """Re-order `hits` [(id, score)] by the rules that apply -> [(id, score, reason)].

    reason is "" for untouched products, else e.g. "pinned by rule r1 at 1" / "boosted by rule r2".
    """
    active = [r for r in rules if r.applies(query, category)]
    items = [[str(pid), float(score), ""] for pid, score in hits]
    if not active:
        return [(pid, score, reason) for pid, score, reason in items]

    hidden = {pid for r in active if r.action == "hide" for pid in r.product_ids}
    items = [item for item in items if item[0] not in hidden]

    if items:
        scores = [item[1] for item in items]
        spread = (max(scores) - min(scores)) or 1.0
        by_id = {item[0]: item for item in items}
        for rule in active:
            if rule.action not in ("boost", "bury"):
                continue
            sign = 1.0 if rule.action == "boost" else -1.0
            verb = "boosted" if rule.action == "boost" else "buried"
            for pid in rule.product_ids:
                item = by_id.get(pid)
                if item is not None:
                    item[1] += sign * rule.weight * spread
                    item[2] = _join(item[2], f"{verb} by rule {rule.id}")
        items.sort(key=lambda item: -item[1])  # stable: ties keep the ranker's order

    pins = [r for r in active if r.action == "pin"]
    # Lower positions first so that later pins do not shift earlier ones.
    for rule in sorted(pins, key=lambda r: (r.position or 1, r.id)):
        slot = (rule.position or 1) - 1
        for offset, pid in enumerate(rule.product_ids):
            if pid in hidden:
                continue
            existing = next((i for i, item in enumerate(items) if item[0] == pid), None)
            if existing is None and not insert_missing:
                continue
            item = items.pop(existing) if existing is not None else [pid, 0.0, ""]
            at = min(slot + offset, len(items))
            # The pinned product takes the score of the slot it lands in (keeps scores meaningful).
            if items:
                item[1] = items[at][1] if at < len(items) else items[-1][1]
            item[2] = _join(item[2], f"pinned by rule {rule.id} at {at + 1}")
            items.insert(at, item)
    return [(pid, score, reason) for pid, score, reason in items]


def _join(reason: str, more: str) -> str:
    return f"{reason}; {more}" if reason else more


# -- storage -----------------------------------------------------------------------------------
def save_rule(store: Any, rule: Rule) -> None:
    """Create or replace a rule in the store."""
    store.put_record(RECORD_KIND, rule.id, rule.model_dump())


def delete_rule(store: Any, rule_id: str) -> bool:
    return bool(store.delete_record(RECORD_KIND, rule_id))


def load_rules(store: Any) -> list[Rule]:
    """Every stored rule, sorted by id; a malformed record raises an error naming its key."""
    rules = []
    for key, value in store.list_records(RECORD_KIND):
        try:
            rules.append(Rule(**value))
        except (ValidationError, TypeError) as exc:
            raise ShoprecError(f"store record rule/{key}: not a valid rule: {exc}") from exc
    return sorted(rules, key=lambda r: r.id)
