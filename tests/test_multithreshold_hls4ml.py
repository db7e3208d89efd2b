"""QONNX's MultiThreshold converts through hls4ml 1.3.0 (Vitis backend, qfx's extension layer) to a C
simulation that matches qonnx's `multithreshold` bit for bit: io_parallel and io_stream, per-channel and
global thresholds, signed and unsigned inputs, output scales and biases, rank-4 channels-last inputs, and
types from the per-layer config or derived ('auto'); layouts and types it cannot compute exactly are refused,
naming the node or layer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hls4ml
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.multithreshold import multithreshold
from qonnx.util.cleanup import cleanup_model

from qfx.hls.ops import multithreshold_hls4ml

from .conversion_models import quant

pytestmark = pytest.mark.slow
MT = "MultiThreshold_0"  # the node's name after qonnx's cleanup
INPUT_TYPE = "ap_fixed<18,8>"  # holds every input of these models exactly


@dataclass
class Case:
    """A model x -> Quant(scale 2^-frac, bits, signed) [-> MatMul with Quant'ed weights] -> MultiThreshold."""

    io: str
    shape: list[int]  # the input's, batch first, channels last
    thresholds: np.ndarray  # (C, T) or (1, T)
    bits: int = 8
    frac: int = 4
    signed: bool = True
    out_scale: float = 1.0
    out_bias: float = 0.0
    precision: dict[str, str] = field(default_factory=dict)  # the MultiThreshold layer's; empty: 'auto'
    weights: np.ndarray | None = None  # a MatMul's [C_in, C], on the grid of 4-bit weights with scale 2^-2
    layout: str | None = None

    def grid(self) -> np.ndarray:
        """Every value the Quant gives, ascending."""
        low = -(2 ** (self.bits - 1)) if self.signed else 0
        return np.arange(low, low + 2**self.bits) / 2.0**self.frac

    def reference(self, x: np.ndarray) -> np.ndarray:
        v = x if self.weights is None else x @ self.weights
        return multithreshold(v, self.thresholds, self.out_scale, self.out_bias, channels_last=True)


def model_of(case: Case) -> ModelWrapper:
    """The case's model, cleaned up by qonnx (shapes inferred, nodes named)."""
    nodes: list = []
    inits = [numpy_helper.from_array(case.thresholds.astype(np.float32), "thr")]
    h = quant("xq", "x", 2.0**-case.frac, case.bits, int(case.signed), nodes, inits)
    out_shape = list(case.shape)
    if case.weights is not None:
        inits.append(numpy_helper.from_array(case.weights.astype(np.float32), "w"))
        nodes.append(helper.make_node("MatMul", [h, quant("wq", "w", 0.25, 4, 1, nodes, inits)], ["h"]))
        h, out_shape[-1] = "h", case.weights.shape[1]
    layout = {"data_layout": case.layout} if case.layout is not None else {}
    nodes.append(
        helper.make_node(
            "MultiThreshold",
            [h, "thr"],
            ["y"],
            domain="qonnx.custom_op.general",
            out_scale=case.out_scale,
            out_bias=case.out_bias,
            out_dtype="INT8",
            **layout,
        )
    )
    graph = helper.make_graph(
        nodes,
        "multithreshold",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, case.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 1)]
    return cleanup_model(ModelWrapper(helper.make_model(graph, opset_imports=opsets)))


def convert(case: Case, out: Path) -> Any:
    """The hls4ml model (Vitis backend) with the case's MultiThreshold types in its per-layer config."""
    multithreshold_hls4ml.register()
    model = model_of(case)
    config = hls4ml.utils.config_from_onnx_model(model, granularity="name", backend="Vitis")
    config["LayerName"][model.graph.input[0].name]["Precision"]["result"] = INPUT_TYPE
    config["LayerName"][MT]["Precision"].update(case.precision)
    return hls4ml.converters.convert_from_onnx_model(
        model, output_dir=str(out), io_type=case.io, backend="Vitis", hls_config=config
    )


def inputs(case: Case, n: int = 3000) -> np.ndarray:
    """Every value of the input type in every channel (so its minimum, maximum and every threshold on its
    grid), then random samples; shaped like the model's input, batch of n + the grid's length."""
    rng = np.random.default_rng(0)
    grid = case.grid()
    per_sample = int(np.prod(case.shape[1:]))
    swept = np.repeat(grid[:, None], per_sample, axis=1)
    samples = rng.choice(grid, (n, per_sample))
    return np.concatenate([swept, samples]).reshape(-1, *case.shape[1:])


def mismatches(case: Case, hm: Any) -> int:
    x = inputs(case)
    want = case.reference(x)
    got = np.asarray(hm.predict(x.astype(np.float32))).reshape(want.shape)
    return int(np.sum(got != want))


def compiled(case: Case, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Any]:
    hm = convert(case, tmp_path_factory.mktemp("prj"))
    hm.compile()
    return case, hm


def _thresholds(rng: np.random.Generator, rows: int, t: int, lo: float, hi: float, frac: int) -> np.ndarray:
    """Unsorted thresholds on a grid of 2^-frac, some beyond the input's range."""
    return np.round(rng.uniform(lo, hi, (rows, t)) * 2.0**frac) / 2.0**frac


RNG = np.random.default_rng(1)
# thresholds with 6 fractional bits on an input with 4: between, on and beyond the input's values
SIGNED = Case(
    io="io_parallel",
    shape=[1, 5],
    thresholds=_thresholds(RNG, 5, 15, -9.0, 9.0, 6),
    out_bias=-8.0,
    precision={"threshold": "ap_fixed<12,6>", "result": "ap_int<4>"},
)
UNSIGNED_GLOBAL = Case(
    io="io_stream",
    shape=[1, 6],
    thresholds=_thresholds(RNG, 1, 6, -1.0, 33.0, 3),
    frac=3,
    signed=False,
    out_scale=0.5,
    precision={"threshold": "ap_fixed<10,7>", "result": "ap_ufixed<3,2>"},
)
# a rank-4 channels-last input; out_scale 2 (levels shifted left)
RANK4 = {
    t: Case(
        io=io,
        shape=[1, 2, 3, 4],
        thresholds=_thresholds(RNG, 4, t, -9.0, 9.0, 4),
        out_scale=2.0,
        out_bias=-2.0,
        precision={"threshold": "ap_fixed<10,6>", "result": "ap_fixed<4,4>"},
        layout="NHWC",
    )
    for io, t in (("io_parallel", 1), ("io_stream", 3))
}
# after a MatMul, thresholds off every grid and on the MatMul's (2^-5); types left 'auto'; out_scale 2^-2
# (levels shifted right)
AFTER_MATMUL = Case(
    io="io_parallel",
    shape=[1, 4],
    thresholds=np.concatenate(
        [RNG.normal(0.0, 2.0, (3, 4)).astype(np.float32), _thresholds(RNG, 3, 3, -4.0, 4.0, 5)], axis=1
    ).astype(np.float64),
    bits=6,
    frac=3,
    out_scale=0.25,
    out_bias=-1.0,
    weights=RNG.integers(-8, 8, (4, 3)) / 4.0,
)


@pytest.fixture(scope="module")
def signed_per_channel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Any]:
    return compiled(SIGNED, tmp_path_factory)


@pytest.fixture(scope="module")
def unsigned_global(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Any]:
    return compiled(UNSIGNED_GLOBAL, tmp_path_factory)


@pytest.fixture(scope="module", params=sorted(RANK4), ids=lambda t: RANK4[t].io)
def rank4(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Any]:
    return compiled(RANK4[request.param], tmp_path_factory)


@pytest.fixture(scope="module")
def after_matmul(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Any]:
    return compiled(AFTER_MATMUL, tmp_path_factory)


def layer(hm: Any) -> Any:
    return next(x for x in hm.get_layers() if x.name == MT)


def test_per_channel_thresholds_on_a_signed_input_with_a_negative_bias_match_qonnx_io_parallel(
    signed_per_channel: tuple[Case, Any],
) -> None:
    case, hm = signed_per_channel
    assert mismatches(case, hm) == 0


def test_configured_types_are_the_layers_types(signed_per_channel: tuple[Case, Any]) -> None:
    _, hm = signed_per_channel
    types = {k: str(v.precision) for k, v in layer(hm).types.items()}
    assert types == {"result_t": "int<4>", "threshold_t": "fixed<12,6,TRN,WRAP,0>"}


def test_global_thresholds_on_an_unsigned_input_with_a_fractional_scale_match_qonnx_io_stream(
    unsigned_global: tuple[Case, Any],
) -> None:
    case, hm = unsigned_global
    assert mismatches(case, hm) == 0


def test_rank4_channels_last_input_matches_qonnx(rank4: tuple[Case, Any]) -> None:
    case, hm = rank4
    assert mismatches(case, hm) == 0


def test_auto_types_after_a_matmul_are_derived_exactly_and_match_qonnx(after_matmul: tuple[Case, Any]) -> None:
    case, hm = after_matmul
    assert mismatches(case, hm) == 0
    mt = layer(hm)
    p = mt.get_input_variable().type.precision  # the MatMul's exact sum
    thr = mt.get_weights("threshold").type.precision
    assert (thr.width, thr.integer, thr.signed) == (p.width + 1, p.integer + 1, p.signed)
    result = mt.get_output_variable().type.precision  # levels -4..3 (of 2^-2): -1 .. 0.75
    assert (result.width, result.integer, result.signed) == (3, 1, True)


@pytest.mark.parametrize(
    ("shape", "layout"),
    [([1, 2, 3, 4], "NCHW"), ([1, 2, 3, 4], None), ([1, 3, 4], "NCW"), ([1, 2, 3, 4], "NHC")],
    ids=["NCHW", "rank4-no-layout", "NCW", "wrong-rank"],
)
def test_a_layout_whose_channel_is_not_last_is_refused_naming_the_node(
    tmp_path: Path, shape: list[int], layout: str | None
) -> None:
    case = Case(io="io_parallel", shape=shape, thresholds=np.zeros((1, 2)), layout=layout)
    with pytest.raises(ValueError, match=f"node {MT}: MultiThreshold with data_layout"):
        convert(case, tmp_path)


@pytest.mark.parametrize(("out_scale", "out_bias"), [(3.0, 0.0), (-1.0, 0.0), (1.0, float("inf"))])
def test_a_scale_not_a_positive_power_of_two_or_an_infinite_bias_is_refused_naming_the_node(
    tmp_path: Path, out_scale: float, out_bias: float
) -> None:
    case = Case(io="io_parallel", shape=[1, 3], thresholds=np.zeros((3, 2)), out_scale=out_scale, out_bias=out_bias)
    with pytest.raises(ValueError, match=f"node {MT}: MultiThreshold out_scale"):
        convert(case, tmp_path)


def test_thresholds_of_the_wrong_shape_are_refused_naming_the_node(tmp_path: Path) -> None:
    case = Case(io="io_parallel", shape=[1, 3], thresholds=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=rf"node {MT}: MultiThreshold thresholds of shape \[2, 2\]"):
        convert(case, tmp_path)


TWO_STEPS = replace(SIGNED, thresholds=SIGNED.thresholds[:, :2], out_bias=0.0)  # levels 0, 1, 2


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (replace(SIGNED, precision={"result": "ap_int<3>"}), "result type .* does not hold every"),  # -8 .. 7
        (replace(SIGNED, precision={"result": "ap_uint<8>"}), "result type .* does not hold every"),
        (replace(TWO_STEPS, precision={"result": "ap_ufixed<2,3>"}), "result type .* does not hold every"),  # 0, 2, 4
        (replace(SIGNED, precision={"threshold": "ap_fixed<12,4>"}), "threshold type .* does not hold"),  # beyond 8
        (replace(SIGNED, precision={"threshold": "ap_fixed<12,7>"}), "threshold type .* does not hold"),  # 5 fraction
    ],
    ids=["result-range", "result-sign", "result-step", "threshold-range", "threshold-step"],
)
def test_a_configured_type_that_is_not_exact_is_refused_naming_the_layer(
    tmp_path: Path, case: Case, message: str
) -> None:
    with pytest.raises(ValueError, match=f"layer {MT}: {message}"):
        convert(case, tmp_path)


def test_register_can_be_called_again() -> None:
    multithreshold_hls4ml.register()
    multithreshold_hls4ml.register()
