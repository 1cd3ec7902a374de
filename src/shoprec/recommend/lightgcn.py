"""LightGCN (He et al., SIGIR 2020): user/item embeddings smoothed over the interaction graph.

The normalised adjacency D^-1/2 A D^-1/2 of the user-item bipartite graph is a torch sparse
matrix; embeddings are propagated `layers` times and averaged over layers; trained with BPR loss
on (user, seen item, uniformly sampled item) triples and L2 on the batch's input embeddings.
Early stopping keeps the embeddings of the epoch with the best validation NDCG@10. Users are
scored by their training index (`needs_user_index`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shoprec.evaluation.protocols import FitLog, Holdout, validation_ndcg10
from shoprec.recommend.base import ModelConfig, Recommender
from shoprec.recommend.dataset import Interactions


class LightGCNConfig(ModelConfig):
    dim: int = 64
    layers: int = 3
    learning_rate: float = 0.02
    l2: float = 1e-4
    batch_size: int = 16384
    epochs: int = 40
    eval_every: int = 5
    patience: int = 2
    max_valid_users: int | None = 5000
    num_threads: int = 2


class LightGCN(Recommender):
    """user_embeddings: (n_users, dim), item_embeddings: (n_items, dim) float32 (after propagation)."""

    name = "lightgcn"
    config_class = LightGCNConfig
    needs_user_index: ClassVar[bool] = True

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.user_embeddings = np.zeros((0, self.config.dim), np.float32)
        self.item_embeddings = np.zeros((0, self.config.dim), np.float32)
        self.fit_report: dict[str, float] = {}

    @staticmethod
    def normalised_adjacency(data: Interactions):
        """(n_users + n_items) square torch sparse CSR matrix D^-1/2 A D^-1/2 (users first)."""
        import torch

        seen = data.seen.tocoo()
        n = data.n_users + data.n_items
        rows = np.concatenate([seen.row, seen.col + data.n_users])
        cols = np.concatenate([seen.col + data.n_users, seen.row])
        degree = np.bincount(rows, minlength=n).astype(np.float64)
        inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1.0)), 0.0)
        values = (inv_sqrt[rows] * inv_sqrt[cols]).astype(np.float32)
        indices = torch.from_numpy(np.vstack([rows, cols]).astype(np.int64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            coo = torch.sparse_coo_tensor(indices, torch.from_numpy(values), (n, n), check_invariants=False)
            return coo.coalesce().to_sparse_csr()

    def _fit(self, data: Interactions, valid: Any | None) -> None:
        import torch

        cfg: LightGCNConfig = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(cfg.num_threads)
        log = FitLog(self.name)
        check = valid.subsample(cfg.max_valid_users, cfg.seed) if isinstance(valid, Holdout) else None
        try:
            adjacency = self.normalised_adjacency(data)
            n_users, n_items = data.n_users, data.n_items
            embeddings = torch.nn.Parameter(torch.randn(n_users + n_items, cfg.dim) * 0.1)
            optimizer = torch.optim.Adam([embeddings], lr=cfg.learning_rate)
            seen = data.seen.tocoo()
            pairs_users, pairs_items = seen.row.astype(np.int64), seen.col.astype(np.int64)
            best, best_state, since_best = -1.0, None, 0
            for epoch in range(1, cfg.epochs + 1):
                order = rng.permutation(len(pairs_users))
                negatives = rng.integers(0, n_items, len(order))
                total = 0.0
                for start in range(0, len(order), cfg.batch_size):
                    batch = order[start:start + cfg.batch_size]
                    users = torch.from_numpy(pairs_users[batch])
                    positives = torch.from_numpy(pairs_items[batch] + n_users)
                    sampled = torch.from_numpy(negatives[start:start + len(batch)] + n_users)
                    final = self._propagate(adjacency, embeddings, cfg.layers)
                    u, p, q = final[users], final[positives], final[sampled]
                    ranking = -torch.nn.functional.logsigmoid((u * p).sum(1) - (u * q).sum(1)).mean()
                    ego = embeddings[users].pow(2).sum() + embeddings[positives].pow(2).sum() + embeddings[sampled].pow(2).sum()
                    loss = ranking + cfg.l2 * ego / (2 * len(batch))
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(ranking.detach()) * len(batch)
                fields: dict[str, Any] = {"epoch": epoch, "loss": total / max(len(order), 1)}
                if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                    self._store(adjacency, embeddings, n_users)
                    if check is not None:
                        ndcg = validation_ndcg10(self, check)
                        fields["valid_ndcg10"] = ndcg
                        if ndcg > best:
                            best, best_state, since_best = ndcg, (self.user_embeddings, self.item_embeddings), 0
                        else:
                            since_best += 1
                    log(**fields)
                    if check is not None and since_best >= cfg.patience:
                        break
            if best_state is not None:
                self.user_embeddings, self.item_embeddings = best_state
                self.fit_report.update(valid_ndcg10_subsample=best)
        finally:
            torch.set_num_threads(previous_threads)

    @staticmethod
    def _propagate(adjacency, embeddings, layers: int):
        import torch

        layer = embeddings
        total = embeddings
        for _ in range(layers):
            layer = _SymmetricSparseProduct.apply(adjacency, layer)
            total = total + layer
        return total / (layers + 1)

    def _store(self, adjacency, embeddings, n_users: int) -> None:
        import torch

        with torch.no_grad():
            final = self._propagate(adjacency, embeddings, self.config.layers).numpy().astype(np.float32)
        self.user_embeddings, self.item_embeddings = final[:n_users].copy(), final[n_users:].copy()

    def query_vectors(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if len(users) and users.max() >= len(self.user_embeddings):
            raise IndexError(f"lightgcn scores training users only (index < {len(self.user_embeddings)}), got {users.max()}")
        return self.user_embeddings[users]

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return self.query_vectors(users, history) @ self.item_embeddings.T

    def item_vectors(self) -> np.ndarray | None:
        return self.item_embeddings

    def _save(self, path: Path) -> None:
        np.save(path / "user_embeddings.npy", self.user_embeddings)
        np.save(path / "item_embeddings.npy", self.item_embeddings)

    def _load(self, path: Path) -> None:
        self.user_embeddings = np.load(path / "user_embeddings.npy")
        self.item_embeddings = np.load(path / "item_embeddings.npy")


def _symmetric_product_class():
    import torch

    class SymmetricSparseProduct(torch.autograd.Function):
        """A @ X for a constant symmetric sparse A; the gradient is A @ grad (cheaper than autograd's sparse path)."""

        @staticmethod
        def forward(ctx, adjacency, dense):
            ctx.adjacency = adjacency
            return adjacency @ dense

        @staticmethod
        def backward(ctx, grad):
            return None, ctx.adjacency @ grad

    return SymmetricSparseProduct


class _LazySymmetricProduct:
    """Defers importing torch until LightGCN is used."""

    _cls = None

    def apply(self, adjacency, dense):
        if self._cls is None:
            self._cls = _symmetric_product_class()
        return self._cls.apply(adjacency, dense)


_SymmetricSparseProduct = _LazySymmetricProduct()
