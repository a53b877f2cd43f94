"""One-time work happens in `create_app`, before the worker joins its group: the first records after
the join must not wait for it (the start-up tail of a paced run, benchmarks/README.md, "Latency")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust

from telemetry_pipeline.app.context_sources import CompactedTopicFollower
from telemetry_pipeline.app.worker import create_app
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.redaction.detectors import rule_database


def _app(tmp_path: Path) -> faust.App:
    config = PipelineConfig.model_validate({"worker": {"data_dir": str(tmp_path), "metrics_port": None}})

    async def built() -> faust.App:
        return create_app(config)

    return asyncio.run(built())


def test_the_service_token_rule_database_is_compiled_when_the_app_is_built(tmp_path: Path) -> None:
    rule_database.cache_clear()
    _app(tmp_path)
    assert rule_database.cache_info().currsize == 1, "left to the first record that needs it"


def test_the_context_followers_start_with_the_app_not_after_table_recovery(tmp_path: Path) -> None:
    app = _app(tmp_path)
    config = PipelineConfig()
    followed = {child.topic for child in app._children if isinstance(child, CompactedTopicFollower)}
    assert followed == {
        config.context.user_context_topic,
        config.context.service_catalog_topic,
        config.topics.maintenance,
    }
    # Faust starts `app.service` instances only once the tables are recovered, after the join.
    assert not any(isinstance(service, CompactedTopicFollower) for service in app._extra_services)
