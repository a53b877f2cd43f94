"""The SLI stage: rolling windows per service over partials, evaluated on event time with a watermark.

State lives in the shell's store (layout in `state`): per service its newest event time, last
evaluated step, late-drop counter, the input offsets applied and tiered buckets. The engine works on
the same state in memory and writes changed services back by assignment in `persist()`; `adopt`
loads it from the store (at start, and for services a rebalance brings). Partials carry their input
message's (source, offset) and are applied once each, so a shell may persist as rarely as it likes,
acknowledge its input only after persisting, and on a restart feed the engine everything from the
last acknowledged input again: a new engine over a recovered store emits exactly the snapshots the
old one would have.

The watermark is the newest event time of the slowest active input source (partition or file)
minus the allowed lateness: one signal or partition caught up minutes behind the others after
downtime holds evaluation back instead of having its data dropped as late. The sources the shell
reads itself (its assigned partitions, its files) are declared with `set_sources`: each holds the
watermark back from the moment it is declared, before any of its data arrived, for as long as the
shell says it is not caught up (position before the end offset; file not read to its end). A caught-up
source, and a source seen only in partials (another worker's partition), hold it back at their newest
event time until they have been quiet for `idle_after` of wall time: caught up is a past observation,
and what a partition receives next may be older than what the others have already carried.
Sources other shells read (another worker's partitions) are named by `expect_sources` (every
partition of the input topics) and known from their progress reports (`add_progress`): such a source
counts as declared, caught up once every channel has brought a report saying so, so it holds the
watermark from the start, before any partial or report of it came.

A service's evaluation starts at the step of its earliest bucket (moved earlier while it has
emitted nothing), so which source or signal brought it first does not change its snapshots: the
output is a function of the input, not of the order the sources are read in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass

from telemetry_pipeline.sli import cumulative, offset_marks
from telemetry_pipeline.sli.config import SliConfig, duration_ms
from telemetry_pipeline.sli.partials import RequestCounts, SliPartial, SourceProgress, add_histogram
from telemetry_pipeline.sli.sketch import LatencyMapping, hll_estimate, quantile_ms
from telemetry_pipeline.sli.slo import SloResolver
from telemetry_pipeline.sli.snapshot import Cardinality, Completeness, LatencyQuantiles, SliSnapshot
from telemetry_pipeline.sli.state import ServiceState, StateStore
from telemetry_pipeline.sli.windows import (
    METRIC_REQ,
    START,
    WindowTotals,
    add_to_finest,
    new_bucket,
    roll,
    tiers_of,
    window_totals,
)

_QUANTILES = (0.5, 0.95, 0.99)


@dataclass
class EngineStats:
    services: int = 0
    late_dropped: int = 0  # partial buckets and cumulative points whose step was already evaluated
    late_dropped_by_source: Counter[str] = dataclasses.field(default_factory=Counter)
    duplicates_skipped: int = 0  # partials of input applied before (redelivered after a rebalance or crash)
    services_rejected: int = 0  # partials of new services refused because max_services was reached
    partials_not_owned: int = 0  # partials of services a rebalance moved to another engine, left to it
    services_expired: int = 0  # services removed after their data aged out of every tier
    snapshots: int = 0
    steps_skipped: int = 0  # evaluation steps jumped over by services further behind than max_catch_up
    metric_points_repeated: int = 0  # cumulative points of a time their series already has (sent twice)
    watermark_ms: int | None = None


@dataclass(frozen=True, slots=True)
class _Step:
    """What the snapshots of one service at one evaluation step share."""

    service: str
    end_ms: int
    window_end: str  # RFC 3339
    burn: dict[str, float]
    latency_burn: dict[str, float]
    budget_remaining: float


class SliEngine:
    def __init__(self, config: SliConfig, slos: SloResolver, store: MutableMapping[str, dict]) -> None:
        self._config = config
        self._slos = slos
        self._shape = tiers_of(config)
        self._state_store = StateStore(store)
        self._step_ms = duration_ms(config.evaluation_step)
        self._max_catch_up_ms = duration_ms(config.max_catch_up)
        self._lateness_ms = duration_ms(config.allowed_lateness)
        self._idle_after_ms = duration_ms(config.idle_after)
        self._finest_ms = self._shape[0].size_ms
        self._mapping = LatencyMapping(config.latency_relative_accuracy)
        self._windows = _labelled(config.windows)
        self._burn_windows = _labelled(config.burn_rate_windows)
        self._stats = EngineStats()
        self._states: dict[str, ServiceState] = {}
        self._dirty: set[str] = set()
        # Per source: newest event time applied, and the wall time it was last heard of (None: not
        # since this engine started; its idle time starts with the next partials).
        self._sources: dict[str, list] = {}
        self._declared: dict[str, bool] = {}  # the shell's own sources: caught up or not (`set_sources`)
        # Sources other shells read, as their progress reports say: caught up or not, per channel.
        self._reported: dict[str, dict[str | None, bool]] = {}
        self._expected: set[str] = set()  # every source of the input, whoever reads it (`expect_sources`)
        # The channels partials reach this engine through (the worker's `sli-partials` partitions): each
        # carries a source's partials in the source's order, but channels are read at their own pace.
        self._channels: list[str | None] = [None]
        # Per source, per channel: newest event time come through it, and the wall time it last came.
        self._progress: dict[str, dict[str | None, list]] = {}
        self._watermark_ms: int | None = None
        self._owned: Callable[[str], bool] | None = None  # the services this engine owns (`adopt`)
        self.adopt()

    def adopt(self, owned: Callable[[str], bool] | None = None) -> None:
        """Align memory with the services this engine owns, e.g. after a rebalance moved some:
        forget the ones not `owned` (unwritten: their new owner recovers them from the store and
        reads again what came after), load the owned ones the store has and memory lacks. What
        memory has beyond the store stays: its offsets are in it too."""
        if owned is not None:
            self._owned = owned
            for service in [service for service in self._states if not owned(service)]:
                del self._states[service]
                self._dirty.discard(service)
        for service, state in self._state_store.load().items():
            if service in self._states or (owned is not None and not owned(service)):
                continue
            self._take(state)
        # A source counts through the services that have data from it: one that fed only services
        # gone elsewhere must not hold the watermark back.
        heard = self._sources
        self._sources = {}
        for state in self._states.values():
            for source, mark in state.sources.items():
                self._heard_of(source, mark[offset_marks.NEWEST_MS], heard.get(source, [0, None])[1])

    def _take(self, state: ServiceState) -> None:
        self._states[state.service] = state
        if state.watermark_ms is not None:
            self._raise_watermark(state.watermark_ms)

    def services(self) -> set[str]:
        """The services whose state this engine holds (owns)."""
        return set(self._states)

    def stats(self) -> dict[str, int]:
        """Counters for metrics; the watermark only once there is one. Late drops per source are in
        `late_dropped_by_source()`."""
        self._stats.services = len(self._states)
        self._stats.watermark_ms = self._watermark_ms
        return {
            name: value
            for name, value in dataclasses.asdict(self._stats).items()
            if value is not None and name != "late_dropped_by_source"
        }

    def late_dropped_by_source(self) -> dict[str, int]:
        """Partial buckets dropped as late since this engine started, per input source."""
        return dict(self._stats.late_dropped_by_source)

    def set_sources(
        self,
        caught_up: Mapping[str, bool],
        wall_ms: int | None = None,
        channels: Iterable[str] | None = None,
    ) -> None:
        """Declare the sources the shell reads (replacing the previous declaration), each with whether
        it is caught up. One not caught up holds the watermark back, even before its first data, at the
        newest event time it has brought through every channel: `channels` are the streams partials
        arrive on, each in source order (the worker's `sli-partials` partitions); none: one stream."""
        for source in self._declared.keys() - caught_up.keys():
            self._reported.pop(source, None)  # gone to another shell: caught up once it says so
        self._declared = dict(caught_up)
        self._channels = [None] if channels is None else sorted(channels)
        self._raise_watermark_to_sources(wall_ms)

    def add_progress(
        self, progress: Iterable[SourceProgress], wall_ms: int | None = None, channel: str | None = None
    ) -> None:
        """Progress reports that came on `channel` after the partials they cover: per source, the newest
        event time its partials have carried (through every channel) and whether it is caught up. A
        source not declared by this shell then counts as declared (caught up once every channel says so)."""
        for report in progress:
            self._reported.setdefault(report.source, {})[channel] = report.caught_up
            if report.max_time_ms is not None:
                self._passed(report.source, channel, report.max_time_ms, wall_ms)
                self._heard_of(report.source, report.max_time_ms, wall_ms)
        self._raise_watermark_to_sources(wall_ms)

    def expect_sources(self, sources: Iterable[str]) -> None:
        """Every source of the input (all partitions of the input topics), including those other shells
        read: one not declared here holds the watermark until its reports say it is caught up."""
        self._expected = set(sources)

    def sources_caught_up(self) -> bool:
        """Whether every source declared or reported is caught up (through every channel): only then
        may wall time move the watermark. Never while the shell reads no channel (a rebalance in
        progress: nothing is assigned, and what other shells reported long ago is all it would see)."""
        return bool(self._channels) and all(self._caught_up().values())

    def _caught_up(self) -> dict[str, bool]:
        """The shell's declared sources, and the reported ones it does not read itself."""
        reported = {
            source: all(self._reported.get(source, {}).get(channel, False) for channel in self._channels)
            for source in self._expected | self._reported.keys()
        }
        return {**reported, **self._declared}

    def add(
        self, partials: Iterable[SliPartial], wall_ms: int | None = None, channel: str | None = None
    ) -> list[SliPartial]:
        """Merge partials into memory (see `persist`) and return those applied: not input applied
        before, not refused for `max_services` (late buckets inside an applied partial are counted
        as late). `wall_ms`: the shell's clock, for the idleness of undeclared sources; without it
        (replay) every source counts until the end. `channel`: the stream they came on (`set_sources`)."""
        applied: list[SliPartial] = []
        for partial in partials:
            if partial.is_redaction_note:
                # For detection, which counts each once itself; nothing here. It bears its message's
                # offset: marked applied, a note that overtook its message's buckets made them a duplicate
                # (the tick's producer sent a held message's note while the ingest agent's run with its
                # buckets was still in flight; seen: a log bucket missing after a rebalance, 0 late).
                continue
            if channel is None:
                # One stream without progress reports (replay): a call's partials are their sources'
                # progress (redelivered ones too: the stream has passed them). On a channel only the
                # reports are, which follow all of an ingest batch's partials: those come one record per
                # service, and a record taken alone moved its source past the services still to come
                # on the channel (seen: up to 2,363 buckets late in a backlog, as the takes fell).
                self._passed(partial.source, channel, partial.max_time_ms, wall_ms)
            service = partial.service
            state = self._states.get(service)
            if state is None:
                state = self._state_of_new(partial)
                if state is None:
                    continue
            mark = state.sources.get(partial.source)
            if offset_marks.includes(mark, partial.offset):
                self._stats.duplicates_skipped += 1
                continue
            marked = offset_marks.with_offset(mark, partial.offset, partial.max_time_ms)
            state.sources[partial.source] = marked
            self._heard_of(partial.source, partial.max_time_ms, wall_ms)
            self._dirty.add(service)
            applied.append(partial)
            for bucket in partial.buckets:
                if self._late(state, bucket[START], partial.source):
                    continue
                add_to_finest(state.tiers, bucket)
                state.max_event_ms = max(state.max_event_ms, partial.max_time_ms)
            self._add_cumulative(state, partial)
        self._raise_watermark_to_sources(wall_ms)
        return applied

    def _state_of_new(self, partial: SliPartial) -> ServiceState | None:
        """The state for a service not in memory: none for one this engine does not own (a rebalance
        took it while its partials were in hand: its new owner applies them, and a fresh state here
        would evaluate it from the watermark on and drop its older data as late), the stored one
        (owned since the last `adopt`), else a new one (unless `max_services` is reached)."""
        service = partial.service
        if self._owned is not None and not self._owned(service):
            self._stats.partials_not_owned += 1
            return None
        stored = self._state_store.load_one(service)
        if stored is not None:
            self._take(stored)
            return stored
        if len(self._states) >= self._config.max_services:
            self._stats.services_rejected += 1
            return None
        state = self._states[service] = self._new_state(partial)
        return state

    def _add_cumulative(self, state: ServiceState, partial: SliPartial) -> None:
        """Insert the partial's cumulative points into their series and add the changes to the per-minute
        deltas (`cumulative`). A point in an evaluated minute, or older than its series keeps, is late:
        not inserted, so the next point's delta keeps its interval (counted in a later minute, not lost)."""
        if not partial.cumulative:
            return  # most partials: the budget's walk over the service's series is for those with points
        changed: dict[int, RequestCounts] = {}
        for key, point in partial.cumulative:
            series = state.series.setdefault(key, cumulative.new_series())
            if self._late(state, self._bucket_of(point), partial.source, cumulative.accepts(series, point)):
                continue
            changes = cumulative.insert(series, point)
            if changes is None:
                self._stats.metric_points_repeated += 1
                continue
            threshold = self._slos.slo_for(state.service).latency_threshold_ms
            for owner, sign, delta in changes:
                _, _, _, counts, _, layout, to_ms, error = owner
                values = cumulative.representatives(layout, len(counts), to_ms)
                requests = changed.setdefault(self._bucket_of(owner), RequestCounts())
                add_histogram(requests, delta, values, threshold, self._mapping, bool(error), sign)
        cumulative.bound(state.series, self._config.metric_points_per_service)
        for start_ms, requests in sorted(changed.items()):
            bucket = new_bucket(start_ms)
            bucket[METRIC_REQ] = requests.to_json()
            add_to_finest(state.tiers, bucket)

    def _late(self, state: ServiceState, bucket_start_ms: int, source: str, placeable: bool = True) -> bool:
        """Whether data of a bucket is late (its step evaluated, or not `placeable`), counted if so. A
        service that has emitted nothing yet starts earlier instead, whichever source brought it first."""
        if bucket_start_ms + self._finest_ms <= state.evaluated_ms:
            self._start_earlier(state, bucket_start_ms)
        if placeable and bucket_start_ms + self._finest_ms > state.evaluated_ms:
            return False
        state.late_dropped += 1
        self._stats.late_dropped += 1
        self._stats.late_dropped_by_source[source] += 1
        return True

    def _bucket_of(self, point: list) -> int:
        """The start of the finest bucket holding a cumulative point."""
        time_ms = point[cumulative.TIME] // 1_000_000
        return time_ms - time_ms % self._finest_ms

    def persist(self) -> None:
        """Write every service changed since the last call to the store. Input whose partials were
        added before this call may be acknowledged after it."""
        unowned = set()
        for service in sorted(self._dirty):
            if self._owned is not None and not self._owned(service):
                # Its partition moved (the changelog is its new owner's to write), or is between two
                # assignments: kept dirty, written if it comes back before `adopt` forgets it.
                unowned.add(service)
                continue
            state = self._states.get(service)
            if state is None:
                self._state_store.forget(service)
                continue
            state.watermark_ms = self._watermark_ms
            self._state_store.save(state)
        self._dirty = unowned

    def advance(self, idle_now_ms: int | None = None) -> list[SliSnapshot]:
        """Move the watermark and evaluate every step it passed, for every service, in step order.

        `idle_now_ms`: the shell's wall clock when all its input is caught up and idle. Every step up
        to the newest event is evaluated first (as `flush` does, but never past now - allowed
        lateness), then the watermark goes to now - allowed lateness, so silent services still get
        (empty) snapshots: old data is never cut short by a jump of the wall clock.
        """
        snapshots: list[SliSnapshot] = []
        if idle_now_ms is not None:
            wall = idle_now_ms - self._lateness_ms
            newest = self._newest_step_end()
            if newest is not None:
                self._raise_watermark(min(newest, wall))
                snapshots = self._evaluate_until(self._watermark_ms)
            self._raise_watermark(wall)
            return snapshots + self._evaluate_until(self._watermark_ms, jump=True)
        return self._evaluate_until(self._watermark_ms)

    def flush(self) -> list[SliSnapshot]:
        """End of input (replay): evaluate up to the newest event time, ignoring the lateness."""
        newest = self._newest_step_end()
        if newest is None:
            return []
        self._raise_watermark(newest)
        return self._evaluate_until(self._watermark_ms)

    def _newest_step_end(self) -> int | None:
        """The end of the step holding the newest event (so that event is included)."""
        newest = max((state.max_event_ms for state in self._states.values()), default=None)
        return None if newest is None else newest - newest % self._step_ms + self._step_ms

    def _raise_watermark(self, candidate: int) -> None:
        if self._watermark_ms is None or candidate > self._watermark_ms:
            self._watermark_ms = candidate

    def _passed(self, source: str, channel: str | None, max_time_ms: int, wall_ms: int | None) -> None:
        """`channel` has brought `source`'s data up to `max_time_ms`."""
        through = self._progress.setdefault(source, {}).setdefault(channel, [max_time_ms, None])
        through[0], through[1] = max(through[0], max_time_ms), wall_ms

    def _heard_of(self, source: str, max_time_ms: int, wall_ms: int | None) -> None:
        known = self._sources.get(source)
        if known is None:
            self._sources[source] = [max_time_ms, wall_ms]
        else:
            known[0] = max(known[0], max_time_ms)
            known[1] = wall_ms

    def _raise_watermark_to_sources(self, wall_ms: int | None) -> None:
        if not self._channels:
            # No channel assigned (mid-rebalance): no source can be judged. Taken as nothing to wait
            # for, stale reports of a worker that ran before moved the watermark past a backlog.
            return
        active = []
        declared = self._caught_up()
        for source, caught_up in declared.items():
            if caught_up:
                continue
            through = self._progress.get(source, {})
            for channel in self._channels:
                if channel not in through:
                    return  # data still to read from a source none of which came this way: wait for it
                active.append(through[channel][0])
        # A caught-up source holds the watermark like one seen only in partials: until it has been
        # quiet for `idle_after`. Caught up is as of the shell's last look; data may have arrived
        # since, and must not find the watermark moved past it by the other sources: it counts at its
        # slowest channel among those it came through within `idle_after` (one it stopped feeding,
        # e.g. a service gone, must not hold it for ever).
        for source, known in self._sources.items():
            if not declared.get(source, True):
                continue  # not caught up: counted above
            if wall_ms is not None and known[1] is None:
                known[1] = wall_ms  # recovered from the store: idle from now on unless heard of
            if wall_ms is None or wall_ms - known[1] <= self._idle_after_ms:
                through = self._progress.get(source, {})
                recent = [
                    newest
                    for channel, (newest, heard_ms) in through.items()
                    if channel in self._channels
                    and (wall_ms is None or heard_ms is None or wall_ms - heard_ms <= self._idle_after_ms)
                ]
                active.append(min(recent, default=known[0]))
        if active:
            self._raise_watermark(min(active) - self._lateness_ms)

    def _new_state(self, first: SliPartial) -> ServiceState:
        # Evaluation starts at the step of the earliest bucket, but never before the step the
        # watermark has reached (steps other services were evaluated for are over).
        earliest = min((bucket[START] for bucket in first.buckets), default=first.max_time_ms)
        state = ServiceState(first.service, first.max_time_ms, earliest, tiers=[[] for _ in self._shape])
        state.evaluated_ms = self._evaluation_start(earliest)
        return state

    def _evaluation_start(self, bucket_start_ms: int) -> int:
        start = bucket_start_ms - bucket_start_ms % self._step_ms
        if self._watermark_ms is not None:
            start = max(start, self._watermark_ms - self._watermark_ms % self._step_ms)
        return start

    def _start_earlier(self, state: ServiceState, bucket_start_ms: int) -> None:
        """A bucket before a service's first step: if the service has emitted nothing yet (its first
        step is beyond the watermark's), start it earlier so the bucket counts, whichever source
        brought the service first."""
        watermark = self._watermark_ms
        if watermark is None or state.evaluated_ms > watermark - watermark % self._step_ms:
            state.evaluated_ms = min(state.evaluated_ms, self._evaluation_start(bucket_start_ms))

    def _evaluate_until(self, watermark_ms: int | None, *, jump: bool = False) -> list[SliSnapshot]:
        """Every step up to the watermark's, for every service. With `jump` (a wall-clock move), a
        service more than `max_catch_up` behind jumps ahead; a move by data never skips a step, so
        the steps emitted do not depend on how far the watermark moved at once."""
        if watermark_ms is None:
            return []
        target = watermark_ms - watermark_ms % self._step_ms
        pending = [self._states[s] for s in sorted(self._states) if self._states[s].evaluated_ms < target]
        if not pending:
            return []
        snapshots: list[SliSnapshot] = []
        expired: set[str] = set()
        floor = target - self._max_catch_up_ms
        floor -= floor % self._step_ms
        for state in pending:
            self._dirty.add(state.service)
            if jump and state.evaluated_ms < floor:
                roll(state.tiers, self._shape, floor)  # one jump, same result
                self._stats.steps_skipped += (floor - state.evaluated_ms) // self._step_ms
                state.evaluated_ms = floor
        step = min(state.evaluated_ms for state in pending) + self._step_ms
        while step <= target:
            for state in pending:
                if state.evaluated_ms >= step or state.service in expired:
                    continue
                roll(state.tiers, self._shape, step)
                if not any(state.tiers):  # every bucket aged out: forget the service
                    expired.add(state.service)
                    continue
                snapshots.extend(self._snapshots(state, step))
                state.evaluated_ms = step
            step += self._step_ms
        for state in pending:
            cumulative.prune(
                state.series,
                state.evaluated_ms * 1_000_000,
                (state.evaluated_ms - self._config.retention_ms) * 1_000_000,
                self._config.metric_series_cache_size,
            )
        for service in expired:
            del self._states[service]  # `persist` deletes its key
            self._stats.services_expired += 1
        self._stats.snapshots += len(snapshots)
        return snapshots

    def _snapshots(self, state: ServiceState, end_ms: int) -> list[SliSnapshot]:
        service = state.service
        slo = self._slos.slo_for(service)
        period_ms = min(slo.period_ms, self._config.retention_ms)
        windows = self._windows
        if slo.period not in dict(windows):
            windows = [*windows, (slo.period, period_ms)]
        lengths = [length for _, length in windows] + [length for _, length in self._burn_windows]
        totals = window_totals(state.tiers, self._shape, end_ms, lengths)
        burn = {
            label: _burn(totals[length].errors, totals[length].requests, slo.availability)
            for label, length in self._burn_windows
        }
        latency_burn = {
            label: _burn(
                totals[length].requests - totals[length].good, totals[length].requests, slo.latency_objective
            )
            for label, length in self._burn_windows
        }
        period = totals[period_ms]
        step = _Step(
            service=service,
            end_ms=end_ms,
            window_end=dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            burn=burn,
            latency_burn=latency_burn,
            budget_remaining=round(1 - _burn(period.errors, period.requests, slo.availability), 6),
        )
        return [self._snapshot(step, label, length, totals[length]) for label, length in windows]

    def _snapshot(self, step: _Step, label: str, length_ms: int, totals: WindowTotals) -> SliSnapshot:
        requests = totals.requests
        error_rate = _ratio(totals.errors, requests)
        p50, p95, p99 = (
            _round(quantile_ms(totals.zeros, totals.sketch, q, self._mapping, totals.sketch_level), 3)
            for q in _QUANTILES
        )
        cardinality = None
        if length_ms <= self._shape[0].until_ms:  # HyperLogLogs are kept in the finest tier only
            cardinality = Cardinality(
                span_names=hll_estimate(totals.span_names), attribute_keys=hll_estimate(totals.attribute_keys)
            )
        return SliSnapshot(
            service=step.service,
            window=label,
            window_end=step.window_end,
            requests=requests,
            errors=totals.errors,
            availability=None if error_rate is None else round(1 - error_rate, 6),
            error_rate=error_rate,
            latency_ms=LatencyQuantiles(p50=p50, p95=p95, p99=p99),
            latency_good_ratio=_ratio(totals.good, requests),
            throughput_rps=round(requests * 1000 / self._covered_ms(step.end_ms, length_ms), 6),
            burn_rate=step.burn,
            latency_burn_rate=step.latency_burn,
            error_budget_remaining=step.budget_remaining,
            completeness=self._completeness(totals),
            cardinality=cardinality,
        )

    def _covered_ms(self, end_ms: int, length_ms: int) -> int:
        """The span the window's buckets cover: from the first bucket boundary, in the tier holding data
        of the window's age, at or after the window's start."""
        size = next(t.size_ms for t in self._shape if t.until_ms >= length_ms)
        return end_ms - -(-(end_ms - length_ms) // size) * size

    def _completeness(self, totals: WindowTotals) -> Completeness:
        weights = self._config.completeness_weights
        correlation = _ratio(totals.logs_traced, totals.logs) or 0.0
        requirements = len(self._config.recommended_resource_attributes)
        resource_share = _ratio(totals.resource_attrs, totals.resources * requirements) or 0.0
        parts = {
            "traces": (float(totals.spans > 0), weights.traces),
            "metrics": (float(totals.points > 0), weights.metrics),
            "logs": (float(totals.logs > 0), weights.logs),
            "log_trace_correlation": (correlation, weights.log_trace_correlation),
            "resource_attributes": (resource_share, weights.resource_attributes),
        }
        weighted = sum(value * weight for value, weight in parts.values())
        score = 100 * weighted / sum(weight for _, weight in parts.values())
        return Completeness(
            traces=totals.spans > 0,
            metrics=totals.points > 0,
            logs=totals.logs > 0,
            log_trace_correlation=correlation,
            resource_attributes=resource_share,
            score=round(score, 2),
        )


def _labelled(labels: list[str]) -> list[tuple[str, int]]:
    return [(label, duration_ms(label)) for label in dict.fromkeys(labels)]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _burn(bad: int, total: int, objective: float) -> float:
    """Error-budget burn rate: the bad share over the allowed bad share (1 = spending exactly on budget)."""
    return round(bad / total / (1 - objective), 6) if total else 0.0
