"""The pure core both shells run: decode -> SLI partial aggregation -> enrich -> redact -> encode.

No Kafka here. The Faust worker and `replay` hand it records and get back what to write where;
which input records are finished (all their outputs are in a result) is explicit, so a shell can
acknowledge an input only after the broker has acknowledged its outputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.enrichment import Enricher, HoldBuffer, UserDirectory
from telemetry_pipeline.enrichment.hold import NO_BACKLOG, InputProgress
from telemetry_pipeline.otlp import (
    DecodeError,
    Encoding,
    Message,
    Signal,
    decode,
    decode_json_line,
    encode,
    sniff_encoding,
)
from telemetry_pipeline.redaction import Action, RedactionCounts, RedactionError, Redactor
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer
from telemetry_pipeline.sli import PartialAggregator, SliPartial, SloResolver


@dataclass(slots=True)
class InputRecord:
    """One input message. `signal` None means an OTLP/JSON line whose top-level key names the signal."""

    signal: Signal | None
    key: bytes | None
    value: bytes
    source: str  # "topic[partition]" or the file; with `position`, where the record came from
    position: int  # the offset in the partition, or the line in the file
    ref: Any = None  # the shell's handle, e.g. the Faust event to acknowledge

    @property
    def location(self) -> str:
        return f"{self.source}:{self.position}"


@dataclass(slots=True)
class CleanRecord:
    signal: Signal
    key: bytes | None
    value: bytes
    origin: InputRecord


@dataclass(slots=True)
class DlqRecord:
    """`origin.value` is what the DLQ receives: the input bytes, their redacted form
    (`dlq.redact_decodable`), or nothing when they could not be redacted; `origin.ref` is the input's handle.
    One too large for the DLQ topic goes there as a reference (the worker's delivery)."""

    reason: str
    origin: InputRecord


@dataclass
class CoreResult:
    clean: list[CleanRecord] = field(default_factory=list)
    dlq: list[DlqRecord] = field(default_factory=list)
    partials: list[SliPartial] = field(default_factory=list)
    # Inputs whose every output is in this result: safe to acknowledge once those are delivered.
    finished: list[InputRecord] = field(default_factory=list)


@dataclass(slots=True)
class _Decoded:
    record: InputRecord
    signal: Signal
    encoding: Encoding
    _message: Message | None
    # service -> newest event time (ms) of its items here (from its SLI partials), for the redaction
    # notes of this message; the newest of all is the message's event time.
    times: dict[str, int] = field(default_factory=dict)

    @property
    def event_ms(self) -> int | None:
        return max(self.times.values(), default=None)

    @property
    def message(self) -> Message:
        if self._message is None:
            self._message = _decode_record(self.record)[2]
        return self._message

    def forget_message(self) -> None:
        """Drop the decoded message until it is next used, then decode the record again. A held
        message waits so: decoded it takes several times the bytes its record keeps anyway (held logs
        were most of the decoded messages at a 500k-span backlog's peak, benchmarks/README.md)."""
        self._message = None


OTHER_SERVICE = "other"
MAX_SERVICE_NAME_LENGTH = 128
# Past this share of `enrichment.max_traces` the spans may wait for the logs (`Core.spans_outrun_logs`).
# Half: the spans agent still processes what Faust's conductor hands it past a full buffer (up to a
# poll's records) and what was in flight when the pause began; that must fit without pushing out traces.
_SPANS_WAIT_TABLE_FILL = 0.5


class ServiceCounts(Counter[tuple[str, str]]):
    """(service, name) -> count for at most `max_services` services, the first seen; the others,
    and names longer than MAX_SERVICE_NAME_LENGTH, count under OTHER_SERVICE. Records choose their
    own `service.name`: unbounded, this map and the metric labels made from it would grow with
    every name a client invents (DESIGN, bounded memory)."""

    def __init__(self, max_services: int = 200) -> None:
        super().__init__()
        self.max_services = max_services
        self._services: set[str] = set()

    def add(self, counts: Mapping[tuple[str, str], int]) -> None:
        for (service, name), count in counts.items():
            self[self._label(service), name] += count

    def _label(self, service: str) -> str:
        if service in self._services:
            return service
        if len(self._services) < self.max_services and len(service) <= MAX_SERVICE_NAME_LENGTH:
            self._services.add(service)
            return service
        return OTHER_SERVICE


@dataclass
class CoreStats:
    records_in: Counter[str] = field(default_factory=Counter)  # per signal
    items_out: Counter[str] = field(default_factory=Counter)  # spans, log records, data points
    dlq: Counter[str] = field(default_factory=Counter)  # per stage that rejected
    redactions: ServiceCounts = field(default_factory=ServiceCounts)


class Core:
    def __init__(
        self,
        config: PipelineConfig,
        *,
        trace_store: MutableMapping[str, dict],
        users: UserDirectory,
        services: Mapping[str, dict],
        wall_clock: bool = True,
    ) -> None:
        """`wall_clock` False (replay) means `now_ms` is a fixed stand-in, not the time of day."""
        production = config.environment == "production"
        self.pseudonymize = Pseudonymizer(config.redaction.load_key(production=production))
        self.redactor = Redactor(config.redaction, self.pseudonymize)
        self.enricher = Enricher(
            config.enrichment, trace_store, users, services, self.pseudonymize,
            sanitize=self.redactor.redact_text,
        )
        # The redactor may skip records by a prefilter over the input bytes only if what the
        # enricher adds to them after decoding is never scanned.
        self._prefilter_input = all(
            self.redactor.key_action(key) is Action.ALLOW for key in config.enrichment.added_attribute_names()
        )
        self.slos = SloResolver(
            config.slos, config.slo_defaults, services, max_period_ms=config.sli.retention_ms
        )
        self._wall_clock = wall_clock
        self.aggregator = PartialAggregator(config.sli, self.slos)
        self.held = HoldBuffer(config.enrichment)
        self.stats = CoreStats(redactions=ServiceCounts(config.worker.metrics_max_services))
        self._max_message_bytes = config.kafka.max_message_bytes
        self._hold_wait_bytes = config.worker.hold_wait_bytes
        self._grace_ms = config.enrichment.grace_period_ms
        self._redact_dlq = config.dlq.redact_decodable
        # The spans and logs inputs as the shell reads them: per partition whether it is caught up (the
        # shell says); and per input partition the newest event time read from it (seen here).
        self._span_sources: dict[str, bool] = {}
        self._log_sources: dict[str, bool] = {}
        self._read_to: dict[str, int] = {}
        self._inputs_live = False  # the shell says: no backlog on either input (`spans_outrun_logs`)

    @property
    def read_to(self) -> Mapping[str, int]:
        """Per input partition ("topic[n]"), the newest event time read from it."""
        return self._read_to

    def set_sources(
        self, spans: Mapping[str, bool], logs: Mapping[str, bool], *, live: bool = False
    ) -> None:
        """The spans and logs partitions the shell reads, each with whether it is caught up: held
        messages wait for the spans with a backlog to pass their event time (`HoldBuffer`), and the
        spans wait for the logs when the trace-context table runs short (`spans_outrun_logs`). `live`:
        both inputs have at most the message that has just come still to read in each partition."""
        self._span_sources, self._log_sources = dict(spans), dict(logs)
        self._inputs_live = live

    def spans_backlog(self) -> bool:
        """Whether some spans partition has records still to read (as of the shell's last look)."""
        return self._spans_progress().backlog

    def spans_outrun_logs(self) -> bool:
        """Whether reading more spans now would push out traces whose logs are still to come: the
        trace-context table is past `_SPANS_WAIT_TABLE_FILL` of its bound, and with a backlog of both
        the spans are read more than `enrichment.grace_period_ms` past the logs (in event time). The
        shell then pauses the spans partitions. It cannot stall the logs: they wait (in the hold) only
        for spans a grace past their own event time, and those are read already while this holds.
        Never while both inputs are live: a message that has just come is no backlog, and waiting for
        the logs' next one is only latency (250-315 ms of a paced run's tail; benchmarks/README.md, "The
        latency tail at half capacity"). Not for live spans alone: at a backlog's end the last span
        messages would push out the traces of the logs still far behind."""
        table = self.enricher.traces
        if len(table) < _SPANS_WAIT_TABLE_FILL * table.max_traces or self._inputs_live:
            return False
        spans, logs = self._spans_progress(), _progress(self._log_sources, self._read_to)
        if not logs.backlog or spans.read_to_ms is None:
            return False
        # Up to the grace ahead: the hold lets a log go only once the spans are that far past it.
        return logs.read_to_ms is None or logs.read_to_ms + self._grace_ms < spans.read_to_ms

    def logs_outrun_spans(self) -> bool:
        """Whether the logs read ahead of a spans backlog fill the hold past `worker.hold_wait_bytes`:
        held messages (their records' bytes) stay until the spans pass them, so reading further ahead
        would turn the backlog into memory. Never while the spans wait for the logs
        (`spans_outrun_logs`): each would wait for the other."""
        if self.held.held_bytes <= self._hold_wait_bytes:
            return False
        return self.spans_backlog() and not self.spans_outrun_logs()

    def _spans_progress(self) -> InputProgress:
        return _progress(self._span_sources, self._read_to)

    def learn(self, records: Iterable[InputRecord], now_ms: int) -> None:
        """Harvest trace context only (replay's first pass over its whole input)."""
        for item in self._decode_all(records, CoreResult()):
            self.enricher.learn(item.signal, item.message, now_ms)

    def process(self, records: Iterable[InputRecord], now_ms: int, *, final: bool = False) -> CoreResult:
        """Run a batch. Messages whose trace context is not known yet are held unless `final`."""
        result = CoreResult()
        decoded = self._decode_all(records, result)
        decoded = [item for item in decoded if self._aggregate(item, now_ms, result)]
        self.aggregator.forget_slos()
        for item in decoded:
            self.enricher.learn(item.signal, item.message, now_ms)
        # Held messages first: the batch just learned may carry the context they waited for.
        for item in [*self.held.take_ready(now_ms, self.enricher, spans=self._spans_progress()), *decoded]:
            self._finish(item, now_ms, final, result)
        return result

    def release(self, now_ms: int, *, everything: bool = False) -> CoreResult:
        """Send out held messages whose grace period is over (or all of them, at shutdown)."""
        result = CoreResult()
        spans = self._spans_progress()
        for item in self.held.take_ready(now_ms, self.enricher, spans=spans, everything=everything):
            self._finish(item, now_ms, True, result)
        return result

    def _decode_all(self, records: Iterable[InputRecord], result: CoreResult) -> list[_Decoded]:
        decoded = []
        for record in records:
            try:
                signal, encoding, message = _decode_record(record)
            except DecodeError as exc:
                self._reject(record, f"decode: {exc}", "decode", result)
                continue
            self.stats.records_in[signal] += 1
            decoded.append(_Decoded(record, signal, encoding, message))
        return decoded

    def _aggregate(self, item: _Decoded, now_ms: int, result: CoreResult) -> bool:
        """SLI partials of one message, tagged with where it came from, in input order: right after
        decoding (before any holding), so a source's offsets reach the SLI engine in order and it can
        skip what it has applied before. Span names are hashed into a cardinality sketch here, before
        redaction; no value is kept. False: the record went to the DLQ."""
        try:
            # With a real clock, items stamped far in the future are dropped from the SLIs so one
            # bad client clock cannot drag the watermark ahead.
            self.aggregator.add(item.signal, item.message, now_ms if self._wall_clock else None)
            partials = self.aggregator.drain()
        except Exception as exc:
            self.aggregator.drain()  # nothing of a rejected record is counted
            reason = f"aggregate: internal error {type(exc).__name__}"
            self._reject(item.record, reason, "aggregate", result, item)
            return False
        for partial in partials:
            partial.source, partial.offset = item.record.source, item.record.position
            item.times[partial.service] = partial.max_time_ms
        if partials:
            event_ms, source, read_to = item.event_ms, item.record.source, self._read_to
            read_to[source] = max(read_to.get(source, event_ms), event_ms)
        result.partials.extend(partials)
        return True

    def _finish(self, item: _Decoded, now_ms: int, final: bool, result: CoreResult) -> None:
        stage = "enrich"
        try:
            if not self.enricher.enrich(item.signal, item.message, final=final, payload=item.record.value):
                missing = self.enricher.missing_traces(item.signal, item.message)
                size = len(item.record.value)
                self.held.hold(item, now_ms, missing, event_ms=item.event_ms, size=size)
                item.forget_message()
                return
            stage = "redact"
            payload = item.record.value if item.encoding is Encoding.PROTO and self._prefilter_input else None
            counts = self.redactor.redact(item.message, payload)
            stage = "encode"
            value = encode(item.message, item.encoding)
        except RedactionError as exc:
            # Fail closed: a record that could not be redacted never reaches .clean.
            self._reject(item.record, f"redact: {exc}", "redact", result, item)
            return
        except Exception as exc:
            self._reject(item.record, f"{stage}: internal error {type(exc).__name__}", stage, result, item)
            return
        size = len(value) + len(item.record.key or b"")
        if size > self._max_message_bytes:
            reason = f"encode: output of {size} bytes over kafka.max_message_bytes"
            self._reject(item.record, reason, "encode", result, item)
            return
        self.stats.redactions.add(counts)
        result.partials.extend(_redaction_notes(item, counts, now_ms if self._wall_clock else 0))
        result.clean.append(CleanRecord(item.signal, item.record.key, value, item.record))
        result.finished.append(item.record)

    def _reject(
        self,
        record: InputRecord,
        reason: str,
        stage: str,
        result: CoreResult,
        decoded: _Decoded | None = None,
    ) -> None:
        """`decoded`: the record decoded, when it was rejected after decoding."""
        self.stats.dlq[stage] += 1
        payload = record.value
        if decoded is not None and self._redact_dlq:
            payload = self._redacted_payload(decoded)
            if payload is None:
                reason += "; payload withheld: it could not be redacted"
        result.dlq.append(DlqRecord(reason, replace(record, value=payload or b"")))
        result.finished.append(record)

    def _redacted_payload(self, item: _Decoded) -> bytes | None:
        """The input decoded afresh (enrichment may have changed the message), redacted and encoded
        as it came; None when that fails."""
        try:
            message = decode(item.signal, item.record.value, item.encoding)
            self.redactor.redact(message)
            return encode(message, item.encoding)
        except Exception:
            return None


def _decode_record(record: InputRecord) -> tuple[Signal, Encoding, Message]:
    """An input record's message: OTLP/JSON lines name their signal, the rest are the record's own
    signal in either encoding. Raises DecodeError."""
    if record.signal is None:
        signal, message = decode_json_line(record.value)
        return signal, Encoding.JSON, message
    encoding = sniff_encoding(record.value)
    return record.signal, encoding, decode(record.signal, record.value, encoding)


def _progress(sources: Mapping[str, bool], read_to: Mapping[str, int]) -> InputProgress:
    """Where an input is, from its partitions (with whether each is caught up) and what was read."""
    if all(sources.values()):
        return NO_BACKLOG
    # The slowest of all partitions with data, not only of those behind: whether one is caught up is
    # known as of the shell's last look, and more may have been read from it since.
    newest = []
    for source, caught_up in sources.items():
        position = read_to.get(source)
        if position is None and not caught_up:
            return InputProgress(backlog=True)  # nothing read yet from one with a backlog
        if position is not None:
            newest.append(position)
    return InputProgress(backlog=True, read_to_ms=min(newest, default=None))


def _redaction_notes(item: _Decoded, counts: RedactionCounts, now_ms: int) -> list[SliPartial]:
    """What the redactor found in one message, per service, for detection (pii_leak): tagged with the
    message's source and offset, so redelivered input is counted once there (see `SliPartial`). The
    event time is the service's newest item in the message (`now_ms` if aggregation skipped them all)."""
    by_service: dict[str, dict[str, int]] = {}
    for (service, name), count in counts.items():
        if count:
            by_service.setdefault(service, {})[name] = count
    event_ms = item.event_ms
    return [
        SliPartial(
            service,
            item.times.get(service, now_ms if event_ms is None else event_ms),
            [],
            item.record.source,
            item.record.position,
            redactions=found,
        )
        for service, found in sorted(by_service.items())
    ]
