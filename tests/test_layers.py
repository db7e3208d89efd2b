"""qfx.nn layers compute fixed-point arithmetic exactly and report every tensor's format."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

import qfx.nn as qnn
from qfx.fixed import FixedFormat
from qfx.quant import Spec, tag


def _fixed_input(shape: tuple[int, ...], fmt: FixedFormat, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(fmt.min_int, fmt.max_int + 1, shape, generator=g, dtype=torch.float64)
    return tag(codes * fmt.lsb, fmt)


def test_linear_equals_exact_rational_arithmetic_then_the_result_cast() -> None:
    torch.manual_seed(0)
    layer = qnn.Linear(7, 3, weight=5, bias_spec=6, result=Spec(4, rounding="RND", overflow="SAT")).double()
    x = _fixed_input((4, 7), FixedFormat(6, 2))
    y = layer(x)
    w, b = layer.weight_q(layer.weight), layer.bias_q(layer.bias)
    for n in range(4):
        for o in range(3):
            acc = sum(Fraction(x[n, i].item()) * Fraction(w[o, i].item()) for i in range(7)) + Fraction(b[o].item())
            expected = layer.result_q.format.quantize(torch.tensor([float(acc)], dtype=torch.float64))
            assert float(acc) == acc  # the float64 accumulation itself was exact
            assert y[n, o].item() == expected.item()


def test_accumulator_format_holds_the_worst_case_sum() -> None:
    layer = qnn.Linear(16, 2, weight=4, result=None).double()
    fmt = FixedFormat(5, 1)
    layer(_fixed_input((1, 16), fmt))
    w = layer.weight_q.format
    worst = 16 * fmt.min_value * w.min_value + layer.bias_q.format.max_value
    acc = layer.formats()["accum"]
    assert acc.quantize(torch.tensor([worst], dtype=torch.float64)).item() == worst


def test_conv2d_outputs_lie_on_the_result_grid_and_match_a_float64_reference() -> None:
    torch.manual_seed(0)
    conv = qnn.Conv2d(2, 3, 3, padding=1, weight=6, result=8).double()
    x = _fixed_input((2, 2, 5, 5), FixedFormat(8, 1, False))
    y = conv(x)
    ref = torch.nn.functional.conv2d(x, conv.weight_q(conv.weight), conv.bias_q(conv.bias), padding=1)
    assert torch.equal(y, conv.result_q.format.quantize(ref))


def test_conv1d_runs_in_fixed_point_with_an_exact_accumulator() -> None:
    conv = qnn.Conv1d(3, 4, 5, result=None).double()
    y = conv(_fixed_input((2, 3, 12), FixedFormat(8, 3)))
    assert y.shape == (2, 4, 8)
    assert torch.equal(conv.formats()["accum"].quantize(y), y)


def test_model_formats_list_every_tensor_by_name() -> None:
    model = qnn.Sequential(qnn.Quant(8), qnn.Linear(4, 4, result=None), qnn.ReLU(6), qnn.Linear(4, 2))
    model(torch.randn(3, 4))
    assert list(model.formats()) == [
        "0.result",
        "1.weight",
        "1.bias",
        "1.accum",
        "1.result",
        "2.result",
        "3.weight",
        "3.bias",
        "3.accum",
        "3.result",
    ]
    assert model.formats()["2.result"].signed is False


def test_batch_norm_in_eval_is_the_fixed_point_affine_map_of_running_statistics() -> None:
    bn = qnn.BatchNorm1d(3, scale=8, shift=8, result=Spec(8, rounding="TRN")).double()
    x = _fixed_input((64, 3), FixedFormat(8, 3))
    bn.train()
    bn(x)  # updates running statistics and calibrates
    bn.eval()
    y = bn(x)
    scale, shift = bn.scale_shift()
    expected = bn.result_q.format.quantize(x * bn.scale_q(scale) + bn.shift_q(shift))
    assert torch.equal(y, expected)


def test_folding_batch_norm_gives_the_same_float_function() -> None:
    torch.manual_seed(0)
    lin, bn = qnn.Linear(5, 3, result=None).double(), torch.nn.BatchNorm1d(3).double()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.eval()
    fused = qnn.fold_batch_norm(lin, bn)
    x = torch.randn(10, 5, dtype=torch.float64)
    expected = bn(torch.nn.functional.linear(x, lin.weight, lin.bias))
    assert torch.allclose(torch.nn.functional.linear(x, fused.weight, fused.bias), expected, atol=1e-12)


def test_folding_rejects_a_batch_norm_of_another_width() -> None:
    with pytest.raises(ValueError, match="channels"):
        qnn.fold_batch_norm(qnn.Linear(5, 3), torch.nn.BatchNorm1d(4))


def test_relu_keeps_the_input_format_unless_a_result_width_is_given() -> None:
    x = _fixed_input((10,), FixedFormat(6, 2))
    assert qnn.ReLU()(x).qfx_format == FixedFormat(6, 2)
    narrowed = qnn.ReLU(4)(x)
    assert narrowed.qfx_format.signed is False and narrowed.min() >= 0


def test_residual_add_is_exact_then_quantized() -> None:
    add = qnn.Add(result=None)
    a, b = _fixed_input((50,), FixedFormat(6, 2), 1), _fixed_input((50,), FixedFormat(5, 4, False), 2)
    y = add(a, b)
    assert torch.equal(y, a + b)
    assert torch.equal(y.qfx_format.quantize(y), y)


def test_average_pool_is_an_exact_shift_for_power_of_two_areas() -> None:
    x = _fixed_input((1, 2, 4, 4), FixedFormat(6, 2))
    y = qnn.AvgPool2d(2)(x)
    assert torch.equal(y, torch.nn.functional.avg_pool2d(x, 2))
    assert y.qfx_format == FixedFormat(8, 2)


def test_average_pool_refuses_areas_that_are_not_powers_of_two() -> None:
    with pytest.raises(ValueError, match="pool area 9"):
        qnn.AvgPool2d(3)


def test_max_pool_and_flatten_keep_the_format() -> None:
    fmt = FixedFormat(7, 3, False)
    y = qnn.Flatten()(qnn.MaxPool2d(2)(_fixed_input((2, 3, 4, 4), fmt)))
    assert y.shape == (2, 12) and y.qfx_format == fmt


def test_a_layer_fed_a_plain_tensor_names_itself() -> None:
    with pytest.raises(ValueError, match="Linear: input is not a fixed-point tensor"):
        qnn.Linear(3, 2)(torch.randn(1, 3))
