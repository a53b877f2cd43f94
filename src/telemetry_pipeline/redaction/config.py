"""Configuration of the redaction stage (YAML section `redaction:`). The defaults are safe as they are."""

from __future__ import annotations

import functools
import logging
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from telemetry_pipeline.redaction.detectors import Detector
from telemetry_pipeline.redaction.national_ids import Region

log = logging.getLogger(__name__)

# Used only outside production, when no key is configured. Public on purpose: pseudonyms made with it
# are reversible by anyone with a dictionary of user ids, which is fine for development data only.
DEV_HMAC_KEY = b"telemetry-pipeline-development-key-not-secret"


class Action(StrEnum):
    MASK = "mask"  # replace with a typed marker, e.g. [REDACTED:EMAIL]
    HASH = "hash"  # replace with the keyed pseudonym (hmac:<32 hex>): joins and counts still work
    DROP = "drop"  # remove the attribute (a match inside a log body or span name is masked instead)
    TRUNCATE = "truncate"  # an IP address to its /24 (IPv4) or /64 (IPv6); anything else is masked
    ALLOW = "allow"  # keys only: leave the value alone and skip scanning it


# Attributes that cannot hold PII or secrets, or are pseudonyms already: skipping them is safe and
# is where most of the speed comes from. Includes everything the enrichment stage adds.
DEFAULT_ALLOW_KEYS = [
    "service.name", "service.namespace", "service.version", "service.instance.id",
    "service.owner", "service.tier", "service.runbook.url", "service.paging.route", "service.dashboard.url",
    "deployment.environment", "deployment.environment.name", "telemetry.sdk.name",
    "telemetry.sdk.language", "telemetry.sdk.version", "host.name", "host.arch", "os.type",
    "k8s.namespace.name", "k8s.pod.name", "k8s.deployment.name", "k8s.node.name", "k8s.cluster.name",
    "cloud.provider", "cloud.region", "cloud.availability_zone", "container.id",
    "process.runtime.name", "process.runtime.version", "process.pid",
    "enduser.pseudo.id", "enduser.tenant", "enduser.plan", "enduser.region",
    # trace.root.route and span.name are copies of other spans' routes and names, which the
    # enricher redacts when it learns them (Enricher sanitize= Redactor.redact_text).
    "trace.root.service", "trace.root.route", "span.service", "span.name", "span.status",
    "http.request.method", "http.method", "http.route", "http.response.status_code", "http.status_code",
    "rpc.system", "rpc.service", "rpc.method", "db.system", "db.system.name", "db.operation",
    "db.operation.name", "db.collection.name", "db.sql.table", "messaging.system",
    "messaging.operation", "messaging.destination.name", "network.protocol.name",
    "network.protocol.version", "network.transport", "server.port", "url.scheme",
    "otel.status_code", "otel.scope.name", "error.type", "exception.type", "log.iostream",
    "code.function", "code.function.name", "code.namespace", "code.filepath", "code.file.path",
    "code.lineno", "code.line.number", "thread.name", "thread.id",
]

# A key whose last name parts are one of these (split on . _ -, case-insensitive) is a secret by
# name: its value is masked whole, whatever it looks like.
DEFAULT_SECRET_KEY_WORDS = [
    "password", "passwd", "pwd", "passphrase", "secret", "token", "access token", "refresh token",
    "authorization", "proxy authorization", "cookie", "set cookie", "api key", "apikey", "access key",
    "access key id", "secret key", "private key", "client secret", "session", "session id", "sessionid",
    "credential", "credentials", "signature", "x amz signature", "x amz security token", "jwt",
]

# Keys that identify a person (OTel semantic conventions and common variants): pseudonymised.
DEFAULT_PERSON_KEYS = [
    "enduser.id", "user.id", "user.email", "user.name", "user.full_name", "user.hash",
    "client.address", "client.ip", "http.client_ip", "net.peer.ip", "source.address",
]


class RedactionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The pseudonymisation key: from the environment (TP_REDACTION__HMAC_KEY) or a file. Required
    # in production; never logged.
    hmac_key: SecretStr | None = None
    hmac_key_file: Path | None = None

    allow_keys: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOW_KEYS))
    # Words a secret key's name ends with ("api key" matches api_key, x-api-key, app.api.key).
    secret_keys: list[str] = Field(default_factory=lambda: list(DEFAULT_SECRET_KEY_WORDS))
    person_keys: list[str] = Field(default_factory=lambda: list(DEFAULT_PERSON_KEYS))
    secret_key_action: Action = Action.MASK
    person_key_action: Action = Action.HASH
    # Exact key -> action, overriding the three lists above (e.g. {"client.address": "truncate"}).
    key_rules: dict[str, Action] = {}
    # Detector -> action for matches inside values; detectors not listed mask.
    detectors: dict[Detector, Action] = {}
    disabled_detectors: list[Detector] = []
    # Regions whose national, tax, health, licence and vehicle numbers are found (detector
    # national_id): all by default; each costs some speed and some false-positive risk on bare numbers.
    regions: list[Region] = Field(default_factory=lambda: list(Region))

    scan_span_names: bool = True
    # Maps and arrays nested deeper than this in a log body or attribute are masked whole.
    max_depth: int = Field(8, ge=1, le=64)
    # Add redaction.masked.keys / .count and redaction.redacted.keys / .count to what was changed,
    # like the OTel Collector's redaction processor.
    summary_attributes: bool = False
    # Scan results of repeated values (routes, hosts, SQL) are kept; bounded, cleared when full.
    # Repeated values are few: 16,384 (with 2 MiB runs) cost no CPU per span against 65,536 on the
    # benchmark workload (benchmarks/README.md, "A level, not a slope").
    value_cache_size: int = Field(16_384, ge=0)

    @model_validator(mode="after")
    def _check_actions(self) -> RedactionConfig:
        if Action.ALLOW in self.detectors.values():
            raise ValueError("redaction.detectors: 'allow' is for keys; use disabled_detectors instead")
        if self.secret_key_action is Action.ALLOW:
            raise ValueError("redaction.secret_key_action cannot be 'allow'")
        return self

    def detector_action(self, detector: Detector) -> Action:
        return self.detectors.get(detector, Action.MASK)

    def load_key(self, production: bool, warn: bool = True) -> bytes:
        """The HMAC key; a ValueError naming the field when production has none. `warn`: say when the
        public development key stands in (where a key is used, not where a config is only checked)."""
        if self.hmac_key is not None and self.hmac_key_file is not None:
            raise ValueError("redaction.hmac_key and redaction.hmac_key_file are both set: keep one")
        if self.hmac_key is not None:
            key = self.hmac_key.get_secret_value().encode()
        elif self.hmac_key_file is not None:
            try:
                key = self.hmac_key_file.read_bytes().strip()
            except OSError as exc:
                path, problem = self.hmac_key_file, exc.strerror
                raise ValueError(f"redaction.hmac_key_file: cannot read {path}: {problem}") from None
        elif production:
            raise ValueError(
                "redaction.hmac_key (or redaction.hmac_key_file) is required in production: "
                "set TP_REDACTION__HMAC_KEY or point hmac_key_file at a file holding the key"
            )
        else:
            if warn:
                _warn_dev_key()
            return DEV_HMAC_KEY
        if len(key) < 16:
            raise ValueError("redaction.hmac_key: the key must be at least 16 bytes")
        return key


@functools.cache
def _warn_dev_key() -> None:
    # Once per process: the key is loaded by the config check and again by the core.
    log.warning("redaction: no hmac_key configured; using the public development key")
