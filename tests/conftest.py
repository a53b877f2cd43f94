"""Fixtures for the whole test suite: the real local broker and per-test topics (see the module)."""

from telemetry_pipeline.kafka.tests.fixtures import fresh_topics, kafka_bootstrap, kafka_secure

__all__ = ["fresh_topics", "kafka_bootstrap", "kafka_secure"]
