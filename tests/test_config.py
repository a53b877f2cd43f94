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


def test_the_annotated_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "config.yaml"
    config = load_config(example, environ={})
    assert config.redaction.key_rules["client.address"] == "truncate"
    assert config.slos[0].latency is not None and config.slos[0].latency.threshold_ms == 300
