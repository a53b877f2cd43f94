"""The configuration: one YAML file validated by pydantic, every field overridable from the environment.

Environment overrides use the prefix ``TP_`` and ``__`` between nested names, e.g.
``TP_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or ``TP_REDACTION__HMAC_KEY=...``. Values are parsed as
YAML scalars or flow collections, so ``TP_WORKER__BATCH_MAX_MESSAGES=50`` is an int and
``TP_SLOS='[{service: checkout, availability: 99.9}]'`` a list. A wrong field fails at start-up with
its dotted name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from telemetry_pipeline.detection.config import DetectionConfig, MaintenanceWindow
from telemetry_pipeline.enrichment.config import ContextConfig, EnrichmentConfig
from telemetry_pipeline.otlp import Encoding, Signal
from telemetry_pipeline.redaction.config import RedactionConfig
from telemetry_pipeline.sli.config import SliConfig, SloConfig, SloDefaults

ENV_PREFIX = "TP_"
HEADERS_ROOM_BYTES = 65_536


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaConfig(_Section):
    """How every client connects (translated per library in `kafka/connection.py`). Secrets, the
    SASL password and the TLS key's password, only from the environment or a file; never logged."""

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    # TLS (SSL, SASL_SSL): the CAs that signed the brokers' certificates (default: the system's),
    # and a client certificate and key (PEM) for mutual TLS.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    # Throughput over latency for the outputs: the producer defaults (linger 0, 16 KB batches,
    # no compression) cost most of the pipeline's speed (FAUST-NOTES, Transports).
    producer_linger_ms: int = Field(20, ge=0)
    producer_batch_bytes: int = Field(1_048_576, gt=0)
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    # The largest record (key + value) the worker writes; librdkafka's default, under the broker's.
    # A clean record that would be larger goes to the DLQ, and a DLQ record larger than this is
    # written without its payload (the headers name the input's offset), so one huge message can
    # neither stall a partition nor fail a batch.
    max_message_bytes: int = Field(1_000_000, ge=1024)

    @model_validator(mode="after")
    def _consistent(self) -> KafkaConfig:
        # Messages name fields only: the values may be secret.
        protocol = self.security_protocol
        if protocol.startswith("SASL_"):
            for name in ("sasl_mechanism", "sasl_username"):
                if not getattr(self, name):
                    raise ValueError(f"kafka.{name} is required with security_protocol {protocol}")
            if (self.sasl_password is None) == (self.sasl_password_file is None):
                raise ValueError(f"set one of kafka.sasl_password, kafka.sasl_password_file with {protocol}")
            self.sasl_password_value()
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password or self.sasl_password_file:
            raise ValueError(f"kafka.sasl_* settings need a SASL security_protocol, not {protocol}")
        tls_files = {"ssl_cafile": self.ssl_cafile, "ssl_certfile": self.ssl_certfile,
                     "ssl_keyfile": self.ssl_keyfile}
        if not protocol.endswith("SSL") and (any(tls_files.values()) or self.ssl_key_password):
            raise ValueError(f"kafka.ssl_* settings need security_protocol SSL or SASL_SSL, not {protocol}")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("kafka.ssl_keyfile needs kafka.ssl_certfile")
        for name, path in tls_files.items():
            if path is not None and not path.is_file():
                raise ValueError(f"kafka.{name}: no such file")
        return self

    def sasl_password_value(self) -> str | None:
        if self.sasl_password is not None:
            return self.sasl_password.get_secret_value()
        if self.sasl_password_file is None:
            return None
        try:
            return self.sasl_password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise ValueError("kafka.sasl_password_file: cannot read the file") from None

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every confluent-kafka client we create."""
        from telemetry_pipeline.kafka.connection import librdkafka_settings

        return librdkafka_settings(self)

    def producer_config(self) -> dict[str, Any]:
        return {
            **self.client_config(),
            "linger.ms": self.producer_linger_ms,
            "batch.size": self.producer_batch_bytes,
            "compression.type": self.producer_compression,
            # Room above max_message_bytes for the key and the DLQ's headers.
            "message.max.bytes": self.max_message_bytes + HEADERS_ROOM_BYTES,
            "enable.idempotence": True,
            # Kafka's Java-compatible hash, the one Faust's tables use: a service's partials land
            # on the partition of its sli-state changelog, a trace's records on its context's.
            "partitioner": "murmur2_random",
            "acks": "all",
        }


class TopicNames(_Section):
    spans: str = "otlp_spans"
    metrics: str = "otlp_metrics"
    logs: str = "otlp_logs"
    spans_clean: str = "otlp_spans.clean"
    metrics_clean: str = "otlp_metrics.clean"
    logs_clean: str = "otlp_logs.clean"
    dlq: str = "telemetry.dlq"
    sli_partials: str = "sli-partials"
    sli: str = "sli"
    incidents: str = "incidents"
    maintenance: str = "maintenance"  # compacted: maintenance windows keyed by id (the worker follows it)

    def input(self, signal: Signal) -> str:
        return {Signal.TRACES: self.spans, Signal.METRICS: self.metrics, Signal.LOGS: self.logs}[signal]

    def clean(self, signal: Signal) -> str:
        return {
            Signal.TRACES: self.spans_clean,
            Signal.METRICS: self.metrics_clean,
            Signal.LOGS: self.logs_clean,
        }[signal]


class WorkerConfig(_Section):
    app_id: str = "telemetry-pipeline"
    data_dir: Path = Path(".telemetry-pipeline")
    # Faust's cost is per Kafka message; take messages in batches and work per batch.
    batch_max_messages: int = Field(64, gt=0)
    batch_within_s: float = Field(0.05, gt=0)
    # A batch is processed in runs of at most this many input bytes (an OTLP message decoded takes
    # about 6x its size, and its outputs are held encoded until delivered). 2 MiB rather than 4 (with
    # redaction.value_cache_size 16,384): ~30 MB less at the level a long backlog holds, the same CPU
    # per span (benchmarks/README.md, "A level, not a slope").
    batch_max_bytes: int = Field(2 * 1024 * 1024, gt=0)
    # Input fetched ahead of the agents, which a backlog fills: per partition per fetch (aiokafka's
    # max_partition_fetch_bytes), per fetch response, all partitions together (fetch_max_bytes;
    # aiokafka's 50 MiB was live twice over at a 500k-span backlog), records handed to Faust per
    # poll (max_poll_records), and messages waiting for an agent per input topic (Faust's
    # stream_buffer_maxsize, 4096 by default). These bound the worker's memory, not the backlog's
    # size; larger fetches cost less CPU per span (benchmarks/README.md, "Memory flat ...").
    consumer_max_fetch_bytes: int = Field(1024 * 1024, gt=0)
    consumer_fetch_response_bytes: int = Field(2 * 1024 * 1024, gt=0)
    consumer_max_poll_records: int = Field(64, gt=0)
    stream_buffer_messages: int = Field(128, gt=0)
    # While the spans input has a backlog, the logs agent stops taking input once the enrichment
    # hold (logs waiting for their trace's root span, kept as their records' bytes) has more than this;
    # enrichment.max_held_bytes still releases the oldest early beyond its own bound.
    hold_wait_bytes: int = Field(2 * 1024 * 1024, gt=0)
    # A metrics partition read this far (event time) ahead of the slowest one with a backlog is paused
    # until the others close up: a cumulative series' points come through every partition, and the
    # SLI engine keeps only sli.metric_points_per_service of them to place the late-comers
    # (app/alignment.py).
    metrics_partition_lead_s: float = Field(1800.0, gt=0)
    # How often held messages are re-checked and idle input lets the SLI watermark advance.
    tick_interval_s: float = Field(0.25, gt=0)
    # A worker that stops heartbeating (killed, hung) loses its partitions to the others after this
    # long (Kafka's own default since 3.0; Faust's is 60).
    session_timeout_s: float = Field(45.0, ge=6, le=300)
    # Kafka static membership (group.instance.id): a worker restarted with the same id (a pod of a
    # StatefulSet, a systemd unit) takes its partitions back at once instead of after
    # session_timeout_s. Unique per worker process, stable across its restarts; two running workers
    # with one id fence each other. Trade-off: a worker that stops for good keeps its partitions
    # unassigned for session_timeout_s (static members do not leave the group on shutdown).
    group_instance_id: str | None = None
    # How often the SLI agent writes its state to its table (and only then acknowledges the
    # partials in it) when no evaluation step has done so: bounds what a restart reads again.
    sli_persist_interval_s: float = Field(10.0, gt=0)
    # Partitions of Faust's own tables; must equal the input topics' partitions (co-partitioning).
    table_partitions: int = Field(4, gt=0)
    metrics_port: int | None = Field(9464, description="Prometheus /metrics port; null to disable")
    # Per-service counters (tp_redactions{service}) keep this many services by name; records of
    # any further service, or of a name longer than 128 characters, count under "other".
    metrics_max_services: int = Field(200, gt=0)
    # Loopback by default: /metrics is for a scraper on this host. A container needs 0.0.0.0 for its
    # published port to reach it (the Dockerfile sets it).
    metrics_host: str = "127.0.0.1"
    delivery_timeout_s: float = Field(30.0, gt=0)
    # How long the ingest agents wait at start for the context topics to be read to their end.
    context_wait_s: float = Field(30.0, ge=0)
    # How long the worker waits for the broker at start (retrying with backoff) before it gives up.
    startup_timeout_s: float = Field(60.0, ge=0)
    # Repeated client warnings and errors (a broker outage) are logged once, then counted per interval.
    log_repeat_interval_s: float = Field(10.0, gt=0)
    # glibc's malloc arenas (mallopt M_ARENA_MAX), set before any thread starts; null: glibc's own
    # (8 per core), or MALLOC_ARENA_MAX if set. Each thread that allocates (librdkafka's, the event
    # loop's executor) gets an arena whose freed memory stays mapped; two cut the peak RSS of the 2M
    # span backlog by ~25 MB at no CPU cost (benchmarks/README.md, "Memory flat ..."). No effect off glibc.
    malloc_arenas: int | None = Field(2, gt=0)


class DlqConfig(_Section):
    """The DLQ holds raw input, so it needs the same ACLs as the input topics (docs/DESIGN.md)."""

    # Records that decoded but were rejected later (enrichment, redaction, encoding, too large) go
    # to the DLQ redacted, re-encoded as they came; when redaction itself failed, without payload.
    # Undecodable input cannot be redacted and always goes as it came.
    redact_decodable: bool = False


class PipelineConfig(_Section):
    environment: Literal["development", "production"] = "development"
    encoding_default: Encoding = Encoding.PROTO
    kafka: KafkaConfig = KafkaConfig()
    topics: TopicNames = TopicNames()
    worker: WorkerConfig = WorkerConfig()
    dlq: DlqConfig = DlqConfig()
    redaction: RedactionConfig = RedactionConfig()
    enrichment: EnrichmentConfig = EnrichmentConfig()
    context: ContextConfig = ContextConfig()
    sli: SliConfig = SliConfig()
    slos: list[SloConfig] = []
    slo_defaults: SloDefaults = SloDefaults()
    detection: DetectionConfig = DetectionConfig()
    maintenance: list[MaintenanceWindow] = []

    @model_validator(mode="after")
    def _production_has_a_key(self) -> PipelineConfig:
        # Fails at start-up, naming the field, rather than at the first record. Quiet: commands that
        # read only the kafka section (topics apply, generate) need no word on the key.
        self.redaction.load_key(production=self.environment == "production", warn=False)
        return self

    @model_validator(mode="after")
    def _detection_windows_are_evaluated(self) -> PipelineConfig:
        missing = self.detection.windows() - set(self.sli.windows)
        if missing:
            raise ValueError(f"detection reads SLI windows that sli.windows lacks: {sorted(missing)}")
        return self


class ConfigError(ValueError):
    """A configuration problem, worded for the operator: which field, from where, what is wrong."""


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> PipelineConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: {describe_yaml_error(exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        raw = loaded or {}
        _resolve_relative_paths(raw, Path(path).parent)
    overridden = _apply_env(raw, os.environ if environ is None else environ)
    where = f" in {path}" if path is not None else ""
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc, overridden)
        raise ConfigError(f"invalid configuration{where}: {problems}") from None
    missing = _missing_files(config, overridden)
    if missing:
        raise ConfigError(f"invalid configuration{where}: " + "; ".join(missing))
    return config


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """Where the YAML is wrong and what is expected there, never the text itself: it may hold a secret."""
    mark = getattr(exc, "problem_mark", None)
    # The parser's problem names token kinds ("mapping values are not allowed here"); a quoted part
    # can quote the file (an alias, a tag), so only quotes of one character (a tab, a colon) are kept.
    problem = re.sub(r"'[^']{3,}'|\"[^\"]{3,}\"", "'...'", getattr(exc, "problem", None) or "invalid YAML")
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _missing_files(config: PipelineConfig, overridden: Mapping[str, str]) -> list[str]:
    """Context files checked at start-up, so that check-config finds them, not replay half way through."""
    problems = []
    for name in ("user_context_file", "service_catalog_file"):
        path = getattr(config.context, name)
        if path is not None and not Path(path).is_file():
            field = f"context.{name}"
            problem = "is a folder, not a file" if Path(path).is_dir() else "does not exist"
            problems.append(f"{field}{_origin(field, overridden)}: {path} {problem}")
    return problems


def _resolve_relative_paths(raw: dict[str, Any], base: Path) -> None:
    """Context files named in the config are relative to the config file, not the working dir."""
    context = raw.get("context")
    if isinstance(context, dict):
        for key, value in context.items():
            if key.endswith("_file") and isinstance(value, str) and not Path(value).is_absolute():
                context[key] = str(base / value)


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Merge TP_* variables into `raw`; returns dotted field -> variable name, for error messages."""
    overridden: dict[str, str] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path or path[0] not in PipelineConfig.model_fields:
            continue
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        # Secrets stay strings even when they look like numbers.
        node[path[-1]] = text if isinstance(value, (int, float)) and "key" in path[-1] else value
        overridden[".".join(path)] = name
    return overridden


def describe_validation_error(exc: ValidationError, overridden: Mapping[str, str] | None = None) -> str:
    """One line: each failing field, where it came from and what is wrong with it."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        # error["msg"] describes the constraint; the input itself is left out since it may be secret.
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{field}{_origin(field, overridden or {})}: {message}" if field else message)
    return "; ".join(problems)


def _origin(field: str, overridden: Mapping[str, str]) -> str:
    return next((f" (from {var})" for path, var in overridden.items() if field.startswith(path)), "")
