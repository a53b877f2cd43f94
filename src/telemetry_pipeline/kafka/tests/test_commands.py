"""The `broker` and `topics` subcommands, through the real `telemetry-pipeline` entry point."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from telemetry_pipeline.cli import main
from telemetry_pipeline.kafka import broker, topics
from telemetry_pipeline.kafka.commands import BOOTSTRAP_ENV


@pytest.mark.kafka
def test_broker_start_status_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = str(broker.free_port())
    try:
        assert main(["broker", "start", "--port", port, "--data-dir", str(tmp_path)]) == 0
        assert f"broker started at 127.0.0.1:{port}" in capsys.readouterr().out
        assert main(["broker", "status", "--port", port, "--data-dir", str(tmp_path)]) == 0
        assert f"broker running at 127.0.0.1:{port}" in capsys.readouterr().out
    finally:
        assert main(["broker", "stop", "--port", port, "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "broker stopped"
    assert main(["broker", "status", "--data-dir", str(tmp_path)]) == 1


@pytest.mark.kafka
def test_topics_apply_takes_the_bootstrap_from_the_environment(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.yaml").write_text(f"name: {name}\npartitions: 2\n")
    monkeypatch.setenv(BOOTSTRAP_ENV, kafka_bootstrap)
    try:
        assert main(["topics", "apply", "--dir", str(tmp_path), "--partitions", "3"]) == 0
        assert capsys.readouterr().out.startswith("created 1,")
        metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(name, timeout=10)
        assert len(metadata.topics[name].partitions) == 3
        assert main(["topics", "apply", "--dir", str(tmp_path), "--bootstrap", kafka_bootstrap]) == 0
        summary, warning = capsys.readouterr().out.splitlines()
        assert summary == "created 0, partitions raised 0, configs altered 0, unchanged 1"
        assert warning.startswith(f"warning: {name} has 3 partitions, its file asks for 2")
    finally:
        topics.delete_topics(kafka_bootstrap, [name])


