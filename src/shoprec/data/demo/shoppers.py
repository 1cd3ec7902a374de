"""Simulated shoppers: their hidden preferences (the truth) and the utility model they act on.

utility(user, item) = 3.0 * category taste (relative to the user's favourite leaf)
                    + 0.6 * department taste
                    + 1.2 * [brand is a favourite]
                    - 0.5 * price sensitivity * (item price position - preferred position)^2
                    + 0.6 * item quality + 0.7 * item popularity
                    + 0.3 * [listing language = shopper language]
                    - 3.5
Price positions are standardised log prices within the item's leaf category, so "budget" or
"premium" means the same thing for earbuds and for laptops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shoprec.data.demo import vocab
from shoprec.data.demo.catalog import DAY, Catalog

W_CATEGORY = 3.0
W_DEPARTMENT = 0.6
W_BRAND = 1.2
W_PRICE = 0.5
W_QUALITY = 0.6
W_POPULARITY = 0.7
W_LANGUAGE = 0.3
OFFSET = -3.5
PRICE_BANDS = ("budget", "mid", "premium")
BAND_CENTRES = np.array([-0.9, 0.0, 0.9])
BAND_HALF_WIDTH = 0.75
MAX_FAVOURITE_BRANDS = 3


@dataclass
class ShopperTruth:
    """Hidden per-user preferences, shaped (n_users, ...).

    taste: (n_users, n_leaves) category distribution; top_leaves: (n_users, 3) leaf indices, -1 padded.
    favourite_brands: (n_users, 3) brand indices, -1 padded.
    price_pref: preferred within-leaf price position (z); price_band: 0 budget, 1 mid, 2 premium.
    locale: index into vocab.LOCALES; language: 0 en, 1 zh.
    device_mix: (n_users, 4) probabilities over vocab.DEVICES.
    active_from / active_until: epoch seconds bounding the user's sessions (lapsed users stop early).
    item_quality / item_popularity / item_price_position: (n_items,) item truth, copied from the
    catalog for convenience (latent quality, latent log-popularity, standardised log price in leaf).
    """

    taste: np.ndarray
    top_leaves: np.ndarray
    favourite_brands: np.ndarray
    price_pref: np.ndarray
    price_band: np.ndarray
    price_sensitivity: np.ndarray
    activity: np.ndarray
    lapsed: np.ndarray
    locale: np.ndarray
    language: np.ndarray
    device_mix: np.ndarray
    search_rate: np.ndarray
    checkout_rate: np.ndarray
    signup_at: np.ndarray
    active_from: np.ndarray
    active_until: np.ndarray
    item_quality: np.ndarray | None = None
    item_popularity: np.ndarray | None = None
    item_price_position: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.taste)


def draw_shoppers(rng: np.random.Generator, catalog: Catalog, n_users: int, start: float, end: float) -> ShopperTruth:
    """Draw `n_users` shoppers whose tastes only point at leaves that have products."""
    n_leaves = len(catalog.leaves)
    leaf_sizes = np.bincount(catalog.leaf, minlength=n_leaves)
    nonempty = np.flatnonzero(leaf_sizes > 0)
    leaf_dept = np.array([next(k for k, d in enumerate(catalog.departments) if d.key == l.department) for l in catalog.leaves])
    # Some categories attract more shoppers than others, regardless of their size.
    leaf_appeal = rng.uniform(0.3, 1.7, n_leaves) * (leaf_sizes > 0)
    leaf_appeal /= leaf_appeal.sum()

    n_top = rng.choice([1, 2, 3], size=n_users, p=[0.3, 0.45, 0.25])
    top_leaves = np.full((n_users, 3), -1, np.int32)
    top_leaves[:, 0] = rng.choice(n_leaves, size=n_users, p=leaf_appeal)
    same_dept = rng.random((n_users, 3)) < 0.6
    pick_u = rng.random((n_users, 3))
    dept_members = {d: nonempty[leaf_dept[nonempty] == d] for d in range(len(catalog.departments))}
    for u in range(n_users):  # per user, not per event: a few choices each
        chosen = [int(top_leaves[u, 0])]
        for k in range(1, int(n_top[u])):
            pool = dept_members[leaf_dept[chosen[0]]] if same_dept[u, k] else nonempty
            pool = pool[~np.isin(pool, chosen)]
            if len(pool) == 0:
                pool = nonempty[~np.isin(nonempty, chosen)]
            if len(pool) == 0:
                break
            chosen.append(int(pool[int(pick_u[u, k] * len(pool))]))
        top_leaves[u, : len(chosen)] = chosen
    n_top = (top_leaves >= 0).sum(1)

    # Taste: a Dirichlet over the 1-3 top leaves (each keeps at least 15%) plus a thin uniform background.
    dirichlet = rng.gamma(1.5, size=(n_users, 3)) * (top_leaves >= 0)
    dirichlet /= dirichlet.sum(1, keepdims=True)
    top_weight = 0.9 * (0.5 / n_top[:, None] + 0.5 * dirichlet) * (top_leaves >= 0)
    taste = np.zeros((n_users, n_leaves), np.float32)
    taste[:, nonempty] = 0.1 / len(nonempty)
    rows = np.repeat(np.arange(n_users), 3)
    flat_leaves = top_leaves.ravel()
    valid = flat_leaves >= 0
    np.add.at(taste, (rows[valid], flat_leaves[valid]), top_weight.ravel()[valid])

    # Favourite brands: among the brands that sell in the user's top leaves, by how much they sell there.
    leaf_brand = np.zeros((n_leaves, len(catalog.brands)))
    np.add.at(leaf_brand, (catalog.leaf.astype(np.int64), catalog.brand), 1.0)
    n_fav = rng.choice([1, 2, 3], size=n_users, p=[0.4, 0.4, 0.2])
    favourite_brands = np.full((n_users, MAX_FAVOURITE_BRANDS), -1, np.int32)
    for u in range(n_users):
        counts = leaf_brand[top_leaves[u, : n_top[u]]].sum(0)
        candidates = np.flatnonzero(counts)
        k = min(int(n_fav[u]), len(candidates))
        p = np.sqrt(counts[candidates])
        favourite_brands[u, :k] = rng.choice(candidates, size=k, replace=False, p=p / p.sum())

    price_band = rng.choice(3, size=n_users, p=[0.35, 0.4, 0.25])
    price_pref = BAND_CENTRES[price_band] + rng.normal(0.0, 0.15, n_users)
    price_sensitivity = rng.uniform(0.8, 1.8, n_users)
    activity = rng.lognormal(0.0, 1.0, n_users)

    shares = np.array([l[3] for l in vocab.LOCALES])
    locale = rng.choice(len(vocab.LOCALES), size=n_users, p=shares / shares.sum())
    locale_language = np.array([0 if l[1] == "en" else 1 for l in vocab.LOCALES])
    # A few shoppers browse in the other language than their locale suggests.
    language = np.where(rng.random(n_users) < 0.07, 1 - locale_language[locale], locale_language[locale]).astype(np.int8)
    device_prior = np.where(language[:, None] == 1, [[3.0, 1.0, 0.5, 4.0]], [[3.0, 3.0, 1.0, 1.5]])
    device_mix = rng.gamma(device_prior)
    device_mix /= device_mix.sum(1, keepdims=True)
    search_rate = rng.uniform(0.15, 0.55, n_users)
    checkout_rate = rng.uniform(0.35, 0.8, n_users)

    days = (end - start) / DAY
    new_user = rng.random(n_users) < 0.15
    signup_at = np.floor(np.where(new_user, start + rng.uniform(0.0, 0.8, n_users) * (end - start),
                                  start - rng.uniform(1, 400, n_users) * DAY))
    active_from = np.maximum(signup_at, start)
    lapsed = (rng.random(n_users) < 0.2) & ~new_user
    active_until = np.where(lapsed, start + rng.uniform(0.15, 0.6, n_users) * days * DAY, end)
    return ShopperTruth(
        taste=taste, top_leaves=top_leaves, favourite_brands=favourite_brands, price_pref=price_pref,
        price_band=price_band, price_sensitivity=price_sensitivity, activity=activity, lapsed=lapsed,
        locale=locale, language=language, device_mix=device_mix, search_rate=search_rate,
        checkout_rate=checkout_rate, signup_at=signup_at, active_from=active_from, active_until=active_until,
        item_quality=catalog.quality, item_popularity=catalog.popularity, item_price_position=catalog.price_z,
    )


class UtilityModel:
    """True expected utility of items for users, from the hidden truth (see module docstring)."""

    def __init__(self, truth: ShopperTruth, catalog: Catalog):
        self.taste_rel = truth.taste / truth.taste.max(1, keepdims=True)
        n_depts = len(catalog.departments)
        leaf_dept = np.array([next(k for k, d in enumerate(catalog.departments) if d.key == l.department) for l in catalog.leaves])
        dept_taste = np.zeros((len(truth), n_depts), np.float32)
        for d in range(n_depts):
            dept_taste[:, d] = truth.taste[:, leaf_dept == d].sum(1)
        self.dept_rel = dept_taste / dept_taste.max(1, keepdims=True)
        self.favourite_brands = truth.favourite_brands
        self.price_pref = truth.price_pref
        self.price_sensitivity = truth.price_sensitivity
        self.user_language = truth.language
        self.leaf = catalog.leaf.astype(np.int64)
        self.department = catalog.department.astype(np.int64)
        self.brand = catalog.brand
        self.price_z = catalog.price_z
        self.item_base = W_QUALITY * catalog.quality + W_POPULARITY * catalog.popularity
        self.item_language = catalog.language

    def pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Utility of `items` (n_cols,) shared by all users, or (n_users, n_cols) per user, for
        `users` (n_users,) -> (n_users, n_cols) float64."""
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        if items.ndim == 2:
            return np.stack([self.pairs(users[k:k + 1], items[k])[0] for k in range(len(users))]) if len(users) else \
                np.zeros(items.shape)
        u = users[:, None]
        # Gather per user over the (small) leaf/department axes first, then spread over the items.
        value = W_CATEGORY * self.taste_rel[users][:, self.leaf[items]].astype(np.float64)
        value += W_DEPARTMENT * self.dept_rel[users][:, self.department[items]]
        brand = self.brand[items][None, :]
        favourite = np.zeros(value.shape, bool)
        for k in range(self.favourite_brands.shape[1]):
            fav = self.favourite_brands[users, k][:, None]
            favourite |= (brand == fav) & (fav >= 0)
        value += W_BRAND * favourite
        value -= W_PRICE * self.price_sensitivity[u] * (self.price_z[items][None, :] - self.price_pref[u]) ** 2
        value += self.item_base[items][None, :]
        value += W_LANGUAGE * (self.item_language[items][None, :] == self.user_language[u])
        return value + OFFSET
