"""The worker's maintenance windows: config windows plus the `maintenance` topic's records."""

from __future__ import annotations

import logging

import pytest

from telemetry_pipeline.app.worker import MaintenanceWindows
from telemetry_pipeline.detection import MaintenanceWindow

CONFIGURED = MaintenanceWindow(
    id="mw-config", services=["billing"], start="2026-10-03T13:50:00Z", end="2026-10-03T14:40:00Z"
)
VALUE = {"services": ["checkout"], "start": "2026-10-03T15:00:00Z", "end": "2026-10-03T16:00:00Z"}


def test_topic_records_open_replace_and_withdraw_windows() -> None:
    seen: list[list[str]] = []
    windows = MaintenanceWindows([CONFIGURED], lambda ws: seen.append(sorted(w.id for w in ws)))
    windows.apply("mw-topic", VALUE)
    windows.apply("mw-config", {**VALUE, "services": ["*"]})  # the topic's replaces the config's
    assert {w.id: w.services for w in windows.windows()} == {"mw-config": ["*"], "mw-topic": ["checkout"]}
    windows.apply("mw-topic", None)
    windows.apply("mw-config", None)  # withdrawn from the topic: the config's is in force again
    assert windows.windows() == [CONFIGURED]
    assert seen == [["mw-config", "mw-topic"]] * 2 + [["mw-config"]] * 2


def test_an_invalid_record_is_skipped_by_field_without_its_values(caplog: pytest.LogCaptureFixture) -> None:
    seen: list = []
    windows = MaintenanceWindows([], seen.append)
    with caplog.at_level(logging.WARNING):
        windows.apply("mw-bad", {**VALUE, "end": "2026-10-03T14:00:00Z", "note": "secret-token-123"})
        windows.apply(
            "mw-bad", {"services": ["x"], "start": "not a time 4111111111111111", "end": VALUE["end"]}
        )
    assert windows.windows() == [] and seen == []
    assert "mw-bad" in caplog.text and "note" in caplog.text and "start" in caplog.text
    assert "secret-token-123" not in caplog.text and "4111111111111111" not in caplog.text
