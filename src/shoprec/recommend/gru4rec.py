"""GRU4Rec (Hidasi et al., ICLR 2016) trained like the flagship: every position, softmax loss.

A GRU reads the user's last `max_len` items; its hidden state, projected to `dim` and dotted with
the tied item table, scores every item. Padding never enters the recurrence (packed sequences), so
a user's scores do not depend on the window width. Shares side information, training loop, early
stopping and persistence with SASRec (`sequential`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shoprec.recommend.sequential import SequentialConfig, SequentialRecommender, build_item_encoder


class GRU4RecConfig(SequentialConfig):
    hidden: int = 64
    layers: int = 1


class GRU4Rec(SequentialRecommender):
    """Recurrent sequential recommender; `score` reads only the given history (no user index)."""

    name = "gru4rec"
    config_class = GRU4RecConfig

    def _build_network(self, attributes: tuple | None, text: np.ndarray | None, text_dim: int | None = None):
        return build_gru_network(self.config, build_item_encoder(self.n_items, self.config.dim, attributes, text, text_dim))


def build_gru_network(cfg: GRU4RecConfig, items: Any):
    """The torch module: `items()` -> (n_items + 1, dim) table, `encode(windows, table)` -> (B, L, dim)."""
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class Network(nn.Module):
        def __init__(self, items: Any) -> None:  # an argument, not a closure cell (see build_item_encoder)
            super().__init__()
            self.items = items
            self.embedding_dropout = nn.Dropout(cfg.dropout)
            self.gru = nn.GRU(cfg.dim, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                              dropout=cfg.dropout if cfg.layers > 1 else 0.0)
            self.projection = nn.Linear(cfg.hidden, cfg.dim)
            self.output_dropout = nn.Dropout(cfg.dropout)

        def encode(self, windows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
            """windows: (B, L) right-aligned item index + 1 (0 = pad) -> (B, L, dim); pad rows are 0."""
            batch, length = windows.shape
            lengths = (windows > 0).sum(1)
            pads = length - lengths
            # left-align (items first) so packing skips the padding
            columns = (torch.arange(length)[None, :] + pads[:, None]) % length
            left = torch.gather(windows, 1, columns)
            x = self.embedding_dropout(table[left])
            packed = pack_padded_sequence(x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
            output, _ = self.gru(packed)
            output, _ = pad_packed_sequence(output, batch_first=True, total_length=length)
            hidden = self.projection(self.output_dropout(output))
            # back to right-aligned
            back = (torch.arange(length)[None, :] - pads[:, None]) % length
            hidden = torch.gather(hidden, 1, back[:, :, None].expand(-1, -1, hidden.shape[-1]))
            return hidden * (windows > 0).unsqueeze(-1)

    return Network(items)
