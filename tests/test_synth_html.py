"""The synthesis report page: self-contained, escaped, complete, ceilings in place, and drawn by a browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from qfx import boards
from qfx.hls.synth import report
from qfx.hls.synth.html import render
from qfx.hls.synth.report import Measured

EVIL = "<script>alert(1)</script>"


def _report(lut: float, layer_names: tuple[str, ...] = ("dense_0", "relu_0", "dense_1")) -> dict[str, Any]:
    share = len(layer_names)
    layers = [
        {"name": n, "LUT": lut // (share + 1), "FF": 900, "DSP": 4, "CARRY": 30 * (i + 1)}
        for i, n in enumerate(layer_names)
    ]
    measured = Measured(
        tool="yosys",
        tool_version="0.70",
        style="da",
        top="qfx_top",
        family="xcup",
        total={"LUT": lut, "FF": 21000, "DSP": 12, "BRAM18": 40, "URAM": 0, "CARRY": 400, "logic_depth": 9},
        layers=layers,
        latency_cycles=4,
        ii=1,
        layer_method="each layer synthesized on its own; cross-layer optimization is lost",
        notes=["URAM is not inferred by the open flow"],
    )
    return report.build(measured, boards.get("ultra96v2"), 5.0, 12.3)


def _manifest(layer_names: tuple[str, ...] = ("global_in", "Dense_MatMul_0", "Relu_0")) -> dict[str, Any]:
    types = [
        {"result_t": "fixed<8,4,RND_CONV,SAT,0>"},
        {"accum_t": "ap_fixed<35,9>", "weight_t": "fixed<4,0,RND_CONV,SAT,0>", "bias_t": "ufixed<1,1,TRN,WRAP,0>"},
        {"result_t": "ap_uint<6>", "table_t": "float"},
    ]
    return {
        "board": "ultra96v2",
        "source": {"path": "/models/mlp.onnx"},
        "input": {"name": "x", "format": "ap_fixed<8,4,AP_RND_CONV,AP_SAT>"},
        "output": {"name": "y", "type": "fixed<15,6,TRN,WRAP,0>"},
        "layers": [{"name": n, "class": "Dense", "types": t} for n, t in zip(layer_names, types, strict=True)],
    }


class _Tags(HTMLParser):
    """Every start tag's attributes, in document order."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_references_nothing_outside_itself() -> None:
    page = render(_report(60000), _manifest())
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page


def test_user_names_are_escaped() -> None:
    page = render(_report(20000, ("dense_0", EVIL)), _manifest(("global_in", EVIL, "Relu_0")))
    assert EVIL not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2
    assert "<script" not in page


def test_every_layer_of_the_report_and_the_manifest_appears() -> None:
    rep, manifest = _report(20000), _manifest()
    tags = _Tags(render(rep, manifest)).tags
    assert [a["data-layer"] for _, a in tags if "data-layer" in a] == [layer["name"] for layer in rep["layers"]]
    assert [a["data-hls-layer"] for _, a in tags if "data-hls-layer" in a] == [
        layer["name"] for layer in manifest["layers"]
    ]


def test_ceiling_markers_sit_at_the_ceiling_percentages() -> None:
    tags = _Tags(render(_report(60000), _manifest())).tags
    markers = {}
    for i, (_, attrs) in enumerate(tags):
        if "data-resource" in attrs:
            ceiling = next(a for _, a in tags[i:] if a.get("class") == "ceiling")
            markers[attrs["data-resource"]] = float(re.fullmatch(r"left:([\d.]+)%", ceiling["style"]).group(1))
    assert markers == {k: pytest.approx(100 * v) for k, v in boards.CEILINGS.items()}


def test_the_browser_draws_the_bars_without_console_errors(browser: webdriver.Chrome, tmp_path: Path) -> None:
    rep = _report(60000)
    page = tmp_path / "index.html"
    page.write_text(render(rep, _manifest()))
    browser.get_log("browser")  # what earlier pages in this shared browser logged
    browser.get(page.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#utilization .row")
    assert [r.get_attribute("data-resource") for r in rows] == list(boards.CEILINGS)
    for row in rows:
        key = row.get_attribute("data-resource")
        bar = row.find_element(By.CSS_SELECTOR, ".bar").size["width"]
        fill = row.find_element(By.CSS_SELECTOR, ".fill")
        assert 100 * fill.size["width"] / bar == pytest.approx(min(rep["utilization"][key], 100), abs=1.0)
        assert ("over" in row.get_attribute("class")) == (key in rep["over_ceiling"])
    assert rep["over_ceiling"] == ["LUT"]
    shares = browser.find_elements(By.CSS_SELECTOR, "#layers .share")
    assert shares and all(s.is_displayed() and s.size["width"] > 0 for s in shares)
    widths = browser.find_elements(By.CSS_SELECTOR, "#bits .width")  # all but table_t's "float"
    assert len(widths) == 5 and all(w.is_displayed() and w.size["width"] > 0 for w in widths)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    assert browser.save_screenshot(str(tmp_path / "page.png"))
