"""The two baselines the graph surrogates must beat: an analytic bit-operations model (a power law per
target, fitted in log space) and gradient-boosted trees on flat features."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from qfx.surrogate.graph import GLOBAL_FEATURES, LAYER_TYPES, Graph

_TOTAL = {name: i for i, name in enumerate(GLOBAL_FEATURES)}


def flat_features(g: Graph) -> np.ndarray:
    """Widths, bits, reuse and MACs summed or maxed over layers, plus the globals: what a flat model sees."""
    numeric = g.nodes[:, len(LAYER_TYPES) :]
    return np.concatenate([numeric.sum(0), numeric.max(0), g.nodes[:, : len(LAYER_TYPES)].sum(0), g.globals])


class Analytic:
    """log(target) = a + b * log(bit operations) + c * log(reuse): the textbook cost model."""

    def fit(self, graphs: list[Graph], y: np.ndarray) -> Analytic:
        x = self._design(graphs)
        known = np.isfinite(y)
        self.coef = np.stack(
            [np.linalg.lstsq(x[known[:, t]], np.log1p(y[known[:, t], t]), rcond=None)[0] for t in range(y.shape[1])],
            axis=1,
        )
        return self

    def predict(self, graphs: list[Graph]) -> np.ndarray:
        return np.expm1(self._design(graphs) @ self.coef)

    @staticmethod
    def _design(graphs: list[Graph]) -> np.ndarray:
        g = np.stack([x.globals for x in graphs])
        return np.stack([np.ones(len(g)), g[:, _TOTAL["bit_ops"]], g[:, _TOTAL["reuse"]]], axis=1)


class Trees:
    """One histogram gradient-boosted regressor per target on log targets."""

    def fit(self, graphs: list[Graph], y: np.ndarray, seed: int = 0) -> Trees:
        x = np.stack([flat_features(g) for g in graphs])
        known = np.isfinite(y)
        self.models = [
            HistGradientBoostingRegressor(max_iter=500, learning_rate=0.1, random_state=seed).fit(
                x[known[:, t]], np.log1p(y[known[:, t], t])
            )
            for t in range(y.shape[1])
        ]
        return self

    def predict(self, graphs: list[Graph]) -> np.ndarray:
        x = np.stack([flat_features(g) for g in graphs])
        return np.stack([np.expm1(m.predict(x)) for m in self.models], axis=1)
