"""Configuration: YAML plus environment, validated at start-up with the failing field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry_pipeline.config import ConfigError, load_config

CONTRACT_EXAMPLE = """
slos:
  - service: checkout
    availability: 99.9
    latency: {threshold_ms: 300, objective: 99.0}
    period: 30d
slo_defaults: {availability: 99.5, period: 30d}
context:
  user_context_file: users.jsonl
  service_catalog_file: catalog.jsonl
"""


def _write(tmp_path: Path, text: str) -> Path:
    """The config file, beside the (empty) context files the contract example names."""
    for name in ("users.jsonl", "catalog.jsonl"):
        (tmp_path / name).touch()
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_the_contract_example_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, CONTRACT_EXAMPLE), environ={})
    assert [slo.service for slo in config.slos] == ["checkout"]
    assert config.context.user_context_file == tmp_path / "users.jsonl"
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092"


def test_environment_overrides_nested_fields_with_typed_values(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, CONTRACT_EXAMPLE),
        environ={
            "TP_KAFKA__BOOTSTRAP_SERVERS": "broker:29092",
            "TP_WORKER__BATCH_MAX_MESSAGES": "7",
            "TP_WORKER__METRICS_PORT": "null",
            "TP_SLO_DEFAULTS__AVAILABILITY": "99.0",
            "UNRELATED": "x",
        },
    )
    assert config.kafka.bootstrap_servers == "broker:29092"
    assert config.worker.batch_max_messages == 7
    assert config.worker.metrics_port is None
    assert config.slo_defaults.availability == 99.0


@pytest.mark.parametrize(
    ("text", "environ", "field"),
    [
        ("kafka: {bootstrap_server: x}\n", {}, "kafka.bootstrap_server"),
        ("worker: {batch_max_messages: 0}\n", {}, "worker.batch_max_messages"),
        (
            "",
            {"TP_WORKER__BATCH_MAX_MESSAGES": "many"},
            "worker.batch_max_messages (from TP_WORKER__BATCH_MAX_MESSAGES)",
        ),
        ("slos: [{service: checkout, availability: 120}]\n", {}, "slos.0.availability"),
        ("environment: production\n", {}, "redaction"),
    ],
)
def test_a_wrong_field_fails_at_start_up_naming_it(
    tmp_path: Path, text: str, environ: dict, field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text), environ=environ)
    assert field in str(info.value)


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    secret = "s3cr3t-password-value"
    with pytest.raises(ConfigError) as info:
        load_config(
            _write(tmp_path, f"kafka: {{sasl_password: {secret}, security_protocol: NOPE}}\n"), environ={}
        )
    assert "kafka.security_protocol" in str(info.value)
    assert secret not in str(info.value)


def test_production_accepts_a_key_from_the_environment(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, "environment: production\n"),
        environ={"TP_REDACTION__HMAC_KEY": "0123456789abcdef0123456789abcdef"},
    )
    assert config.environment == "production"
    assert "0123456789abcdef" not in repr(config)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", environ={})
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"), environ={})


def test_missing_context_files_fail_at_validation_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "folder.jsonl").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("context: {user_context_file: nope.jsonl, service_catalog_file: folder.jsonl}\n")
    with pytest.raises(ConfigError) as info:
        load_config(config, environ={})
    message = str(info.value)
    assert str(config) in message and "\n" not in message
    assert f"context.user_context_file: {tmp_path / 'nope.jsonl'} does not exist" in message
    assert "context.service_catalog_file" in message and "is a folder" in message


@pytest.mark.parametrize(
    "text",
    [
        'kafka:\n  sasl_password: "hunter2-secret\n  x: 1\n',  # unterminated quote
        "kafka:\n  sasl_password: hunter2-secret: x\n",  # a colon inside a plain value
        "kafka: {sasl_password: *hunter2-secret}\n",  # an alias that was never defined
    ],
)
def test_invalid_yaml_names_file_line_and_column_never_the_content(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    message = str(info.value)
    assert message.startswith(f"config file {path}: invalid YAML at line ")
    assert ", column " in message
    assert "hunter2" not in message and "\n" not in message


def test_the_annotated_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "config.yaml"
    config = load_config(example, environ={})
    assert config.redaction.key_rules["client.address"] == "truncate"
    assert config.slos[0].latency is not None and config.slos[0].latency.threshold_ms == 300
