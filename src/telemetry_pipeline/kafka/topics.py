"""Topics as code: one YAML file per topic under `topics/`, applied idempotently with the AdminClient.

`apply` creates missing topics, raises partition counts the files ask to raise and sets the configs
the files name (incrementally: settings not named in a file are left alone). It never deletes a
topic nor lowers a partition count (Kafka cannot); a topic with more partitions than its file is
reported as a warning.

The files live in the repository's `topics/` directory; the package reaches them through the
`topic_files` symlink beside this module, which also ships them inside an installed wheel.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from telemetry_pipeline.config import describe_validation_error, describe_yaml_error
from telemetry_pipeline.kafka.connection import librdkafka_settings

if TYPE_CHECKING:
    from telemetry_pipeline.config import KafkaConfig

TOPICS_DIR_NAME = "topic_files"
REQUEST_TIMEOUT_S = 30.0


def _config_value(value: object) -> str:
    # Kafka configs are strings; YAML gives ints and booleans (`true` must become "true", not "True").
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class TopicSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    partitions: int = Field(1, gt=0)
    replication_factor: int = Field(1, gt=0)
    config: dict[str, Annotated[str, BeforeValidator(_config_value)]] = {}


class TopicError(RuntimeError):
    """A topic file is invalid, or the broker refused a change (the message names the topics)."""


class TopicFileError(TopicError):
    """The topic files are missing or invalid: the user's to fix (the message names the file, never
    its text)."""


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    partitions_raised: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (before, after)
    configs_altered: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> settings set
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.partitions_raised or self.configs_altered)

    def __str__(self) -> str:
        parts = [
            f"created {len(self.created)}",
            f"partitions raised {len(self.partitions_raised)}",
            f"configs altered {len(self.configs_altered)}",
            f"unchanged {len(self.unchanged)}",
        ]
        return ", ".join(parts) + "".join(f"\nwarning: {warning}" for warning in self.warnings)


def default_topics_dir() -> Path:
    return Path(__file__).resolve().parent / TOPICS_DIR_NAME


def load_specs(directory: Path) -> list[TopicSpec]:
    """Every `*.yaml` file in `directory` (one topic each), sorted by file name."""
    paths = sorted(Path(directory).glob("*.yaml"))
    if not paths:
        raise TopicFileError(f"no topic files (*.yaml) in {directory}")
    specs: list[TopicSpec] = []
    for path in paths:
        try:
            specs.append(TopicSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))))
        except yaml.YAMLError as exc:
            raise TopicFileError(f"{path}: {describe_yaml_error(exc)}") from None
        except ValidationError as exc:
            raise TopicFileError(f"{path}: {describe_validation_error(exc)}") from None
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TopicFileError(f"topics declared twice in {directory}: {', '.join(duplicates)}")
    return specs


def apply(
    kafka: KafkaConfig | str, specs: Iterable[TopicSpec], *, partitions: int | None = None,
    name_prefix: str = "",
) -> ApplyReport:
    """Make the topics match `specs` (named `name_prefix + name`); `partitions` overrides every count.
    `kafka`: the connection settings, or a PLAINTEXT address (`kafka.connection.librdkafka_settings`)."""
    wanted = {
        name_prefix + spec.name: spec.model_copy(update={
            "name": name_prefix + spec.name, "partitions": partitions or spec.partitions,
        })
        for spec in specs
    }
    admin = _admin(kafka)
    try:
        served = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
    except KafkaException as exc:
        address = kafka if isinstance(kafka, str) else kafka.bootstrap_servers
        raise TopicError(f"cannot reach Kafka at {address}: {exc.args[0].str()}") from None
    existing = {name: len(topic.partitions) for name, topic in served.items() if name in wanted}
    report = ApplyReport()
    missing = [spec for name, spec in wanted.items() if name not in existing]
    if missing:
        new_topics = [NewTopic(spec.name, spec.partitions, spec.replication_factor, config=dict(spec.config))
                      for spec in missing]
        # A concurrent apply may have created it meanwhile: same files, same result.
        _wait(admin.create_topics(new_topics, request_timeout=REQUEST_TIMEOUT_S), "create",
              tolerate=KafkaError.TOPIC_ALREADY_EXISTS)
        report.created = [spec.name for spec in missing]

    present = [spec for name, spec in wanted.items() if name in existing]
    grow = {spec.name: (existing[spec.name], spec.partitions) for spec in present
            if spec.partitions > existing[spec.name]}
    if grow:
        _wait(admin.create_partitions([NewPartitions(name, after) for name, (_, after) in grow.items()],
                                      request_timeout=REQUEST_TIMEOUT_S), "add partitions to")
        report.partitions_raised = grow
    report.warnings = [
        f"{spec.name} has {existing[spec.name]} partitions, its file asks for {spec.partitions}: "
        f"Kafka cannot lower a partition count"
        for spec in present if spec.partitions < existing[spec.name]
    ]

    differing = _differing_configs(admin, present)
    if differing:
        resources = [
            ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in settings.items()
            ])
            for name, settings in differing.items()
        ]
        _wait(admin.incremental_alter_configs(resources, request_timeout=REQUEST_TIMEOUT_S),
              "alter configs of")
        report.configs_altered = differing
    report.unchanged = [spec.name for spec in present if spec.name not in grow and spec.name not in differing]
    _wait_until_served(admin, [spec for spec in wanted.values() if spec.name not in report.unchanged])
    return report


def delete_topics(kafka: KafkaConfig | str, names: Sequence[str]) -> None:
    """Delete `names` (for tests and benchmarks); topics that do not exist are ignored."""
    if names:
        admin = _admin(kafka)  # referenced until the futures are done, or librdkafka aborts them
        _wait(admin.delete_topics(list(names), request_timeout=REQUEST_TIMEOUT_S), "delete",
              tolerate=KafkaError.UNKNOWN_TOPIC_OR_PART)
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        while set(names) & set(admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics):
            if time.monotonic() > deadline:
                raise TopicError(f"the broker still lists deleted topics among {', '.join(names)}")
            time.sleep(0.1)


def _differing_configs(admin: AdminClient, specs: list[TopicSpec]) -> dict[str, dict[str, str]]:
    """For each topic, the settings its file names whose current value differs."""
    specs = [spec for spec in specs if spec.config]
    if not specs:
        return {}
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, spec.name) for spec in specs],
                                     request_timeout=REQUEST_TIMEOUT_S)
    current = _wait(futures, "describe configs of")
    differing: dict[str, dict[str, str]] = {}
    for spec in specs:
        entries = current[spec.name]
        changes = {key: value for key, value in spec.config.items()
                   if key not in entries or entries[key].value != value}
        if changes:
            differing[spec.name] = changes
    return differing


def _wait_until_served(admin: AdminClient, specs: list[TopicSpec]) -> None:
    """Wait until the broker serves what the controller accepted, so whatever follows apply sees it."""
    deadline = time.monotonic() + REQUEST_TIMEOUT_S
    while specs:
        served = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
        lagging = [spec.name for spec in specs
                   if spec.name not in served or len(served[spec.name].partitions) < spec.partitions]
        if not lagging:
            lagging = list(_differing_configs(admin, specs))
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise TopicError(f"the broker did not show the changes to {', '.join(lagging)} in time")
        time.sleep(0.1)


def _admin(kafka: KafkaConfig | str) -> AdminClient:
    # Every failure surfaces as an exception naming it; librdkafka's own log would repeat each
    # refused connection every 50 ms while a broker is unreachable.
    return AdminClient({**librdkafka_settings(kafka), "log_level": 2})


def _wait(futures: dict, action: str, tolerate: int | None = None) -> dict[str, Any]:
    """The AdminClient futures' results by topic name; one TopicError naming every failed topic."""
    results: dict[str, Any] = {}
    failures: list[str] = []
    for target, future in futures.items():
        name = getattr(target, "name", target)  # describe_configs keys its futures by ConfigResource
        try:
            results[name] = future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != tolerate:
                failures.append(f"{name}: {error.str()}")
    if failures:
        raise TopicError(f"could not {action} topics: " + "; ".join(failures))
    return results
