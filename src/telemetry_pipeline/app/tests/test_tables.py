"""A table's changelog records, taken by the shell instead of sent by Faust one per write."""

from __future__ import annotations

from pathlib import Path

import faust

from telemetry_pipeline.app.worker import create_app
from telemetry_pipeline.config import PipelineConfig


def _app(tmp_path: Path) -> faust.App:
    config = {"worker": {"data_dir": str(tmp_path), "metrics_port": None}}
    return create_app(PipelineConfig.model_validate(config))


def test_the_changes_are_one_record_per_key_with_its_newest_value_or_a_tombstone(tmp_path: Path) -> None:
    table = _app(tmp_path).tables["trace-context"]
    table["a"] = (2, 1, "frontend")
    table["b"] = (2, 1, "checkout")
    table["a"] = (2, 5, "frontend")  # written twice in a run: its newest value only
    table["c"] = (2, 1, "cart")
    del table["c"]
    records = table.take_changes()
    assert [(r.topic, r.key, r.value) for r in records] == [
        ("telemetry-pipeline-trace-context-changelog", b"a", b'[2,5,"frontend"]'),
        ("telemetry-pipeline-trace-context-changelog", b"b", b'[2,1,"checkout"]'),
        ("telemetry-pipeline-trace-context-changelog", b"c", None),
    ]
    assert dict(table) == {"a": (2, 5, "frontend"), "b": (2, 1, "checkout")}  # the table itself as written
    assert table.take_changes() == []


def test_raw_values_go_out_as_they_are(tmp_path: Path) -> None:
    table = _app(tmp_path).tables["sli-state"]
    value = b'{"v":3}'
    table["checkout"] = value
    (record,) = table.take_changes()
    assert record.value is value
