"""The contract every recommendation model keeps.

A model has a pydantic config, `fit(data)`, batch `recommend(users, k, exclude_seen)` returning
`(ids, scores)` arrays of shape (n_users, k), `similar_items(items, k)`, and plain-file `save`/`load`
(a `params.json` holding the config, the class and a format version, plus npy / model files).
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from shoprec.recommend.dataset import Interactions

FORMAT_VERSION = 1


class ModelConfig(BaseModel):
    """Base for per-model configs (typed, validated, serialised into params.json)."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 42


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense (n, m) score matrix: (ids, scores), best first; -inf entries sort last."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero): inner product becomes cosine. (n, d) float32."""
    vectors = np.asarray(vectors, np.float32)
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class Recommender(ABC):
    """Base class: subclasses implement `_fit` and `score`; batching, exclusion and top-k live here."""

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    # True when `score` reads per-user parameters learned in training (matrix factorisation, LightGCN):
    # such models can only score users by their training index. Otherwise `score` is a pure function
    # of the history it is given, so the service can score an unseen user or a fresh session.
    needs_user_index: ClassVar[bool] = False
    # True when `score_sparse` gives one user's nonzero scores without a dense row over the catalog.
    sparse_scores: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        base = config if config is not None else self.config_class()
        self.config = base.model_copy(update=overrides) if overrides else base
        self.config = self.config_class.model_validate(self.config.model_dump())
        self.n_users = 0
        self.n_items = 0
        self.history: Interactions | None = None
        self._unit_vectors: np.ndarray | None = None  # item_vectors(), L2-normalised; built on first use

    # -- training ----------------------------------------------------------------------------
    def fit(self, data: Interactions, valid: Any | None = None) -> "Recommender":
        """Learn from `data`; `valid` (model-specific, e.g. held-out targets) enables early stopping."""
        self.n_users, self.n_items = data.n_users, data.n_items
        self.history = data
        self._unit_vectors = None
        self._fit(data, valid)
        return self

    @abstractmethod
    def _fit(self, data: Interactions, valid: Any | None) -> None: ...

    # -- inference ---------------------------------------------------------------------------
    @abstractmethod
    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        """(len(users), n_items) float32 scores given each user's `history` (higher is better)."""

    def score_sparse(self, user: int, history: Interactions) -> tuple[np.ndarray, np.ndarray]:
        """One user's nonzero `score` entries: (ids (m,) int64, scores (m,) float32), in no order."""
        raise NotImplementedError(f"{self.name} scores densely (sparse_scores is False)")

    def recommend(
        self,
        users: np.ndarray | list[int],
        k: int = 10,
        exclude_seen: bool = True,
        history: Interactions | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per user: (ids (n, k) int, scores (n, k) float32).

        `history` overrides the training interactions as the users' known past (e.g. at test time
        it includes the validation item); seen items are excluded when `exclude_seen`."""
        history = history if history is not None else self.history
        if history is None:
            raise RuntimeError(f"{self.name}: call fit() first")
        users = np.asarray(users, dtype=np.int64)
        k = min(k, self.n_items)
        out_ids = np.empty((len(users), k), np.int64)
        out_scores = np.empty((len(users), k), np.float32)
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            scores = np.asarray(self.score(batch, history), dtype=np.float32)
            if exclude_seen:
                seen = history.seen[batch]
                scores[seen.nonzero()] = -np.inf
            ids, top = top_k(scores, k)
            out_ids[start:start + len(batch)] = ids
            out_scores[start:start + len(batch)] = top
        return out_ids, out_scores

    def item_vectors(self) -> np.ndarray | None:
        """(n_items, d) item representations when the model has them (used for similar_items)."""
        return None

    def query_vectors(self, users: np.ndarray, history: Interactions) -> np.ndarray | None:
        """(len(users), d) vectors whose inner products with `scoring_table()` are `score`, for
        models that score that way (serving then retrieves by approximate search); else None."""
        return None

    def scoring_table(self) -> np.ndarray | None:
        """(n_items, d) item side of `score` when it is an inner product (see `query_vectors`)."""
        return self.item_vectors()

    def similar_items(self, items: np.ndarray | list[int], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k most similar items per query item (cosine of item vectors), excluding the item itself."""
        if getattr(self, "_unit_vectors", None) is None:
            # Once per fitted model, not per call: an item page at 100,000 items spent 45 ms
            # rebuilding and normalising every item's vector before a 1 ms product.
            vectors = self.item_vectors()
            if vectors is None:
                raise NotImplementedError(f"{self.name} has no item representation")
            self._unit_vectors = unit_rows(vectors)
        items = np.asarray(items, dtype=np.int64)
        norm = self._unit_vectors
        scores = norm[items] @ norm.T
        scores[np.arange(len(items)), items] = -np.inf
        return top_k(scores.astype(np.float32), k)

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write params.json plus the model's arrays/files into the folder `path`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = {
            "format_version": FORMAT_VERSION,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "name": self.name,
            "config": self.config.model_dump(mode="json"),
            "n_users": self.n_users,
            "n_items": self.n_items,
        }
        (path / "params.json").write_text(json.dumps(params, indent=2))
        if self.history is not None:
            sp.save_npz(path / "history.npz", self.history.seen.tocsr())
            # the events in order too: recency-weighted and sequential models read the order
            h = self.history
            np.savez(path / "history_events.npz", users=h.users, items=h.items, weights=h.weights, timestamps=h.timestamps)
        self._save(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """Load any saved model (the class is read from params.json)."""
        path = Path(path)
        params = json.loads((path / "params.json").read_text())
        if params.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported model format {params.get('format_version')}")
        module, qualname = params["class"].split(":")
        model_cls = getattr(importlib.import_module(module), qualname)
        model = model_cls(model_cls.config_class.model_validate(params["config"]))
        model.n_users, model.n_items = params["n_users"], params["n_items"]
        if (path / "history_events.npz").exists():
            with np.load(path / "history_events.npz") as events:
                model.history = Interactions(model.n_users, model.n_items, events["users"], events["items"],
                                             weights=events["weights"], timestamps=events["timestamps"])
        elif (path / "history.npz").exists():
            seen = sp.load_npz(path / "history.npz").tocoo()
            model.history = Interactions(model.n_users, model.n_items, seen.row, seen.col)
        model._load(path)
        return model

    @abstractmethod
    def _save(self, path: Path) -> None: ...

    @abstractmethod
    def _load(self, path: Path) -> None: ...
