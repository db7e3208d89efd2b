"""RTL: the traced da4ml program equals the emulation, and the written Verilog does too under cocotb on
Verilator and Icarus (model families with the C simulation are in test_convert.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from da4ml.trace import FixedVariableArrayInput, comb_trace

from qfx.cli import main
from qfx.fixed import FixedFormat
from qfx.hls.convert import convert
from qfx.hls.csim import edge_vectors, emulate
from qfx.hls.graph import QonnxGraph
from qfx.hls.project import Project
from qfx.hls.rtl.arrays import HWCONF, kif, quantize
from qfx.hls.rtl.trace import trace
from qfx.hls.rtl.write import write_rtl
from qfx.testbench.ports import top_ports
from qfx.testbench.sim import simulate

from .conversion_models import hand_built_qonnx, modes_qonnx, quant, save_model

Q_DOMAIN = "qonnx.custom_op.general"


def rtl_project(proto_path: Path, out: Path, style: str = "da") -> Path:
    """A project with RTL only, for graphs hls4ml cannot convert (wrapping quantizers)."""
    out.mkdir()
    graph = QonnxGraph.prepare(onnx.load(str(proto_path)))
    graph.save(out / "model.onnx")
    traced = trace(graph, style)
    manifest = {
        "input": {"name": "x", "shape": traced.input_shape, "format": str(traced.input_format)},
        "output": {"shape": traced.output_shape},
        "part": "xczu3eg-sbva484-1-e",
        "clock_ns": 5.0,
    }
    (out / "qfx.json").write_text(json.dumps(manifest))
    project = Project(out)
    project.update("rtl", write_rtl(project, style))
    return out


@pytest.mark.parametrize("rounding", ["TRN", "RND", "RND_CONV"])
@pytest.mark.parametrize("overflow", ["WRAP", "SAT", "SAT_SYM"])
@pytest.mark.parametrize("signed", [True, False])
def test_traced_quantizer_equals_ap_fixed(rounding: str, overflow: str, signed: bool) -> None:
    source = FixedFormat(10, 3, True)  # every value of a wider signed type
    codes = np.arange(source.min_int, source.max_int + 1)
    x = codes * source.lsb
    inp = FixedVariableArrayInput((len(x),), hwconf=HWCONF)
    k, i, f = kif(source)
    for width, int_bits in [(5, 2), (3, -1), (6, 7), (1, 1)]:
        if overflow == "SAT_SYM" and width == 1 and signed:
            continue  # ap_fixed<1,1,SAT_SYM> has no symmetric range to saturate to
        fmt = FixedFormat(width, int_bits, signed, rounding, overflow)
        y = quantize(inp.quantize(k, i, f), fmt, "test")
        got = comb_trace(inp, y).predict(x[None])[0]
        assert np.array_equal(got, fmt.quantize(torch.from_numpy(x)).numpy()), fmt


def test_unsupported_rounding_is_refused_naming_the_node(tmp_path: Path) -> None:
    modes_qonnx(str(tmp_path / "m.onnx"), rounding="RND_ZERO")
    with pytest.raises(ValueError, match=r"node hq_node: .* has no RTL"):
        trace(QonnxGraph.prepare(onnx.load(str(tmp_path / "m.onnx"))))


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_wrap_saturation_and_negative_int_bits_are_bit_exact_in_rtl(simulator: str, tmp_path: Path) -> None:
    modes_qonnx(str(tmp_path / "m.onnx"))
    prj = rtl_project(tmp_path / "m.onnx", tmp_path / "prj")
    fmt = FixedFormat.parse(Project(prj).manifest["input"]["format"])
    x = edge_vectors(fmt, [8], 2000, seed=3)
    got = simulate(prj, x, simulator)
    expected = emulate(prj, x)
    assert len(np.unique(expected, axis=0)) > 100  # the vectors exercise the formats, not one saturated value
    assert np.array_equal(got.outputs, expected)
    assert got.latency == Project(prj).manifest["rtl"]["latency"]


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_multiplier_style_rtl_is_bit_exact(simulator: str, tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    prj = rtl_project(tmp_path / "h.onnx", tmp_path / "prj", style="mult")
    rtl = Project(prj).manifest["rtl"]
    assert rtl["style"] == "mult" and rtl["weight_ports"] > 0
    assert any(f.endswith("static/multiplier.v") for f in rtl["files"])
    x = edge_vectors(FixedFormat.parse(Project(prj).manifest["input"]["format"]), [16], 2000)
    assert np.array_equal(simulate(prj, x, simulator).outputs, emulate(prj, x))


@pytest.mark.slow
def test_icarus_matches_the_emulation_on_a_converted_project(tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    convert(tmp_path / "h.onnx", tmp_path / "prj")
    x = edge_vectors(FixedFormat.parse(Project(tmp_path / "prj").manifest["input"]["format"]), [16], 2000, seed=1)
    result = simulate(tmp_path / "prj", x, "icarus")
    assert np.array_equal(result.outputs, emulate(tmp_path / "prj", x))
    assert "multiplier.v" not in " ".join(Project(tmp_path / "prj").manifest["rtl"]["files"])


@pytest.mark.slow
def test_top_ports_are_what_the_manifest_says(tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    rtl = convert(tmp_path / "h.onnx", tmp_path / "prj")["rtl"]
    ports = top_ports([tmp_path / "prj" / f for f in rtl["files"]], rtl["top"])
    assert ports == {
        "clk": ("in", 1),
        "rst": ("in", 1),
        "in_valid": ("in", 1),
        "in_data": ("in", 16 * 8),
        "out_valid": ("out", 1),
        "out_data": ("out", 5 * rtl["output"]["width"]),
    }
    assert rtl["ii"] == 1 and rtl["latency"] == rtl["stages"] + 1


def test_a_layer_without_rtl_is_refused_naming_the_node(tmp_path: Path) -> None:
    nodes: list = []
    inits: list = []
    x = quant("xq", "x", 2.0**-4, 8, 1, nodes, inits)
    nodes.append(onnx.helper.make_node("MatMul", [x, x], ["y"], name="square"))
    save_model(str(tmp_path / "m.onnx"), nodes, inits, 1, 1)
    with pytest.raises(ValueError, match="node square: a product of two variables"):
        trace(QonnxGraph.prepare(onnx.load(str(tmp_path / "m.onnx"))))


@pytest.fixture(scope="module")
def project_without_rtl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("nortl")
    hand_built_qonnx(str(tmp / "h.onnx"))
    convert(tmp / "h.onnx", tmp / "prj", rtl="none")
    np.save(tmp / "x.npy", np.zeros((3, 16)))
    return tmp


@pytest.mark.slow
def test_sim_of_a_project_without_rtl_exits_2(project_without_rtl: Path, capsys: pytest.CaptureFixture) -> None:
    tmp = project_without_rtl
    assert main(["sim", str(tmp / "prj"), "--input", str(tmp / "x.npy"), "--output", str(tmp / "y.npy")]) == 2
    assert "has no RTL; run `qfx rtl" in capsys.readouterr().err
    assert not (tmp / "y.npy").exists()


@pytest.mark.slow
def test_sim_with_a_missing_simulator_says_how_to_install_it(
    project_without_rtl: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = project_without_rtl
    monkeypatch.setenv("PATH", str(tmp / "empty"))
    args = ["sim", str(tmp / "prj"), "--input", str(tmp / "x.npy"), "--output", str(tmp / "y.npy")]
    assert main([*args, "--simulator", "icarus"]) == 2
    assert "apt install iverilog" in capsys.readouterr().err
    assert main([*args, "--simulator", "modelsim"]) == 2
    assert "invalid choice: 'modelsim' (choose from 'verilator', 'icarus')" in capsys.readouterr().err


@pytest.mark.slow
def test_qfx_rtl_adds_rtl_to_a_project(tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    convert(tmp_path / "h.onnx", tmp_path / "prj", rtl="none")
    assert main(["rtl", str(tmp_path / "prj"), "--style", "mult"]) == 0
    rtl = Project(tmp_path / "prj").manifest["rtl"]
    assert rtl["style"] == "mult" and all((tmp_path / "prj" / f).is_file() for f in rtl["files"])


@pytest.mark.slow
def test_sim_with_inputs_of_the_wrong_shape_exits_2(project_without_rtl: Path, capsys: pytest.CaptureFixture) -> None:
    tmp = project_without_rtl
    np.save(tmp / "bad.npy", np.zeros((3, 15)))
    args = ["sim", str(tmp / "prj"), "--input", str(tmp / "bad.npy"), "--output", str(tmp / "y.npy")]
    assert main(args) == 2
    assert "the model takes [N, 16]" in capsys.readouterr().err


@pytest.mark.parametrize("style", ["da", "mult"])
def test_bipolar_activations_trace_to_their_sign(style: str, tmp_path: Path) -> None:
    from qfx.testbench.verify import run_program

    rng = np.random.default_rng(2)
    nodes: list = []
    inits = [
        onnx.numpy_helper.from_array((rng.integers(-8, 8, (8, 6)) / 8).astype(np.float32), "w1"),
        onnx.numpy_helper.from_array((rng.integers(-8, 8, (6, 3)) / 4).astype(np.float32), "w2"),
        onnx.numpy_helper.from_array(np.array(1.0, np.float32), "one"),
    ]
    x = quant("xq", "x", 2.0**-4, 7, 1, nodes, inits)
    nodes.append(onnx.helper.make_node("MatMul", [x, "w1"], ["h"], name="dense1"))
    nodes.append(onnx.helper.make_node("BipolarQuant", ["h", "one"], ["s"], name="sign", domain=Q_DOMAIN))
    nodes.append(onnx.helper.make_node("MatMul", ["s", "w2"], ["y"], name="dense2"))
    save_model(str(tmp_path / "m.onnx"), nodes, inits, 8, 3)
    prj = rtl_project(tmp_path / "m.onnx", tmp_path / "prj", style)
    x = edge_vectors(Project(prj).input_format, [8], 2000)
    want = emulate(prj, x)
    assert len(np.unique(want)) > 3 and np.array_equal(run_program(Project(prj), x), want)
