"""Files as Brevitas writes them (`export_qonnx`, see tests/data/brevitas/write.py): float and per-channel
scales, BatchNorm, bipolar inputs, Trunc. Each converts with `--rtl da` to a proven project whose C simulation
and RTL program agree with qonnx's own executor on the file, input for input.

Files qfx refuses fail here with the refusal line (tests/test_files_from_others.py checks that refusal's form).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

from qfx.cli import main
from qfx.hls.csim import run_csim
from qfx.hls.project import Project
from qfx.testbench.verify import run_program

from .qonnx_reference import qonnx_outputs

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent / "data" / "brevitas"
FILES = sorted(DATA.glob("*.onnx"))
BINARY_INPUTS = {"mlp_bipolar_inputs"}  # {0, 1} features, mapped to {-1, 1} inside the model
VECTORS = 1000
ROUNDINGS = 8  # float32 roundings in the file's last float layer, at most (see the test below)


@dataclass
class Converted:
    source: Path
    project: Path
    code: int
    errors: list[str]


@pytest.fixture(scope="module", params=FILES, ids=lambda p: p.stem)
def converted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    """Each file converted once for the module (the RTL is proven by da4ml's program in the test below)."""
    source: Path = request.param
    out = tmp_path_factory.mktemp(source.stem) / "p"
    args = ["convert", str(source), "-o", str(out), "--rtl", "da", "--simulator", "none", "--check", str(VECTORS)]
    with contextlib.redirect_stderr(io.StringIO()) as err:  # capsys is per test, this fixture per module
        code = main(args)
    errors = [line for line in err.getvalue().splitlines() if line.startswith("qfx convert")]
    return Converted(source, out, code, errors)


def inputs(source: Path, n: int, seed: int = 0) -> np.ndarray:
    """n inputs of the kind the file takes: {0, 1} features, or reals reaching past its input quantizer's
    range; float32 values either way, so the design and qonnx's executor see the same numbers."""
    dims = onnx.load(source).graph.input[0].type.tensor_type.shape.dim
    shape = (n, *(d.dim_value for d in dims[1:]))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, shape) if source.stem in BINARY_INPUTS else rng.normal(0, 2, shape)
    return x.astype(np.float32).astype(np.float64)


def _decisions(y: np.ndarray) -> np.ndarray:
    """The class of each vector (its sign, for one output)."""
    return y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0] > 0


def test_the_brevitas_files_are_there() -> None:
    assert len(FILES) >= 5


def test_converts_to_a_proven_project(converted: Converted) -> None:
    assert converted.code == 0, converted.errors
    assert Project(converted.project)["check"]["mismatches"] == 0


def test_csim_and_rtl_program_match_qonnx_executor(converted: Converted) -> None:
    """Every quantized tensor is exact, so a wrong level would move an output by a whole step. Where the
    file's last layer has float scales, the design outputs its exact integer sum and the host scales it;
    qonnx's executor instead sums float32 products in float32, so the outputs may differ by that rounding
    (a few float32 epsilons of the outputs' magnitude) and no more; decisions must not differ at all."""
    assert converted.code == 0, converted.errors
    project = Project(converted.project)
    x = inputs(converted.source, VECTORS)
    want = qonnx_outputs(converted.source, x).reshape(VECTORS, -1)
    head = project.head(x)
    tolerance = ROUNDINGS * np.finfo(np.float32).eps * np.abs(want).max()
    for name, got in (("csim", run_csim(project, head)), ("rtl program", run_program(project, head))):
        got = project.tail(got).reshape(want.shape).astype(want.dtype)
        bad = np.any(np.abs(got - want) > tolerance, axis=1)
        diff = float(np.abs(got - want).max())
        assert not bad.any(), f"{name}: {bad.sum()} of {VECTORS} vectors differ, by up to {diff:.3g}"
        assert np.array_equal(_decisions(got), _decisions(want)), f"{name}: a decision differs"
