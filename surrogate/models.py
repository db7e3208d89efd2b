"""The two graph surrogates, wa-hls4ml style: a GATv2 network (torch-geometric) and a transformer over
per-layer tokens with a CLS token; both read node and global features and predict the standardized log
of every target. A linear path from the global features runs beside each network: the log targets are
close to linear in the log totals (latency in the summed reuse factors), and the network learns the rest."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GATv2Conv, global_mean_pool

from qfx.surrogate.dataset import TARGETS
from qfx.surrogate.graph import GLOBAL_FEATURES, NODE_FEATURES


class GNN(nn.Module):
    def __init__(self, hidden: int = 64, heads: int = 4, layers: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(NODE_FEATURES, hidden)
        self.convs = nn.ModuleList(
            GATv2Conv(hidden, hidden // heads, heads=heads, add_self_loops=False) for _ in range(layers)
        )
        self.head = _head(2 * hidden + len(GLOBAL_FEATURES), hidden)
        self.linear = nn.Linear(len(GLOBAL_FEATURES), len(TARGETS))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(x))
        for conv in self.convs:
            h = h + torch.relu(conv(h, edge_index))
        pooled = torch.cat([global_mean_pool(h, batch), _global_sum(h, batch)], dim=1)
        return self.head(torch.cat([pooled, g], dim=1)) + self.linear(g)


class Transformer(nn.Module):
    """Layer tokens plus a CLS token built from the global features; the CLS output is read out."""

    def __init__(self, hidden: int = 64, heads: int = 4, layers: int = 2, max_layers: int = 64) -> None:
        super().__init__()
        self.embed = nn.Linear(NODE_FEATURES, hidden)
        self.cls = nn.Linear(len(GLOBAL_FEATURES), hidden)
        self.position = nn.Embedding(max_layers + 1, hidden)
        block = nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = _head(hidden + len(GLOBAL_FEATURES), hidden)
        self.linear = nn.Linear(len(GLOBAL_FEATURES), len(TARGETS))
        self.max_layers = max_layers

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """tokens [B, L, F] padded, mask [B, L] True where padding."""
        b, n, _ = tokens.shape
        if n > self.max_layers:
            raise ValueError(f"{n} layers is more than the transformer's {self.max_layers}")
        h = torch.cat([self.cls(g)[:, None], self.embed(tokens)], dim=1)
        h = h + self.position(torch.arange(n + 1, device=h.device))[None]
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        out = self.encoder(h, src_key_padding_mask=pad)
        return self.head(torch.cat([out[:, 0], g], dim=1)) + self.linear(g)


def _head(inputs: int, hidden: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, len(TARGETS))
    )


def _global_sum(h: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(int(batch.max()) + 1, h.shape[1], dtype=h.dtype)
    return out.index_add_(0, batch, h) / 8.0  # scaled: sums grow with depth, means do not
