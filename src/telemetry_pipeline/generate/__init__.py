"""Synthetic OTLP load for a small microservice estate: traces, logs, metrics and context tables.

Deterministic for a seed (with a fixed start time): the same config gives byte-identical messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from telemetry_pipeline.generate.config import GeneratorConfig, OutputTopics
from telemetry_pipeline.generate.estate import GATEWAY_SPEC, build_users, catalog_entry, traced_services
from telemetry_pipeline.generate.model import GeneratedMessage, TrafficModel
from telemetry_pipeline.generate.sinks import (
    context_lines,
    produce_context,
    produce_kafka,
    write_context_files,
    write_jsonl,
)


def iter_messages(config: GeneratorConfig | None = None) -> Iterator[GeneratedMessage]:
    """The run's messages in event-time order (per signal), lazily."""
    return TrafficModel(config or GeneratorConfig()).messages()


def context_records(
    config: GeneratorConfig | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(users: user id -> {tenant, plan, region}, services: service.name -> catalog entry)."""
    config = config or GeneratorConfig()
    users = {
        u.id: {"tenant": u.tenant, "plan": u.plan, "region": u.region}
        for u in build_users(config.seed, config.users, config.tenants)
    }
    specs = traced_services(config.services) + ([GATEWAY_SPEC] if config.metrics_only_service else [])
    return users, {spec.name: catalog_entry(spec) for spec in specs}


__all__ = [
    "GeneratedMessage",
    "GeneratorConfig",
    "OutputTopics",
    "context_lines",
    "context_records",
    "iter_messages",
    "produce_context",
    "produce_kafka",
    "write_context_files",
    "write_jsonl",
]
