"""Labelled synthesis reports as one table: readers for wa-hls4ml's CSV and JSON records, the
architecture split, and the versioned Parquet format every flow's reports share."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import ijson
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
# hls4ml's default precision, ap_fixed<16,6>, for a layer or record that names none
DEFAULT_BITS = 16
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


# wa-hls4ml's JSON records (one per file, or merged into one array per split and subset) carry
# model_config as rule4ml writes it: a flat list of Keras layers with shapes, parameter counts and the
# reuse factor hls4ml actually used. Report values are strings; an empty report is a run whose synthesis
# did not finish: missing, never zero.
_SKIPPED_LAYERS = ("InputLayer", "Flatten", "Dropout", "Reshape")
_POOLS = (
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
)


def _bits(precision: object) -> int | None:
    """The total width of an hls4ml precision string (ap_fixed<16, 6>, fixed<8,1,RND,SAT>, ap_int<8>)."""
    if isinstance(precision, dict):
        precision = precision.get("default") or precision.get("weight") or precision.get("result")
    match = re.search(r"(?:fixed|int)<\s*(\d+)", str(precision))
    return int(match.group(1)) if match else None


def _size(shape: object) -> int:
    """Elements per sample of a Keras shape (batch dimension first, None allowed)."""
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        shape = shape[0]  # Keras 2 gives an InputLayer's shape as a list of one shape
    return int(np.prod([d for d in shape[1:] if d is not None])) if shape else 1


def _activation(name: str) -> str | None:
    name = name.lower()
    if name.startswith(("relu", "quantized_relu")):
        return "relu"
    # linear and quantized_bits activations only requantize, and hls4ml's optimizers fold them away
    return None if name.startswith(("linear", "quantized_bits")) else "activation"


def rule4ml_layers(model_config: list, hls_config: dict) -> list[dict]:
    """Graph-builder layers from a record's model_config, with bits from hls_config (per layer where
    LayerName names one, else the model's precision)."""
    model = hls_config.get("Model", {})
    default_bits = _bits(model.get("Precision")) or DEFAULT_BITS
    by_name = hls_config.get("LayerName", {})
    layers: list[dict] = []
    for i, layer in enumerate(model_config):
        kind = str(layer.get("class_name", ""))
        named = by_name.get(layer.get("name"), {}).get("Precision", {})
        named = named if isinstance(named, dict) else {"weight": named, "result": named}
        w_bits = _bits(named.get("weight")) or default_bits
        a_bits = _bits(named.get("result")) or default_bits
        n_in, n_out = _size(layer.get("input_shape")), _size(layer.get("output_shape"))
        reuse = int(layer.get("reuse_factor") or model.get("ReuseFactor", 1))
        base = {"n_in": n_in, "n_out": n_out, "act_bits": a_bits}
        if kind in ("Dense", "QDense"):
            out = int(layer.get("neurons") or n_out)
            layers.append({**base, "type": "dense", "n_out": out, "weight_bits": w_bits, "reuse": reuse})
        elif kind in ("Conv1D", "Conv2D", "QConv1D", "QConv2D"):
            channels = int(layer["input_shape"][-1])
            filters = int(layer.get("filters") or layer["output_shape"][-1])
            kernel = layer.get("kernel_size")
            if kernel:
                kernel = int(np.prod(kernel))
            else:  # parameters = (kernel * channels + bias) * filters
                kernel = (int(layer["parameters"]) // filters - int(layer.get("use_bias", True))) // channels
            positions = int(np.prod([d for d in layer["output_shape"][1:-1] if d is not None]))
            layers.append(
                {
                    **base,
                    "type": "conv",
                    "n_in": channels,
                    "n_out": filters,
                    "kernel": kernel,
                    "positions": positions,
                    "weight_bits": w_bits,
                    "reuse": reuse,
                }
            )
        elif kind in ("Activation", "QActivation", "ReLU", "Softmax"):
            act = _activation(str(layer.get("activation", kind)))
            if act:
                layers.append({**base, "type": act})
        elif kind in ("BatchNormalization", "QBatchNormalization"):
            layers.append({**base, "type": "batchnorm"})
        elif kind in _POOLS:
            layers.append({**base, "type": "pool"})
        elif kind == "Add":
            layers.append({**base, "type": "add"})
        elif kind not in _SKIPPED_LAYERS:
            raise ValueError(f"layer {i} ({layer.get('name', '?')}) of class {kind!r} is not read")
    if not layers:
        raise ValueError("model_config has no layers")
    return layers


def architecture(layers: list[dict]) -> str:
    """An architecture's id, without precision or reuse: a dense chain's widths joined by '-' (the CSV's
    model_string, so one architecture splits alike from either source; activations between the layers
    stay in one group), else each layer's shape."""
    if all(layer["type"] in ("dense", "relu", "activation") for layer in layers):
        dense = [layer for layer in layers if layer["type"] == "dense"]
        return "-".join(map(str, [dense[0]["n_in"], *(layer["n_out"] for layer in dense)]))
    return "|".join(
        f"{layer['type']}:{layer['n_in']}:{layer['n_out']}:{layer.get('kernel', 1)}:{layer.get('positions', 1)}"
        for layer in layers
    )


def _number(report: dict, key: str) -> float:
    value = report.get(key)
    return float(value) if value not in (None, "") else float("nan")


def _wa_record(rec: dict, resource_key: str) -> dict | None:
    res, lat = rec.get(resource_key) or {}, rec.get("latency_report") or {}
    if not res or not lat:
        return None
    hls = rec["hls_config"]
    model = hls.get("Model", {})
    layers = rule4ml_layers(rec["model_config"], hls)
    version = str(rec.get("vivado_version") or rec.get("backend_version") or "")
    hls_tool = "vitis_hls" if version >= "2020.2" else "vivado_hls"
    return {
        "model_id": architecture(layers),
        "layers": json.dumps(layers),
        "strategy": str(model.get("Strategy", "latency")).lower(),
        "io_type": str(hls.get("io_type") or hls.get("IOType") or "io_parallel").lower(),
        "reuse": int(model.get("ReuseFactor", 1)),
        "precision": _bits(model.get("Precision")) or DEFAULT_BITS,
        "tool": "vivado" if resource_key == "resource_report" else hls_tool,
        "tool_version": version,
        "part": str(rec.get("target_part", WA_PART)),
        "clock_ns": float(hls.get("clock_period") or lat.get("target_clock") or 5.0),
        "lut": _number(res, "lut"),
        "ff": _number(res, "ff"),
        "dsp": _number(res, "dsp"),
        "bram": _number(res, "bram"),
        "latency_cycles": _number(lat, "cycles_max"),
        "ii": _number(lat, "interval_max"),
    }


def _records(path: Path) -> Iterator[tuple[str, dict | None]]:
    """(where, record) for each record of a file; a merged array is streamed, since the released ones run to
    hundreds of megabytes."""
    try:
        with path.open("rb") as f:
            array = f.read(256).lstrip().startswith(b"[")
            f.seek(0)
            if not array:
                yield str(path), json.load(f)
                return
            for i, rec in enumerate(ijson.items(f, "item", use_float=True)):
                yield f"{path} record {i}", rec
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ijson.JSONError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None


def read_wa_json(paths: Iterable[str | Path], resource_key: str = "resource_report") -> pd.DataFrame:
    """wa-hls4ml's JSON records: a file holds one record or an array of them. Resources come from
    `resource_key`: resource_report (Vivado logic synthesis, the benchmark's truth) or hls_resource_report
    (the HLS estimate); records without reports are skipped and counted in attrs["skipped"]."""
    if resource_key not in ("resource_report", "hls_resource_report"):
        raise ValueError(f"resource_key {resource_key!r} is neither resource_report nor hls_resource_report")
    rows, skipped = [], 0
    for path in map(Path, paths):
        for where, rec in _records(path):
            if rec is None:
                continue  # the merged arrays hold a few null entries
            try:
                row = _wa_record(rec, resource_key)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            except (KeyError, IndexError, TypeError, AttributeError) as e:
                raise ValueError(f"{where}: not a wa-hls4ml record ({type(e).__name__}: {e})") from None
            if row is None:
                skipped += 1
                continue
            rows.append(row | {"source": path.name})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df.attrs["skipped"] = skipped
    return df


def is_test(model_ids: pd.Series) -> np.ndarray:
    """The architecture split: an architecture is in the test split when sha256 of its id is 0 mod 10."""
    return model_ids.map(lambda s: int(hashlib.sha256(str(s).encode()).hexdigest(), 16) % 10 == 0).to_numpy()


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    """The table as a schema-versioned Parquet file, written beside and renamed: never half-written."""
    path = Path(path)
    table = pa.Table.from_pandas(df[list(COLUMNS)], preserve_index=False)
    table = table.replace_schema_metadata({"qfx_surrogate_schema": str(SCHEMA_VERSION)})
    partial = path.with_name(f".{path.name}.partial")
    try:
        pq.write_table(table, str(partial))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def read_parquet(path: str | Path) -> pd.DataFrame:
    table = pq.read_table(str(path))
    version = (table.schema.metadata or {}).get(b"qfx_surrogate_schema")
    if version != str(SCHEMA_VERSION).encode():
        raise ValueError(f"{path}: not a qfx surrogate dataset of schema {SCHEMA_VERSION} (found {version!r})")
    return table.to_pandas()


def load(paths: list[str | Path], resource_key: str = "resource_report") -> pd.DataFrame:
    """Any mix of Parquet datasets, wa-hls4ml CSVs, and wa-hls4ml JSON files or folders of them (resources
    from `resource_key`; see read_wa_json). attrs["skipped"] counts the records without reports."""
    frames = []
    for p in map(Path, paths):
        if p.is_dir():
            frames.append(read_wa_json(sorted(p.rglob("*.json")), resource_key))
        elif p.suffix == ".parquet":
            frames.append(read_parquet(p))
        elif p.suffix == ".csv":
            frames.append(read_wa_csv(p))
        elif p.suffix == ".json":
            frames.append(read_wa_json([p], resource_key))
        else:
            raise ValueError(f"{p}: not a .parquet, .csv, .json or folder of JSON records")
    df = pd.concat(frames, ignore_index=True)
    df.attrs["skipped"] = sum(f.attrs.get("skipped", 0) for f in frames)
    return df
