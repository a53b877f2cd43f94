"""One translation of the `kafka:` connection settings for confluent-kafka, aiokafka and Faust."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from telemetry_pipeline.config import ConfigError, KafkaConfig, load_config
from telemetry_pipeline.kafka.connection import aiokafka_settings, faust_credentials, librdkafka_settings

SECRET = "s3cret-pa55word-for-tests"


@pytest.fixture
def cafile() -> Path:
    # Any PEM CA bundle will do for building a context: the system's, or certifi's.
    for candidate in (ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise AssertionError("no CA bundle on this machine to build a TLS context from")


def _config(protocol: str, cafile: Path | None = None) -> KafkaConfig:
    sasl = {"sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "tp", "sasl_password": SECRET}
    return KafkaConfig(
        bootstrap_servers="broker:9093",
        security_protocol=protocol,
        ssl_cafile=cafile if protocol.endswith("SSL") else None,
        **(sasl if protocol.startswith("SASL") else {}),
    )


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_every_library_gets_the_same_protocol(protocol: str, cafile: Path) -> None:
    config = _config(protocol, cafile)
    assert librdkafka_settings(config)["security.protocol"] == protocol
    assert aiokafka_settings(config)["security_protocol"] == protocol
    # What Faust hands aiokafka for its consumers, producers and admin requests.
    faust_auth = credentials_to_aiokafka_auth(faust_credentials(config))
    assert faust_auth["security_protocol"] == protocol
    tls = protocol.endswith("SSL")
    assert isinstance(faust_auth.get("ssl_context"), ssl.SSLContext) is tls
    assert isinstance(aiokafka_settings(config).get("ssl_context"), ssl.SSLContext) is tls
    if tls:
        assert librdkafka_settings(config)["ssl.ca.location"] == str(cafile)
    if protocol.startswith("SASL"):
        assert faust_auth["sasl_mechanism"] == "SCRAM-SHA-512"
        assert faust_auth["sasl_plain_password"] == SECRET
        assert librdkafka_settings(config)["sasl.password"] == SECRET
        assert aiokafka_settings(config)["sasl_plain_password"] == SECRET


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "password").write_text(SECRET + "\n")
    config = KafkaConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="tp",
                         sasl_password_file=tmp_path / "password")
    assert librdkafka_settings(config)["sasl.password"] == SECRET


@pytest.mark.parametrize(
    ("kafka", "field"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": SECRET}, "sasl_mechanism"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_password": SECRET},
            "sasl_username",
        ),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "sasl_password"),
        ({"security_protocol": "PLAINTEXT", "sasl_password": SECRET}, "sasl_"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "tp",
          "sasl_password_file": "/nonexistent/password"}, "sasl_password_file"),
        ({"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"}, "ssl_cafile"),
        ({"security_protocol": "PLAINTEXT", "ssl_key_password": SECRET}, "ssl_"),
    ],
)
def test_inconsistent_settings_fail_at_start_naming_the_field_not_the_secret(
    kafka: dict, field: str, tmp_path: Path
) -> None:
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"kafka": kafka}))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert f"kafka.{field}" in str(info.value)
    assert SECRET not in str(info.value)
