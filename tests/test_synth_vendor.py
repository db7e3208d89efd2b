"""The vendor flow of `qfx synth`: Vitis/Vivado HLS report parsers on hand-written fixtures in the tools'
formats (tests/data/synth/README.md), and the orchestration of hls4ml's build script, run by fake tools on
PATH (shell scripts that check their arguments and copy the fixture reports where the tools write them):
neither Vitis nor Vivado is installed where these tests run."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from hls4ml.report.vivado_report import parse_vivado_report

from qfx.hls.project import PROJECT, PROJECT_NAME, Project
from qfx.hls.synth.vendor import REPORT_DIR, find_tool, layer_configs, parse_csynth, parse_utilization, run

DATA = Path(__file__).parent / "data" / "synth"
# The layer calls hls4ml 1.3.0 writes into firmware/qfx_model.cpp for the fixtures' model (io_stream).
TOP_CPP = """\
    // hls-fpga-machine-learning insert load weights
#ifndef __SYNTHESIS__
    static bool loaded_weights = false;
    if (!loaded_weights) {
        nnet::load_weights_from_txt<weight32_t, 192>(w32, "w32.txt");
        nnet::load_weights_from_txt<bias32_t, 12>(b32, "b32.txt");
        loaded_weights = true;    }
#endif
    // ****************************************
    // NETWORK INSTANTIATION
    // ****************************************

    // hls-fpga-machine-learning insert layers

    hls::stream<Dense_MatMul_0_result_t> layer32_out("layer32_out");
    #pragma HLS STREAM variable=layer32_out depth=1

    nnet::dense<input_t, Dense_MatMul_0_result_t, config32>(global_in, layer32_out, w32, b32); // Dense_MatMul_0

    nnet::relu<Dense_MatMul_0_result_t, layer26_t, ReLU_config26>(layer32_out, layer26_out); // Relu_0

    nnet::dense<layer26_t, result_t, config33>(layer26_out, layer33_out, w33, b33); // Dense_MatMul_1

}
"""
CONFIGS = {32: "Dense_MatMul_0", 26: "Relu_0", 33: "Dense_MatMul_1"}


def test_csynth_reads_the_tops_totals_latency_ii_and_tool_version() -> None:
    parsed = parse_csynth(DATA / "vitis_stream")
    assert parsed["tool_version"] == "2023.2" and parsed["top"] == "qfx_model"
    assert parsed["total"] == {
        "LUT": 2614,
        "FF": 846,
        "DSP": 12,
        "BRAM18": 0,
        "URAM": 0,
        "CARRY": 0,
        "logic_depth": None,
    }
    assert (parsed["latency_cycles"], parsed["ii"]) == (9, 3)
    assert (parsed["estimated_clock_ns"], parsed["target_clock_ns"]) == (3.841, 5.0)


def test_csynth_reports_each_module_the_top_instantiates_under_its_hls4ml_layer() -> None:
    layers = parse_csynth(DATA / "vitis_stream", configs=CONFIGS)["layers"]
    assert [(layer["name"], layer["LUT"], layer["FF"], layer["DSP"]) for layer in layers] == [
        ("Dense_MatMul_0", 1682, 412, 12),
        ("Relu_0", 84, 3, 0),
        ("Dense_MatMul_1", 611, 198, 0),
    ]
    assert layers[1]["modules"] == ["relu_array_ap_fixed_12u_array_ap_ufixed_6_3_4_0_0_12u_ReLU_config26_s"]


def test_csynth_names_a_module_of_no_known_layer_by_the_module() -> None:
    layers = parse_csynth(DATA / "vitis_stream")["layers"]
    assert layers[0]["name"] == "dense_array_ap_fixed_8_4_4_0_0_16u_array_ap_fixed_35_9_5_3_0_12u_config32_s"


def test_an_inlined_design_has_no_layers_and_a_note_says_so() -> None:
    parsed = parse_csynth(DATA / "vitis_inlined", configs=CONFIGS)
    assert parsed["layers"] == [] and parsed["total"]["LUT"] == 3906
    assert parsed["notes"] == ["hls4ml's layer functions were inlined into qfx_model: no per-layer figures"]


def test_vivado_hls_modules_come_from_the_tops_text_report_in_the_models_order() -> None:
    parsed = parse_csynth(DATA / "vivado_hls_stream", configs=CONFIGS)
    assert parsed["total"]["DSP"] == 12 and parsed["total"]["BRAM18"] == 1  # spelled DSP48E there
    assert [(layer["name"], layer["LUT"], layer["BRAM18"]) for layer in parsed["layers"]] == [
        ("Dense_MatMul_0", 1907, 0),
        ("Relu_0", 96, 0),
        ("Dense_MatMul_1", 702, 1),
    ]


@pytest.mark.parametrize("fixture", ["vitis_stream", "vivado_hls_stream"])
def test_csynth_totals_agree_with_hls4mls_own_parser(tmp_path: Path, fixture: str) -> None:
    hls = tmp_path / PROJECT
    shutil.copytree(DATA / fixture, hls / REPORT_DIR)
    (hls / "project.tcl").write_text(f'set project_name "{PROJECT_NAME}"\nset backend "vitis"\n')
    (hls / f"{PROJECT_NAME}_prj" / "hls.app").write_text(
        '<project xmlns="com.autoesl.autopilot.project" name="qfx_model_prj" top="qfx_model">'
        '<solutions><solution name="solution1" status="active"/></solutions></project>'
    )
    theirs = parse_vivado_report(str(hls))["CSynthesisReport"]
    ours = parse_csynth(hls / REPORT_DIR)
    assert {k: float(theirs[k]) for k in ("LUT", "FF", "DSP", "URAM")} == {
        k: ours["total"][k] for k in ("LUT", "FF", "DSP", "URAM")
    }
    assert float(theirs["BRAM_18K"]) == ours["total"]["BRAM18"]
    assert (int(theirs["WorstLatency"]), int(theirs["IntervalMax"])) == (ours["latency_cycles"], ours["ii"])
    assert float(theirs["EstimatedClockPeriod"]) == ours["estimated_clock_ns"]


def test_layer_configs_maps_each_config_index_to_the_layer_hls4ml_calls_with_it() -> None:
    several_calls = "    // concat_2\n    nnet::concatenate1d<layer5_t, layer6_t, layer8_t, config8>(a, b, c);\n"
    config_first = "    nnet::conv1d_cl<config7, layer6_t, layer7_t>(layer6_out, layer7_out); // conv_1\n"
    assert layer_configs(TOP_CPP + several_calls + config_first) == {**CONFIGS, 8: "concat_2", 7: "conv_1"}


def test_utilization_of_an_ultrascale_plus_part() -> None:
    counts = parse_utilization((DATA / "utilization_xczu3eg.rpt").read_text())
    # 1.5 Block RAM tiles (36K) are 3 BRAM18; CARRY8 from the CLB table
    assert counts == {"LUT": 2391, "FF": 702, "DSP": 12, "BRAM18": 3, "URAM": 0, "CARRY": 87}


def test_utilization_of_a_7_series_part_counts_half_a_tile_as_one_bram18() -> None:
    counts = parse_utilization((DATA / "utilization_xc7z020.rpt").read_text())
    # "Slice" spellings; CARRY4 only in the Primitives table
    assert counts == {"LUT": 2519, "FF": 447, "DSP": 12, "BRAM18": 1, "URAM": 0, "CARRY": 161}


def test_utilization_refuses_text_that_is_not_a_utilization_report() -> None:
    with pytest.raises(ValueError, match="not a Vivado report_utilization"):
        parse_utilization((DATA / "vivado_hls_stream" / "qfx_model_csynth.rpt").read_text())


def _bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripts: dict[str, str]) -> Path:
    """Fake tools (name -> shell script body) in a folder that, with the system's own, is all of PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(folder), "/usr/bin", "/bin"]))
    return folder


def test_find_tool_returns_none_without_the_tools_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _bin(tmp_path, monkeypatch, {})
    assert find_tool("vitis") is None and find_tool("vivado") is None


def test_find_tool_prefers_vitis_run_to_vitis_hls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _bin(tmp_path, monkeypatch, {"vitis-run": "", "vitis_hls": ""})
    assert find_tool("vitis") == [str(folder / "vitis-run"), "--mode", "hls", "--tcl"]


def _project(tmp_path: Path, backend: str, family: str) -> Project:
    """A converted folder as far as the vendor flow reads it: manifest, hls4ml's top function, build script."""
    root = tmp_path / "project"
    (root / PROJECT / "firmware").mkdir(parents=True)
    (root / PROJECT / "firmware" / f"{PROJECT_NAME}.cpp").write_text(TOP_CPP)
    (root / PROJECT / "build_prj.tcl").write_text("# hls4ml's build script: the fake tools do not read it\n")
    (root / "qfx.json").write_text(json.dumps({"backend": backend, "family": family}))
    return Project(root)


# What hls4ml's build script makes the tool write: the C-synthesis reports of the solution.
C_SYNTHESIS = f"""echo "***** C/RTL SYNTHESIS *****"
mkdir -p {REPORT_DIR}
cp {{fixture}}/* {REPORT_DIR}/
echo "***** C/RTL SYNTHESIS COMPLETED IN 0h0m41s *****"
"""


def test_run_with_a_fake_vitis_hls_measures_the_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # vitis_hls is given hls4ml's script; the options (C synthesis only) are in build_opt.tcl, which that reads
    check = r"""[ "$*" = "-f build_prj.tcl" ] || { echo "ERROR: unexpected arguments $*"; exit 1; }
for option in 'reset +1' 'csim +0' 'synth +1' 'cosim +0' 'vsynth +0'; do
  grep -Eq "^ *$option\$" build_opt.tcl || { echo "ERROR: build_opt.tcl lacks $option"; exit 1; }
done
"""
    _bin(tmp_path, monkeypatch, {"vitis_hls": check + C_SYNTHESIS.format(fixture=DATA / "vitis_stream")})
    said: list[str] = []
    measured, log = run(_project(tmp_path, "vitis", "zynquplus"), "vitis", False, said.append)
    assert (measured.tool, measured.tool_version, measured.style) == ("vitis", "2023.2", "hls")
    assert (measured.top, measured.family, measured.latency_cycles, measured.ii) == ("qfx_model", "zynquplus", 9, 3)
    assert measured.total == parse_csynth(DATA / "vitis_stream")["total"]
    assert [layer["name"] for layer in measured.layers] == ["Dense_MatMul_0", "Relu_0", "Dense_MatMul_1"]
    assert "total: C-synthesis estimates (no logic synthesis run)" in measured.notes
    assert "C/RTL SYNTHESIS COMPLETED IN 0h0m41s" in said and "C/RTL SYNTHESIS COMPLETED" in log


def test_run_with_logic_synthesis_takes_the_total_from_vivado(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # vivado_hls takes the options as its argument; the build script then runs Vivado on vivado_synth.tcl
    options = "reset=1 csim=0 synth=1 cosim=0 validation=0 export=0 vsynth=1 fifo_opt=0"
    vivado_hls = (
        f'[ "$*" = "-f build_prj.tcl {options}" ] || {{ echo "ERROR: unexpected arguments $*"; exit 1; }}\n'
        + C_SYNTHESIS.format(fixture=DATA / "vivado_hls_stream")
        + 'echo "***** VIVADO SYNTHESIS *****"\nvivado -mode batch -source vivado_synth.tcl\n'
    )
    vivado = f"cp {DATA / 'utilization_xc7z020.rpt'} vivado_synth.rpt\n"
    _bin(tmp_path, monkeypatch, {"vivado_hls": vivado_hls, "vivado": vivado})
    measured, _ = run(_project(tmp_path, "vivado", "zynq"), "vivado", True, lambda _: None)
    assert measured.total == {**parse_utilization((DATA / "utilization_xc7z020.rpt").read_text()), "logic_depth": None}
    assert [layer["LUT"] for layer in measured.layers] == [1907, 96, 702]  # C-synthesis estimates still
    assert any(note.startswith("total: Vivado post-synthesis utilization") for note in measured.notes)
    assert "need not add up" in measured.layer_method


def test_a_failing_tool_raises_its_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    error = "ERROR: [HLS 207-812] 'nnet_utils/nnet_dense.h' file not found (firmware/parameters.h:7:10)"
    _bin(
        tmp_path,
        monkeypatch,
        {"vitis_hls": f'echo "INFO: [HLS 200-10] Analyzing design file"\necho "{error}"\nexit 1\n'},
    )
    with pytest.raises(ValueError, match=r"exit status 1\): ERROR: \[HLS 207-812\] 'nnet_utils/nnet_dense.h'"):
        run(_project(tmp_path, "vitis", "zynquplus"), "vitis", False, lambda _: None)


def test_a_missing_report_raises_naming_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _bin(tmp_path, monkeypatch, {"vitis_hls": 'echo "***** C/RTL SYNTHESIS *****"\n'})
    project = _project(tmp_path, "vitis", "zynquplus")
    with pytest.raises(ValueError, match=re.escape(str(project.path / PROJECT / REPORT_DIR / "qfx_model_csynth.xml"))):
        run(project, "vitis", False, lambda _: None)


def test_run_refuses_a_project_written_for_the_other_tool(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds an hls4ml vivado project; synthesize it with vivado"):
        run(_project(tmp_path, "vivado", "zynq"), "vitis", False, lambda _: None)
