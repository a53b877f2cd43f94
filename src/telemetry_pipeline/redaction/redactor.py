"""The redactor: key rules first, then value detectors, in place on a decoded OTLP message.

Cost per attribute is what matters (hundreds of spans per message, 8-20 attributes each), so:
the action for a key is computed once and kept in a dict; allowed keys and non-string scalars are
never scanned; each distinct string is scanned once and the result reused (telemetry repeats
routes, hosts and SQL endlessly); and a value is scanned by one combined regex (detectors.py).
Given the serialized message as well, it visits only the attributes (and other parts) of spans and
log records where a prefilter over those bytes found something that could need redaction
(prefilter.py), and skips the rest.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from telemetry_pipeline.otlp import Message
from telemetry_pipeline.otlp.attributes import service_name
from telemetry_pipeline.redaction.config import Action, RedactionConfig
from telemetry_pipeline.redaction.detectors import Detector, find, rule_database
from telemetry_pipeline.redaction.national_ids import NationalIds
from telemetry_pipeline.redaction.prefilter import (
    LOG_RECORD,
    SPAN,
    Prefilter,
    RecordKind,
    RecordParts,
    RecordSelection,
)

# Rule names counted besides the detectors' own names.
SECRET_KEY = "secret_key"
PERSON_KEY = "person_key"
KEY_RULE = "key_rule"
MAX_DEPTH = "max_depth"

MASKED_KEYS = "redaction.masked.keys"
MASKED_COUNT = "redaction.masked.count"
REDACTED_KEYS = "redaction.redacted.keys"
REDACTED_COUNT = "redaction.redacted.count"
BODY_MASKED_COUNT = "redaction.body.masked.count"

_KEY_PARTS = re.compile(r"[._\-\s]+")
_UNCHANGED = 0
_CHANGED = 1
_DROP = 2
_MISSING = object()
_CONTAINERS = ("kvlist_value", "array_value")
# Strings shorter than this cannot hold anything a detector finds ("::1" is the shortest).
_MIN_SCANNED_LENGTH = 3
# Longer strings (log lines, stack traces) rarely repeat: not cached, which bounds the cache's memory.
_MAX_CACHED_LENGTH = 512


class RedactionError(Exception):
    """Redaction failed: the record must go to the DLQ. The text never contains record values."""


class RedactionCounts(Counter[tuple[str, str]]):
    """(service.name, detector or rule name) -> number of values changed; add with `update`."""


class ScanResult:
    """The outcome of scanning one distinct string: its redacted text and what was found."""

    __slots__ = ("detectors", "drop", "text")

    def __init__(self, text: str, detectors: tuple[str, ...], drop: bool) -> None:
        self.text = text
        self.detectors = detectors
        self.drop = drop


def truncate_ip(text: str) -> str | None:
    """The /24 (IPv4) or /64 (IPv6) network of an address, or None when `text` is no address."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def marker(name: str) -> str:
    return f"[REDACTED:{name.upper()}]"


class Redactor:
    def __init__(self, config: RedactionConfig, pseudonymize: Callable[[str], str]) -> None:
        self._config = config
        self._pseudonymize = pseudonymize
        self._max_depth = config.max_depth
        self._summary = config.summary_attributes
        self._scan_names = config.scan_span_names
        self._enabled = frozenset(Detector) - frozenset(config.disabled_detectors)
        self._national_ids = NationalIds(frozenset(config.regions))
        self._detector_actions = {detector: config.detector_action(detector) for detector in Detector}
        self._allow_keys = frozenset(config.allow_keys)
        self._person_keys = frozenset(config.person_keys)
        self._secret_suffixes = [tuple(_KEY_PARTS.split(words.lower())) for words in config.secret_keys]
        self._key_actions: dict[str, Action | None] = {}  # None: scan the value
        self._key_counted: dict[str, str] = {}  # key -> rule name counted when its action applies
        self._scans: dict[str, ScanResult | None] = {}  # None: nothing found
        self._cache_size = config.value_cache_size
        self._prefilter = Prefilter(config, self._has_key_rule)
        # Now, not on the first value that needs it: a worker builds its core before it joins the
        # group, so the first records do not wait for the compile (the p99 of a paced run).
        rule_database()

    # -- public -------------------------------------------------------------------------------

    def redact(self, message: Message, payload: bytes | None = None) -> RedactionCounts:
        """Redact `message` in place; counts per (service, detector). Raises RedactionError.

        `payload`, optional: the OTLP/protobuf bytes `message` was decoded from, changed since only
        by appending attributes whose keys are allowed (the enricher's) or setting their values.
        Spans and log records, and attributes in them, where the prefilter finds nothing in it are
        skipped; the result is the same as without. A payload that does not walk to the message's
        structure (or OTLP/JSON) is ignored.
        """
        counts = RedactionCounts()
        try:
            if isinstance(message, TracesData):
                selection = self._selection(payload, message.resource_spans, "scope_spans", "spans", SPAN)
                self._records(message.resource_spans, "scope_spans", "spans", self._span, counts, selection)
            elif isinstance(message, LogsData):
                selection = self._selection(
                    payload, message.resource_logs, "scope_logs", "log_records", LOG_RECORD
                )
                self._records(
                    message.resource_logs, "scope_logs", "log_records", self._log_record, counts, selection
                )
            elif isinstance(message, MetricsData):
                self._metrics(message, counts)
            else:
                raise RedactionError(f"cannot redact a {type(message).__name__}")
        except RedactionError:
            raise
        except Exception as exc:
            # Only the exception type: its text may quote the value being redacted.
            raise RedactionError(f"{type(exc).__name__} while redacting {type(message).__name__}") from None
        return counts

    def redact_text(self, text: str) -> str:
        """`text` with what the detectors find in it masked, hashed or truncated as configured (a
        drop match is masked). For values copied before redaction, such as span names. Cached."""
        try:
            found = self.scan(text)
        except Exception as exc:
            raise RedactionError(f"{type(exc).__name__} while redacting a text") from None
        return text if found is None else found.text

    @property
    def cached_values(self) -> int:
        """Distinct strings whose scan result is cached (at most value_cache_size)."""
        return len(self._scans)

    def key_action(self, key: str) -> Action | None:
        """What happens to an attribute with this key: an action, or None to scan its value."""
        action = self._key_actions.get(key, _MISSING)
        if action is _MISSING:
            action, rule = self._classify(key)
            # Keys are the client's to invent (100,000 distinct in one message): bounded like the scans.
            if len(self._key_actions) >= self._cache_size:
                self._key_actions.clear()
                self._key_counted.clear()
            self._key_actions[key] = action
            self._key_counted[key] = rule
        return action  # type: ignore[return-value]

    def scan(self, text: str) -> ScanResult | None:
        """The redaction of one string (cached), or None when nothing was found."""
        found = self._scans.get(text, _MISSING)
        if found is _MISSING:
            found = self._scan_uncached(text) if len(text) >= _MIN_SCANNED_LENGTH else None
            if self._cache_size and len(text) <= _MAX_CACHED_LENGTH:
                if len(self._scans) >= self._cache_size:
                    self._scans.clear()
                self._scans[text] = found
        return found  # type: ignore[return-value]

    # -- signals ------------------------------------------------------------------------------

    def _selection(
        self, payload: bytes | None, groups, scopes: str, records: str, kind: RecordKind
    ) -> RecordSelection | None:
        """The prefilter's selection when `payload` walks to the message's structure: as many
        resource groups, scope groups in each and records in each (fields `scopes` and `records`)."""
        if payload is None:
            return None
        selection = self._prefilter.select(payload, kind)
        if selection is None:
            return None
        structure = [[len(getattr(scope, records)) for scope in getattr(group, scopes)] for group in groups]
        if selection.scopes_per_resource != [len(scope_sizes) for scope_sizes in structure]:
            return None
        if selection.records_per_scope != [size for scope_sizes in structure for size in scope_sizes]:
            return None
        return selection

    def _has_key_rule(self, key: str) -> bool:
        action = self.key_action(key)
        return action is not None and action is not Action.ALLOW

    def _records(
        self,
        resources: Iterable[Any],
        scopes_field: str,
        records_field: str,
        redact_record: Callable[[Any, Counter[str], RecordParts | None], None],
        counts: RedactionCounts,
        selection: RecordSelection | None,
    ) -> None:
        """Resources and scopes of spans or log records, then every record, or (with a prefilter
        selection) only the records and parts it names."""
        hits = iter(selection.hits) if selection is not None else None
        for resource_records in resources:
            tally: Counter[str] = Counter()
            service = service_name(resource_records.resource)
            self._container(resource_records.resource.attributes, tally)
            for scope_records in getattr(resource_records, scopes_field):
                self._container(scope_records.scope.attributes, tally)
                records = getattr(scope_records, records_field)
                if hits is None:
                    for record in records:
                        redact_record(record, tally, None)
                else:
                    for index, parts in next(hits):
                        redact_record(records[index], tally, parts)
            _merge(counts, service, tally)

    def _span(self, span: Span, tally: Counter[str], parts: RecordParts | None = None) -> None:
        """`parts`: only these (from the prefilter); None: all of the span."""
        rest, indices = parts or (True, None)
        if rest:
            # Name and status message changes show in the counts, not in the summary attributes,
            # which (as the Collector's) name attribute keys.
            if self._scan_names:
                self._text_field(span, "name", tally)
            if span.status.message:
                self._text_field(span.status, "message", tally)
            for event in span.events:
                self._text_field(event, "name", tally)
                self._container(event.attributes, tally)
            for link in span.links:
                self._container(link.attributes, tally)
        self._container(span.attributes, tally, indices=indices)

    def _log_record(self, record: LogRecord, tally: Counter[str], parts: RecordParts | None = None) -> None:
        """`parts`: only these (from the prefilter); None: all of the record."""
        rest, indices = parts or (True, None)
        body_masked = 0
        if rest and record.HasField("body"):
            before = tally.total()
            # A body match whose action is drop stays masked: there is no attribute to drop.
            if self._any(record.body, tally, 0) != _UNCHANGED:
                body_masked = tally.total() - before
        self._container(record.attributes, tally, body_masked, indices)

    def _metrics(self, message: MetricsData, counts: RedactionCounts) -> None:
        for resource_metrics in message.resource_metrics:
            tally: Counter[str] = Counter()
            service = service_name(resource_metrics.resource)
            self._container(resource_metrics.resource.attributes, tally)
            for scope_metrics in resource_metrics.scope_metrics:
                self._container(scope_metrics.scope.attributes, tally)
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is None:
                        continue
                    has_exemplars = kind != "summary"
                    for point in getattr(metric, kind).data_points:
                        self._container(point.attributes, tally)
                        if has_exemplars:
                            for exemplar in point.exemplars:
                                self._container(exemplar.filtered_attributes, tally)
            _merge(counts, service, tally)

    # -- attributes and values ----------------------------------------------------------------

    def _container(
        self, attributes, tally: Counter[str], body_masked: int = 0, indices: list[int] | None = None
    ) -> None:
        """Redact a top-level attribute list (only `indices` of it if given); add the summary
        attributes when configured."""
        outcome = self._attributes(attributes, tally, 0, indices)
        if not self._summary or not (outcome or body_masked):
            return
        masked, dropped = outcome or ([], [])
        summaries = ((masked, MASKED_KEYS, MASKED_COUNT), (dropped, REDACTED_KEYS, REDACTED_COUNT))
        for keys, keys_name, count_name in summaries:
            if keys:
                attributes.add(key=keys_name).value.string_value = ",".join(sorted(keys))
                attributes.add(key=count_name).value.int_value = len(keys)
        if body_masked:
            attributes.add(key=BODY_MASKED_COUNT).value.int_value = body_masked

    def _attributes(
        self, attributes, tally: Counter[str], depth: int, indices: list[int] | None = None
    ) -> tuple[list[str], list[str]] | None:
        """Redact a list of KeyValue (only `indices` of it if given); returns (changed keys,
        dropped keys) when anything changed."""
        # The loop every attribute of every record goes through: locals, no calls for the common
        # cases (an allowed key; a string seen before with nothing in it).
        actions = self._key_actions
        scans = self._scans
        allow = Action.ALLOW
        masked: list[str] | None = None
        dropped: list[int] | None = None
        selected = enumerate(attributes)
        if indices is not None:
            selected = [(index, attributes[index]) for index in indices]  # type: ignore[assignment]
        for index, kv in selected:
            key = kv.key
            action = actions.get(key, _MISSING)
            if action is _MISSING:
                action = self.key_action(key)
            if action is allow:
                continue
            if action is None:
                value = kv.value
                text = value.string_value
                if text:
                    found = scans.get(text, _MISSING)
                    if found is None:
                        continue
                    if found is _MISSING:
                        found = self.scan(text)
                        if found is None:
                            continue
                    value.string_value = found.text
                    tally.update(found.detectors)
                    status = _DROP if found.drop else _CHANGED
                elif value.WhichOneof("value") in _CONTAINERS:
                    status = self._any(value, tally, depth)
                else:
                    continue
            elif action is Action.DROP:
                tally[self._key_counted[key]] += 1
                status = _DROP
            else:
                rule = self._key_counted[key]
                status = self._apply_key_action(kv.value, action, rule)  # type: ignore[arg-type]
                if status:
                    tally[rule] += 1
            if status == _CHANGED:
                masked = masked or []
                masked.append(key)
            elif status == _DROP:
                dropped = dropped or []
                dropped.append(index)
        if masked is None and dropped is None:
            return None
        dropped_keys = [attributes[index].key for index in dropped or ()]
        for index in reversed(dropped or ()):
            del attributes[index]
        return masked or [], dropped_keys

    def _any(self, value: AnyValue, tally: Counter[str], depth: int) -> int:
        """Scan one AnyValue of any kind; _UNCHANGED, _CHANGED or _DROP (a drop-action match)."""
        kind = value.WhichOneof("value")
        if kind == "string_value":
            scan = self.scan(value.string_value)
            if scan is None:
                return _UNCHANGED
            value.string_value = scan.text
            tally.update(scan.detectors)
            return _DROP if scan.drop else _CHANGED
        if kind == "kvlist_value" or kind == "array_value":
            if depth >= self._max_depth:
                value.Clear()
                value.string_value = marker(MAX_DEPTH)
                tally[MAX_DEPTH] += 1
                return _CHANGED
            if kind == "kvlist_value":
                changed = self._attributes(value.kvlist_value.values, tally, depth + 1)
                return _CHANGED if changed else _UNCHANGED
            status = _UNCHANGED
            for element in value.array_value.values:
                status = max(status, self._any(element, tally, depth + 1))
            return status
        return _UNCHANGED  # numbers, booleans and bytes hold no text to scan

    def _text_field(self, holder, field: str, tally: Counter[str]) -> bool:
        """Scan a plain string field (span name, status message); a drop match is masked."""
        scan = self.scan(getattr(holder, field))
        if scan is None:
            return False
        setattr(holder, field, scan.text)
        tally.update(scan.detectors)
        return True

    def _apply_key_action(self, value: AnyValue, action: Action, rule: str, depth: int = 0) -> int:
        """Mask, hash or truncate a whole value because of its key (`rule`: why, for the marker)."""
        kind = value.WhichOneof("value")
        if kind is None or (kind == "string_value" and not value.string_value):
            return _UNCHANGED
        if kind == "array_value" and depth < self._max_depth:
            status = _UNCHANGED
            for element in value.array_value.values:
                status = max(status, self._apply_key_action(element, action, rule, depth + 1))
            return status
        if kind == "kvlist_value" and depth < self._max_depth:
            status = _UNCHANGED
            for kv in value.kvlist_value.values:
                status = max(status, self._apply_key_action(kv.value, action, rule, depth + 1))
            return status
        if action is Action.HASH and kind in ("string_value", "int_value", "double_value", "bool_value"):
            replacement = self._pseudonymize(str(getattr(value, kind)))
        elif action is Action.TRUNCATE and kind == "string_value":
            replacement = truncate_ip(value.string_value) or marker("ip")
        else:
            replacement = marker("secret" if rule == SECRET_KEY else rule)
        value.Clear()
        value.string_value = replacement
        return _CHANGED

    # -- rules --------------------------------------------------------------------------------

    def _classify(self, key: str) -> tuple[Action | None, str]:
        config = self._config
        explicit = config.key_rules.get(key)
        if explicit is not None:
            return explicit, KEY_RULE
        if key in self._allow_keys:
            return Action.ALLOW, ""
        if key in self._person_keys:
            return config.person_key_action, PERSON_KEY
        parts = tuple(part for part in _KEY_PARTS.split(key.lower()) if part)
        for suffix in self._secret_suffixes:
            if parts[-len(suffix):] == suffix:
                return config.secret_key_action, SECRET_KEY
        return None, ""

    def _scan_uncached(self, text: str) -> ScanResult | None:
        enabled = self._enabled
        findings = [finding for finding in find(text, self._national_ids) if finding.detector in enabled]
        if not findings:
            return None
        pieces: list[str] = []
        names: list[str] = []
        drop = False
        position = 0
        for finding in findings:
            detector = finding.detector
            found = text[finding.start:finding.end]
            action = self._detector_actions[detector]
            if action is Action.HASH:
                replacement = self._pseudonymize(found)
            elif action is Action.TRUNCATE and detector in (Detector.IPV4, Detector.IPV6):
                replacement = truncate_ip(found.split("/", 1)[0]) or marker(detector)
            else:
                drop = drop or action is Action.DROP
                replacement = marker(detector)
            pieces.append(text[position:finding.start])
            pieces.append(replacement)
            names.append(detector.value)
            position = finding.end
        pieces.append(text[position:])
        return ScanResult("".join(pieces), tuple(names), drop)


def _merge(counts: RedactionCounts, service: str, tally: Counter[str]) -> None:
    for name, count in tally.items():
        counts[(service, name)] += count
