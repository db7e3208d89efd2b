"""QONNX files as FINN, Brevitas and older qonnx write them convert like any other: legacy custom-op
domains, qonnx ops without a domain, no opset import for the custom domain, old standard opsets."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from qfx.cli import main
from qfx.hls.graph import QONNX_DOMAIN, load
from qfx.hls.project import Project

from .conversion_models import hand_built_qonnx

pytestmark = pytest.mark.slow


def legacy(path: Path, domain: str, opset: int) -> Path:
    """The hand-built MLP with its Quant nodes in `domain` and only the standard opset imported."""
    hand_built_qonnx(str(path))
    model = onnx.load(path)
    for node in model.graph.node:
        if node.op_type == "Quant":
            node.domain = domain
    del model.opset_import[:]
    model.opset_import.append(onnx.helper.make_opsetid("", opset))
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(("domain", "opset"), [("finn", 11), ("finn.custom_op.general", 13), ("", 9)])
def test_legacy_domains_are_read_as_qonnx_reads_them(tmp_path: Path, domain: str, opset: int) -> None:
    proto = load(legacy(tmp_path / "m.onnx", domain, opset))
    assert {n.domain for n in proto.graph.node if n.op_type == "Quant"} == {QONNX_DOMAIN}
    assert (QONNX_DOMAIN, 1) in {(o.domain, o.version) for o in proto.opset_import}


def test_a_finn_domain_file_without_custom_opset_converts_exactly(tmp_path: Path) -> None:
    model = legacy(tmp_path / "m.onnx", "finn", 11)
    args = ["convert", str(model), "-o", str(tmp_path / "p"), "--rtl", "none", "--simulator", "none"]
    assert main([*args, "--check", "1000"]) == 0
    assert Project(tmp_path / "p")["check"]["mismatches"] == 0
