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

from qfx.surrogate.dataset import TARGETS
from qfx.surrogate.graph import GLOBAL_FEATURES, LAYER_TYPES, NUMERIC, Graph
from qfx.surrogate.models import GNN, Transformer

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
        unlabelled = [name for name, n in zip(TARGETS, np.isfinite(y).sum(0), strict=True) if n == 0]
        if unlabelled:
            raise ValueError(f"no training row has a value for {', '.join(unlabelled)}")
        ly = np.log1p(y)  # NaN where a report lacks a target (masked out of the loss)
        return cls(
            nodes.mean(0),
            _spread(nodes),
            glob.mean(0),
            _spread(glob),
            np.nanmean(ly, 0),
            np.nanstd(ly, 0) + 1e-6,
            np.nanmin(ly, 0),
            np.nanmax(ly, 0),
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


def _spread(x: np.ndarray) -> np.ndarray:
    """Per-feature standard deviation, 1 for a feature constant in training: a model that never saw it vary
    (the strategy flag of a Resource-only sweep) then sees a new value as one unit away, not a million."""
    std = x.std(0)
    return np.where(std > 1e-6, std, 1.0)


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
    members: int = 3,
    log: Callable[[str], None] | None = None,
) -> Estimator:
    """Fit one surrogate on graphs and targets y [N, len(TARGETS)] (raw units, NaN where unreported): an
    ensemble of `members` networks from different seeds, whose mean is steadier on the rare large designs."""
    scaler = Scaler.fit(graphs, y)
    target = torch.tensor((np.log1p(y) - scaler.y_mean) / scaler.y_std, dtype=torch.float32)
    models = [_fit(kind, graphs, scaler, target, epochs, seed, log) for seed in range(members)]
    return Estimator(kind, models, scaler)


def _fit(
    kind: str,
    graphs: list[Graph],
    scaler: Scaler,
    target: torch.Tensor,
    epochs: int,
    seed: int,
    log: Callable[[str], None] | None,
    batch_size: int = 128,
    lr: float = 2e-3,
) -> torch.nn.Module:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = KINDS[kind]()
    labelled = torch.isfinite(target)
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
            mask = labelled[idx]
            # nearly L1: small errors keep their pull, so near-exact targets (cycles) are fitted tightly
            loss = torch.nn.functional.smooth_l1_loss(pred[mask], target[idx][mask], beta=0.02)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log and (epoch + 1) % max(1, epochs // 10) == 0:
            log(
                f"{kind} seed {seed} epoch {epoch + 1:>4}/{epochs}  loss {total / len(graphs):.4f}  "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    model.eval()
    return model


class Estimator:
    def __init__(self, kind: str, models: list[torch.nn.Module], scaler: Scaler) -> None:
        self.kind, self.models, self.scaler = kind, models, scaler

    @torch.no_grad()
    def predict(self, graphs: list[Graph]) -> np.ndarray:
        """Raw-unit predictions [N, len(TARGETS)], the members' mean log, capped to the training range."""
        batch = _batch(graphs, self.scaler, self.kind)
        out = torch.stack([model(*batch) for model in self.models]).mean(0).numpy().astype(np.float64)
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
            "models": [model.state_dict() for model in self.models],
            "scaler": self.scaler.state(),
            "targets": list(TARGETS),
            "features": [*LAYER_TYPES, *NUMERIC, *GLOBAL_FEATURES],
        }

    @classmethod
    def from_state(cls, state: dict) -> Estimator:
        if state.get("features") != [*LAYER_TYPES, *NUMERIC, *GLOBAL_FEATURES]:
            raise ValueError("the checkpoint was trained on other graph features; retrain it (qfx surrogate-train)")
        models = []
        for weights in state["models"]:
            model = KINDS[state["kind"]]()
            model.load_state_dict(weights)
            models.append(model.eval())
        return cls(state["kind"], models, Scaler.from_state(state["scaler"]))


def save(estimators: dict[str, Estimator], path: str | Path, meta: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": meta, "estimators": {k: e.state() for k, e in estimators.items()}}, str(path))


def load(path: str | Path = CHECKPOINT) -> tuple[dict[str, Estimator], dict]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no surrogate checkpoint (train one with `qfx surrogate-train`)")
    state = torch.load(str(path), weights_only=True)
    return {k: Estimator.from_state(s) for k, s in state["estimators"].items()}, state["meta"]
