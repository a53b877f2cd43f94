"""Configuration of the enrichment stage (`enrichment:`) and of where context comes from (`context:`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class AddedAttributeNames(BaseModel):
    """Names of the attributes the enricher adds to spans and log records (besides the mapped
    user-profile and service-catalog fields). The redactor's allow list must contain them."""

    model_config = ConfigDict(extra="forbid")

    user_pseudonym: str = "enduser.pseudo.id"  # OTel semconv: a pseudonymous user id
    root_service: str = "trace.root.service"
    root_route: str = "trace.root.route"
    # On log records with a trace id: the span the record was emitted in (its span id).
    span_service: str = "span.service"
    span_name: str = "span.name"
    span_status: str = "span.status"  # UNSET, OK or ERROR


class EnrichmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # How long a message whose trace context is unknown is held, waiting for its trace's root span,
    # before it goes out without that context (and is counted): on the shell's clock while the spans
    # input has no backlog; with one, until the spans read are this far past the message's event time.
    # 10 s rather than a couple: a root span ends after the logs and child spans of its request.
    grace_period_ms: int = Field(10_000, ge=0)
    # At most this many messages and bytes are held; beyond either the oldest goes out without waiting.
    # Sized for a backlog in which logs are read well ahead of spans (held input is not acknowledged).
    max_held_messages: int = Field(20_000, gt=0)
    max_held_bytes: int = Field(64 * 1024 * 1024, gt=0)
    # A trace's context is dropped this long after its last span was seen...
    trace_ttl_ms: int = Field(300_000, gt=0)
    # ...or, least recently seen first, when more traces than this are kept.
    max_traces: int = Field(50_000, gt=0)
    # Span summaries (service, name, status) kept per trace so that logs find their owning span.
    max_spans_per_trace: int = Field(256, ge=0)

    user_id_attribute: str = "enduser.id"
    # Root-span attributes naming the tenant (first present wins); it overrides the profile's tenant.
    tenant_attributes: list[str] = ["enduser.tenant", "tenant.id"]
    # Root-span attributes giving the route (first present wins); the root span's name otherwise.
    route_attributes: list[str] = ["http.route", "rpc.method"]
    # user-context profile field -> attribute added to every span and log of that user.
    user_fields: dict[str, str] = {
        "tenant": "enduser.tenant",
        "plan": "enduser.plan",
        "region": "enduser.region",
    }
    # The profile field the root span's tenant attribute overrides.
    tenant_field: str = "tenant"
    # service-catalog field -> resource attribute.
    service_fields: dict[str, str] = {
        "owner": "service.owner",
        "tier": "service.tier",
        "runbook": "service.runbook.url",
        "route": "service.paging.route",
        "dashboard": "service.dashboard.url",
    }
    attributes: AddedAttributeNames = AddedAttributeNames()

    def added_attribute_names(self) -> list[str]:
        """Every attribute key the enricher may add: what the redactor must let through."""
        return [
            *self.attributes.model_dump().values(),
            *self.user_fields.values(),
            *self.service_fields.values(),
        ]


class ContextConfig(BaseModel):
    """Where the user-context and service-catalog tables come from (contract: DESIGN.md Configuration)."""

    model_config = ConfigDict(extra="forbid")

    # replay: JSON Lines, one {"key": ..., "value": {...} | null} per line (relative to the config file).
    user_context_file: Path | None = None
    service_catalog_file: Path | None = None
    # worker: compacted topics followed from the beginning by every worker.
    user_context_topic: str = "user-context"
    service_catalog_topic: str = "service-catalog"
