"""SASRec (Kang & McAuley, ICDM 2018) with the training choices later work found decisive.

A causal self-attention encoder over the user's last `max_len` items (learnable positions,
pre-LayerNorm blocks, dropout on embeddings / attention / feed-forward) whose last hidden state,
dotted with the tied item table, scores every item. Trained at every position with a softmax
loss over many items (the full softmax by default; `loss="sampled"` for sampled softmax over shared
negatives; the eSASRec / gSASRec findings); `loss="bce"` gives the original one-negative BCE.
Items may carry attribute and text side information (see `sequential`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from shoprec.recommend.sequential import SequentialConfig, SequentialRecommender, build_item_encoder


class SASRecConfig(SequentialConfig):
    # Full softmax over all items: on Beauty it beat 1,024 and 4,096 shared sampled negatives
    # (test NDCG@10 .0540 vs .0495 / .0515; benchmarks/seqrec/README.md). Each epoch costs more,
    # so training stops after 8 minutes, keeping the best validation epoch. Dimension 128, dropout
    # 0.5 and averaged weights: the best of the settings measured on all three datasets (same README;
    # without the stronger dropout and averaging, 128 had overfitted sooner than 64).
    loss: Literal["ce", "sampled", "bce"] = "ce"
    time_budget_s: float | None = 480.0
    dim: int = 128
    dropout: float = 0.5
    ema_decay: float | None = 0.99
    blocks: int = 2
    heads: int = 1
    # feed-forward width = ffn_factor * dim
    ffn_factor: int = 1
    # "ligr": the gated block of eSASRec (LiGR, arXiv 2502.03417): a sigmoid gate on the attention
    # output and a SwiGLU feed-forward; "sasrec": the plain pre-LN block
    block: Literal["sasrec", "ligr"] = "sasrec"
    attention_dropout: float = 0.3


class SASRec(SequentialRecommender):
    """Self-attentive sequential recommender; `score` reads only the given history (no user index)."""

    name = "sasrec"
    config_class = SASRecConfig

    def _build_network(self, attributes: tuple | None, text: np.ndarray | None, text_dim: int | None = None):
        return build_sasrec_network(self.config, self.n_items, build_item_encoder(
            self.n_items, self.config.dim, attributes, text, text_dim))


def build_sasrec_network(cfg: SASRecConfig, n_items: int, items: Any):
    """The torch module: `items()` -> (n_items + 1, dim) table, `encode(windows, table)` -> (B, L, dim)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    if cfg.dim % cfg.heads:
        raise ValueError(f"sasrec: dim {cfg.dim} must be divisible by heads {cfg.heads}")

    class Block(nn.Module):
        """Pre-LN block: x + Attn(LN(x)) then x + FFN(LN(x)); attention is causal and skips padding."""

        def __init__(self) -> None:
            super().__init__()
            self.attention_norm = nn.LayerNorm(cfg.dim)
            self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
            self.out = nn.Linear(cfg.dim, cfg.dim)
            self.ffn_norm = nn.LayerNorm(cfg.dim)
            width = cfg.ffn_factor * cfg.dim
            self.gated = cfg.block == "ligr"
            if self.gated:
                self.gate = nn.Linear(cfg.dim, cfg.dim)
                self.ffn_in = nn.Linear(cfg.dim, 2 * width, bias=False)  # SwiGLU: value and gate halves
                self.ffn_out = nn.Linear(width, cfg.dim, bias=False)
            else:
                self.ffn = nn.Sequential(
                    nn.Linear(cfg.dim, width), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(width, cfg.dim),
                )
            self.dropout = nn.Dropout(cfg.dropout)

        def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
            batch, length, dim = x.shape
            normed = self.attention_norm(x)
            q, k, v = self.qkv(normed).view(batch, length, 3, cfg.heads, dim // cfg.heads).permute(2, 0, 3, 1, 4)
            attended = F.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, dropout_p=cfg.attention_dropout if self.training else 0.0)
            attended = self.out(attended.transpose(1, 2).reshape(batch, length, dim))
            if not self.gated:
                x = x + self.dropout(attended)
                return x + self.dropout(self.ffn(self.ffn_norm(x)))
            x = x + self.dropout(torch.sigmoid(self.gate(normed)) * attended)
            value, gate = self.ffn_in(self.ffn_norm(x)).chunk(2, dim=-1)
            return x + self.dropout(self.ffn_out(self.dropout(F.silu(gate) * value)))

    class Network(nn.Module):
        def __init__(self, items: Any) -> None:  # an argument, not a closure cell (see build_item_encoder)
            super().__init__()
            self.items = items
            self.positions = nn.Embedding(cfg.max_len, cfg.dim)
            nn.init.normal_(self.positions.weight, std=0.02)
            self.embedding_dropout = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.blocks))
            self.final_norm = nn.LayerNorm(cfg.dim)
            self.register_buffer("causal", torch.tril(torch.ones(cfg.max_len, cfg.max_len, dtype=torch.bool)))

        def encode(self, windows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
            """windows: (B, L <= max_len) right-aligned item index + 1 (0 = pad) -> (B, L, dim)."""
            length = windows.shape[1]
            valid = windows > 0  # (B, L)
            # the last position always holds position max_len - 1, whatever the window length
            positions = self.positions.weight[cfg.max_len - length:]
            x = table[windows] * math.sqrt(cfg.dim) + positions
            x = self.embedding_dropout(x) * valid.unsqueeze(-1)
            # query i sees keys j <= i that are items; a padding query sees itself (keeps softmax finite)
            eye = torch.eye(length, dtype=torch.bool)
            allowed = (self.causal[:length, :length] & valid[:, None, :]) | eye
            allowed = allowed.unsqueeze(1)  # (B, 1, L, L), broadcast over heads
            for block in self.blocks:
                x = block(x, allowed) * valid.unsqueeze(-1)
            return self.final_norm(x)

    return Network(items)
