"""`replay` over the protocol's own examples: the six contract files, byte-identical across runs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson

from telemetry_pipeline.cli import main
from telemetry_pipeline.otlp import decode_json_line

EXAMPLES = Path(__file__).resolve().parents[1] / "src/telemetry_pipeline/otlp/tests/data"
CONTRACT_FILES = ["traces.jsonl", "metrics.jsonl", "logs.jsonl", "sli.jsonl", "incidents.jsonl", "dlq.jsonl"]


def _inputs(tmp_path: Path) -> list[Path]:
    """The examples as OTLP/JSON Lines (one object per line), one of them gzipped, plus a bad line."""
    lines = [json.dumps(json.loads((EXAMPLES / name).read_text())) for name in ("trace.json", "logs.json")]
    plain = tmp_path / "in.jsonl"
    plain.write_text(lines[0] + "\n\n" + lines[1] + "\n" + '{"resourceWidgets": []}\n')
    zipped = tmp_path / "metrics.jsonl.gz"
    with gzip.open(zipped, "wt") as handle:
        handle.write(json.dumps(json.loads((EXAMPLES / "metrics.json").read_text())) + "\n")
    return [plain, zipped]


def _run(inputs: list[Path], out: Path) -> dict[str, bytes]:
    assert main(["replay", "--out", str(out), *map(str, inputs)]) == 0
    return {name: (out / name).read_bytes() for name in CONTRACT_FILES}


def test_replay_writes_the_six_files_deterministically(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    first = _run(inputs, tmp_path / "a")
    second = _run(inputs, tmp_path / "b")
    assert first == second

    for name, key in (
        ("traces.jsonl", "resourceSpans"),
        ("logs.jsonl", "resourceLogs"),
        ("metrics.jsonl", "resourceMetrics"),
    ):
        [line] = first[name].splitlines()
        assert key in orjson.loads(line)
        decode_json_line(line)  # the output is valid OTLP/JSON of the same signal
    [dead] = first["dlq.jsonl"].splitlines()
    rejected = orjson.loads(dead)
    assert rejected["source"].endswith("in.jsonl:4")
    assert "none of resourceSpans" in rejected["reason"]
    assert first["sli.jsonl"], "the example's server span must produce SLI snapshots"


def test_replay_keeps_ids_and_structure(tmp_path: Path) -> None:
    first = _run(_inputs(tmp_path), tmp_path / "out")
    _, traces = decode_json_line(first["traces.jsonl"].splitlines()[0])
    span = traces.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.parent_span_id.hex() == "eee19b7ec3c1b173"
    assert span.start_time_unix_nano == 1544712660000000000
