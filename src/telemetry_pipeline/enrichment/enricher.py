"""Enrichment with trace, user and service context, in place, one whole OTLP message at a time.

Two passes per batch of messages. `learn` harvests, from every span, what other records of its
trace lack: the root span's service, route, user (stored as its pseudonym) and tenant, and a
summary (service, name, status) of each span for the logs emitted inside it. `enrich` then adds
that context to every span and log record of the trace, plus the user's profile fields and the
service catalog's fields on resources.

Which records need context, and wait for it:
- a span or log record with a trace id whose root span has not been seen (learn of the same
  message runs first, so a message carrying its trace's root enriches at once);
- a log record without a trace id, a span without one, and metrics never wait.
A message with any such record is not modified and `enrich` returns False unless `final`; the shell
holds it (`HoldBuffer`) and retries after later messages were learned. With `final`, the record
goes out with whatever context there is and is counted in `released_without_context`.

Co-partitioning: the worker's trace-context table is partitioned like its input, so a worker only
knows the traces whose spans arrive on its partitions. The Collector's kafkaexporter with
`partition_traces_by_id` keys span messages by trace id, so every span of a trace (root included)
reaches the same partition and worker; logs need the same keying (`partition_logs_by_trace_id`,
same partition count) to find their trace. The table's changelog partition of a trace must also be
the one its input arrives on, or a restarted worker recovers other traces than it is sent: the
exporter hashes keys with Sarama's FNV-1a by default and Kafka clients with murmur2, so either
write the table to the input event's partition or set the exporter's `record_partitioner` to
`sticky_key` with `hasher: murmur2`. Without co-partitioning a trace's root and children land on
different workers: the children wait for the whole grace period and then go out without trace
context, which shows as `released_without_context` and a low coverage, not as wrong data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import hyperscan
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from telemetry_pipeline.cache import compile_database
from telemetry_pipeline.enrichment.config import EnrichmentConfig
from telemetry_pipeline.enrichment.context_tables import UserDirectory
from telemetry_pipeline.enrichment.trace_context import TraceContext, TraceContextTable
from telemetry_pipeline.otlp import Message, Signal
from telemetry_pipeline.otlp.attributes import get_str, service_name, set_strs

# Distinct attribute pairs whose encoding is kept (a few MB at most); the cache starts over when full.
_MAX_ENCODED_PAIRS = 16_384
# Distinct trace contexts (user, tenant, root service, root route) whose attributes are kept, encoded.
_MAX_TRACE_ATTRIBUTES = 16_384
# Distinct span summaries and context strings shared across the trace-context table's values.
_MAX_SHARED = 16_384
# Where instrumentations put enduser.id when the root span does not carry it.
_USER_SPAN_KINDS = frozenset((Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CONSUMER))
_STATUS_NAMES = {code: Status.StatusCode.Name(code).removeprefix("STATUS_CODE_")
                 for code in Status.StatusCode.values()}


@dataclass
class EnrichmentStats:
    spans: int = 0
    spans_with_user: int = 0
    spans_with_trace_context: int = 0
    logs: int = 0
    logs_with_trace_id: int = 0
    logs_with_user: int = 0
    logs_with_trace_context: int = 0
    logs_with_span: int = 0  # found their owning span's service, name and status
    resources_with_service_context: int = 0
    # Records that went out after the grace period (or at shutdown) without their trace's context.
    released_without_context: int = 0
    messages_released_without_context: int = 0
    traces: int = 0  # trace-context table size
    traces_evicted_ttl: int = 0
    traces_evicted_size: int = 0
    span_summaries_dropped: int = 0
    users: int = 0
    services: int = 0

    @property
    def span_user_coverage(self) -> float:
        return _share(self.spans_with_user, self.spans)

    @property
    def span_trace_coverage(self) -> float:
        return _share(self.spans_with_trace_context, self.spans)

    @property
    def log_user_coverage(self) -> float:
        return _share(self.logs_with_user, self.logs)

    @property
    def log_trace_coverage(self) -> float:
        """Share of the logs carrying a trace id that got their trace's context."""
        return _share(self.logs_with_trace_context, self.logs_with_trace_id)

    def as_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "span_user_coverage": self.span_user_coverage,
            "span_trace_coverage": self.span_trace_coverage,
            "log_user_coverage": self.log_user_coverage,
            "log_trace_coverage": self.log_trace_coverage,
        }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class Enricher:
    def __init__(
        self,
        config: EnrichmentConfig,
        trace_store: MutableMapping[str, dict],
        users: UserDirectory,
        services: Mapping[str, dict],
        pseudonymize: Callable[[str], str],
        sanitize: Callable[[str], str] = str,
    ) -> None:
        """`sanitize` redacts the span names and routes copied to other records (the redactor's
        redact_text): they are then safe in the trace-context store and its changelog, and the
        redactor need not scan the copies. Called once per span; it should cache."""
        self.config = config
        self.traces = TraceContextTable(
            trace_store, ttl_ms=config.trace_ttl_ms, max_traces=config.max_traces,
            max_spans_per_trace=config.max_spans_per_trace,
        )
        users.bind(pseudonymize)
        self.users = users
        self.services = services
        self.pseudonymize = pseudonymize
        self.sanitize = sanitize
        self._names = names = config.attributes
        self._root_keys = frozenset(
            (config.user_id_attribute, *config.tenant_attributes, *config.route_attributes)
        )
        # Attribute keys whose presence anywhere in a message means its records' attributes must
        # be set one by one (replacing); otherwise the encoded context is appended to each record.
        span_keys = (names.user_pseudonym, names.root_service, names.root_route, *config.user_fields.values())
        log_keys = (*span_keys, names.span_service, names.span_name, names.span_status,
                    config.user_id_attribute)  # a log record's own user id changes its attributes
        self._span_keys = _literal_search(span_keys)
        self._log_keys = _literal_search(log_keys)
        self._encode_span_attributes = _AttributeEncoder(Span)
        self._encode_log_attributes = _AttributeEncoder(LogRecord)
        self._trace_attributes_cache: dict[tuple, _TraceAttributes] = {}
        # Values the trace-context table keeps, one object each (bounded; cleared when full).
        self._summaries: dict[tuple[str, str, int], tuple[str, str, int]] = {}
        self._strings: dict[str, str] = {}
        self._span_fields_encoded: dict[tuple, bytes] = {}  # a log record's owning-span fields, encoded
        # A log record's encoded context is its trace's part followed by its owning span's part: the
        # encoding of the merged dict only while no key is in both (a repeated field's encoding is
        # its entries' one after the other).
        span_field_names = {names.span_service, names.span_name, names.span_status}
        shared = span_field_names & {names.user_pseudonym, names.root_service, names.root_route,
                                     *config.user_fields.values()}
        if shared:
            raise ValueError(f"enrichment: attribute names used for both the trace's and the owning span's "
                             f"context: {sorted(shared)}")
        self._counts = EnrichmentStats()
        # Held messages whose grace period is over, by identity (see set_due).
        self._due: dict[int, Message] = {}

    # -- pass 1 -------------------------------------------------------------------------------

    def learn(self, signal: Signal, message: Message, now_ms: int) -> None:
        if signal is not Signal.TRACES:
            return
        # Gather per trace first (the per-span loop stays minimal), then one load and save each.
        summaries_by_trace: dict[bytes, dict[str, tuple[str, str, int]]] = {}
        roots: list[tuple[Span, str]] = []
        user_spans: list[Span] = []  # SERVER/CONSUMER spans: may carry the user when the root does not
        # One summary per distinct (service, name, status), sanitized once and shared by every trace
        # that keeps it (see _shared).
        distinct = self._summaries
        if len(distinct) >= _MAX_SHARED:
            distinct.clear()
        for resource_spans in message.resource_spans:
            service = service_name(resource_spans.resource)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    trace_id = span.trace_id
                    summaries = summaries_by_trace.get(trace_id)
                    if summaries is None:
                        if not trace_id:
                            continue
                        summaries = summaries_by_trace[trace_id] = {}
                    key = (service, span.name, span.status.code)  # code 0 (unset) without a status
                    summary = distinct.get(key)
                    if summary is None:
                        summary = distinct[key] = (service, self.sanitize(key[1]), key[2])
                    summaries[span.span_id.hex()] = summary
                    if not span.parent_span_id:
                        roots.append((span, service))
                    elif span.kind in _USER_SPAN_KINDS:
                        user_spans.append(span)
        if not summaries_by_trace:
            return
        table = self.traces
        values = {trace_id: table.load(trace_id.hex()) for trace_id in summaries_by_trace}
        for span, service in roots:
            self._harvest_root(values[span.trace_id], span, service)
        for span in user_spans:  # only searched while the trace has no user (root first)
            value = values[span.trace_id]
            if "user" not in value:
                self._harvest_user(value, span.attributes)
        for trace_id, summaries in summaries_by_trace.items():
            value = values[trace_id]
            kept = value["spans"]
            room = max(table.max_spans_per_trace - len(kept), 0)
            if len(summaries) <= room:
                kept.update(summaries)
            else:
                kept.update(itertools.islice(summaries.items(), room))
                table.counters.span_summaries_dropped += len(summaries) - room
            table.save(trace_id.hex(), value, now_ms)
        table.evict(now_ms)

    def _harvest_user(self, value: dict, attributes: Iterable[KeyValue]) -> None:
        user = get_str(attributes, self.config.user_id_attribute)
        if user:
            value["user"] = self.pseudonymize(user)

    def _harvest_root(self, value: dict, span: Span, service: str) -> None:
        config = self.config
        # One pass over the root's attributes keeps those we want; look-ups then search only them.
        wanted = [kv for kv in span.attributes if kv.key in self._root_keys]
        value["root_service"] = self._shared(service)
        route = _first(wanted, config.route_attributes) or span.name
        value["root_route"] = self._shared(self.sanitize(route))
        self._harvest_user(value, wanted)
        tenant = _first(wanted, config.tenant_attributes)
        if tenant:
            value["tenant"] = self._shared(tenant)

    def _shared(self, text: str) -> str:
        """One string object per distinct value kept in the trace-context table: every read from
        protobuf makes a new one, and a trace's copy of its route or tenant would outlive it."""
        strings = self._strings
        if len(strings) >= _MAX_SHARED:
            strings.clear()
        return strings.setdefault(text, text)

    # -- pass 2 -------------------------------------------------------------------------------

    def missing_traces(self, signal: Signal, message: Message) -> list[str]:
        """Trace ids (hex) of records in `message` whose trace's root has not been seen."""
        return [trace_id.hex() for trace_id in _records_by_trace(signal, message)
                if trace_id and not self.knows_trace(trace_id.hex())]

    def knows_trace(self, key: str) -> bool:
        return self.traces.root_seen(key)

    def set_due(self, messages: Iterable[Message]) -> None:
        """The next `enrich` of each of these messages is final, whatever the caller passes.

        HoldBuffer hands out overdue messages this way, so a shell that retries them along with a
        fresh batch (with `final=False`) still sends them out. Replaces the previous set: the
        messages of one `take_ready` are enriched before the next one.
        """
        self._due = {id(message): message for message in messages}

    def enrich(self, signal: Signal, message: Message, *, final: bool, payload: bytes | None = None) -> bool:
        """Add context in place; False (message untouched) when it must wait, see the module doc.

        `payload`, the bytes `message` was decoded from (either encoding), is optional and saves
        serialising the message to check whether any record may already carry a key we add: only
        then is every record's attribute list searched, otherwise the attributes are appended.
        """
        if self._due:
            final = final or self._due.pop(id(message), None) is message
        if signal is Signal.METRICS:
            self._add_service_context(message.resource_metrics)
            return True
        groups = _records_by_trace(signal, message)
        table = self.traces
        contexts = {trace_id: table.context(trace_id.hex()) for trace_id in groups if trace_id}
        unknown = [trace_id for trace_id, context in contexts.items()
                   if context is None or not context.root_seen]
        if unknown and not final:
            return False
        by_trace = {trace_id: self._trace_attributes(context) for trace_id, context in contexts.items()}
        if signal is Signal.TRACES:
            self._enrich_spans(message, payload, groups, by_trace)
            self._add_service_context(message.resource_spans)
        else:
            self._enrich_logs(message, payload, groups, by_trace)
            self._add_service_context(message.resource_logs)
        if unknown:
            self._counts.released_without_context += sum(len(groups[trace_id]) for trace_id in unknown)
            self._counts.messages_released_without_context += 1
        return True

    def _trace_attributes(self, context: TraceContext | None) -> _TraceAttributes:
        """What a trace's records get, built and encoded once per distinct context: many traces share
        one (same user, tenant, root service and route), and a trace's spans and logs come in several
        messages. A user's profile is replaced, never changed in place, on an update (UserDirectory),
        so an entry built from an older profile object is rebuilt."""
        if context is None:
            return _NO_TRACE_ATTRIBUTES
        key = (context.user, context.tenant, context.root_service, context.root_route)
        profile = self.users.by_pseudonym(context.user) if context.user else None
        cached = self._trace_attributes_cache.get(key)
        if cached is not None and cached.profile is profile:
            return cached
        if len(self._trace_attributes_cache) >= _MAX_TRACE_ATTRIBUTES:
            self._trace_attributes_cache.clear()
        attributes = self._context_attributes(context, profile)
        names = self._names
        cached = self._trace_attributes_cache[key] = _TraceAttributes(
            attributes, profile, self._encode_span_attributes(attributes),
            self._encode_log_attributes(attributes),
            names.user_pseudonym in attributes, names.root_service in attributes,
        )
        return cached

    def _context_attributes(self, context: TraceContext, profile: dict | None) -> dict[str, str]:
        names = self._names
        attributes: dict[str, str] = {}
        if context.user:
            attributes[names.user_pseudonym] = context.user
            self._add_profile(attributes, profile, context.tenant)
        elif context.tenant:
            self._add_profile(attributes, None, context.tenant)
        if context.root_service is not None:
            attributes[names.root_service] = context.root_service
            if context.root_route:
                attributes[names.root_route] = context.root_route
        return attributes

    def _add_profile(self, attributes: dict[str, str], profile: dict | None, tenant: str | None) -> None:
        """The configured profile fields; the trace root's tenant overrides the profile's."""
        config = self.config
        for field, name in config.user_fields.items():
            value = tenant if tenant and field == config.tenant_field else (profile or {}).get(field)
            if isinstance(value, str | int | float | bool):
                attributes[name] = str(value)

    def _enrich_spans(self, message: Message, payload: bytes | None, groups: dict[bytes, list],
                      by_trace: dict[bytes, _TraceAttributes]) -> None:
        counts = self._counts
        counts.spans += sum(map(len, groups.values()))
        if not any(trace.attributes for trace in by_trace.values()):
            return
        search = _mentions(self._span_keys, message, payload)
        for trace_id, trace in by_trace.items():
            if not trace.attributes:
                continue
            spans = groups[trace_id]
            if search:
                for span in spans:
                    set_strs(span.attributes, trace.attributes)
            else:
                merge = trace.span_encoding
                for span in spans:
                    span.MergeFromString(merge)  # appends to the repeated attributes field
            counts.spans_with_user += len(spans) * trace.has_user
            counts.spans_with_trace_context += len(spans) * trace.has_root

    def _enrich_logs(self, message: Message, payload: bytes | None, groups: dict[bytes, list],
                     by_trace: dict[bytes, _TraceAttributes]) -> None:
        names, counts = self._names, self._counts
        user_key = self.config.user_id_attribute
        search = _mentions(self._log_keys, message, payload)
        span_fields: dict[tuple, dict[str, str]] = {}  # per distinct owning span summary
        for trace_id, records in groups.items():
            counts.logs += len(records)
            trace = by_trace.get(trace_id, _NO_TRACE_ATTRIBUTES)
            trace_attributes = trace.attributes
            if trace_id:
                counts.logs_with_trace_id += len(records)
                counts.logs_with_trace_context += len(records) * (names.root_service in trace_attributes)
                summaries = self.traces.span_summaries(trace_id.hex())
            else:
                summaries = {}
            for record in records:
                summary = summaries.get(record.span_id.hex()) if summaries else None
                if summary is not None:
                    counts.logs_with_span += 1
                if search:
                    attributes = {**trace_attributes, **self._span_fields(summary, span_fields)}
                    own_user = get_str(record.attributes, user_key)
                    if own_user:  # a user id on the record itself wins over its trace's
                        token = self.pseudonymize(own_user)
                        attributes[names.user_pseudonym] = token
                        self._add_profile(attributes, self.users.by_pseudonym(token), None)
                    if attributes:
                        set_strs(record.attributes, attributes)
                    counts.logs_with_user += names.user_pseudonym in attributes
                    continue
                encoded = trace.log_encoding
                if summary is not None:
                    encoded += self._span_fields_encoding(summary, span_fields)
                if encoded:
                    record.MergeFromString(encoded)
                counts.logs_with_user += names.user_pseudonym in trace_attributes

    def _span_fields_encoding(self, summary: Sequence, cache: dict[tuple, dict[str, str]]) -> bytes:
        key = tuple(summary)  # (service, name, status): few distinct ones
        encoded = self._span_fields_encoded.get(key)
        if encoded is None:
            if len(self._span_fields_encoded) >= _MAX_TRACE_ATTRIBUTES:
                self._span_fields_encoded.clear()
            encoded = self._span_fields_encoded[key] = self._encode_log_attributes(
                self._span_fields(summary, cache))
        return encoded

    def _span_fields(self, summary: Sequence | None, cache: dict[tuple, dict[str, str]]) -> dict[str, str]:
        """The owning span's service, name and status for a log record."""
        if summary is None:
            return {}
        service, name, status = summary
        key = (service, name, status)
        fields = cache.get(key)
        if fields is None:
            names = self._names
            fields = cache[key] = {names.span_service: service, names.span_name: name,
                                   names.span_status: _STATUS_NAMES.get(status, str(status))}
        return fields

    def _add_service_context(self, resource_groups: Iterable) -> None:  # Resource{Spans,Logs,Metrics}
        services = self.services
        if not services:
            return
        fields = self.config.service_fields
        for group in resource_groups:
            resource = group.resource
            entry = services.get(service_name(resource))
            if not entry:
                continue
            attributes = {name: str(entry[field]) for field, name in fields.items()
                          if isinstance(entry.get(field), str | int | float | bool)}
            if attributes:
                set_strs(resource.attributes, attributes)
                self._counts.resources_with_service_context += 1

    def stats(self) -> EnrichmentStats:
        counters = self.traces.counters
        stats = EnrichmentStats(**asdict(self._counts))
        stats.traces = len(self.traces)
        stats.traces_evicted_ttl = counters.evicted_ttl
        stats.traces_evicted_size = counters.evicted_size
        stats.span_summaries_dropped = counters.span_summaries_dropped
        stats.users = len(self.users)
        stats.services = len(self.services)
        return stats


@dataclass(frozen=True, slots=True)
class _TraceAttributes:
    """The attributes one trace context gives its records, and their encodings."""

    attributes: dict[str, str]
    profile: dict | None  # the user's profile they were built from
    span_encoding: bytes  # `attributes` as a Span's attribute field, for MergeFromString
    log_encoding: bytes  # the same as a LogRecord's
    has_user: bool
    has_root: bool


_NO_TRACE_ATTRIBUTES = _TraceAttributes({}, None, b"", b"", has_user=False, has_root=False)


def _first(attributes: Iterable[KeyValue], keys: Iterable[str]) -> str | None:
    """The value of the first of `keys` present."""
    for key in keys:
        value = get_str(attributes, key)
        if value:
            return value
    return None



def _records_by_trace(signal: Signal, message: Message) -> dict[bytes, list[Any]]:
    """Spans or log records grouped by trace id (b"" for those without one), in message order."""
    if signal is Signal.TRACES:
        containers = (scope.spans for group in message.resource_spans for scope in group.scope_spans)
    else:
        containers = (scope.log_records for group in message.resource_logs for scope in group.scope_logs)
    groups: dict[bytes, list[Any]] = {}
    for records in containers:
        for record in records:
            trace_id = record.trace_id
            group = groups.get(trace_id)
            if group is None:
                groups[trace_id] = [record]
            else:
                group.append(record)
    return groups


def _literal_search(keys: Iterable[str]) -> Callable[[bytes], bool]:
    """Whether any of `keys` occurs in a message's bytes: one Hyperscan pass over them (about four
    times faster than RE2 here), stopped at the first hit."""
    literals = [key.encode() for key in keys]
    database = compile_database(literals, [hyperscan.HS_FLAG_SINGLEMATCH] * len(literals), literal=True)

    def search(payload: bytes) -> bool:
        try:
            database.scan(payload, match_event_handler=_stop)
        except hyperscan.ScanTerminated:
            return True
        return False

    return search


def _stop(*_match: object) -> bool:
    return True  # ends the scan


def _mentions(search: Callable[[bytes], bool], message: Message, payload: bytes | None) -> bool:
    """Whether any searched key occurs in the encoded message: no record can carry it otherwise.
    One search over the bytes is several times cheaper than a pass over every attribute list."""
    return search(payload if payload is not None else message.SerializeToString())


class _AttributeEncoder:
    """String attributes encoded as the attribute field of `record_type`, ready for MergeFromString
    (which appends them). A repeated field's encoding is its entries' encodings one after the other,
    so each key-value pair is encoded once, by protobuf, and cached: the values repeat (users,
    services, routes, span names), and joining bytes is several times cheaper than building a record."""

    def __init__(self, record_type: type[Span] | type[LogRecord]) -> None:
        self._record_type = record_type
        self._pairs: dict[tuple[str, str], bytes] = {}

    def __call__(self, attributes: Mapping[str, str]) -> bytes:
        pairs = self._pairs
        parts = []
        for pair in attributes.items():
            encoded = pairs.get(pair)
            if encoded is None:
                if len(pairs) >= _MAX_ENCODED_PAIRS:
                    pairs.clear()
                record = self._record_type()
                record.attributes.add(key=pair[0]).value.string_value = pair[1]
                encoded = pairs[pair] = record.SerializeToString()
            parts.append(encoded)
        return b"".join(parts)
