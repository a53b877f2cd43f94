"""The `kafka:` connection settings translated, once, for each client library we use.

confluent-kafka (outputs, admin) takes librdkafka properties, aiokafka (the context followers) and
Faust (agents, table changelogs; it drives aiokafka) take an `ssl.SSLContext` and SASL arguments.
Every client must get the same protocol: before this module the worker gave Faust
`ssl_context=None`, so under `SSL` its consumers and changelog producer spoke PLAINTEXT.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import faust

    from telemetry_pipeline.config import KafkaConfig


def uses_tls(kafka: KafkaConfig) -> bool:
    return kafka.security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(kafka: KafkaConfig) -> bool:
    return kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def librdkafka_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """For confluent-kafka's Producer, Consumer and AdminClient."""
    settings: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol,
    }
    if uses_tls(kafka):
        optional = {
            "ssl.ca.location": kafka.ssl_cafile,
            "ssl.certificate.location": kafka.ssl_certfile,
            "ssl.key.location": kafka.ssl_keyfile,
            "ssl.key.password": kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None,
        }
        settings.update({name: str(value) for name, value in optional.items() if value is not None})
        settings["ssl.endpoint.identification.algorithm"] = "https" if kafka.ssl_check_hostname else "none"
    if uses_sasl(kafka):
        settings["sasl.mechanism"] = kafka.sasl_mechanism
        settings["sasl.username"] = kafka.sasl_username
        settings["sasl.password"] = kafka.sasl_password_value()
    return settings


def ssl_context(kafka: KafkaConfig) -> ssl.SSLContext | None:
    """The TLS context aiokafka and Faust use; None without TLS. The system's CAs unless
    `ssl_cafile` names others; a client certificate when `ssl_certfile` is set (mutual TLS)."""
    if not uses_tls(kafka):
        return None
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    context.check_hostname = kafka.ssl_check_hostname
    if kafka.ssl_certfile is not None:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        context.load_cert_chain(
            str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None, password
        )
    return context


def aiokafka_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """For aiokafka's consumers and producers."""
    settings: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    context = ssl_context(kafka)
    if context is not None:
        settings["ssl_context"] = context
    if uses_sasl(kafka):
        settings["sasl_mechanism"] = kafka.sasl_mechanism
        settings["sasl_plain_username"] = kafka.sasl_username
        settings["sasl_plain_password"] = kafka.sasl_password_value()
    return settings


def faust_credentials(kafka: KafkaConfig) -> faust.types.auth.CredentialsT | None:
    """Faust's `broker_credentials`: it derives the protocol from their type (and, for SASL, from
    whether they carry a TLS context), and hands them to every consumer, producer and admin call."""
    import faust

    context = ssl_context(kafka)
    if uses_sasl(kafka):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password_value(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
