"""qonnx's own executor as the reference for what a QONNX file means."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes


def qonnx_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """The file's output for each sample of x, run by qonnx's executor one sample at a time (float32 in)."""
    model = ModelWrapper(str(path)).transform(InferShapes())
    name, out = model.graph.input[0].name, model.graph.output[0].name
    return np.concatenate([execute_onnx(model, {name: x[i : i + 1].astype(np.float32)})[out] for i in range(len(x))])
