"""Training on digits, checkpoints, and the `qfx train` / `qfx formats` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qfx.cli import main
from qfx.data import digits
from qfx.models import build, digits_cnn, digits_mlp
from qfx.train import fit, load_checkpoint, save_checkpoint


def test_digits_split_is_stratified_80_20_and_scaled_to_unit_range() -> None:
    d = digits()
    assert len(d.y_train) == 1437 and len(d.y_test) == 360
    assert d.x_train.min() >= 0 and d.x_train.max() == 1
    assert torch.bincount(d.y_test).min() >= 35


def test_a_4_bit_mlp_learns_digits_in_a_few_epochs() -> None:
    torch.manual_seed(0)
    metrics = fit(digits_mlp(4), digits(), epochs=20)
    assert metrics["test"] > 0.9


def test_the_cnn_trains_with_conv_batch_norm_and_pooling() -> None:
    torch.manual_seed(0)
    metrics = fit(digits_cnn(6), digits(images=True), epochs=3)
    assert metrics["test"] > 0.5


def test_a_checkpoint_restores_identical_predictions_and_formats(tmp_path: Path) -> None:
    data = digits()
    torch.manual_seed(0)
    model = digits_mlp(5, k_hot=2)
    fit(model, data, epochs=2)
    save_checkpoint(tmp_path / "m.pt", model, {"name": "digits_mlp", "bits": 5, "k_hot": 2}, {})
    restored, ckpt = load_checkpoint(tmp_path / "m.pt")
    x = data.x_test.double()
    assert torch.equal(restored(x), model.double().eval()(x))
    assert ckpt["formats"] == {name: str(f) for name, f in restored.formats().items()}


def test_build_rejects_an_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="arch name 'resnet'"):
        build({"name": "resnet"})


def test_qfx_train_saves_a_checkpoint_and_prints_formats(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "d.pt"
    assert main(["train", "--bits", "4", "--epochs", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch   2/2" in printed and "ap_ufixed<4," in printed and out.is_file()
    assert main(["formats", str(out)]) == 0
    assert "1.accum" in capsys.readouterr().out


def test_qfx_train_with_a_bad_width_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--bits", "40", "-o", str(tmp_path / "x.pt")]) == 2
    assert "width=40" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_qfx_formats_of_a_missing_checkpoint_exits_2(tmp_path: Path) -> None:
    assert main(["formats", str(tmp_path / "none.pt")]) == 2
