"""The demo catalog: products drawn over the bilingual category tree of `vocab`.

Latent item truth (within-category price position, quality, popularity) is drawn first with
numpy; only the final string composition walks the products one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from shoprec.data.demo import vocab
from shoprec.data.schemas import Product

DAY = 86_400.0
# Brands whose home market is China list most of their products in Chinese.
CHINESE_BRANDS = frozenset({"Haoyun", "Meijia", "Yundong", "Huali", "Leyou", "Xinyue Press", "Qingyi", "Chaxiang", "Anxin"})


@dataclass
class Catalog:
    """Products plus the per-item arrays the simulator needs (all shaped (n_products,) unless noted).

    leaf, department, brand: indices into `leaves`, `departments`, `brands`.
    price_z: standardised log price within the leaf (the price position a shopper compares).
    quality: latent quality, about N(0, 1); the public rating is a noisy view of it.
    popularity: latent log-popularity (heavy right tail: a few bestsellers).
    language: 0 = English listing, 1 = Chinese listing.
    created_at: epoch seconds.
    """

    products: list[Product]
    leaves: tuple[vocab.Leaf, ...]
    departments: tuple[vocab.Department, ...]
    brands: list[str]
    leaf: np.ndarray
    department: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    price_z: np.ndarray
    quality: np.ndarray
    popularity: np.ndarray
    language: np.ndarray
    available: np.ndarray
    created_at: np.ndarray

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.products]


def _cap(phrase: str) -> str:
    """Title-case each word, leaving words that already carry capitals (USB-C, GaN, 4K) alone."""
    return " ".join(w if any(c.isupper() for c in w) else w[:1].upper() + w[1:] for w in phrase.split(" "))


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _round_price(price: np.ndarray) -> np.ndarray:
    """Shop-style prices: x.99 above 10 dollars, cents below."""
    return np.where(price >= 10, np.maximum(np.round(price) - 0.01, 0.99), np.round(price, 2)).astype(np.float64)


def build_catalog(rng: np.random.Generator, n_products: int, start: float, end: float) -> Catalog:
    """Draw `n_products` products; `start` / `end` (epoch seconds) bound the behaviour window."""
    leaves = vocab.LEAVES
    departments = vocab.DEPARTMENTS
    dept_index = {d.key: k for k, d in enumerate(departments)}
    brands: list[str] = sorted({b for d in departments for b in d.brands})
    brand_index = {b: k for k, b in enumerate(brands)}
    n_leaves = len(leaves)

    # Leaf sizes vary (some categories are much larger); every leaf gets one item first when possible.
    leaf_share = rng.uniform(0.4, 1.6, n_leaves)
    leaf_share /= leaf_share.sum()
    first = np.arange(min(n_leaves, n_products))
    rest = rng.choice(n_leaves, size=n_products - len(first), p=leaf_share)
    leaf = rng.permutation(np.concatenate([first, rest])).astype(np.int16)
    department = np.array([dept_index[l.department] for l in leaves], np.int16)[leaf]

    # Brands per department with a Zipf-like market share, so a few brands dominate.
    brand = np.empty(n_products, np.int32)
    brand_effect = rng.normal(0.0, 0.3, len(brands))
    for d, dept in enumerate(departments):
        members = np.flatnonzero(department == d)
        share = 1.0 / (1.0 + rng.permutation(len(dept.brands))) ** 0.8
        ids = np.array([brand_index[b] for b in dept.brands])
        brand[members] = ids[rng.choice(len(ids), size=len(members), p=share / share.sum())]

    medians = np.array([l.price_median for l in leaves])
    sigmas = np.array([l.price_sigma for l in leaves])
    price_z = np.clip(rng.standard_normal(n_products), -2.5, 2.5)
    price = _round_price(medians[leaf] * np.exp(sigmas[leaf] * price_z))
    quality = 0.3 * price_z + brand_effect[brand] + rng.normal(0.0, 0.9, n_products)
    popularity = np.log1p(rng.pareto(1.3, n_products))
    popularity -= popularity.mean()
    rating = np.clip(np.round(4.1 + 0.4 * quality + rng.normal(0.0, 0.2, n_products), 1), 1.0, 5.0)
    has_rating = rng.random(n_products) > 0.06
    available = rng.random(n_products) > 0.05
    chinese_brand = np.array([b in CHINESE_BRANDS for b in brands])[brand]
    language = (rng.random(n_products) < np.where(chinese_brand, 0.75, 0.25)).astype(np.int8)
    # Most of the catalog predates the window; about one item in ten arrives during it.
    new_item = rng.random(n_products) < 0.1
    created_at = np.where(new_item, rng.uniform(start, end - DAY, n_products), rng.uniform(start - 730 * DAY, start, n_products))

    # Discrete text choices, drawn in bulk.
    noun_u, mod_u, mod2_u, n_mods_u, model_u, number_u, attr_u, book_u, benefit_u = (rng.random((9, n_products)))
    attr2_u = rng.random(n_products)

    products: list[Product] = []
    created_at = np.floor(created_at)
    created_dt = [datetime.fromtimestamp(float(t), tz=timezone.utc) for t in created_at]
    width = max(6, len(str(n_products - 1)))
    for i in range(n_products):
        lf = leaves[leaf[i]]
        dept = departments[department[i]]
        brand_name = brands[brand[i]]
        noun = lf.nouns[int(noun_u[i] * len(lf.nouns))]
        m1 = int(mod_u[i] * len(lf.modifiers))
        mods = [lf.modifiers[m1]]
        if n_mods_u[i] < 0.45 and len(lf.modifiers) > 1:
            second = lf.modifiers[(m1 + 1 + int(mod2_u[i] * (len(lf.modifiers) - 1))) % len(lf.modifiers)]
            if frozenset((mods[0][0], second[0])) not in vocab.EXCLUSIVE_MODIFIERS:
                mods.append(second)
        attrs: dict[str, object] = {}
        shown: list[tuple[str, str]] = []
        for k, (name, values) in enumerate(lf.attributes.items()):
            value = values[int((attr_u[i] if k == 0 else attr2_u[i]) * len(values))]
            attrs[name] = value[0]
            if k < 2:
                shown.append(value)
        b1, b2 = dept.benefits[int(benefit_u[i] * len(dept.benefits))], dept.benefits[int(benefit_u[i] * 7919) % len(dept.benefits)]
        benefits_en = b1[0] if b1 == b2 else f"{b1[0]} {b2[0]}"
        benefits_zh = b1[1] if b1 == b2 else b1[1] + b2[1]
        mods_en = " ".join(m[0] for m in mods)
        mods_zh = "".join(m[1] for m in mods)
        if lf.style == "book":
            adj = vocab.BOOK_ADJECTIVES[int(book_u[i] * len(vocab.BOOK_ADJECTIVES))]
            name = vocab.BOOK_NOUNS[int(model_u[i] * len(vocab.BOOK_NOUNS))]
            fmt = shown[0] if shown else ("paperback", "平装")
            title_en = f"The {adj[0]} {name[0]}: {_cap(mods[0][0])} {_cap(noun[0])} ({_cap(fmt[0])})"
            title_zh = f"{adj[1]}{name[1]}：{mods[0][1]}{noun[1]}（{fmt[1]}）"
            desc_en = (f"The {adj[0]} {name[0]} is {_article(mods[0][0])} {mods[0][0]} {noun[0]} published by {brand_name}. "
                       f"{benefits_en} Format: {fmt[0]}.")
            desc_zh = f"《{adj[1]}{name[1]}》是{brand_name}出版的{mods[0][1]}{noun[1]}。{benefits_zh}版本：{fmt[1]}。"
            attrs["model"] = ""
        else:
            model = ""
            if lf.style == "product":
                model = vocab.MODEL_WORDS[int(model_u[i] * len(vocab.MODEL_WORDS))]
                if number_u[i] < 0.6:
                    model += f" {2 + int(number_u[i] / 0.6 * 8)}"
                elif number_u[i] < 0.8:
                    model = f"{'XSGT'[int(number_u[i] * 97) % 4]}{1 + int(number_u[i] * 991) % 9}"
            lead = f"{brand_name} {model}".strip()
            suffix_en = ", ".join(v[0][:1].upper() + v[0][1:] for v in shown)
            suffix_zh = " ".join(v[1] for v in shown)
            title_en = f"{lead} {_cap(mods_en)} {_cap(noun[0])}" + (f", {suffix_en}" if suffix_en else "")
            title_zh = f"{lead} {mods_zh}{noun[1]}" + (f" {suffix_zh}" if suffix_zh else "")
            features_en = " and ".join(m[0] for m in mods)
            desc_en = f"The {lead} {noun[0]}: {features_en}."
            desc_zh = f"{lead} {noun[1]}，{'、'.join(m[1] for m in mods)}。"
            if shown:
                desc_en += f" Options: {', '.join(v[0] for v in shown)}."
                desc_zh += f"规格：{'，'.join(v[1] for v in shown)}。"
            desc_en += f" {benefits_en}"
            desc_zh += benefits_zh
            attrs["model"] = model
        attrs.update(title_en=title_en, title_zh=title_zh, description_en=desc_en, description_zh=desc_zh,
                     category_zh=[dept.name[1], lf.sub[1], lf.name[1]])
        zh = bool(language[i])
        products.append(Product(
            id=f"item_{i:0{width}d}",
            title=title_zh if zh else title_en,
            description=desc_zh if zh else desc_en,
            category=[dept.name[0], lf.sub[0], lf.name[0]],
            brand=brand_name,
            price=float(price[i]),
            currency="USD",
            attributes=attrs,
            image_url=f"/static/img/{lf.slug}.svg",
            language="zh" if zh else "en",
            available=bool(available[i]),
            rating=float(rating[i]) if has_rating[i] else None,
            created_at=created_dt[i],
        ))
    return Catalog(products=products, leaves=leaves, departments=departments, brands=brands, leaf=leaf,
                   department=department, brand=brand, price=price, price_z=price_z, quality=quality,
                   popularity=popularity, language=language, available=available, created_at=created_at)
