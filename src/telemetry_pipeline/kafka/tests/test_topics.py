"""Topic files and `apply`: what is declared, and idempotent create / raise / alter on the real broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from telemetry_pipeline.kafka import topics

REPO_TOPICS = Path(__file__).resolve().parents[4] / "topics"
DESIGN_TOPICS = {
    "otlp_spans", "otlp_metrics", "otlp_logs", "otlp_spans.clean", "otlp_metrics.clean", "otlp_logs.clean",
    "user-context", "service-catalog", "sli", "sli-partials", "incidents", "telemetry.dlq", "maintenance",
}


def test_shipped_topic_files_declare_the_design_topics() -> None:
    specs = {spec.name: spec for spec in topics.load_specs(topics.default_topics_dir())}
    assert set(specs) == DESIGN_TOPICS
    for name in ("user-context", "service-catalog", "maintenance"):
        assert specs[name].config["cleanup.policy"] == "compact"
    for signal in ("spans", "metrics", "logs"):
        assert specs[f"otlp_{signal}"].partitions == specs[f"otlp_{signal}.clean"].partitions == 4
    # Co-partitioned with the worker's sli-state table (WorkerConfig.table_partitions).
    assert specs["sli-partials"].partitions == specs["otlp_spans"].partitions


def test_the_package_reaches_the_repository_topic_files() -> None:
    shipped = sorted(path.name for path in topics.default_topics_dir().glob("*.yaml"))
    assert shipped == sorted(path.name for path in REPO_TOPICS.glob("*.yaml"))


def test_load_specs_coerces_config_values_and_rejects_mistakes(tmp_path: Path) -> None:
    # YAML gives an int and a boolean (`yes`); Kafka wants "1000" and "true".
    (tmp_path / "a.yaml").write_text("name: a\npartitions: 2\nconfig: {retention.ms: 1000, preallocate: yes}")
    [spec] = topics.load_specs(tmp_path)
    assert (spec.partitions, spec.replication_factor) == (2, 1)
    assert spec.config == {"retention.ms": "1000", "preallocate": "true"}

    (tmp_path / "b.yaml").write_text("name: a\n")
    with pytest.raises(topics.TopicError, match=r"declared twice .*: a$"):
        topics.load_specs(tmp_path)
    (tmp_path / "b.yaml").write_text("name: b\npartition: 3\n")
    with pytest.raises(topics.TopicError, match=r"b\.yaml"):
        topics.load_specs(tmp_path)
    (tmp_path / "b.yaml").write_text("name: has space\n")
    with pytest.raises(topics.TopicError, match=r"b\.yaml"):
        topics.load_specs(tmp_path)
    with pytest.raises(topics.TopicError, match="no topic files"):
        topics.load_specs(tmp_path / "missing")


def _described(bootstrap: str, name: str) -> tuple[int, dict[str, str]]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = len(admin.list_topics(name, timeout=10).topics[name].partitions)
    [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name)]).values()
    return partitions, {key: entry.value for key, entry in future.result().items()}


@pytest.mark.kafka
def test_apply_is_idempotent_raises_partitions_and_alters_configs(kafka_bootstrap: str) -> None:
    prefix = f"apply-{uuid.uuid4().hex[:8]}-"
    specs = topics.load_specs(topics.default_topics_dir())
    names = [prefix + spec.name for spec in specs]
    try:
        first = topics.apply(kafka_bootstrap, specs, name_prefix=prefix)
        assert sorted(first.created) == sorted(names) and first.changed
        assert _described(kafka_bootstrap, prefix + "user-context")[1]["cleanup.policy"] == "compact"
        assert _described(kafka_bootstrap, prefix + "otlp_spans")[0] == 4

        second = topics.apply(kafka_bootstrap, specs, name_prefix=prefix)
        assert not second.changed
        assert sorted(second.unchanged) == sorted(names)

        edited = [
            spec.model_copy(update={"partitions": 3, "config": {**spec.config, "retention.ms": "3600000"}})
            if spec.name == "sli" else spec
            for spec in specs
        ]
        third = topics.apply(kafka_bootstrap, edited, name_prefix=prefix)
        assert third.partitions_raised == {prefix + "sli": (1, 3)}
        assert third.configs_altered == {prefix + "sli": {"retention.ms": "3600000"}}
        assert _described(kafka_bootstrap, prefix + "sli")[0] == 3
        assert _described(kafka_bootstrap, prefix + "sli")[1]["retention.ms"] == "3600000"
        assert not topics.apply(kafka_bootstrap, edited, name_prefix=prefix).changed

        # Back to the file: the config follows, the partition count cannot shrink and says so.
        fourth = topics.apply(kafka_bootstrap, specs, name_prefix=prefix)
        assert fourth.configs_altered == {prefix + "sli": {"retention.ms": "604800000"}}
        assert not fourth.partitions_raised
        assert [warning.split(" ", 1)[0] for warning in fourth.warnings] == [prefix + "sli"]
    finally:
        topics.delete_topics(kafka_bootstrap, names)
    remaining = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert not set(names) & set(remaining)


@pytest.mark.kafka
def test_partitions_override_applies_to_every_topic(kafka_bootstrap: str) -> None:
    prefix = f"override-{uuid.uuid4().hex[:8]}-"
    specs = [topics.TopicSpec(name="one"), topics.TopicSpec(name="four", partitions=4)]
    try:
        report = topics.apply(kafka_bootstrap, specs, partitions=2, name_prefix=prefix)
        assert sorted(report.created) == [prefix + "four", prefix + "one"]
        assert [_described(kafka_bootstrap, prefix + name)[0] for name in ("one", "four")] == [2, 2]
    finally:
        topics.delete_topics(kafka_bootstrap, [prefix + "one", prefix + "four"])
