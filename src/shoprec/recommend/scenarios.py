"""Scenarios: named configurations of generators, fusion, filters and re-ranking.

A shop adds its own by putting a `Scenario` into `SCENARIOS` (or `[scenarios.NAME]` tables in
shoprec.toml, read by the engine). Generator names refer to what the engine assembled from the
artifact version: `model:<name>` (whole-history scoring), `seeds:<name>` / `recent:<name>`
(neighbours of the item page / cart, or of this session's items), `content_profile`,
`popular`, `popular_recent`, `popular_locale`, and `graph:<edge type>` when the product graph is built.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Scenario(BaseModel):
    """One recommendation slot."""

    name: str
    generators: dict[str, float] = Field(description="generator name -> fusion weight")
    candidates_per_generator: int = 200
    exclude_seen: bool = True           # drop items the user already interacted with
    exclude_seeds: bool = True          # drop the item page / cart items themselves
    other_categories_only: bool = False # cross-category discovery
    diversity: float | None = None      # MMR trade-off (1 = relevance only); None = settings default
    use_ranker: bool = True             # learned ranker when the version has one
    needs: str | None = None            # "item" or "cart": required request input


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            name="home",
            generators={"model:sasrec": 1.0, "model:itemknn": 0.8, "model:als": 0.6, "recent:itemknn": 0.8,
                        "content_profile": 0.4, "popular_recent": 0.2},
        ),
        Scenario(
            # The ranker learns next-item choices from histories; the item page asks "what is like
            # this", so similarity evidence is fused directly (and new products show up at once).
            name="similar", needs="item", exclude_seen=False, use_ranker=False, diversity=1.0,
            generators={"graph:similar": 3.0, "seeds:itemknn": 1.0, "seeds:content": 0.6, "graph:co_view": 0.8},
        ),
        Scenario(
            name="frequently_bought_together", needs="item", exclude_seen=False, diversity=1.0,
            generators={"graph:co_buy": 1.0, "seeds:itemknn": 0.5},
        ),
        Scenario(
            name="cart", needs="cart", exclude_seen=False,
            generators={"graph:co_buy": 1.0, "seeds:itemknn": 0.8, "model:sasrec": 0.4, "popular_recent": 0.1},
        ),
        Scenario(
            name="welcome", exclude_seen=True,
            generators={"popular_locale": 1.0, "popular_recent": 0.6, "recent:itemknn": 1.5, "recent:content": 1.0},
        ),
        Scenario(
            name="cross_category", other_categories_only=True,
            generators={"model:als": 1.0, "model:sasrec": 0.6, "content_profile": 0.3, "popular_recent": 0.5},
        ),
    ]
}


def scenarios_with(extra: dict[str, dict]) -> dict[str, Scenario]:
    """The built-in scenarios plus a shop's own (`settings.recommend.scenarios`), which override by name."""
    return {**SCENARIOS, **{name: Scenario(name=name, **spec) for name, spec in extra.items()}}
