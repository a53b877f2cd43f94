"""Repeated log lines: the first passes (explained when known), repeats are counted, not written."""

from __future__ import annotations

import logging

import pytest

from telemetry_pipeline.app.lograte import RepeatSummary


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.client", level, __file__, 1, message, args, None)


def test_a_retry_storm_becomes_one_line_then_one_count_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr("telemetry_pipeline.app.lograte.time.monotonic", clock)
    summary = RepeatSummary(interval_s=10)
    passed = []
    for second in range(30):  # 2,900 a second, as aiokafka's metadata retry during an outage
        clock.now = 1000.0 + second
        for _ in range(2900):
            record = _record('Unable connect to "%s:%s": %s', "127.0.0.1", 9092, "refused")
            if summary.filter(record):
                passed.append(record.getMessage())
    assert len(passed) == 3, passed
    assert passed[0] == 'Unable connect to "127.0.0.1:9092": refused'
    assert passed[1].endswith(f"[and {10 * 2900 - 1} more like it in the last 10s]")


def test_known_warnings_are_explained_once_and_info_lines_pass() -> None:
    summary = RepeatSummary(interval_s=10)
    first = _record("Coordinator load in progress (attempt 1)", level=logging.WARNING)
    assert summary.filter(first)
    assert "the client retries by itself" in first.getMessage()
    assert not summary.filter(_record("Coordinator load in progress (attempt 2)", level=logging.WARNING))
    assert summary.filter(_record("same text %s", 1, level=logging.INFO))
    assert summary.filter(_record("same text %s", 1, level=logging.INFO))


def test_a_malformed_record_passes_untouched() -> None:
    record = _record("no placeholder", "but an argument")
    assert RepeatSummary().filter(record)
    assert record.args == ("but an argument",)
