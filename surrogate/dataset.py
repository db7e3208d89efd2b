"""Labelled synthesis reports as one table: readers for wa-hls4ml's CSV and JSON records, the
architecture split, and the versioned Parquet format every flow's reports share."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
TARGETS = ("lut", "ff", "dsp", "bram", "latency_cycles", "ii")
# One row per synthesized design. `layers` is the JSON list the graph builder reads (surrogate.graph);
# tool, version, part and clock are columns so reports of several flows can train one model.
COLUMNS = (
    "model_id",
    "layers",
    "strategy",
    "io_type",
    "reuse",
    "precision",
    "tool",
    "tool_version",
    "part",
    "clock_ns",
    *TARGETS,
    "source",
)
# wa-hls4ml's public dense sweep: Vitis HLS 2023.2 for the Alveo U250 at 5 ns, io_parallel.
WA_PART = "xcu250-figd2104-2L-e"
WA_CSV_TARGETS = {
    "LUT_hls": "lut",
    "FF_hls": "ff",
    "DSP_hls": "dsp",
    "BRAM_18K_hls": "bram",
    "WorstLatency_hls": "latency_cycles",
    "IntervalMax_hls": "ii",
}
WA_CSV_COLUMNS = ("model_string", "prec", "rf", "strategy", "TargetClockPeriod_hls", *WA_CSV_TARGETS)


def dense_layers(widths: list[int], bits: int, reuse: int) -> list[dict]:
    """A fully connected chain: one dense node per pair of widths, ReLU between them."""
    layers: list[dict] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append({"type": "dense", "n_in": a, "n_out": b, "weight_bits": bits, "act_bits": bits, "reuse": reuse})
        if i < len(widths) - 2:
            layers.append({"type": "relu", "n_in": b, "n_out": b, "act_bits": bits})
    return layers


def read_csv(path: str | Path, columns: Iterable[str]) -> pd.DataFrame:
    """A CSV that must have `columns`, or ValueError naming the file and what is missing."""
    try:
        raw = pd.read_csv(path)
    except Exception as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from None
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: not a wa-hls4ml CSV; missing columns {', '.join(missing)}")
    return raw


def read_wa_csv(path: str | Path) -> pd.DataFrame:
    """wa-hls4ml's CSV summary (one project per row), successful syntheses only."""
    path = Path(path)
    raw = read_csv(path, WA_CSV_COLUMNS)
    if "hls_synth_success" in raw.columns:
        raw = raw[raw["hls_synth_success"].astype(str).str.upper() == "TRUE"]
    rows = []
    for r in raw.itertuples(index=False):
        widths = [int(w) for w in str(r.model_string).split("-")]
        row = {
            "model_id": str(r.model_string),
            "layers": json.dumps(dense_layers(widths, int(r.prec), int(r.rf))),
            "strategy": str(r.strategy).lower(),
            "io_type": "io_parallel",
            "reuse": int(r.rf),
            "precision": int(r.prec),
            "tool": "vitis_hls",
            "tool_version": "2023.2",
            "part": WA_PART,
            "clock_ns": float(r.TargetClockPeriod_hls),
            "source": path.name,
        }
        for col, target in WA_CSV_TARGETS.items():
            row[target] = float(getattr(r, col))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _keras_dense_widths(model_config: list[dict], where: str) -> list[int]:
    widths: list[int] = []
    for layer in model_config:
        cfg = layer.get("config", layer)
        kind = layer.get("class_name", "")
        if kind == "InputLayer":
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            widths = [int(shape[-1])]
        elif kind in ("Dense", "QDense"):
            widths.append(int(cfg["units"]))
        elif kind not in ("Activation", "QActivation", "ReLU", "Dropout"):
            raise ValueError(f"{where}: layer type {kind} is not read (dense networks only)")
    if len(widths) < 2:
        raise ValueError(f"{where}: no input width and dense layers in model_config")
    return widths


def read_wa_json(paths: Iterable[str | Path]) -> pd.DataFrame:
    """wa-hls4ml's full JSON records (model_config, hls_config, latency_report, resource_report)."""
    rows = []
    for path in map(Path, paths):
        try:
            rec = json.loads(path.read_text())
            hls, lat, res = rec["hls_config"], rec["latency_report"], rec["resource_report"]
            model = hls.get("Model", hls)
            bits = int(str(model.get("Precision", "ap_fixed<16,6>")).split("<")[1].split(",")[0])
            reuse = int(model.get("ReuseFactor", 1))
            widths = _keras_dense_widths(rec["model_config"], str(path))
            row = {
                "model_id": "-".join(map(str, widths)),
                "layers": json.dumps(dense_layers(widths, bits, reuse)),
                "strategy": str(model.get("Strategy", "latency")).lower(),
                "io_type": str(hls.get("IOType", "io_parallel")),
                "reuse": reuse,
                "precision": bits,
                "tool": str(rec.get("tool", "vitis_hls")),
                "tool_version": str(rec.get("tool_version", "2023.2")),
                "part": str(hls.get("Part", WA_PART)),
                "clock_ns": float(lat.get("target_clock", hls.get("ClockPeriod", 5.0))),
                "lut": float(res["lut"]),
                "ff": float(res["ff"]),
                "dsp": float(res["dsp"]),
                "bram": float(res["bram"]),
                "latency_cycles": float(lat["cycles_max"]),
                "ii": float(lat["interval_max"]),
                "source": path.name,
            }
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a wa-hls4ml JSON record ({type(e).__name__}: {e})") from None
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def is_test(model_ids: pd.Series) -> np.ndarray:
    """The architecture split: an architecture is in the test split when sha256 of its id is 0 mod 10."""
    return model_ids.map(lambda s: int(hashlib.sha256(str(s).encode()).hexdigest(), 16) % 10 == 0).to_numpy()


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    table = pa.Table.from_pandas(df[list(COLUMNS)], preserve_index=False)
    table = table.replace_schema_metadata({"qfx_surrogate_schema": str(SCHEMA_VERSION)})
    pq.write_table(table, str(path))


def read_parquet(path: str | Path) -> pd.DataFrame:
    table = pq.read_table(str(path))
    version = (table.schema.metadata or {}).get(b"qfx_surrogate_schema")
    if version != str(SCHEMA_VERSION).encode():
        raise ValueError(f"{path}: not a qfx surrogate dataset of schema {SCHEMA_VERSION} (found {version!r})")
    return table.to_pandas()


def load(paths: list[str | Path]) -> pd.DataFrame:
    """Any mix of Parquet datasets, wa-hls4ml CSVs and folders of wa-hls4ml JSON records."""
    frames = []
    for p in map(Path, paths):
        if p.is_dir():
            frames.append(read_wa_json(sorted(p.rglob("*.json"))))
        elif p.suffix == ".parquet":
            frames.append(read_parquet(p))
        elif p.suffix == ".csv":
            frames.append(read_wa_csv(p))
        elif p.suffix == ".json":
            frames.append(read_wa_json([p]))
        else:
            raise ValueError(f"{p}: not a .parquet, .csv, .json or folder of JSON records")
    return pd.concat(frames, ignore_index=True)
