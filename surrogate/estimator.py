"""Training the graph surrogates and estimating with them: standardized log targets, predictions capped
to the training range, and inputs outside the training range flagged as extrapolation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from surrogate.dataset import TARGETS
from surrogate.graph import GLOBAL_FEATURES, LAYER_TYPES, NUMERIC, Graph
from surrogate.models import GNN, Transformer

KINDS = {"gnn": GNN, "transformer": Transformer}
CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "wa_dense.pt"


@dataclass
class Scaler:
    """Standardization of node, global and log-target values, and the ranges seen in training."""

    node_mean: np.ndarray
    node_std: np.ndarray
    glob_mean: np.ndarray
    glob_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    glob_min: np.ndarray
    glob_max: np.ndarray
    node_min: np.ndarray
    node_max: np.ndarray

    @classmethod
    def fit(cls, graphs: list[Graph], y: np.ndarray) -> Scaler:
        nodes = np.concatenate([g.nodes for g in graphs])
        glob = np.stack([g.globals for g in graphs])
        ly = np.log1p(y)
        return cls(
            nodes.mean(0),
            nodes.std(0) + 1e-6,
            glob.mean(0),
            glob.std(0) + 1e-6,
            ly.mean(0),
            ly.std(0) + 1e-6,
            ly.min(0),
            ly.max(0),
            glob.min(0),
            glob.max(0),
            nodes.min(0),
            nodes.max(0),
        )

    def state(self) -> dict:
        return {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, state: dict) -> Scaler:
        return cls(**{k: v.numpy() for k, v in state.items()})


def _batch(graphs: list[Graph], scaler: Scaler, kind: str) -> tuple:
    glob = torch.tensor(
        np.stack([(g.globals - scaler.glob_mean) / scaler.glob_std for g in graphs]), dtype=torch.float32
    )
    if kind == "gnn":
        data = [
            Data(
                x=torch.tensor((g.nodes - scaler.node_mean) / scaler.node_std, dtype=torch.float32),
                edge_index=torch.from_numpy(g.edges),
            )
            for g in graphs
        ]
        b = Batch.from_data_list(data)
        return b.x, b.edge_index, b.batch, glob
    n = max(len(g.nodes) for g in graphs)
    tokens = torch.zeros(len(graphs), n, graphs[0].nodes.shape[1])
    mask = torch.ones(len(graphs), n, dtype=torch.bool)
    for i, g in enumerate(graphs):
        tokens[i, : len(g.nodes)] = torch.from_numpy(
            ((g.nodes - scaler.node_mean) / scaler.node_std).astype(np.float32)
        )
        mask[i, : len(g.nodes)] = False
    return tokens, mask, glob


def train(
    kind: str,
    graphs: list[Graph],
    y: np.ndarray,
    epochs: int = 200,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> Estimator:
    """Fit one surrogate on graphs and targets y [N, len(TARGETS)] (raw units)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    scaler = Scaler.fit(graphs, y)
    model = KINDS[kind]()
    target = torch.tensor((np.log1p(y) - scaler.y_mean) / scaler.y_std, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(graphs) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(graphs))
        total = 0.0
        model.train()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            pred = model(*_batch([graphs[i] for i in idx], scaler, kind))
            loss = torch.nn.functional.smooth_l1_loss(pred, target[idx], beta=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log and (epoch + 1) % max(1, epochs // 10) == 0:
            log(
                f"{kind} epoch {epoch + 1:>4}/{epochs}  loss {total / len(graphs):.4f}  "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    model.eval()
    return Estimator(kind, model, scaler)


class Estimator:
    def __init__(self, kind: str, model: torch.nn.Module, scaler: Scaler) -> None:
        self.kind, self.model, self.scaler = kind, model, scaler

    @torch.no_grad()
    def predict(self, graphs: list[Graph]) -> np.ndarray:
        """Raw-unit predictions [N, len(TARGETS)], capped to the range seen in training."""
        out = self.model(*_batch(graphs, self.scaler, self.kind)).numpy().astype(np.float64)
        ly = np.clip(out * self.scaler.y_std + self.scaler.y_mean, self.scaler.y_min, self.scaler.y_max)
        return np.expm1(ly)

    def extrapolation(self, graph: Graph) -> list[str]:
        """Features outside the range seen in training: the answer is then an extrapolation."""
        s = self.scaler
        out = [
            f"global {name}"
            for name, v, a, b in zip(GLOBAL_FEATURES, graph.globals, s.glob_min, s.glob_max, strict=True)
            if not a - 1e-6 <= v <= b + 1e-6
        ]
        names = [*LAYER_TYPES, *NUMERIC]
        for i, row in enumerate(graph.nodes):
            out += [
                f"layer {i} {names[j]}" for j in np.flatnonzero((row < s.node_min - 1e-6) | (row > s.node_max + 1e-6))
            ]
        return out

    def state(self) -> dict:
        return {
            "kind": self.kind,
            "model": self.model.state_dict(),
            "scaler": self.scaler.state(),
            "targets": list(TARGETS),
        }

    @classmethod
    def from_state(cls, state: dict) -> Estimator:
        model = KINDS[state["kind"]]()
        model.load_state_dict(state["model"])
        model.eval()
        return cls(state["kind"], model, Scaler.from_state(state["scaler"]))


def save(estimators: dict[str, Estimator], path: str | Path, meta: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": meta, "estimators": {k: e.state() for k, e in estimators.items()}}, str(path))


def load(path: str | Path = CHECKPOINT) -> tuple[dict[str, Estimator], dict]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no surrogate checkpoint (train one with `qfx surrogate-train`)")
    state = torch.load(str(path), weights_only=True)
    return {k: Estimator.from_state(s) for k, s in state["estimators"].items()}, state["meta"]
