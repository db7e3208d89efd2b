"""`qfx serve`: the surrogates over HTTP (FastAPI). POST /v1/estimate takes an ONNX upload (multipart
field `model`, optional `board`) or JSON layers; GET /v1/boards, /health, /docs and a page at /."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from qfx import boards
from qfx.hls.graph import parse
from qfx.surrogate.estimate import DEFAULT_MODEL, capacity, estimate, estimators
from qfx.surrogate.graph import build, from_onnx

MAX_UPLOAD = 16 * 1024 * 1024
PAGE = Path(__file__).resolve().parent / "page.html"

app = FastAPI(title="qfx surrogate", version="1", description="Resource and latency estimates before synthesis")


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": reason})


def _graph_from_json(body: dict[str, Any]):
    if not isinstance(body, dict) or "layers" not in body:
        raise ValueError('the JSON body needs "layers": a list of layer objects')
    return build(
        body["layers"],
        str(body.get("strategy", "latency")),
        str(body.get("io_type", "io_parallel")),
        int(body.get("reuse", 1)),
        float(body.get("clock_ns", 5.0)),
        boards.get(str(body.get("board", "ultra96v2"))).part,
    )


@app.post("/v1/estimate")
async def post_estimate(request: Request) -> JSONResponse:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_UPLOAD:
        return _error(413, f"upload of {int(length)} bytes is over the {MAX_UPLOAD} byte limit")
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        return _error(413, f"upload of {len(body)} bytes is over the {MAX_UPLOAD} byte limit")
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("model")
            if upload is None or isinstance(upload, str):
                raise ValueError('multipart upload needs the ONNX file in field "model"')
            board = str(form.get("board") or "ultra96v2")
            part = boards.get(board).part
            proto = parse(await upload.read(), f"upload {upload.filename or 'model'}")
            graph = await run_in_threadpool(lambda: from_onnx(proto, part=part))
        elif ctype.startswith("application/json"):
            try:
                parsed = json.loads(body)
            except json.JSONDecodeError as e:
                raise ValueError(f"malformed JSON: {e}") from None
            board = str(parsed.get("board", "ultra96v2")) if isinstance(parsed, dict) else "ultra96v2"
            graph = _graph_from_json(parsed)
        else:
            return _error(415, "send multipart/form-data (field model) or application/json (layers)")
        result = await run_in_threadpool(estimate, graph, board, DEFAULT_MODEL)
    except ValueError as e:
        return _error(422, str(e))
    return JSONResponse(result)


@app.get("/v1/boards")
def get_boards() -> dict[str, Any]:
    return {b.name: {"part": b.part, **capacity(b), "clock_ns": b.clock_ns} for b in boards.all_boards().values()}


@app.get("/health")
def health() -> dict[str, Any]:
    ests, meta = estimators()
    return {"status": "ok", "models": sorted(ests), "trained_on": meta.get("data", [])}


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return PAGE.read_text()
