"""Golden files for `replay` (tests/testdata/replay/<case>/, see its README): input in, the expected
`sli.jsonl` and `incidents.jsonl` out. `TP_UPDATE_GOLDEN=1` rewrites the expected files instead."""

from __future__ import annotations

from pathlib import Path

import orjson

from telemetry_pipeline.config import load_config
from telemetry_pipeline.replay import INCIDENTS_FILE, SLI_FILE, run_replay
from tests.golden import check_golden

CASES = Path(__file__).resolve().parent / "testdata" / "replay"
COMPARED = (SLI_FILE, INCIDENTS_FILE)


def _replay(case: str, out: Path) -> dict[str, bytes]:
    folder = CASES / case
    run_replay(load_config(folder / "config.yaml", environ={}), [folder / "input.jsonl.gz"], out)
    produced = {name: (out / name).read_bytes() for name in COMPARED}
    check_golden(folder, produced, case)
    return produced


def _events(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines()]


def test_an_error_spike_pages_then_resolves(tmp_path: Path) -> None:
    events = _events(_replay("error_spike", tmp_path)[INCIDENTS_FILE])
    pages = [e for e in events if e["action"] == "trigger" and e["routing"] == "page"]
    assert [(e["type"], e["service"]) for e in pages] == [("slo_burn_rate", "frontend")]
    [page] = pages
    # The spike starts at 00:15: paged within 5 minutes of event time.
    assert "2026-01-01T00:15:00Z" < page["observed_at"] <= "2026-01-01T00:20:00Z"
    resolves = [e for e in events if e["action"] == "resolve" and e["dedup_key"] == page["dedup_key"]]
    assert len(resolves) == 1 and resolves[0]["resolved_at"] > "2026-01-01T00:19:00Z"
    assert page["labels"]["owner"] == "team-web" and page["links"]["runbook"].endswith("/frontend")


def test_a_steady_run_raises_no_incident(tmp_path: Path) -> None:
    events = _events(_replay("steady", tmp_path)[INCIDENTS_FILE])
    assert events == [], [(e["action"], e["type"], e["service"]) for e in events]
