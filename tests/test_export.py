"""qfx.export.to_onnx is strict: it warns about (or, strict=True, refuses) Quant nodes that other QONNX
tools compute differently, refuses uncalibrated models and exports per-channel activations exactly."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import qfx.nn as qnn
from qfx.export import NonStandardQuantWarning, to_onnx
from qfx.quant import FixedQuantizer, Spec
from qfx.train import calibrate

ROWS = 256


def _inputs(n: int, features: int, spread: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """float32-representable rows (what the ONNX graph is fed), returned in float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    if spread is not None:
        x = x * spread
    return x.float().double()


def _mlp(result: Spec, weight: Spec | int = 6) -> qnn.Sequential:
    """Input quantizer with `result`'s modes, then a dense layer: calibrated on random data."""
    torch.manual_seed(0)
    model = qnn.Sequential(qnn.Quant(result), qnn.Linear(8, 3, weight=weight, result=None))
    calibrate(model, _inputs(64, 8))
    return model.double().eval()


def _qonnx_outputs(path: Path, x: torch.Tensor) -> np.ndarray:
    """Run the exported file row by row (its graph has batch 1) in qonnx's own executor."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    rows = [execute_onnx(model, {inp: x[i : i + 1].float().numpy()})[out] for i in range(len(x))]
    return np.concatenate(rows).astype(np.float64)


def _mismatched_rows(model: torch.nn.Module, x: torch.Tensor, path: Path) -> int:
    with torch.no_grad():
        expected = model(x).numpy()
    got = _qonnx_outputs(path, x)
    assert got.shape == expected.shape
    return int((got != expected).reshape(len(x), -1).any(axis=1).sum())


def _quant_nodes(proto: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in proto.graph.node if n.op_type == "Quant"]


def _attr(node: onnx.NodeProto, name: str) -> object:
    return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def _initializer(proto: onnx.ModelProto, name: str) -> np.ndarray:
    return next(numpy_helper.to_array(t) for t in proto.graph.initializer if t.name == name)


def test_non_standard_rounding_mode_warns_and_names_the_tensor(tmp_path: Path) -> None:
    model = _mlp(Spec(8, rounding="RND"))
    with pytest.warns(NonStandardQuantWarning) as record:
        proto = to_onnx(model, _inputs(1, 8), tmp_path / "m.onnx")
    assert len(record) == 1
    message = str(record[0].message)
    for part in ("tensor 0.result", "rounding RND", "ROUND", "qonnx's executor", "FINN", "hls4ml", "strict=True"):
        assert part in message
    node = _quant_nodes(proto)[0]
    assert node.name in message
    assert _attr(node, "qfx_rounding") == b"RND"  # the exact mode is still written for qfx


@pytest.mark.parametrize(
    "spec",
    [
        Spec(8, rounding="RND_MIN_INF"),
        Spec(8, overflow="WRAP"),
        Spec(8, overflow="WRAP_SM"),
        Spec(8, overflow="SAT_ZERO"),
        Spec(8, signed=False, overflow="WRAP"),
    ],
    ids=lambda s: f"{s.rounding}-{s.overflow}-{'signed' if s.signed else 'unsigned'}",
)
def test_every_mode_qonnx_lacks_warns(tmp_path: Path, spec: Spec) -> None:
    mode = spec.overflow if spec.overflow != "SAT" else spec.rounding
    with pytest.warns(NonStandardQuantWarning, match=rf"tensor 0\.result.*{mode}"):
        to_onnx(_mlp(spec), _inputs(1, 8), tmp_path / "m.onnx")


def test_strict_export_refuses_wrap_overflow(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=r"strict export refused: .*tensor 0\.result.*overflow WRAP.*saturate"):
        to_onnx(_mlp(Spec(8, overflow="WRAP")), _inputs(1, 8), path, strict=True)
    assert not path.exists()


def test_signed_one_bit_tensor_warns_that_qonnx_reads_it_as_bipolar(tmp_path: Path) -> None:
    with pytest.warns(NonStandardQuantWarning, match=r"tensor 0\.result.*bipolar"):
        to_onnx(_mlp(Spec(1)), _inputs(1, 8), tmp_path / "m.onnx")


def test_k_hot_activation_warns_that_other_tools_round_plainly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = qnn.Sequential(qnn.Quant(8), qnn.Linear(8, 3, result=Spec(6, k_hot=2)))
    calibrate(model, _inputs(64, 8))
    with pytest.warns(NonStandardQuantWarning, match=r"tensor 1\.result.*qfx_k_hot=2"):
        to_onnx(model.double().eval(), _inputs(1, 8), tmp_path / "m.onnx")


def test_parameters_with_non_standard_modes_export_silently_as_exact_identities(tmp_path: Path) -> None:
    """Stored weights already lie on their grid: no mode, nor K-hot, changes them in any tool."""
    model = _mlp(Spec(8), weight=Spec(6, rounding="RND", overflow="WRAP", k_hot=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonStandardQuantWarning)
        to_onnx(model, _inputs(1, 8), tmp_path / "m.onnx", strict=True)


@pytest.mark.parametrize("overflow", ["SAT", "SAT_SYM"])
@pytest.mark.parametrize("rounding", ["RND_CONV", "TRN", "TRN_ZERO", "RND_INF", "RND_ZERO"])
def test_standard_modes_export_silently_and_qonnx_computes_them_exactly_on_ties(
    tmp_path: Path, rounding: str, overflow: str
) -> None:
    model = qnn.Sequential(qnn.Quant(Spec(5, rounding=rounding, overflow=overflow)))
    calibrate(model, torch.full((1, 4), 3.0))  # ap_fixed<5,3>: LSB 1/4, range [-4, 3.75]
    model = model.double().eval()
    assert model[0].result_q.format.frac_bits == 2
    # Every multiple of LSB/4 from -5 to 5 (ties, near-ties, both signs, saturating): 164 values per
    # lane, shifted per lane so the 4 lanes of each row differ.
    grid = torch.arange(-20 * 4, 20 * 4 + 4, dtype=torch.float64) / 16
    x = torch.stack([grid.roll(k) for k in range(4)], dim=1)
    x = torch.cat([x, _inputs(ROWS - len(x), 4, seed=1) * 3])
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonStandardQuantWarning)
        to_onnx(model, x[:1], path, strict=True)
    assert _mismatched_rows(model, x, path) == 0


def test_uncalibrated_model_is_refused(tmp_path: Path) -> None:
    model = qnn.Sequential(qnn.Quant(8), qnn.Linear(8, 3, result=None)).double().eval()
    with pytest.raises(ValueError, match=r"^0\.result_q: quantizer is not calibrated.*calibration pass"):
        to_onnx(model, _inputs(1, 8), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_quantizer_reset_after_calibration_is_refused_by_its_path(tmp_path: Path) -> None:
    """fold_batch_norm resets the folded layer's weight and bias quantizers: export must not recalibrate."""
    model = _mlp(Spec(8))
    model[1] = qnn.fold_batch_norm(model[1], torch.nn.BatchNorm1d(3).double().eval())
    with pytest.raises(ValueError, match=r"^1\.weight_q: quantizer is not calibrated"):
        to_onnx(model, _inputs(1, 8), tmp_path / "m.onnx")


def test_export_example_changes_no_format_and_leaves_the_model_untouched(tmp_path: Path) -> None:
    model = _mlp(Spec(8))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    normal = to_onnx(model, _inputs(1, 8), tmp_path / "a.onnx")
    huge = to_onnx(model, _inputs(1, 8) * 1e6, tmp_path / "b.onnx")  # would widen every format if it calibrated
    assert normal.SerializeToString() == huge.SerializeToString()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_formats_metadata_lists_every_tensor(tmp_path: Path) -> None:
    model = _mlp(Spec(8))
    proto = to_onnx(model, _inputs(1, 8), tmp_path / "m.onnx")
    meta = json.loads(next(p.value for p in proto.metadata_props if p.key == "qfx_formats"))
    assert meta == {k: str(v) for k, v in model.formats().items()}


def test_per_channel_activation_quantizer_exports_exactly(tmp_path: Path) -> None:
    channels = 8
    spread = torch.logspace(-2, 2, channels)  # binary points far apart: I from about -3 to 9
    model = qnn.Sequential(
        qnn.Quant(Spec(6, per_channel=True), channels=channels, axis=1),
        qnn.Linear(channels, 3, weight=6, result=None),
    )
    torch.manual_seed(0)
    calibrate(model, _inputs(64, channels, spread))
    model = model.double().eval()
    formats = model[0].result_q.formats()
    assert len({f.int_bits for f in formats}) >= 6 and {f.width for f in formats} == {6}
    x = _inputs(ROWS, channels, spread * 1.5, seed=1)  # wider than calibration: some rows saturate
    path = tmp_path / "m.onnx"
    proto = to_onnx(model, x[:1], path)
    node = _quant_nodes(proto)[0]
    scale = _initializer(proto, node.input[1])
    assert scale.shape == (1, channels)
    assert scale.ravel().tolist() == [2.0**-f.frac_bits for f in formats]
    assert _initializer(proto, node.input[3]).item() == 6
    assert _mismatched_rows(model, x, path) == 0


def test_per_channel_result_quantizer_of_a_conv_exports_exactly(tmp_path: Path) -> None:
    """[N, C, H, W] activations: scale [1, C, 1, 1]; the per-channel weights stay exact identities too."""
    torch.manual_seed(0)
    conv = qnn.Conv2d(2, 4, 3, padding=1, weight=Spec(5, per_channel=True), result=None)
    conv.result_q = FixedQuantizer(6, channels=4, axis=1)
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([0.05, 0.5, 2.0, 8.0]).reshape(-1, 1, 1, 1))
    model = qnn.Sequential(qnn.Quant(Spec(6)), conv)
    calibrate(model, _inputs(64, 2 * 5 * 5).reshape(-1, 2, 5, 5))
    model = model.double().eval()
    formats = conv.result_q.formats()
    assert len({f.int_bits for f in formats}) == 4
    x = (_inputs(ROWS, 2 * 5 * 5, seed=1) * 1.5).reshape(-1, 2, 5, 5)
    path = tmp_path / "m.onnx"
    proto = to_onnx(model, x[:1], path)
    scale = _initializer(proto, _quant_nodes(proto)[-1].input[1])
    assert scale.shape == (1, 4, 1, 1)
    assert scale.ravel().tolist() == [2.0**-f.frac_bits for f in formats]
    assert _mismatched_rows(model, x, path) == 0
