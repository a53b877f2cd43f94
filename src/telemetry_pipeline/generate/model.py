"""The traffic model: traces, correlated logs and request metrics of the estate, over event time.

Span and log records are assembled from byte templates encoded once per operation (see `wire`);
per record only ids, timestamps, status and a few attribute values are encoded. Metrics are few
per interval and built through the protobuf API.
"""

from __future__ import annotations

import dataclasses
import math
import random
import struct
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, MetricsData, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from telemetry_pipeline.generate import wire
from telemetry_pipeline.generate.config import (
    Deploy,
    ErrorSpike,
    Garbage,
    GeneratorConfig,
    IsolatedErrors,
    LatencyRegression,
    LeakBurst,
    SignalStop,
    Silent,
)
from telemetry_pipeline.generate.estate import (
    GATEWAY_SPEC,
    Call,
    Db,
    Operation,
    ServiceSpec,
    build_users,
    tenants,
    traced_services,
)
from telemetry_pipeline.generate.pii import LEAKS, Leak, ipv4
from telemetry_pipeline.otlp import Encoding, Message, Signal, encode

_SPAN_KIND_INTERNAL, _SPAN_KIND_SERVER, _SPAN_KIND_CLIENT, _SPAN_KIND_PRODUCER, _SPAN_KIND_CONSUMER = (
    1,
    2,
    3,
    4,
    5,
)
_DAY_S = 86_400
_CYCLE_PEAK_S = 15 * 3600  # the daily cycle peaks at 15:00 UTC
_STATUS_CODE_ERROR = 2
_NS = 1_000_000_000
_NETWORK_NS = 300_000  # one way, between a CLIENT span and its SERVER child
_GATEWAY_OVERHEAD_NS = 1_200_000
# Semantic-conventions advice for http.server.request.duration.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_CLIENT_ERROR_CODES = (400, 401, 404, 404, 404, 429)

_SDK_VERSIONS = {"nodejs": "1.30.1", "java": "1.45.0", "go": "1.35.0", "python": "1.29.0", "cpp": "1.19.0"}
_SCOPES = {
    "nodejs": ("@opentelemetry/instrumentation-http", "0.57.2"),
    "java": ("io.opentelemetry.spring-webmvc-6.0", "2.12.0"),
    "go": ("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.59.0"),
    "python": ("opentelemetry.instrumentation.flask", "0.50b0"),
    "cpp": ("envoy", "1.31.2"),
}
_OMITTABLE_RESOURCE_KEYS = ("service.version", "deployment.environment.name", "k8s.pod.name", "host.name")
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "shop-android/4.12.0 okhttp/4.12.0",
    "curl/8.5.0",
)
_EXCEPTIONS = {
    "java": ("java.net.SocketTimeoutException", "Read timed out"),
    "go": ("*net.OpError", "dial tcp: connection refused"),
    "python": ("sqlalchemy.exc.OperationalError", "server closed the connection unexpectedly"),
    "nodejs": ("Error", "ECONNRESET: socket hang up"),
}
_FILLER_ATTRIBUTES: tuple[tuple[str, wire.AttributeValue], ...] = (
    ("app.build.id", "b-20251203.4"),
    ("app.feature_flag.new_checkout", True),
    ("app.retry.count", 0),
    ("app.request.priority", "normal"),
    ("app.cache.enabled", True),
    ("app.shard", 3),
    ("app.locale", "en-US"),
    ("app.ab_test.bucket", "B"),
    ("app.cost_center", "cc-4410"),
    ("app.timeout_ms", 3000),
    ("app.pool.size", 16),
    ("app.queue.depth", 0),
    ("app.sampling.priority", 1),
    ("app.git.sha", "9f3c2e1a7b"),
    ("app.feature_flag.fast_search", False),
    ("app.region", "eu-west-1"),
    ("app.availability_zone", "eu-west-1b"),
    ("thread.name", "worker-7"),
    ("code.line.number", 214),
    ("app.handler.version", "v2"),
)
_KEY_STATUS_CODE = "http.response.status_code"
_URL_PATH_KEY = wire.key_field("url.path")
_URL_FULL_KEY = wire.key_field("url.full")
# start_time_unix_nano (field 7) and end_time_unix_nano (field 8), both fixed64, in one call
_pack_span_times = struct.Struct("<BQBQ").pack
_SEVERITIES = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}


def _attribute(key: str, value: wire.AttributeValue, field: int = 9) -> bytes:
    return wire.length_delimited(field, wire.key_value(key, value))


def _string_attribute(key_prefix: bytes, value: str) -> bytes:
    """A span attribute whose key was encoded once with `wire.key_field`."""
    return wire.length_delimited(9, wire.string_key_value(key_prefix, value))


_SPAN_STATUS_CODE_ATTRIBUTE = {
    code: _attribute(_KEY_STATUS_CODE, code) for code in (200, 201, 500, 502, 503, *_CLIENT_ERROR_CODES)
}


class GeneratedMessage:
    """One Kafka message: OTLP of one signal, or (garbage) bytes that decode as nothing.

    `payload` is the protobuf encoding as generated; `message` parses it on first use. `encoded()`
    returns `payload` itself while the message has not been parsed, so producing protobuf costs
    no parse and re-serialisation; once parsed (and perhaps changed), it encodes the message.
    """

    __slots__ = ("_message", "event_time_ns", "is_garbage", "key", "payload", "records", "signal")

    def __init__(
        self,
        signal: Signal,
        key: bytes | None,
        payload: bytes,
        event_time_ns: int,
        records: int,
        is_garbage: bool = False,
    ) -> None:
        self.signal = signal
        self.key = key
        self.payload = payload
        self.event_time_ns = event_time_ns
        self.records = records  # spans, log records or metric data points; 0 for garbage
        self.is_garbage = is_garbage
        self._message: Message | None = None

    @property
    def message(self) -> Message | None:
        if self._message is None and not self.is_garbage:
            self._message = self.signal.message_type.FromString(self.payload)
        return self._message

    def encoded(self, encoding: Encoding) -> bytes:
        if self.is_garbage or (encoding is Encoding.PROTO and self._message is None):
            return self.payload
        return encode(self.message, encoding)  # type: ignore[arg-type]


@dataclass(slots=True, eq=False)
class _SpanTemplate:
    head: bytes  # name and kind
    attributes: bytes  # the attributes that never change
    leaks: tuple[Leak, ...]  # leaks whose attribute key the span does not already carry
    mean_ns: float
    kind: int = _SPAN_KIND_INTERNAL


@dataclass(slots=True, eq=False)
class _Operation:
    index: int
    service: int
    method: str
    route: str
    ok_code: int
    server: _SpanTemplate
    path_parts: tuple[str, str] | None  # url.path around "{id}"; None when the path is static
    steps: list[_Step]
    log_attributes: bytes


@dataclass(slots=True, eq=False)
class _Step:
    span: _SpanTemplate  # the CLIENT span of a call, or the db/cache/work span
    target: _Operation | None  # the operation a call reaches
    url_parts: tuple[str, str] | None  # url.full around "{id}" for calls with a variable path


@dataclass(slots=True, eq=False)
class _Service:
    index: int
    spec: ServiceSpec
    scope_field: bytes  # InstrumentationScope as field 1 of ScopeSpans / ScopeLogs
    scope: InstrumentationScope
    pods: list[list[int]]  # resource ids per version, per replica
    error_event: bytes  # exception event body (without its time) for errors raised here
    upstream_event: bytes  # for errors passed on from a callee
    error_status: bytes
    upstream_status: bytes
    error_log_attributes: bytes


@dataclass(slots=True, eq=False)
class _Resource:
    service: int
    field: bytes  # Resource as field 1 of ResourceSpans / ResourceLogs
    proto: Resource
    start_ns: int  # process start, the start time of cumulative series


@dataclass(slots=True)
class _ServiceState:
    """What the active faults make of a service right now."""

    error_rate: float
    latency_factor: float
    silent: bool
    version: int
    stopped: frozenset[Signal] = frozenset()  # signals not sent
    name_ids: bool = False  # server span names carry the request's id
    forced_errors: int = 0  # isolated errors due so far (the run's total, not reset by faults ending)
    leak: tuple[Leak, float] | None = None  # what its server spans leak, and how often


def _leaks_for(keys: set[str]) -> tuple[Leak, ...]:
    return tuple(leak for leak in LEAKS if leak.attribute not in keys)


def _map_value(values: dict[str, wire.AttributeValue]) -> bytes:
    body = AnyValue(
        kvlist_value=KeyValueList(
            values=[KeyValue(key=k, value=wire.any_value(v)) for k, v in values.items()]
        )
    )
    return body.SerializeToString()


def _array_value(values: list[wire.AttributeValue]) -> bytes:
    body = AnyValue()
    body.array_value.values.extend(wire.any_value(v) for v in values)
    return body.SerializeToString()


def _string_value(text: str) -> bytes:
    return wire.string_field(1, text)


class TrafficModel:
    """Iterates the messages of one run; all randomness comes from the config's seed."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        # Separate streams, so switching garbage or metrics on or off leaves the traces unchanged.
        self._garbage_rng = random.Random(f"garbage/{config.seed}")
        self._metrics_rng = random.Random(f"metrics/{config.seed}")
        self.start_ns = config.start_ns()
        self.end_ns = self.start_ns + int(config.duration.total_seconds() * _NS)
        self._specs = traced_services(config.services)
        if config.metrics_only_service:
            self._specs.append(GATEWAY_SPEC)
        self._gateway = len(self._specs) - 1 if config.metrics_only_service else None
        self._resources: list[_Resource] = []
        self._services = [self._build_service(i, spec) for i, spec in enumerate(self._specs)]
        self._operations: list[_Operation] = []
        by_key: dict[tuple[str, str], _Operation] = {}
        for service in self._services:
            for op in service.spec.operations:
                self._build_operation(service, op, by_key)
        for service in self._services:
            for op in service.spec.operations:
                self._link_steps(by_key[service.spec.name, op.key], op, by_key)
        self._entries = [by_key[self._specs[0].name, op.key] for op in self._specs[0].operations]
        self._entry_weights = list(_cumulative(op.weight for op in self._specs[0].operations))
        users = build_users(config.seed, config.users, config.tenants)
        self._known_users = users
        self._tenant_names = tenants(config.tenants)
        self._user_attributes: dict[str, bytes] = {}
        self._states = [_ServiceState(config.base_error_rate, 1.0, False, 0) for _ in self._services]
        self._forced_used = [0] * len(self._services)  # isolated errors already made
        self._cycle_rng = random.Random(f"cycle/{config.seed}")
        self._garbage_share = 0.0
        self._boundaries = self._fault_boundaries()
        self._apply_faults(self.start_ns)
        # per-resource metric state
        self._histograms: list[dict[tuple[int, int], list[float]]] = [{} for _ in self._resources]
        self._requests = [0] * len(self._resources)
        self._gc_counts = [0] * len(self._resources)
        self._memory = [self._metrics_rng.randrange(200, 600) * 1_048_576 for _ in self._resources]
        self._previous_root: tuple[bytes, bytes] | None = None
        share = config.uncorrelated_log_share
        # One background log per correlated one with this chance makes `share` of all logs uncorrelated.
        self._uncorrelated_per_log = share / (1.0 - share) if share < 1.0 else 1.0

    # ---- building templates ----------------------------------------------------------------------

    def _build_service(self, index: int, spec: ServiceSpec) -> _Service:
        rng, config = self._rng, self.config
        versions, starts = [spec.version], [self.start_ns]
        for fault in sorted(self._deploys(spec.name), key=lambda f: f.at):
            versions.append(fault.version or _next_minor(versions[-1]))
            starts.append(self.start_ns + int(fault.at.total_seconds() * _NS))
        omitted: set[str] = set()
        if rng.random() < config.incomplete_resource_share:
            omitted = set(rng.sample(_OMITTABLE_RESOURCE_KEYS, rng.randint(1, len(_OMITTABLE_RESOURCE_KEYS))))
        pods: list[list[int]] = []
        for version, start_ns in zip(versions, starts, strict=True):
            replica_set = "".join(rng.choices("bcdfghjklmnpqrstvwxz2456789", k=10))
            ids = []
            for _ in range(config.replicas):
                pod = f"{spec.name}-{replica_set}-{''.join(rng.choices('bcdfghjklmnpqrstvwxz2456789', k=5))}"
                attributes: list[tuple[str, wire.AttributeValue]] = [
                    ("service.name", spec.name),
                    ("service.version", version),
                    # never omitted: replicas stripped of pod and host names must still be told apart,
                    # or their cumulative series would collide
                    ("service.instance.id", f"{rng.getrandbits(128):032x}"),
                    ("service.namespace", config.namespace),
                    ("deployment.environment.name", config.environment),
                    (
                        "host.name",
                        f"gke-{config.environment}-pool-{rng.randrange(1, 4)}-{rng.getrandbits(24):06x}",
                    ),
                    ("k8s.pod.name", pod),
                    ("k8s.namespace.name", config.namespace),
                    ("k8s.deployment.name", spec.name),
                    ("telemetry.sdk.name", "opentelemetry"),
                    ("telemetry.sdk.language", spec.language),
                    ("telemetry.sdk.version", _SDK_VERSIONS[spec.language]),
                ]
                proto = Resource(
                    attributes=[
                        KeyValue(key=k, value=wire.any_value(v)) for k, v in attributes if k not in omitted
                    ]
                )
                ids.append(len(self._resources))
                self._resources.append(
                    _Resource(index, wire.length_delimited(1, proto.SerializeToString()), proto, start_ns)
                )
            pods.append(ids)
        scope_name, scope_version = _SCOPES[spec.language]
        scope = InstrumentationScope(name=scope_name, version=scope_version)
        exception_type, exception_message = _EXCEPTIONS.get(spec.language, ("Error", "internal error"))
        stacktrace = f"{exception_type}: {exception_message}\n\tat {spec.name}.handler(handler:88)"
        return _Service(
            index=index,
            spec=spec,
            scope=scope,
            scope_field=wire.length_delimited(1, scope.SerializeToString()),
            pods=pods,
            error_event=wire.string_field(2, "exception")
            + wire.attributes(
                3,
                (
                    ("exception.type", exception_type),
                    ("exception.message", exception_message),
                    ("exception.stacktrace", stacktrace),
                ),
            ),
            upstream_event=wire.string_field(2, "exception")
            + wire.attributes(
                3,
                (
                    ("exception.type", "UpstreamError"),
                    ("exception.message", "upstream service returned an error"),
                ),
            ),
            error_status=wire.length_delimited(
                15, wire.string_field(2, exception_message) + wire.varint_field(3, _STATUS_CODE_ERROR)
            ),
            upstream_status=wire.length_delimited(
                15, wire.string_field(2, "upstream error") + wire.varint_field(3, _STATUS_CODE_ERROR)
            ),
            error_log_attributes=wire.attributes(
                6, (("exception.type", exception_type), ("exception.message", exception_message))
            ),
        )

    def _deploys(self, service: str) -> list[Deploy]:
        return [f for f in self.config.faults if isinstance(f, Deploy) and f.service == service]

    def _span_template(
        self,
        name: str,
        kind: int,
        semantic: list[tuple[str, wire.AttributeValue]],
        varying: tuple[str, ...],
        mean_ms: float,
    ) -> _SpanTemplate:
        low, high = self.config.attributes_per_span
        target = self._rng.randint(low, high)
        filler_count = max(0, min(target - len(semantic) - len(varying), len(_FILLER_ATTRIBUTES)))
        static = semantic + self._rng.sample(_FILLER_ATTRIBUTES, filler_count)
        keys = {k for k, _ in static} | set(varying)
        return _SpanTemplate(
            head=wire.string_field(5, name) + wire.varint_field(6, kind),
            attributes=wire.attributes(9, static),
            leaks=_leaks_for(keys),
            mean_ns=mean_ms * 1_000_000,
            kind=kind,
        )

    def _build_operation(self, service: _Service, op: Operation, by_key: dict) -> None:
        spec = service.spec
        entry = service.index == 0
        host = "shop.example.com" if entry else f"{spec.name}.{self.config.namespace}.svc.cluster.local"
        path_parts = tuple(op.route.split("{id}", 1)) if "{id}" in op.route else None
        semantic: list[tuple[str, wire.AttributeValue]] = [
            ("http.request.method", op.method),
            ("http.route", op.route),
            ("url.scheme", "https" if entry else "http"),
            ("server.address", host),
            ("server.port", 443 if entry else 8080),
            ("network.protocol.version", "1.1" if entry else "2"),
        ]
        if path_parts is None:
            semantic.append(("url.path", op.route))
        varying = ("http.response.status_code", "url.path") if path_parts else ("http.response.status_code",)
        if entry:
            varying += ("enduser.id", "tenant.id", "client.address", "user_agent.original")
        operation = _Operation(
            index=len(self._operations),
            service=service.index,
            method=op.method,
            route=op.route,
            ok_code=201 if op.method == "POST" else 200,
            server=self._span_template(
                f"{op.method} {op.route}",
                _SPAN_KIND_CONSUMER if spec.name in self.config.consumer_services else _SPAN_KIND_SERVER,
                semantic,
                varying,
                op.self_ms,
            ),
            path_parts=path_parts,  # type: ignore[arg-type]
            steps=[],
            log_attributes=wire.attributes(
                6,
                (
                    ("code.function.name", f"{spec.name}.handlers.{op.method.lower()}_{_slug(op.route)}"),
                    ("code.file.path", f"src/{spec.name}/handlers.{_EXTENSIONS[spec.language]}"),
                    ("thread.name", f"{spec.name}-worker-{self._rng.randrange(1, 9)}"),
                ),
            ),
        )
        self._operations.append(operation)
        by_key[spec.name, op.key] = operation

    def _link_steps(self, operation: _Operation, op: Operation, by_key: dict) -> None:
        db_kind = _SPAN_KIND_CLIENT if self.config.db_span_kind == "client" else _SPAN_KIND_INTERNAL
        for step in op.steps:
            if isinstance(step, Call):
                target = by_key[step.service, step.operation]
                base = f"http://{step.service}.{self.config.namespace}.svc.cluster.local:8080"
                url_parts = (base + target.path_parts[0], target.path_parts[1]) if target.path_parts else None
                semantic: list[tuple[str, wire.AttributeValue]] = [
                    ("http.request.method", target.method),
                    ("server.address", f"{step.service}.{self.config.namespace}.svc.cluster.local"),
                    ("server.port", 8080),
                    ("network.protocol.version", "2"),
                ]
                if url_parts is None:
                    semantic.append(("url.full", base + target.route))
                span = self._span_template(
                    f"{target.method} {target.route}",
                    _SPAN_KIND_PRODUCER
                    if step.service in self.config.consumer_services
                    else _SPAN_KIND_CLIENT,
                    semantic,
                    ("http.response.status_code", "url.full")
                    if url_parts
                    else ("http.response.status_code",),
                    0.0,
                )
                operation.steps.append(_Step(span, target, url_parts))
            elif isinstance(step, Db):
                semantic = [
                    ("db.system", step.system),
                    ("db.system.name", step.system),
                    ("db.operation.name", step.operation),
                    ("db.collection.name", step.collection),
                    ("db.query.text", step.query),
                    ("db.namespace", "shop" if step.system != "redis" else "0"),
                    ("server.address", f"{step.system}.{self.config.namespace}.svc.cluster.local"),
                ]
                span = self._span_template(
                    f"{step.operation} {step.collection}", db_kind, semantic, (), step.mean_ms
                )
                operation.steps.append(_Step(span, None, None))
            else:
                service_name = self._services[operation.service].spec.name
                semantic = [
                    ("code.function.name", _slug(step.name)),
                    ("code.namespace", f"{service_name}.core"),
                ]
                span = self._span_template(step.name, _SPAN_KIND_INTERNAL, semantic, (), step.mean_ms)
                operation.steps.append(_Step(span, None, None))

    # ---- faults ----------------------------------------------------------------------------------

    def _fault_boundaries(self) -> list[int]:
        points = set()
        for fault in self.config.faults:
            at = self.start_ns + int(fault.at.total_seconds() * _NS)
            points.add(at)
            if fault.duration is not None:
                points.add(at + int(fault.duration.total_seconds() * _NS))
            if isinstance(fault, IsolatedErrors):
                points.update(at + moment for moment in _isolated_moments(fault))
        return sorted(points, reverse=True)  # popped from the end

    def _advance_faults(self, now_ns: int) -> None:
        if self._boundaries and now_ns >= self._boundaries[-1]:
            self._apply_faults(now_ns)

    def _apply_faults(self, now_ns: int) -> None:
        while self._boundaries and self._boundaries[-1] <= now_ns:
            self._boundaries.pop()
        names = [s.spec.name for s in self._services]
        for state in self._states:
            state.error_rate, state.latency_factor, state.silent, state.version = (
                self.config.base_error_rate,
                1.0,
                False,
                0,
            )
            state.stopped, state.name_ids, state.forced_errors, state.leak = frozenset(), False, 0, None
        self._garbage_share = 0.0
        offset = now_ns - self.start_ns
        for fault in self.config.faults:
            begin = int(fault.at.total_seconds() * _NS)
            if offset < begin:
                continue
            active = fault.duration is None or offset < begin + int(fault.duration.total_seconds() * _NS)
            if isinstance(fault, Garbage):
                if active:
                    self._garbage_share = max(self._garbage_share, fault.share)
                continue
            state = self._states[names.index(fault.service)]
            if isinstance(fault, IsolatedErrors):
                state.forced_errors += sum(
                    1 for moment in _isolated_moments(fault) if moment <= offset - begin
                )
            elif isinstance(fault, Deploy):
                state.version += 1
                if active:
                    state.latency_factor *= fault.latency_factor
                    state.name_ids = state.name_ids or fault.span_name_ids
                    if fault.error_rate is not None:
                        state.error_rate = max(state.error_rate, fault.error_rate)
            elif not active:
                continue
            elif isinstance(fault, ErrorSpike):
                state.error_rate = max(state.error_rate, fault.rate)
            elif isinstance(fault, LatencyRegression):
                state.latency_factor *= fault.factor
            elif isinstance(fault, Silent):
                state.silent = True
            elif isinstance(fault, SignalStop):
                state.stopped |= {fault.signal}
            elif isinstance(fault, LeakBurst):
                state.leak = (next(leak for leak in LEAKS if leak.kind == fault.leak), fault.share)

    # ---- traces and logs -------------------------------------------------------------------------

    def _root_attributes(self) -> bytes:
        """enduser.id, tenant.id, client.address and user_agent.original of the next request."""
        rng, config = self._rng, self.config
        draw = rng.random()
        user_id: str | None = None
        tenant = ""
        if draw < config.anonymous_share:
            key = f"anonymous-{rng.randrange(64)}"
        elif draw < config.anonymous_share + config.unknown_user_share:
            user_id = key = f"user-{rng.getrandbits(40):010x}"  # not in the user-context table
            tenant = rng.choice(self._tenant_names)
        else:
            user = self._known_users[int(rng.random() * len(self._known_users))]
            user_id, tenant, key = user.id, user.tenant, user.id
        cached = self._user_attributes.get(key)
        if cached is None:
            # A user keeps one address and browser, which makes the traffic look like sessions.
            user_rng = random.Random(f"{config.seed}/{key}")
            items: list[tuple[str, wire.AttributeValue]] = [
                ("client.address", ipv4(user_rng)),
                ("user_agent.original", user_rng.choice(_USER_AGENTS)),
            ]
            if user_id is not None:
                items += [("enduser.id", user_id), ("tenant.id", tenant)]
            else:  # as many attributes as a signed-in request, so the configured count range holds
                items += [("session.id", f"{user_rng.getrandbits(64):016x}"), ("app.user.anonymous", True)]
            cached = wire.attributes(9, items)
            if len(self._user_attributes) < 100_000:
                self._user_attributes[key] = cached
        return cached

    def _trace(self, start_ns: int, spans: list, logs: list) -> tuple[bytes, int]:
        """Simulate one request; spans and logs receive (resource id, encoded record), the root span
        last. Returns the trace id and the root's end time."""
        rng = self._rng
        trace_id = rng.getrandbits(128).to_bytes(16, "little")
        draw = rng.random()
        entry = self._entries[bisect_left(self._entry_weights, draw * self._entry_weights[-1])]
        item = str(rng.randrange(1000, 99_999))
        root_extra = self._root_attributes()
        end_ns, code, span_id = self._serve(entry, start_ns, None, trace_id, item, root_extra, spans, logs)
        self._previous_root = (trace_id, span_id)
        if self._gateway is not None:
            self._record_gateway(entry, start_ns, end_ns, code)
        return trace_id, end_ns

    def _serve(
        self,
        op: _Operation,
        start_ns: int,
        parent: bytes | None,
        trace_id: bytes,
        item: str,
        root_extra: bytes | None,
        spans: list,
        logs: list,
    ) -> tuple[int, int, bytes]:
        rng = self._rng
        service = self._services[op.service]
        state = self._states[op.service]
        factor = state.latency_factor
        template = op.server
        span_id = rng.getrandbits(64).to_bytes(8, "little")
        pods = service.pods[state.version]
        resource = pods[int(rng.random() * len(pods))]
        self_ns = _latency(rng, template.mean_ns * factor)
        now = start_ns + self_ns // 3
        failed = rng.random() < state.error_rate
        if not failed and self._forced_used[op.service] < state.forced_errors:
            failed = True
            self._forced_used[op.service] += 1
        sends_spans = not state.silent and Signal.TRACES not in state.stopped
        upstream_failed = False
        for step in op.steps:
            child_id = rng.getrandbits(64).to_bytes(8, "little")
            if step.target is None:
                end = now + _latency(rng, step.span.mean_ns * factor)
                if sends_spans:
                    spans.append(
                        (resource, self._span(step.span, trace_id, child_id, span_id, now, end, b""))
                    )
            else:
                child_end, child_code, _ = self._serve(
                    step.target, now + _NETWORK_NS, child_id, trace_id, item, None, spans, logs
                )
                end = child_end + _NETWORK_NS
                if sends_spans:
                    varying = _SPAN_STATUS_CODE_ATTRIBUTE[child_code]
                    if step.url_parts is not None:
                        varying += _string_attribute(
                            _URL_FULL_KEY, step.url_parts[0] + item + step.url_parts[1]
                        )
                    if child_code >= 500:
                        varying += service.upstream_status
                    spans.append(
                        (resource, self._span(step.span, trace_id, child_id, span_id, now, end, varying))
                    )
                if child_code >= 500:
                    upstream_failed = True
                    now = end
                    break  # a failed dependency aborts the request
            now = end + 50_000
        end_ns = now + self_ns - self_ns // 3
        if failed:
            code = 503 if rng.random() < 0.3 else 500
        elif upstream_failed:
            code = 502
        elif root_extra is not None and rng.random() < self.config.client_error_rate:
            code = rng.choice(_CLIENT_ERROR_CODES)
        else:
            code = op.ok_code
        if not state.silent:
            varying = _SPAN_STATUS_CODE_ATTRIBUTE[code]
            if op.path_parts is not None:
                varying += _string_attribute(_URL_PATH_KEY, op.path_parts[0] + item + op.path_parts[1])
            if root_extra is not None:
                varying += root_extra
            if code >= 500:
                event = service.error_event if failed else service.upstream_event
                varying += wire.length_delimited(11, wire.fixed64(1, end_ns) + event)
            if (
                root_extra is not None
                and self._previous_root is not None
                and rng.random() < self.config.link_share
            ):
                varying += self._link()
            if code >= 500:
                varying += service.error_status if failed else service.upstream_status
            if state.name_ids:  # an id in the span name: one name per request
                path = op.path_parts[0] + item + op.path_parts[1] if op.path_parts else f"{op.route}/{item}"
                name = wire.string_field(5, f"{op.method} {path}")
                template = dataclasses.replace(template, head=name + wire.varint_field(6, template.kind))
            if state.leak is not None and rng.random() < state.leak[1]:
                varying = self._leak_attribute((state.leak[0],)) + varying
            if sends_spans:
                spans.append(
                    (resource, self._span(template, trace_id, span_id, parent, start_ns, end_ns, varying))
                )
            if Signal.LOGS not in state.stopped:
                self._log_request(op, service, resource, trace_id, span_id, end_ns, code, failed, item, logs)
        # A silent service still counts its requests; only its exports are missing.
        self._record_request(resource, op.index, code, (end_ns - start_ns) / _NS)
        return end_ns, code, span_id

    def _span(
        self,
        template: _SpanTemplate,
        trace_id: bytes,
        span_id: bytes,
        parent: bytes | None,
        start_ns: int,
        end_ns: int,
        varying: bytes,
    ) -> bytes:
        """The span as field 2 of ScopeSpans. `varying` holds attributes (field 9) then events, links
        and status (fields 11, 13, 15) in that order."""
        if self._rng.random() < self.config.pii_share and template.leaks:
            varying = self._leak_attribute(template.leaks) + varying
        return wire.length_delimited(
            2,
            b"".join(
                (
                    b"\x0a\x10",
                    trace_id,
                    b"\x12\x08",
                    span_id,
                    b"\x22\x08" + parent if parent is not None else b"",
                    template.head,
                    _pack_span_times(0x39, start_ns, 0x41, end_ns),
                    template.attributes,
                    varying,
                )
            ),
        )

    def _leak_attribute(self, leaks: tuple[Leak, ...]) -> bytes:
        leak = self._rng.choice(leaks)
        value = leak.attribute_text.format(leak.make(self._rng))
        return _attribute(leak.attribute, [value] if leak.header else value)

    def _link(self) -> bytes:
        trace_id, span_id = self._previous_root  # type: ignore[misc]
        return wire.length_delimited(
            13,
            b"\x0a\x10"
            + trace_id
            + b"\x12\x08"
            + span_id
            + _attribute("app.link.reason", "previous_request", 4),
        )

    def _log_request(
        self,
        op: _Operation,
        service: _Service,
        resource: int,
        trace_id: bytes,
        span_id: bytes,
        time_ns: int,
        code: int,
        failed: bool,
        item: str,
        logs: list,
    ) -> None:
        rng, config = self._rng, self.config
        if code < 500 and rng.random() >= config.log_share:
            return
        attributes = op.log_attributes
        if rng.random() < config.pii_share:
            severity, body = "WARN", self._leak_body()
        elif code >= 500:
            severity = "ERROR"
            body = _string_value(
                f"{op.method} {op.route} failed with {code}" + ("" if failed else ": upstream error")
            )
            attributes += service.error_log_attributes
        else:
            severity = "INFO"
            millis = round(rng.uniform(0.5, 80.0), 1)
            shape = rng.random()
            if shape < 0.5:
                body = _string_value(f"{op.method} {op.route} {code} item={item}")
            elif shape < 0.8:
                body = _map_value(
                    {
                        "event": "request.completed",
                        "http.route": op.route,
                        "status": code,
                        "item": item,
                        "db_ms": millis,
                        "cache_hit": shape < 0.7,
                    }
                )
            else:
                body = _array_value(["request.completed", op.route, code, millis])
        logs.append((resource, self._log_record(time_ns, severity, body, attributes, trace_id, span_id)))
        if rng.random() < self._uncorrelated_per_log:
            logs.append(
                (
                    resource,
                    self._log_record(
                        time_ns + 1000, "INFO", self._background_body(service), op.log_attributes, None, None
                    ),
                )
            )

    def _leak_body(self) -> bytes:
        """A log body with one sensitive value, as text or nested in a map or an array."""
        rng = self._rng
        leak = rng.choice(LEAKS)
        text = leak.log_text.format(leak.make(rng))
        shape = rng.random()
        if shape < 0.6:
            return _string_value(text)
        if shape < 0.85:
            return _map_value({"event": "diagnostic", "detail": text, "attempt": rng.randrange(1, 4)})
        return _array_value(["diagnostic", text])

    def _background_body(self, service: _Service) -> bytes:
        rng = self._rng
        if rng.random() < self.config.pii_share:
            return self._leak_body()
        shape = rng.random()
        if shape < 0.4:
            return _string_value(
                f"connection pool stats: active={rng.randrange(1, 16)} idle={rng.randrange(8)}"
            )
        if shape < 0.8:
            return _map_value(
                {
                    "event": "cache.refresh",
                    "service": service.spec.name,
                    "entries": rng.randrange(100, 5000),
                    "duration_ms": round(rng.uniform(1, 50), 2),
                }
            )
        return _array_value(["gc", "pause", round(rng.uniform(0.1, 12.0), 2)])

    def _log_record(
        self,
        time_ns: int,
        severity: str,
        body: bytes,
        attributes: bytes,
        trace_id: bytes | None,
        span_id: bytes | None,
    ) -> bytes:
        """The log record as field 2 of ScopeLogs, fields in number order."""
        context = (b"\x45\x01\x00\x00\x00\x4a\x10" + trace_id + b"\x52\x08" + span_id) if trace_id else b""
        return wire.length_delimited(
            2,
            b"".join(
                (
                    wire.fixed64(1, time_ns),
                    wire.varint_field(2, _SEVERITIES[severity]),
                    wire.string_field(3, severity),
                    wire.length_delimited(5, body),
                    attributes,
                    context,
                    wire.fixed64(11, time_ns + 2_000_000),
                )
            ),
        )

    # ---- metrics ---------------------------------------------------------------------------------

    def _record_gateway(self, entry: _Operation, start_ns: int, end_ns: int, code: int) -> None:
        state = self._states[self._gateway]  # type: ignore[index]
        pods = self._services[self._gateway].pods[state.version]  # type: ignore[index]
        resource = pods[int(self._rng.random() * len(pods))]
        if self._rng.random() < state.error_rate:
            code = 503
        seconds = (end_ns - start_ns + _GATEWAY_OVERHEAD_NS * state.latency_factor) / _NS
        self._record_request(resource, entry.index, code, seconds)

    def _record_request(self, resource: int, operation: int, code: int, seconds: float) -> None:
        """Add a request to the resource's http.server.request.duration point [count, sum, buckets...]."""
        histogram = self._histograms[resource]
        point = histogram.get((operation, code))
        if point is None:
            point = histogram[operation, code] = [0, 0.0] + [0] * (len(DURATION_BUCKETS) + 1)
        point[0] += 1
        point[1] += seconds
        point[2 + bisect_left(DURATION_BUCKETS, seconds)] += 1
        self._requests[resource] += 1

    def _metrics(self, time_ns: int) -> MetricsData | None:
        config, rng = self.config, self._metrics_rng
        delta = config.metrics_temporality == "delta"
        temporality = (
            AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
            if delta
            else AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
        )
        interval_ns = int(config.metrics_interval.total_seconds() * _NS)
        data = MetricsData()
        for service, state in zip(self._services, self._states, strict=True):
            if state.silent or Signal.METRICS in state.stopped:
                continue
            for resource_id in service.pods[state.version]:
                resource = self._resources[resource_id]
                if resource.start_ns >= time_ns:
                    continue
                series_start = max(time_ns - interval_ns, resource.start_ns) if delta else resource.start_ns
                resource_metrics = data.resource_metrics.add()
                resource_metrics.resource.CopyFrom(resource.proto)
                scope_metrics: ScopeMetrics = resource_metrics.scope_metrics.add()
                scope_metrics.scope.CopyFrom(service.scope)
                histogram = scope_metrics.metrics.add(
                    name="http.server.request.duration",
                    unit="s",
                    description="Duration of HTTP server requests.",
                ).histogram
                histogram.aggregation_temporality = temporality
                for (op_index, code), point in self._histograms[resource_id].items():
                    op = self._operations[op_index]
                    data_point = histogram.data_points.add(
                        start_time_unix_nano=series_start,
                        time_unix_nano=time_ns,
                        count=int(point[0]),
                        sum=point[1],
                        bucket_counts=[int(c) for c in point[2:]],
                        explicit_bounds=DURATION_BUCKETS,
                    )
                    data_point.attributes.extend(
                        KeyValue(key=k, value=wire.any_value(v))
                        for k, v in (
                            ("http.request.method", op.method),
                            ("http.route", op.route),
                            ("http.response.status_code", code),
                            ("url.scheme", "https" if op.service == 0 else "http"),
                            *((("error.type", str(code)),) if code >= 500 else ()),
                        )
                    )
                requests = self._requests[resource_id]
                interval_s = interval_ns / _NS
                cpu = scope_metrics.metrics.add(
                    name="process.cpu.utilization", unit="1", description="CPU utilization of the process."
                )
                cpu.gauge.data_points.add(
                    time_unix_nano=time_ns,
                    as_double=min(0.97, 0.03 + requests / interval_s * 0.004 + rng.uniform(0.0, 0.02)),
                )
                self._memory[resource_id] = max(
                    64 * 1_048_576, self._memory[resource_id] + rng.randrange(-8, 9) * 1_048_576
                )
                memory = scope_metrics.metrics.add(
                    name="process.memory.usage",
                    unit="By",
                    description="The amount of physical memory in use.",
                )
                memory.sum.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
                memory.sum.is_monotonic = False
                memory.sum.data_points.add(
                    start_time_unix_nano=resource.start_ns,
                    time_unix_nano=time_ns,
                    as_int=self._memory[resource_id],
                )
                collections = requests // 40 + rng.randrange(3)
                self._gc_counts[resource_id] += collections
                gc = scope_metrics.metrics.add(
                    name="process.runtime.gc.count",
                    unit="{collection}",
                    description="Garbage collections since the process started.",
                )
                gc.sum.aggregation_temporality = temporality
                gc.sum.is_monotonic = True
                gc.sum.data_points.add(
                    start_time_unix_nano=series_start,
                    time_unix_nano=time_ns,
                    as_int=collections if delta else self._gc_counts[resource_id],
                )
        for resource_id in range(len(self._resources)):
            self._requests[resource_id] = 0
            if delta:
                self._histograms[resource_id].clear()
        return data if data.resource_metrics else None

    # ---- the run ---------------------------------------------------------------------------------

    def messages(self) -> Iterator[GeneratedMessage]:
        for message in self._signal_messages():
            yield message
            if self._garbage_share > 0 and self._garbage_rng.random() < self._garbage_share:
                yield GeneratedMessage(
                    message.signal,
                    None,
                    _garbage(self._garbage_rng),
                    message.event_time_ns,
                    0,
                    is_garbage=True,
                )

    def _signal_messages(self) -> Iterator[GeneratedMessage]:
        config, rng = self.config, self._rng
        signals = set(config.signals)
        emit_traces, emit_logs = Signal.TRACES in signals, Signal.LOGS in signals
        emit_metrics = Signal.METRICS in signals
        by_trace = config.key == "trace_id"
        interval_ns = int(config.metrics_interval.total_seconds() * _NS)
        next_metrics = self.start_ns + interval_ns
        # A daily cycle thins a stream at the peak rate: each request is kept with the cycle's share.
        peak = 1.0 + config.daily_cycle
        trace_count = int(config.duration.total_seconds() * config.rate * peak)
        spacing = _NS / (config.rate * peak)
        span_batch = _Batch(config.spans_per_message)
        log_batch = _Batch(config.logs_per_message)
        held_roots: list[tuple[int, bytes, bytes]] = []  # (resource, span, trace id) sent one message later
        for number in range(trace_count):
            start_ns = self.start_ns + int((number + rng.random()) * spacing)
            while start_ns >= next_metrics:
                self._advance_faults(next_metrics)
                if emit_metrics:
                    yield from self._metrics_message(next_metrics)
                next_metrics += interval_ns
            if config.daily_cycle and self._cycle_rng.random() * peak > self._cycle(start_ns):
                continue
            self._advance_faults(start_ns)
            spans: list[tuple[int, bytes]] = []
            logs: list[tuple[int, bytes]] = []
            trace_id, end_ns = self._trace(start_ns, spans, logs)
            if emit_traces and spans:
                root_silent = self._states[0].silent
                split = rng.random() < config.split_traces and not root_silent and len(spans) > 1
                later = [(*spans.pop(), trace_id)] if split else []  # the root span comes last
                if by_trace:
                    if spans:
                        yield self._traces_message(
                            {r: [s for rr, s in spans if rr == r] for r, _ in spans},
                            trace_id,
                            end_ns,
                            len(spans),
                        )
                    for resource, span, held_trace in held_roots:
                        yield self._traces_message({resource: [span]}, held_trace, end_ns, 1)
                    held_roots = later
                else:
                    if span_batch.count and span_batch.count + len(spans) > span_batch.limit:
                        yield self._traces_message(
                            span_batch.groups, None, span_batch.time_ns, span_batch.count
                        )
                        span_batch.clear()
                        for resource, span, _ in held_roots:
                            span_batch.add(resource, span, end_ns)
                        held_roots = []
                    for resource, span in spans:
                        span_batch.add(resource, span, end_ns)
                    held_roots += later
            if emit_logs and logs:
                for resource, record in logs:
                    log_batch.add(resource, record, end_ns)
                if log_batch.count >= log_batch.limit:
                    yield self._logs_message(log_batch)
                    log_batch.clear()
        if span_batch.count:
            yield self._traces_message(span_batch.groups, None, span_batch.time_ns, span_batch.count)
        if by_trace:
            for resource, span, held_trace in held_roots:
                yield self._traces_message({resource: [span]}, held_trace, self.end_ns, 1)
        elif held_roots:
            span_batch.clear()
            for resource, span, _ in held_roots:
                span_batch.add(resource, span, self.end_ns)
            yield self._traces_message(span_batch.groups, None, span_batch.time_ns, span_batch.count)
        if log_batch.count:
            yield self._logs_message(log_batch)
        while emit_metrics and next_metrics <= self.end_ns:
            self._advance_faults(next_metrics)
            yield from self._metrics_message(next_metrics)
            next_metrics += interval_ns

    def _cycle(self, time_ns: int) -> float:
        seconds = (time_ns // _NS - _CYCLE_PEAK_S) % _DAY_S
        return 1.0 + self.config.daily_cycle * math.cos(2 * math.pi * seconds / _DAY_S)

    def _traces_message(
        self, groups: dict[int, list[bytes]], trace_id: bytes | None, time_ns: int, count: int
    ) -> GeneratedMessage:
        payload = b"".join(
            wire.length_delimited(
                1,
                self._resources[r].field
                + wire.length_delimited(
                    2, self._services[self._resources[r].service].scope_field + b"".join(spans)
                ),
            )
            for r, spans in groups.items()
        )
        key = trace_id.hex().encode() if trace_id is not None else None
        return GeneratedMessage(Signal.TRACES, key, payload, time_ns, count)

    def _logs_message(self, batch: _Batch) -> GeneratedMessage:
        payload = b"".join(
            wire.length_delimited(
                1,
                self._resources[r].field
                + wire.length_delimited(
                    2, self._services[self._resources[r].service].scope_field + b"".join(records)
                ),
            )
            for r, records in batch.groups.items()
        )
        return GeneratedMessage(Signal.LOGS, None, payload, batch.time_ns, batch.count)

    def _metrics_message(self, time_ns: int) -> Iterator[GeneratedMessage]:
        data = self._metrics(time_ns)
        if data is not None:
            points = sum(
                len(getattr(m, m.WhichOneof("data")).data_points)
                for rm in data.resource_metrics
                for sm in rm.scope_metrics
                for m in sm.metrics
            )
            yield GeneratedMessage(Signal.METRICS, None, data.SerializeToString(), time_ns, points)


class _Batch:
    """Records grouped by resource until a message is full."""

    __slots__ = ("count", "groups", "limit", "time_ns")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.clear()

    def clear(self) -> None:
        self.groups: dict[int, list[bytes]] = {}
        self.count = 0
        self.time_ns = 0

    def add(self, resource: int, record: bytes, time_ns: int) -> None:
        group = self.groups.get(resource)
        if group is None:
            group = self.groups[resource] = []
        group.append(record)
        self.count += 1
        if time_ns > self.time_ns:
            self.time_ns = time_ns


def _latency(rng: random.Random, mean_ns: float) -> int:
    # Log-normal around the mean with a slow tail: 1% of calls take 4-8 times longer.
    value = mean_ns * rng.lognormvariate(-0.08, 0.4)
    if rng.random() < 0.01:
        value *= rng.uniform(4.0, 8.0)
    return int(value)


def _garbage(rng: random.Random) -> bytes:
    """Payloads that no OTLP decoder accepts; ASCII without newlines, so they fit a JSON Lines file."""
    kind = rng.randrange(3)
    if kind == 0:  # truncated OTLP/JSON
        return b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringVal'
    if kind == 1:  # JSON of the wrong shape
        return b'{"resourceSpans":"' + rng.randbytes(12).hex().encode() + b'","resourceLogs":7}'
    # protobuf tag of field 1 with wire type 7, which does not exist
    return b"\x0f" + rng.randbytes(24).hex().encode()


def _cumulative(weights: Iterator[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


def _next_minor(version: str) -> str:
    parts = version.split(".")
    if len(parts) >= 2 and parts[1].isdigit():
        return ".".join([parts[0], str(int(parts[1]) + 1), "0"])
    return version + "-next"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower() or "root"


_EXTENSIONS = {"nodejs": "ts", "java": "java", "go": "go", "python": "py", "cpp": "cc"}


def _isolated_moments(fault: IsolatedErrors) -> list[int]:
    """Offsets (ns, from the fault's start) at which an isolated error falls due."""
    length_ns = int(fault.duration.total_seconds() * _NS)
    return [length_ns * (2 * i + 1) // (2 * fault.count) for i in range(fault.count)]
