"""Every ONNX file in the test data, written by tools other than qfx (onnx.helper with no node names,
Constant nodes, omitted defaults, legacy domains, old opsets; malformed files too), goes through
`qfx convert` to a proven project (exit 0) or a one-line refusal (exit 2) that leaves nothing behind.
(Brevitas's files, all of which must convert, are proven against qonnx's executor in test_brevitas_files.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from qfx.cli import main
from qfx.hls.project import Project

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent / "data"
FILES = sorted(p for p in DATA.rglob("*.onnx") if "brevitas" not in p.parts)


def test_the_test_data_has_files_to_convert() -> None:
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_convert_proves_or_refuses_in_one_line(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "p"
    code = main(["convert", str(path), "-o", str(out), "--simulator", "none", "--check", "200"])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 0:
        assert Project(out)["check"]["mismatches"] == 0
    else:
        errors = [line for line in err.splitlines() if line.startswith("qfx convert")]  # not the progress lines
        assert len(errors) == 1 and errors[0].startswith("qfx convert: error: ")
        assert not out.exists()
