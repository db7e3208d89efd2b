"""qfx export + convert: the hls4ml C simulation equals the emulation on >= 2,000 vectors, 0 mismatches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from qfx.export import to_onnx
from qfx.hls.convert import convert
from qfx.hls.csim import emulate, run_csim
from qfx.hls.project import Project
from qfx.testbench.sim import simulate
from qfx.testbench.verify import verify

from .conversion_models import hand_built_qonnx, trained

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["mlp", "cnn", "residual", "khot"])
def test_qfx_model_is_bit_exact_in_c_simulation_and_rtl(name: str, tmp_path: Path) -> None:
    model, x = trained(name)
    to_onnx(model, x[:1], tmp_path / "m.onnx")
    convert(tmp_path / "m.onnx", tmp_path / "prj")
    summary = verify(tmp_path / "prj", vectors=2000, simulator="verilator")
    assert set(summary["pairs"]) == {"emulation vs csim", "emulation vs rtl", "csim vs rtl"}
    assert summary["mismatches"] == 0, summary
    # Icarus runs these designs at tens of vectors per second: 100 edge-case vectors each
    few = x.numpy()[:50]
    icarus = simulate(tmp_path / "prj", np.concatenate([few, few * 3 - 1]), "icarus")
    assert np.array_equal(icarus.outputs, emulate(tmp_path / "prj", np.concatenate([few, few * 3 - 1])))
    with torch.no_grad():
        expected = model(x).numpy().reshape(len(x), -1)
    assert np.array_equal(run_csim(tmp_path / "prj", x.numpy()), expected)


def test_hand_built_qonnx_with_a_float_bias_converts_bit_exactly(tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    manifest = convert(tmp_path / "h.onnx", tmp_path / "prj", board="pynqz2")
    assert manifest["part"] == "xc7z020clg400-1"
    assert verify(tmp_path / "prj", vectors=3000, simulator=None)["mismatches"] == 0


def test_manifest_records_board_formats_and_shapes_under_the_files_own_names(tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    convert(tmp_path / "h.onnx", tmp_path / "prj", clock=4.0)
    m = Project(tmp_path / "prj").manifest
    assert (m["board"], m["part"], m["clock_ns"]) == ("ultra96v2", "xczu3eg-sbva484-1-e", 4.0)
    assert m["input"] == {"name": "x", "shape": [1, 16], "format": "ap_fixed<8,4,AP_RND_CONV,AP_SAT>"}
    assert all("63,31" not in t for layer in m["layers"] for t in layer["types"].values())
    assert json.loads((tmp_path / "prj" / "qfx.json").read_text()) == m


def test_exported_graph_passes_the_onnx_checker_and_runs_in_qonnx(tmp_path: Path) -> None:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    model, x = trained("mlp")
    proto = to_onnx(model, x[:1], tmp_path / "m.onnx")
    onnx.checker.check_model(proto)
    assert {n.op_type for n in proto.graph.node} == {"Quant", "MatMul", "Add", "Relu"}
    wrapper = cleanup_model(ModelWrapper(str(tmp_path / "m.onnx")))
    for i in range(20):
        out = execute_onnx(wrapper, {wrapper.graph.input[0].name: x[i : i + 1].numpy().astype(np.float32)})
        assert np.array_equal(next(iter(out.values())).astype(np.float64), model(x[i : i + 1]).detach().numpy())


def test_emulation_of_the_export_equals_the_torch_model(tmp_path: Path) -> None:
    model, x = trained("residual")
    to_onnx(model, x[:1], tmp_path / "m.onnx")
    convert(tmp_path / "m.onnx", tmp_path / "prj")
    with torch.no_grad():
        assert np.array_equal(emulate(tmp_path / "prj", x.numpy()), model(x).numpy())


@pytest.mark.parametrize(
    "options",
    [{"io": "stream"}, {"backend": "vivado"}, {"strategy": "resource", "reuse": 4}],
    ids=["io_stream", "vivado", "resource_reuse4"],
)
def test_backend_io_and_strategy_options_stay_bit_exact(options: dict, tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    manifest = convert(tmp_path / "h.onnx", tmp_path / "prj", **options)
    assert all(manifest[k] == v for k, v in options.items())
    assert verify(tmp_path / "prj", vectors=2000, simulator=None)["mismatches"] == 0
