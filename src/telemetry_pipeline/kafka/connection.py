"""The `kafka:` connection settings translated, once, for each client library we use; and the wait
for a broker to answer, which the worker and the commands share.

confluent-kafka (outputs, admin, the commands' clients) takes librdkafka properties, aiokafka (the
context followers) and Faust (agents, table changelogs; it drives aiokafka) take an `ssl.SSLContext`
and SASL arguments. Every client must get the same protocol: before this module the worker gave Faust
`ssl_context=None`, so under `SSL` its consumers and changelog producer spoke PLAINTEXT.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

if TYPE_CHECKING:
    import faust

    from telemetry_pipeline.config import KafkaConfig

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """No broker answered, or it refused the data: said in one line, naming the address."""


def uses_tls(kafka: KafkaConfig) -> bool:
    return kafka.security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(kafka: KafkaConfig) -> bool:
    return kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def librdkafka_settings(kafka: KafkaConfig | str) -> dict[str, Any]:
    """For confluent-kafka's Producer, Consumer and AdminClient. A bare address (`host:port,...`) is a
    PLAINTEXT connection: the project's own local broker, tests and benchmarks."""
    if isinstance(kafka, str):
        return {"bootstrap.servers": kafka, "security.protocol": "PLAINTEXT"}
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


def await_broker(
    kafka: KafkaConfig | str,
    timeout_s: float,
    *,
    settings_hint: str,
    log_attempts: bool = True,
    max_backoff_s: float = 5.0,
) -> None:
    """Return once the cluster answers a metadata request over the configured protocol; retry with
    backoff (a line per failed attempt with `log_attempts`, as the worker does while the broker
    starts), and after `timeout_s` raise KafkaUnavailable naming the address, the last error and
    `settings_hint` (which settings choose the address and the wait)."""
    address = kafka if isinstance(kafka, str) else kafka.bootstrap_servers
    # librdkafka's own connection errors would repeat what the attempt lines say, several per second.
    admin = AdminClient({**librdkafka_settings(kafka), "log_level": 0})
    start = time.monotonic()
    backoff = 0.5
    attempt = 0
    while True:
        attempt += 1
        remaining = timeout_s - (time.monotonic() - start)
        try:
            admin.list_topics(timeout=max(0.2, min(1.0, remaining)))
            return
        except KafkaException as exc:
            waited = time.monotonic() - start
            if waited + backoff > timeout_s:
                raise KafkaUnavailable(
                    f"no Kafka broker answered at {address} within {timeout_s:g}s ({exc.args[0].str()}); "
                    f"{settings_hint}"
                ) from None
            if log_attempts:
                log.warning("broker at %s not reachable (attempt %d, %.0fs of %gs); retrying in %gs",
                            address, attempt, waited, timeout_s, backoff)
            time.sleep(backoff)
            backoff = min(max_backoff_s, backoff * 2)
