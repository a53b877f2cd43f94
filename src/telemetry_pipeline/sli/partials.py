"""Ingest side: per (service, event-time bucket) partial aggregates of decoded OTLP messages.

Runs on whatever partition a message arrived on, drained once per message (so the engine can apply
each input message exactly once); the partials are small and are emitted keyed by service, so the
SLI stage sees every record of a service. Hot path: one pass over the spans with as
few protobuf field reads as possible; the attribute list of a span is read once, and only for
request spans (for the HTTP status code) and the cardinality sketch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, MetricsData
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from telemetry_pipeline.otlp import Message, Signal
from telemetry_pipeline.otlp.attributes import SERVICE_NAME, UNKNOWN_SERVICE, service_name
from telemetry_pipeline.sli.config import SliConfig, duration_ms
from telemetry_pipeline.sli.cumulative import POINT_FIELDS, Delta, representatives
from telemetry_pipeline.sli.sketch import MIN_LATENCY_MS, LatencyMapping, dense_from_counts, hll_of
from telemetry_pipeline.sli.slo import SloResolver
from telemetry_pipeline.sli.windows import BUCKET_FIELDS, new_bucket

_SERVER, _CONSUMER = 2, 5  # Span.SpanKind
_REQUEST_KINDS = frozenset({_SERVER, _CONSUMER})
_STATUS_UNSET, _STATUS_ERROR = 0, 2
_DELTA, _CUMULATIVE = 1, 2  # AggregationTemporality
_HTTP_STATUS_KEYS = frozenset({"http.response.status_code", "http.status_code"})
# Server duration histograms and their unit when the metric does not state one.
DURATION_METRICS = {
    "http.server.request.duration": "s",
    "http.server.duration": "ms",
    "rpc.server.duration": "ms",
}
_UNIT_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 1e-6}
# gRPC codes that are server errors (OTel gRPC semantic conventions, server span status).
_GRPC_SERVER_ERRORS = frozenset({2, 4, 12, 13, 14, 15})
_ERROR_ATTRIBUTE_KEYS = frozenset(
    {"http.response.status_code", "http.status_code", "rpc.grpc.status_code", "error.type"}
)
_NS_PER_MS = 1_000_000
SERVICE_VERSION = "service.version"


# The `sli-partials` record: {"v": PARTIALS_VERSION, "partials": [{field: value, ...}, ...]}. Readers
# ignore fields they do not know (a field may be added within a version); anything a reader of this
# version cannot use correctly gets a new version number, and other versions are rejected. Version 3
# added `cumulative` (before it, cumulative points came as deltas inside the buckets).
PARTIALS_VERSION = 3
_FIELDS = ("service", "max_time_ms", "buckets", "source", "offset", "redactions", "versions", "cumulative")


@dataclass(slots=True)
class SliPartial:
    """One service's aggregates from one input message: a bucket (layout of `windows`) per finest-tier
    bucket its items fall in, sorted by start.

    `source` and `offset` name that message (input partition and offset, or file and line): the
    engine applies each (service, source, offset) once, so input redelivered after a rebalance or a
    crash (at-least-once) is not counted twice. Untagged partials (offset -1) are always applied.

    `versions`: each `service.version` the message's resources carry, with the earliest event time
    (ms) of the message's items for it (deploy correlation). `cumulative`: the message's points of
    cumulative duration histograms, raw (layout of `cumulative`): the engine turns them into deltas,
    since only it sees all of a series' points whatever partition or worker they came through.
    `redactions`: values the redactor changed
    in the message, per detector or rule; such a partial is a redaction note (`is_redaction_note`):
    no buckets, sent after the message was redacted, which can be before or after its buckets reach
    the engine (a held message's note goes out with the tick's producer), so the SLI engine leaves
    notes alone and detection counts them itself, once per (service, source, offset).
    """

    service: str
    max_time_ms: int
    buckets: list[list]
    source: str = ""
    offset: int = -1
    redactions: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    cumulative: list[list] = field(default_factory=list)

    @property
    def is_redaction_note(self) -> bool:
        return bool(self.redactions) and not self.buckets

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_json(cls, obj: dict) -> SliPartial:
        return cls(**{name: obj[name] for name in _FIELDS if name in obj})


@dataclass(frozen=True, slots=True)
class SourceProgress:
    """How far a shell has read one of its sources (input partition): the newest event time of the
    partials it has sent from it (None: none yet), and whether it is read to its end. Sent on every
    `sli-partials` partition after the partials it covers, so every SLI engine knows every source."""

    source: str
    max_time_ms: int | None
    caught_up: bool


class PartialsError(ValueError):
    """An `sli-partials` record that is not what `encode_partials` writes."""


def encode_partials(partials: list[SliPartial]) -> bytes:
    """One `sli-partials` record value: the partials of one service from one batch of input."""
    return orjson.dumps({"v": PARTIALS_VERSION, "partials": [partial.to_json() for partial in partials]})


def encode_progress(progress: list[SourceProgress]) -> bytes:
    """A progress record value: {"v": PARTIALS_VERSION, "progress": [[source, max_time_ms, caught_up]]}."""
    rows = [[report.source, report.max_time_ms, report.caught_up] for report in progress]
    return orjson.dumps({"v": PARTIALS_VERSION, "progress": rows})


def decode_partials(data: bytes) -> list[SliPartial]:
    """The partials of a partials record (`decode_record`); a progress record has none."""
    return decode_record(data)[0]


def decode_record(data: bytes) -> tuple[list[SliPartial], list[SourceProgress]]:
    """The partials or the progress reports of an `sli-partials` record, checked for version and shape:
    a foreign record or one of another format version (a rolling deploy) must not reach the engine."""
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise PartialsError("not JSON") from None
    if isinstance(record, list):
        raise PartialsError(f"unversioned (version 1) partials record; this worker reads {PARTIALS_VERSION}")
    if not isinstance(record, dict) or "v" not in record:
        raise PartialsError("not a partials record (no version)")
    if record["v"] != PARTIALS_VERSION:
        version = record["v"] if type(record["v"]) is int else "?"
        raise PartialsError(f"partials record version {version}; this worker reads {PARTIALS_VERSION}")
    if "progress" in record:
        return [], _progress_of(record["progress"])
    try:
        partials = [SliPartial.from_json(obj) for obj in record["partials"]]
    except (KeyError, TypeError) as exc:
        raise PartialsError(f"not a list of partials: {type(exc).__name__}") from None
    for partial in partials:
        if not (
            isinstance(partial.service, str)
            and isinstance(partial.source, str)
            and type(partial.offset) is int
            and type(partial.max_time_ms) is int
            and isinstance(partial.buckets, list)
            and all(_is_bucket(bucket) for bucket in partial.buckets)
            and _is_counts(partial.redactions)
            and _is_counts(partial.versions)
            and isinstance(partial.cumulative, list)
            and all(_is_series_point(entry) for entry in partial.cumulative)
        ):
            raise PartialsError("a partial with fields of the wrong type or shape")
    return partials, []


def _progress_of(rows: object) -> list[SourceProgress]:
    if not isinstance(rows, list) or not all(
        isinstance(row, list)
        and len(row) == 3
        and isinstance(row[0], str)
        and (row[1] is None or type(row[1]) is int)
        and isinstance(row[2], bool)
        for row in rows
    ):
        raise PartialsError("a progress record with rows of the wrong shape")
    return [SourceProgress(*row) for row in rows]


def _is_counts(value: object) -> bool:
    return isinstance(value, dict) and all(type(v) is int for v in value.values())


def _is_series_point(entry: object) -> bool:
    """[series digest (hex), point] with the point as `cumulative` lays it out."""
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
        return False
    point = entry[1]
    return (
        isinstance(point, list)
        and len(point) == POINT_FIELDS
        and all(type(point[i]) is int for i in (0, 1, 2, 4, 7))
        and isinstance(point[3], list)
        and all(type(count) is int for count in point[3])
        and isinstance(point[5], list)
        and len(point[5]) in (2, 3)
        and point[5][0] in ("x", "e")
        and isinstance(point[6], float)
    )


def _is_bucket(bucket: object) -> bool:
    return isinstance(bucket, list) and len(bucket) == BUCKET_FIELDS and type(bucket[0]) is int


class RequestCounts:
    """Requests, errors, the good count, zeros and a sparse latency sketch, as a bucket's request record."""

    __slots__ = ("bins", "errors", "good", "requests", "zeros")

    def __init__(self) -> None:
        self.requests = self.errors = self.good = self.zeros = 0
        self.bins: dict[int, int] = {}

    def to_json(self) -> list:
        return [self.requests, self.errors, self.good, self.zeros, dense_from_counts(self.bins)]


class _Accumulator:
    """A partial under construction: counters plus sets that become HyperLogLogs at drain."""

    __slots__ = (
        "keys",
        "logs",
        "logs_traced",
        "max_ns",
        "metric_req",
        "names",
        "points",
        "resource_attrs",
        "resources",
        "span_req",
        "spans",
    )

    def __init__(self) -> None:
        self.spans = self.points = self.logs = self.logs_traced = self.resources = self.resource_attrs = 0
        self.max_ns = 0
        self.span_req: RequestCounts | None = None
        self.metric_req: RequestCounts | None = None
        self.names: set[str] = set()
        self.keys: set[str] = set()


@dataclass
class AggregatorStats:
    future_dropped: int = 0  # items with event time beyond now + max_clock_skew


class PartialAggregator:
    def __init__(self, config: SliConfig, slos: SloResolver) -> None:
        self._slos = slos
        self._bucket_ns = config.fine_bucket_ms * _NS_PER_MS
        self._mapping = LatencyMapping(config.latency_relative_accuracy)
        self._max_skew_ns = duration_ms(config.max_clock_skew) * _NS_PER_MS
        self._requirements = [tuple(req.split("|")) for req in config.recommended_resource_attributes]
        self._key_sampling = config.attribute_key_sampling
        # service -> its cumulative duration points [series digest (hex), point] since the last drain
        self._cumulative: dict[str, list[list]] = {}
        self._pending: dict[tuple[str, int], _Accumulator] = {}
        self._thresholds: dict[str, float] = {}
        # service -> service.version -> earliest event time (ns) in what was added since the last drain
        self._versions: dict[str, dict[str, int]] = {}
        self.stats = AggregatorStats()

    def add(self, signal: Signal, message: Message, now_ms: int | None = None) -> None:
        """Aggregate one redacted message. With `now_ms`, items stamped further ahead than the allowed
        clock skew are counted and skipped, so one bad clock cannot drag the watermark into the future."""
        limit_ns = (now_ms * _NS_PER_MS + self._max_skew_ns) if now_ms is not None else None
        if signal is Signal.TRACES:
            self._add_traces(message, limit_ns)  # type: ignore[arg-type]
        elif signal is Signal.METRICS:
            self._add_metrics(message, limit_ns)  # type: ignore[arg-type]
        else:
            self._add_logs(message, limit_ns)  # type: ignore[arg-type]

    def drain(self) -> list[SliPartial]:
        """What was added since the last drain, one partial per service (untagged)."""
        by_service: dict[str, SliPartial] = {}
        for (service, index), acc in sorted(self._pending.items()):
            bucket = new_bucket(index * self._bucket_ns // _NS_PER_MS)
            bucket[1:] = [
                acc.spans,
                acc.points,
                acc.logs,
                acc.logs_traced,
                acc.resources,
                acc.resource_attrs,
                acc.span_req.to_json() if acc.span_req else None,
                acc.metric_req.to_json() if acc.metric_req else None,
                hll_of(acc.names) if acc.names else None,
                hll_of(acc.keys) if acc.keys else None,
            ]
            max_time_ms = acc.max_ns // _NS_PER_MS
            partial = by_service.get(service)
            if partial is None:
                versions = {v: ns // _NS_PER_MS for v, ns in self._versions.get(service, {}).items()}
                cumulative = self._cumulative.get(service, [])
                by_service[service] = SliPartial(
                    service, max_time_ms, [bucket], versions=versions, cumulative=cumulative
                )
            else:
                partial.buckets.append(bucket)
                partial.max_time_ms = max(partial.max_time_ms, max_time_ms)
        self._pending.clear()
        self._versions.clear()
        self._cumulative.clear()
        return list(by_service.values())

    def forget_slos(self) -> None:
        """Re-read latency thresholds from here on: SLOs may change (service catalog)."""
        self._thresholds.clear()

    def _accumulator(self, service: str, time_ns: int) -> _Accumulator:
        key = (service, time_ns // self._bucket_ns)
        acc = self._pending.get(key)
        if acc is None:
            acc = self._pending[key] = _Accumulator()
        return acc

    def _threshold(self, service: str) -> float:
        threshold = self._thresholds.get(service)
        if threshold is None:
            threshold = self._thresholds[service] = self._slos.slo_for(service).latency_threshold_ms
        return threshold

    def _resource_attrs_met(self, service: str, resource: Resource, time_ns: int) -> int:
        present = set()
        for kv in resource.attributes:
            present.add(kv.key)
            if kv.key == SERVICE_VERSION and kv.value.string_value:
                versions = self._versions.setdefault(service, {})
                first = versions.get(kv.value.string_value)
                if first is None or time_ns < first:
                    versions[kv.value.string_value] = time_ns
        met = sum(1 for keys in self._requirements if any(key in present for key in keys))
        if SERVICE_NAME in present and service_name(resource).startswith(UNKNOWN_SERVICE):
            met -= 1  # the SDK's placeholder is not a service name
        return met

    def _count_resource(self, service: str, resource: Resource, time_ns: int) -> None:
        acc = self._accumulator(service, time_ns)
        acc.resources += 1
        acc.resource_attrs += self._resource_attrs_met(service, resource, time_ns)

    def _add_traces(self, message: TracesData, limit_ns: int | None) -> None:
        bucket_ns, mapping_index, key_sampling = self._bucket_ns, self._mapping.index, self._key_sampling
        for resource_spans in message.resource_spans:
            resource = resource_spans.resource
            service = service_name(resource)
            threshold = self._threshold(service)
            current_index, acc, resource_counted = -1, None, False
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    end_ns = span.end_time_unix_nano
                    start_ns = span.start_time_unix_nano
                    time_ns = end_ns or start_ns
                    if time_ns // bucket_ns != current_index or acc is None:
                        if limit_ns is not None and time_ns > limit_ns:
                            self.stats.future_dropped += 1
                            continue
                        current_index = time_ns // bucket_ns
                        acc = self._accumulator(service, time_ns)
                        if not resource_counted:
                            self._count_resource(service, resource, time_ns)
                            resource_counted = True
                    acc.spans += 1
                    if time_ns > acc.max_ns:
                        acc.max_ns = time_ns
                    acc.names.add(span.name)
                    # Reading an attribute list costs ~0.5 us per attribute, most of this loop: key
                    # cardinality is sampled from 1 span in N, chosen by span id so the estimate does
                    # not depend on how the input was batched (restarts and replays agree).
                    span_id = span.span_id
                    if not span_id or span_id[-1] % key_sampling == 0:
                        acc.keys.update([kv.key for kv in span.attributes])
                    kind = span.kind
                    if kind not in _REQUEST_KINDS and span.parent_span_id:
                        continue
                    requests = acc.span_req
                    if requests is None:
                        requests = acc.span_req = RequestCounts()
                    requests.requests += 1
                    status = span.status.code
                    if status == _STATUS_ERROR or (
                        status == _STATUS_UNSET and kind == _SERVER and _http_status(span.attributes) >= 500
                    ):
                        requests.errors += 1
                    latency_ms = (end_ns - start_ns) / _NS_PER_MS
                    if latency_ms <= threshold:
                        requests.good += 1
                    if latency_ms < MIN_LATENCY_MS:
                        requests.zeros += 1
                    else:
                        index = mapping_index(latency_ms)
                        requests.bins[index] = requests.bins.get(index, 0) + 1

    def _add_logs(self, message: LogsData, limit_ns: int | None) -> None:
        for resource_logs in message.resource_logs:
            resource = resource_logs.resource
            service = service_name(resource)
            resource_counted = False
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    time_ns = record.time_unix_nano or record.observed_time_unix_nano
                    if limit_ns is not None and time_ns > limit_ns:
                        self.stats.future_dropped += 1
                        continue
                    acc = self._accumulator(service, time_ns)
                    if not resource_counted:
                        self._count_resource(service, resource, time_ns)
                        resource_counted = True
                    acc.logs += 1
                    if time_ns > acc.max_ns:
                        acc.max_ns = time_ns
                    trace_id = record.trace_id
                    if trace_id and trace_id.strip(b"\x00"):
                        acc.logs_traced += 1

    def _add_metrics(self, message: MetricsData, limit_ns: int | None) -> None:
        for resource_metrics in message.resource_metrics:
            resource = resource_metrics.resource
            service = service_name(resource)
            resource_counted = False
            resource_digest: bytes | None = None
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is None:
                        continue
                    data = getattr(metric, kind)
                    points = data.data_points
                    if not points:
                        continue
                    time_ns = points[0].time_unix_nano
                    if limit_ns is not None and time_ns > limit_ns:
                        self.stats.future_dropped += len(points)
                        continue
                    acc = self._accumulator(service, time_ns)
                    if not resource_counted:
                        self._count_resource(service, resource, time_ns)
                        resource_counted = True
                    acc.points += len(points)
                    if time_ns > acc.max_ns:
                        acc.max_ns = time_ns
                    if metric.name in DURATION_METRICS and kind in ("histogram", "exponential_histogram"):
                        if resource_digest is None:
                            resource_digest = resource.SerializeToString(deterministic=True)
                        self._add_duration_metric(service, resource_digest, metric, kind, limit_ns)

    def _add_duration_metric(
        self, service: str, resource_digest: bytes, metric: Metric, kind: str, limit_ns: int | None
    ) -> None:
        data = getattr(metric, kind)
        to_ms = _UNIT_TO_MS.get(metric.unit, _UNIT_TO_MS[DURATION_METRICS[metric.name]])
        cumulative = data.aggregation_temporality == _CUMULATIVE
        for point in data.data_points:
            time_ns = point.time_unix_nano
            if limit_ns is not None and time_ns > limit_ns:
                continue
            if kind == "histogram":
                layout: list = ["x", list(point.explicit_bounds)]
                counts = list(point.bucket_counts)
                zeros = 0
            else:
                layout = ["e", point.scale, point.positive.offset]
                counts = list(point.positive.bucket_counts)
                zeros = point.zero_count
            error = _is_error_point(point.attributes)
            if cumulative:
                series = _series_digest(resource_digest, metric.name, point.attributes).hex()
                start_ns = point.start_time_unix_nano
                raw = [time_ns, start_ns, point.count, counts, zeros, layout, to_ms, int(error)]
                self._cumulative.setdefault(service, []).append([series, raw])
                continue
            if point.count <= 0:
                continue
            acc = self._accumulator(service, time_ns)
            if acc.metric_req is None:
                acc.metric_req = RequestCounts()
            values = representatives(layout, len(counts), to_ms)
            delta = (point.count, counts, zeros)
            add_histogram(acc.metric_req, delta, values, self._threshold(service), self._mapping, error)


def add_histogram(
    requests: RequestCounts,
    delta: Delta,
    values: list[tuple[float, float, float]],
    threshold_ms: float,
    mapping: LatencyMapping,
    error: bool,
    sign: int = 1,
) -> None:
    """Count a histogram delta's requests (sign -1: take back a delta counted before). Latencies enter
    the sketch at each bucket's representative value (`cumulative.representatives`)."""
    total, counts, zeros = delta
    requests.requests += sign * total
    if error:
        requests.errors += sign * total
    requests.zeros += sign * zeros
    good = zeros
    for count, (low_ms, value_ms, high_ms) in zip(counts, values, strict=False):
        if not count:
            continue
        if value_ms >= MIN_LATENCY_MS:
            index = mapping.index(value_ms)
            requests.bins[index] = requests.bins.get(index, 0) + sign * count
        else:
            requests.zeros += sign * count
        # Good: the share of the bucket below the threshold, assuming values spread evenly.
        if high_ms <= threshold_ms:
            good += count
        elif low_ms < threshold_ms:
            good += count * (threshold_ms - low_ms) / (high_ms - low_ms)
    requests.good += sign * round(good)


def _http_status(attributes: Iterable[KeyValue]) -> int:
    for kv in attributes:
        if kv.key in _HTTP_STATUS_KEYS:
            return _status_number(kv.value)
    return 0


def _status_number(value: AnyValue) -> int:
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return value.int_value
    if kind == "string_value" and value.string_value.isdigit():
        return int(value.string_value)
    return 0


def _is_error_point(attributes: Iterable[KeyValue]) -> bool:
    for kv in attributes:
        key = kv.key
        if key not in _ERROR_ATTRIBUTE_KEYS:
            continue
        if key == "error.type":
            return True  # set by the HTTP/RPC conventions only when the request failed
        code = _status_number(kv.value)
        if (key == "rpc.grpc.status_code" and code in _GRPC_SERVER_ERRORS) or (
            key != "rpc.grpc.status_code" and code >= 500
        ):
            return True
    return False


def _series_digest(resource: bytes, name: str, attributes: Iterable[KeyValue]) -> bytes:
    digest = hashlib.blake2b(resource, digest_size=16)
    digest.update(name.encode())
    for kv in attributes:
        digest.update(kv.SerializeToString(deterministic=True))
    return digest.digest()
