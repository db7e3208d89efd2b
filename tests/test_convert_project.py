"""A converted folder: built, proven, and only then replacing an old one; `--force` replaces an
old folder only with a complete one; a failed proof exits 3 and keeps nothing; the folder can move."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from qfx.cli import main
from qfx.hls.csim import emulate, run_csim
from qfx.hls.project import Project

from .conversion_models import hand_built_qonnx

pytestmark = pytest.mark.slow
FAST = ["--rtl", "none", "--simulator", "none"]


def _convert(model: Path, out: Path, *extra: str) -> int:
    return main(["convert", str(model), "-o", str(out), *FAST, *extra])


def test_convert_records_its_proof_with_per_quantizer_edge_counts(tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    assert _convert(tmp_path / "h.onnx", tmp_path / "p", "--check", "500") == 0
    check = Project(tmp_path / "p")["check"]
    assert check["vectors"] == 500 and check["mismatches"] == 0
    assert check["pairs"]["emulation vs csim"]["mismatches"] == 0
    # the edge-case vectors drive the input quantizer into saturation and onto ties
    assert check["quantizers"]["xq_node"]["saturated"] > 0 and check["quantizers"]["xq_node"]["ties"] > 0


def test_force_keeps_the_old_project_when_the_new_model_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    assert _convert(tmp_path / "h.onnx", tmp_path / "p", "--no-check") == 0
    before = (tmp_path / "p" / "qfx.json").read_text()
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    assert _convert(tmp_path / "bad.onnx", tmp_path / "p", "--force") == 2
    assert (tmp_path / "p" / "qfx.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "h.onnx", "p"]  # no staging left


def test_a_failed_proof_exits_3_naming_the_pair_and_keeps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qfx.testbench.verify as verify

    def off_by_one_lsb(project, x):  # a C simulation that disagrees on every vector
        return run_csim(project, x) + 2.0**-6

    monkeypatch.setattr(verify, "run_csim", off_by_one_lsb)
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    assert _convert(tmp_path / "h.onnx", tmp_path / "p") == 3
    err = capsys.readouterr().err
    assert "proof failed: emulation vs csim" in err and "first at vector 0" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.onnx"]


def test_a_project_folder_can_be_moved(tmp_path: Path) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    assert _convert(tmp_path / "h.onnx", tmp_path / "p", "--no-check") == 0
    shutil.move(tmp_path / "p", tmp_path / "moved")
    x = np.random.default_rng(0).uniform(-9, 9, (200, 16))
    assert np.array_equal(run_csim(tmp_path / "moved", x), emulate(tmp_path / "moved", x))


def test_force_puts_the_old_project_back_when_the_new_one_fails_its_proof(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qfx.testbench.verify as verify

    hand_built_qonnx(str(tmp_path / "h.onnx"))
    assert _convert(tmp_path / "h.onnx", tmp_path / "p", "--no-check") == 0
    before = (tmp_path / "p" / "qfx.json").read_text()
    monkeypatch.setattr(verify, "run_csim", lambda project, x: run_csim(project, x) + 1.0)
    assert _convert(tmp_path / "h.onnx", tmp_path / "p", "--force") == 3
    assert (tmp_path / "p" / "qfx.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.onnx", "p"]
