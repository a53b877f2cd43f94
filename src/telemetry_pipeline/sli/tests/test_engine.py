import random
from collections import Counter

import orjson
import pytest

from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.sli import (
    PartialAggregator,
    SliConfig,
    SliEngine,
    SliPartial,
    SliSnapshot,
    SloConfig,
    SloDefaults,
    SloResolver,
    SourceProgress,
)
from telemetry_pipeline.sli.tests.builders import (
    ERROR,
    MINUTE_NS,
    MS,
    T0_NS,
    ChangelogStore,
    checkout_request_durations,
    histogram,
    logs,
    traces,
)
from telemetry_pipeline.sli.windows import SPAN_REQ, new_bucket

T0_MS = T0_NS // MS
MINUTE = 60_000
HOUR = 60 * MINUTE
CHECKOUT = SloConfig(service="checkout", availability=99.9, latency={"threshold_ms": 300, "objective": 99.0})


def resolver(*slos: SloConfig) -> SloResolver:
    return SloResolver(list(slos) or [CHECKOUT], SloDefaults())


def partials_of(config: SliConfig, slos: SloResolver, *messages: tuple[Signal, object]) -> list[SliPartial]:
    aggregator = PartialAggregator(config, slos)
    for signal, message in messages:
        aggregator.add(signal, message)
    return aggregator.drain()


def pick(snapshots: list[SliSnapshot], window: str, end_ms: int, service: str = "checkout") -> SliSnapshot:
    iso = _iso(end_ms)
    [found] = [s for s in snapshots if s.window == window and s.window_end == iso and s.service == service]
    return found


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_every_sli_against_hand_computed_values() -> None:
    config, slos = SliConfig(), resolver()
    minute0 = [{"end_ns": T0_NS + i * MS, "latency_ms": 10.0 * (i + 1)} for i in range(8)]
    minute0[0]["status"] = minute0[1]["status"] = ERROR
    minute1 = [
        {"end_ns": T0_NS + MINUTE_NS, "latency_ms": 400.0, "status": ERROR},
        {"end_ns": T0_NS + MINUTE_NS, "latency_ms": 400.0},
    ]
    engine = SliEngine(config, slos, {})
    engine.add(
        partials_of(
            config,
            slos,
            (Signal.TRACES, traces("checkout", minute0)),
            (Signal.TRACES, traces("checkout", minute1)),
            (Signal.LOGS, logs("checkout", [(T0_NS, True)] * 3 + [(T0_NS, False)])),
        )
    )
    snapshots = engine.advance(idle_now_ms=T0_MS + 5 * MINUTE)  # watermark: now - 2m lateness
    s = pick(snapshots, "5m", T0_MS + 2 * MINUTE)
    assert (s.requests, s.errors) == (10, 3)
    assert s.availability == pytest.approx(0.7)
    assert s.error_rate == pytest.approx(0.3)
    assert s.latency_good_ratio == pytest.approx(0.8)  # 8 of 10 at or under 300 ms
    # Ranks 0.5*9=4.5 -> 5th value (50 ms); 0.95*9 and 0.99*9 -> 9th value (400 ms); 1% relative accuracy.
    assert s.latency_ms.p50 == pytest.approx(50.0, rel=0.01)
    assert s.latency_ms.p95 == pytest.approx(400.0, rel=0.01)
    assert s.latency_ms.p99 == pytest.approx(400.0, rel=0.01)
    assert s.throughput_rps == pytest.approx(10 / 300, abs=1e-6)
    assert s.burn_rate["5m"] == pytest.approx(0.3 / 0.001)
    assert s.latency_burn_rate["5m"] == pytest.approx(0.2 / 0.01)
    assert s.error_budget_remaining == pytest.approx(1 - 300)
    c = s.completeness
    assert (c.traces, c.metrics, c.logs) == (True, False, True)
    assert c.log_trace_correlation == pytest.approx(0.75)
    assert c.resource_attributes == pytest.approx(1 / 6, abs=1e-6)  # only service.name of six requirements
    assert c.score == pytest.approx(25 + 15 + 20 * 0.75 + 20 / 6, abs=0.01)
    assert s.cardinality is not None and s.cardinality.span_names == 1
    # One minute earlier only minute 0 is in; the 30d period window appears with its label.
    s1 = pick(snapshots, "5m", T0_MS + MINUTE)
    assert (s1.requests, s1.errors) == (8, 2)
    assert pick(snapshots, "30d", T0_MS + 2 * MINUTE).requests == 10
    assert pick(snapshots, "30d", T0_MS + 2 * MINUTE).cardinality is None


def test_sre_workbook_burn_rate_example() -> None:
    # 99.9% over 30 days; 2% of the budget spent in one hour is a burn rate of 14.4 (SRE Workbook, ch. 5).
    config = SliConfig(
        bucket_tiers=[{"size": "1h", "until": "30d"}],
        windows=["1h"],
        burn_rate_windows=["1h"],
        evaluation_step="1h",
    )
    engine = SliEngine(config, resolver(), {})
    per_hour = 10_000
    hours = 30 * 24
    start = T0_MS - hours * HOUR
    partials = []
    for hour in range(hours):
        bucket = new_bucket(start + hour * HOUR)
        errors = 144 if hour == hours - 1 else 0  # 1.44% errors in the last hour
        bucket[SPAN_REQ] = [per_hour, errors, per_hour, 0, []]
        partials.append(SliPartial("checkout", start + hour * HOUR + HOUR - 1, [bucket]))
    engine.add(partials)
    last = engine.flush()[-2:]
    one_hour = next(s for s in last if s.window == "1h")
    period = next(s for s in last if s.window == "30d")
    assert one_hour.window_end == _iso(T0_MS)
    assert one_hour.burn_rate == {"1h": pytest.approx(14.4)}
    assert period.requests == per_hour * hours
    assert period.error_budget_remaining == pytest.approx(0.98)  # 144 of 7,200 allowed errors spent


def small_tiers(**overrides: object) -> SliConfig:
    return SliConfig(
        bucket_tiers=[
            {"size": "1m", "until": "10m"},
            {"size": "5m", "until": "1h", "sketch_collapse": 1},
            {"size": "30m", "until": "6h", "sketch_collapse": 2},
        ],
        windows=["5m", "30m", "1h", "6h"],
        burn_rate_windows=["5m", "1h"],
        **overrides,
    )


def test_tiers_roll_up_without_double_counting_and_stay_bounded() -> None:
    config = small_tiers()
    slos = resolver(SloConfig(service="checkout", period="6h"))
    engine = SliEngine(config, slos, store := ChangelogStore())
    minutes = 180
    snapshots = []
    for minute in range(minutes):  # one request a minute, 100 ms, every third one an error
        error = {"status": ERROR} if minute % 3 == 0 else {}
        spans = [{"end_ns": T0_NS + minute * MINUTE_NS, "latency_ms": 100.0, **error}]
        engine.add(partials_of(config, slos, (Signal.TRACES, traces("checkout", spans))))
        snapshots += engine.advance()
        engine.persist()
        limits = [10 + 3, 12 + 1, 12 + 1]  # until / size, plus the buckets still filling
        per_tier = [len(tier) for tier in store["checkout"]["tiers"]]
        assert all(n <= limit for n, limit in zip(per_tier, limits, strict=True))
    snapshots += engine.flush()
    end = T0_MS + minutes * MINUTE
    by_window = {s.window: s for s in snapshots if s.window_end == _iso(end)}
    assert {w: s.requests for w, s in by_window.items()} == {"5m": 5, "30m": 30, "1h": 60, "6h": 180}
    assert by_window["6h"].errors == 60
    assert by_window["6h"].latency_ms.p99 == pytest.approx(100.0, rel=0.04)  # tier 2 keeps ~4% accuracy
    # Off the 5m grid, the 1h window ending at 178m starts at 118m, inside the 5m bucket [115m, 120m) of
    # tier 1, which it leaves out: minutes 120-167 from tier 1 and 168-177 from tier 0.
    off_grid = pick(snapshots, "1h", end - 2 * MINUTE)
    assert off_grid.requests == 58
    assert off_grid.throughput_rps == pytest.approx(58 / (58 * 60), abs=1e-6)  # per covered second
    assert pick(snapshots, "5m", end - 2 * MINUTE).requests == 5


def test_late_data_within_the_lateness_counts_and_later_data_is_dropped() -> None:
    config, slos = SliConfig(), resolver()
    engine = SliEngine(config, slos, {})

    def add(offset_ms: int) -> None:
        spans = [{"end_ns": (T0_MS + offset_ms) * MS}]
        engine.add(partials_of(config, slos, (Signal.TRACES, traces("checkout", spans))))

    add(10 * MINUTE)
    engine.advance()  # watermark T0+8m: steps up to T0+8m are out
    add(8 * MINUTE + 30_000)  # 1.5 minutes late, within the 2 minutes allowed: bucket [8m, 9m)
    add(7 * MINUTE + 30_000)  # its bucket [7m, 8m) was evaluated already
    assert engine.stats()["late_dropped"] == 1
    snapshots = engine.flush()
    assert pick(snapshots, "5m", T0_MS + 9 * MINUTE).requests == 1
    assert pick(snapshots, "5m", T0_MS + 11 * MINUTE).requests == 2


def test_metrics_count_and_spans_time_so_nothing_counts_twice() -> None:
    config, slos = SliConfig(), resolver()
    both_minute = [{"end_ns": T0_NS, "status": ERROR, "latency_ms": 42.0}] * 10
    spans_only_minute = [{"end_ns": T0_NS + MINUTE_NS}] * 3
    metric = histogram(
        "checkout",
        "http.server.request.duration",
        [{"time_ns": T0_NS, "bounds": [0.1], "counts": [20, 0]}],
        unit="s",
    )
    engine = SliEngine(config, slos, {})
    engine.add(
        partials_of(
            config,
            slos,
            (Signal.TRACES, traces("checkout", both_minute)),
            (Signal.TRACES, traces("checkout", spans_only_minute)),
            (Signal.METRICS, metric),
        )
    )
    s = pick(engine.flush(), "5m", T0_MS + 2 * MINUTE)
    assert (s.requests, s.errors) == (20 + 3, 0)
    # Quantiles from the spans' sketch, not the histogram's bucket midpoint (50 ms).
    assert s.latency_ms.p50 == pytest.approx(42.0, rel=0.01)
    assert (s.completeness.traces, s.completeness.metrics) == (True, True)


def test_idle_input_lets_wall_time_push_the_watermark_for_silent_services() -> None:
    config, slos = SliConfig(), resolver()
    engine = SliEngine(config, slos, {})
    engine.add(partials_of(config, slos, (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}]))))
    assert engine.advance() == []  # nothing past the watermark yet
    snapshots = engine.advance(idle_now_ms=T0_MS + 10 * MINUTE)
    silent = pick(snapshots, "5m", T0_MS + 8 * MINUTE)
    assert (silent.requests, silent.availability, silent.burn_rate["5m"]) == (0, None, 0.0)
    assert silent.latency_ms.p50 is None
    assert silent.completeness.traces is False
    assert pick(snapshots, "1h", T0_MS + 8 * MINUTE).requests == 1
    assert engine.advance(idle_now_ms=T0_MS + 10 * MINUTE) == []  # each step once


def test_a_service_far_behind_jumps_ahead_instead_of_emitting_every_step() -> None:
    config, slos = SliConfig(), resolver()
    engine = SliEngine(config, slos, {})
    engine.add(partials_of(config, slos, (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}]))))
    snapshots = engine.advance(idle_now_ms=T0_MS + 2 * 24 * HOUR)  # silent for two days
    steps = sorted({s.window_end for s in snapshots})
    # First the step holding the newest event (as replay's flush), then max_catch_up (1h) of 1-minute
    # steps, not 2,880.
    assert len(steps) == 61
    assert steps[0] == pick(snapshots, "5m", T0_MS + MINUTE).window_end
    assert pick(snapshots, "5m", T0_MS + MINUTE).requests == 1
    # From the request's step to now - allowed lateness (2m): 2,878 steps due, 61 evaluated.
    assert engine.stats()["steps_skipped"] == 2 * 24 * 60 - 2 - 61
    # The jump rolled the buckets like the steps would have: the 3d window still has the request.
    assert pick(snapshots, "3d", T0_MS + 2 * 24 * HOUR - 2 * MINUTE).requests == 1
    assert pick(snapshots, "1d", T0_MS + 2 * 24 * HOUR - 2 * MINUTE).requests == 0


def test_services_are_capped_and_expire_when_their_data_ages_out() -> None:
    config = SliConfig(
        bucket_tiers=[{"size": "1m", "until": "10m"}],
        windows=["5m"],
        burn_rate_windows=["5m"],
        max_services=1,
    )
    slos = SloResolver([], SloDefaults(period="10m"))
    engine = SliEngine(config, slos, store := ChangelogStore())
    engine.add(
        partials_of(
            config,
            slos,
            (Signal.TRACES, traces("a", [{"end_ns": T0_NS}])),
            (Signal.TRACES, traces("b", [{"end_ns": T0_NS}])),
        )
    )
    assert store == {}  # written by persist() only
    engine.persist()
    assert list(store) == ["a"]  # keyed by service
    assert engine.stats()["services_rejected"] == 1
    snapshots = engine.advance(idle_now_ms=T0_MS + HOUR)
    engine.persist()
    assert store == {}
    assert engine.stats()["services_expired"] == 1
    # The last snapshot is the last step whose 10m period window still reaches the data.
    assert max(s.window_end for s in snapshots) == _iso(T0_MS + 10 * MINUTE)


def tagged(
    config: SliConfig, slos: SloResolver, offsets: Counter[str], source: str, message: tuple[Signal, object]
) -> list[SliPartial]:
    """A message's partials tagged with the next offset of `source`, as the core tags them."""
    partials = partials_of(config, slos, message)
    for partial in partials:
        partial.source, partial.offset = source, offsets[source]
    offsets[source] += 1
    return partials


Step = tuple[list[SliPartial], int | None]  # partials of a batch, the idle push after it


def batches(seed: int, late: bool = True) -> list[Step]:
    """Two hours of services on three input sources, with jitter, a silent stretch, a service that
    starts late and, if `late`, very late records and idle ticks whose wall clock runs ahead of event
    time (so later records are late)."""
    config, slos = SliConfig(), resolver()
    rng = random.Random(seed)
    offsets: Counter[str] = Counter()
    result = []
    for tick in range(120):
        partials = []
        for service in ("checkout", "cart", "search", "joiner"):
            if (service == "search" and 40 <= tick < 70) or (service == "joiner" and tick < 86):
                continue
            spans = [
                {
                    "end_ns": T0_NS + tick * MINUTE_NS - rng.randrange(0, 150_000) * MS,
                    "latency_ms": rng.lognormvariate(4, 1),
                    **({"status": ERROR} if rng.random() < 0.05 else {}),
                }
                for _ in range(rng.randrange(1, 20))
            ]
            if late and rng.random() < 0.1:
                spans.append({"end_ns": T0_NS + (tick - 10) * MINUTE_NS})  # beyond the allowed lateness
            source = f"otlp_spans[{rng.randrange(2)}]"
            partials += tagged(config, slos, offsets, source, (Signal.TRACES, traces(service, spans)))
        cart_logs = logs("cart", [(T0_NS + tick * MINUTE_NS, rng.random() < 0.5)] * 3)
        partials += tagged(config, slos, offsets, "otlp_logs[0]", (Signal.LOGS, cart_logs))
        idle = T0_MS + tick * MINUTE + 4 * MINUTE if late and tick % 17 == 0 else None
        result.append((partials, idle))
    return result


def run(steps: list[Step], store: dict, persist_every: int = 1) -> tuple[SliEngine, list[bytes], int]:
    """A new engine over `store` fed `steps` as the worker feeds it: persisting every `persist_every`
    steps. Returns the engine, its snapshots, and how many steps it had persisted (acknowledged)."""
    engine = SliEngine(SliConfig(), resolver(), store)
    out, acknowledged = [], 0
    for number, (partials, idle) in enumerate(steps, start=1):
        engine.add(partials)
        out.extend(s.to_json_bytes() for s in engine.advance(idle))
        if number % persist_every == 0:
            engine.persist()
            acknowledged = number
    return engine, out, acknowledged


def by_key(*outputs: list[bytes]) -> dict[tuple[str, str, str], set[bytes]]:
    """Snapshots by (service, window, window_end): every distinct version emitted."""
    found: dict[tuple[str, str, str], set[bytes]] = {}
    for output in outputs:
        for snapshot in output:
            obj = orjson.loads(snapshot)
            found.setdefault((obj["service"], obj["window"], obj["window_end"]), set()).add(snapshot)
    return found


def test_a_new_engine_over_the_recovered_store_continues_exactly_whatever_is_read_again() -> None:
    steps = batches(seed=3)
    _, straight, _ = run(steps, store_a := ChangelogStore())
    # The first engine persists every 7th step and dies after step 90: what it merged since its last
    # persist (step 84) is lost with it. The second engine is fed from 10 steps before that, as after
    # a rebalance whose commits lagged: input it had persisted comes again and must be skipped.
    store_b = ChangelogStore()
    _, first, acknowledged = run(steps[:90], store_b, persist_every=7)
    assert acknowledged == 84
    recovered = ChangelogStore(store_b)  # what a changelog recovery gives back, no shared objects
    engine, second, _ = run(steps[acknowledged - 10 :], recovered)
    assert engine.stats()["duplicates_skipped"] > 0
    restarted = by_key(first, second)
    assert all(len(versions) == 1 for versions in restarted.values())  # sent again only identically
    assert restarted == by_key(straight)
    assert recovered == store_a
    assert sum(v["late_dropped"] for v in recovered.values()) > 0  # the run had late data
    assert len(straight) > 1000  # the comparison covers real output
    assert len({orjson.loads(s)["window_end"] for s in straight}) >= 100


def test_a_rebalance_moves_services_between_engines_and_counts_stay_exact() -> None:
    # Two workers' engines share one changelog. The first owns every service, persisting every 7th
    # step; after step 60 a rebalance gives cart and search to the second. Kafka then re-reads every
    # partition from its committed offset (the last persist): each engine gets again, from there, the
    # partials of the services it owns, and must skip what it has applied.
    steps = batches(seed=5, late=False)
    straight_engine, straight, _ = run(steps, ChangelogStore())
    assert straight_engine.stats()["late_dropped"] == 0  # so evaluation timing cannot change a count

    def only(services: set[str], step_range: list[Step]) -> list[Step]:
        return [([p for p in partials if p.service in services], idle) for partials, idle in step_range]

    moved = {"cart", "search"}
    changelog = ChangelogStore()
    first_engine, first, acknowledged = run(steps[:60], changelog, persist_every=7)
    first_engine.adopt(lambda service: service not in moved)
    second_engine = SliEngine(SliConfig(), resolver(), changelog)
    second_engine.adopt(lambda service: service in moved)
    outputs = [first]
    for engine, services in ((first_engine, {"checkout", "joiner"}), (second_engine, moved)):
        for partials, idle in only(services, steps[acknowledged:]):
            engine.add(partials)
            outputs.append([s.to_json_bytes() for s in engine.advance(idle)])
            engine.persist()
    assert first_engine.stats()["duplicates_skipped"] > 0  # what it had merged past its last persist
    rebalanced = by_key(*outputs)
    # A service's first step depends on its engine's watermark; from an hour in, every step compares.
    settled = _iso(T0_MS + HOUR + 30 * MINUTE)
    expected = {key: value for key, value in by_key(straight).items() if key[2] >= settled}
    assert {key: value for key, value in rebalanced.items() if key[2] >= settled} == expected
    assert len(expected) > 500


def test_partials_of_a_service_a_rebalance_took_are_left_to_its_new_owner() -> None:
    """Partials in hand when a rebalance moves their service away: applied to a fresh state, they
    made the service start again from the watermark and drop its older data as late (seen on the
    broker: 2,463 buckets of one service after a restart in a backlog); written, they would overwrite
    the new owner's state in the changelog."""
    steps = batches(seed=11, late=False)
    store = ChangelogStore()
    engine, _, _ = run(steps[:30], store)
    stored_cart = orjson.dumps(store["cart"])
    owned = {"checkout", "search", "joiner"}
    engine.adopt(lambda service: service in owned)
    for partials, _idle in steps[30:40]:
        engine.add(partials)
        engine.advance()
        engine.persist()
    assert "cart" not in engine.services()
    left = sum(partial.service == "cart" for partials, _ in steps[30:40] for partial in partials)
    assert engine.stats()["partials_not_owned"] == left > 0
    assert orjson.dumps(store["cart"]) == stored_cart
    # Owned again, its partials come before the next `adopt`: its stored state is taken up.
    owned.add("cart")
    engine.add([partial for partial in steps[30][0] if partial.service == "cart"])
    assert "cart" in engine.services()
    assert engine.stats()["duplicates_skipped"] == 0


def test_a_service_between_two_assignments_is_written_once_it_is_owned_again() -> None:
    """A persist while the assignment is empty for a moment must not lose what was merged: the service
    stays dirty and is written by the next persist that finds it owned."""
    steps = batches(seed=13, late=False)
    owned = {"checkout", "cart", "search", "joiner"}
    store = ChangelogStore()
    engine = SliEngine(SliConfig(), resolver(), store)
    engine.adopt(lambda service: service in owned)
    for partials, _idle in steps[:20]:
        engine.add(partials)
        engine.advance()
    engine.persist()
    written = orjson.dumps(store["cart"])
    owned.discard("cart")
    engine.add(steps[20][0])
    engine.persist()
    assert orjson.dumps(store["cart"]) == written
    owned.add("cart")
    engine.persist()
    assert store["cart"]["sources"] != orjson.loads(written)["sources"]


def test_offsets_handed_over_out_of_order_and_again_each_count_once() -> None:
    """Around a rebalance Faust can hand an agent the records after a gap before the gap's own, then all
    of them again after a seek back (seen on the broker: 122-129, 114-121, 122-129). Fed so, two steps
    at a time, the engine must give the in-order run's snapshots, skipping exactly the repeats."""
    steps = batches(seed=7, late=False)
    _, straight, _ = run(steps, ChangelogStore())
    engine = SliEngine(SliConfig(), resolver(), ChangelogStore())
    out, repeated = [], 0
    for earlier, later in zip(steps[::2], steps[1::2], strict=True):
        engine.add([*later[0], *earlier[0], *later[0]])
        repeated += len(later[0])
        out.extend(s.to_json_bytes() for s in engine.advance())
    assert engine.stats()["duplicates_skipped"] == repeated
    assert by_key(out) == by_key(straight)


def test_the_watermark_waits_for_the_slowest_active_source() -> None:
    config, slos = SliConfig(idle_after="30s"), resolver()
    engine = SliEngine(config, slos, {})
    offsets: Counter[str] = Counter()

    def add(source: str, minute: int, wall_ms: int) -> None:
        message = (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS + minute * MINUTE_NS}]))
        engine.add(tagged(config, slos, offsets, source, message), wall_ms=wall_ms)

    wall = 1_000_000
    add("otlp_spans[0]", 0, wall)
    add("otlp_logs[0]", 0, wall)
    add("otlp_spans[0]", 20, wall)  # spans caught up 20 minutes ahead of the logs
    assert engine.advance() == []  # the logs source still holds the watermark at minute 0 - 2m
    add("otlp_logs[0]", 5, wall + 1_000)  # five minutes late against the spans' lateness, yet counted
    snapshots = engine.advance()
    assert max(s.window_end for s in snapshots) == _iso(T0_MS + 3 * MINUTE)  # logs' 5m - 2m
    assert engine.stats()["late_dropped"] == 0
    # Silent for longer than idle_after (wall time), the logs source no longer holds it back.
    add("otlp_spans[0]", 21, wall + 32_000)
    assert max(s.window_end for s in engine.advance()) == _iso(T0_MS + 19 * MINUTE)
    assert engine.stats()["duplicates_skipped"] == 0


def test_a_source_counts_at_its_slowest_channel_and_caught_up_holds_until_quiet() -> None:
    """Partials of one source come split over channels (the worker's sli-partials partitions, by
    service), each read at its own pace: the channel read ahead must not move the watermark past the
    source's data still queued in the other. Caught up, a source holds it until quiet for idle_after."""
    config, slos = SliConfig(idle_after="30s"), resolver()
    engine = SliEngine(config, slos, {})
    offsets: Counter[str] = Counter()
    wall = 1_000_000

    def add(service: str, minute: int, channel: str, wall_ms: int = wall) -> None:
        message = (Signal.TRACES, traces(service, [{"end_ns": T0_NS + minute * MINUTE_NS}]))
        engine.add(tagged(config, slos, offsets, "otlp_spans[0]", message), wall_ms=wall_ms, channel=channel)
        # The report that follows a batch's partials on the channel (app/progress.py).
        report = SourceProgress("otlp_spans[0]", T0_MS + minute * MINUTE, False)
        engine.add_progress([report], wall_ms=wall_ms, channel=channel)

    engine.set_sources({"otlp_spans[0]": False}, wall_ms=wall, channels=["p0", "p1"])
    add("checkout", 0, "p0")
    add("checkout", 20, "p0")  # p0 read 20 minutes ahead; nothing of the source came through p1 yet
    assert engine.advance() == []
    add("payment", 0, "p1")
    assert engine.advance() == []  # p1 holds it at minute 0 - 2m
    add("payment", 10, "p1")
    assert max(s.window_end for s in engine.advance()) == _iso(T0_MS + 8 * MINUTE)
    assert engine.stats()["late_dropped"] == 0
    # Caught up as of the shell's last look, the source still counts at its slowest channel: what
    # came since through p0 says nothing of what p1 still has queued.
    engine.set_sources({"otlp_spans[0]": True}, wall_ms=wall + 1_000, channels=["p0", "p1"])
    add("checkout", 30, "p0", wall + 1_500)
    assert engine.advance() == []  # p1 (minute 10) holds it at minute 8
    add("payment", 17, "p1", wall + 2_000)
    assert max(s.window_end for s in engine.advance()) == _iso(T0_MS + 15 * MINUTE)
    assert engine.stats()["late_dropped"] == 0
    # A channel quiet for idle_after (its services gone from the source) no longer holds it ...
    add("checkout", 31, "p0", wall + 35_000)
    assert max(s.window_end for s in engine.advance()) == _iso(T0_MS + 29 * MINUTE)
    # ... nor the whole source once it has been quiet that long: then only the wall clock moves it.
    engine.set_sources({"otlp_spans[0]": True}, wall_ms=wall + 70_000, channels=["p0", "p1"])
    assert engine.advance() == []


def test_a_batch_whose_partials_are_taken_in_two_parts_is_not_late() -> None:
    """An ingest batch's partials come one sli-partials record per service, then the progress report;
    the SLI agent can take the records in two batches. The first part alone must not move the source
    past the second (seen: up to 2,363 buckets late in a backlog, as the takes fell)."""
    config, slos = SliConfig(), resolver()
    engine = SliEngine(config, slos, {})
    offsets: Counter[str] = Counter()
    engine.set_sources({"otlp_spans[0]": False}, wall_ms=0, channels=["p0"])
    batch = [
        tagged(config, slos, offsets, "otlp_spans[0]", (Signal.TRACES, traces(service, [{"end_ns": end}])))
        for service, end in (("checkout", T0_NS + 20 * MINUTE_NS), ("payment", T0_NS))
    ]
    engine.add(batch[0], wall_ms=0, channel="p0")  # checkout's record, minute 20
    assert engine.advance() == []
    engine.add(batch[1], wall_ms=0, channel="p0")  # payment's record of the same batch, minute 0
    report = SourceProgress("otlp_spans[0]", T0_MS + 20 * MINUTE, False)
    engine.add_progress([report], wall_ms=0, channel="p0")
    assert max(s.window_end for s in engine.advance()) == _iso(T0_MS + 18 * MINUTE)
    assert engine.stats()["late_dropped"] == 0


def test_a_redaction_note_ahead_of_its_messages_buckets_leaves_them_to_count() -> None:
    """A note bears its message's offset. Sent by another producer (the tick releasing a held message),
    it can reach the engine before the message's buckets, which must still count."""
    config, slos = SliConfig(), resolver()
    engine = SliEngine(config, slos, {})
    message = (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}]))
    [partial] = tagged(config, slos, Counter(), "otlp_spans[0]", message)
    note = SliPartial("checkout", partial.max_time_ms, [], partial.source, partial.offset, {"email": 1})
    assert engine.add([note]) == []
    assert engine.add([partial]) == [partial]
    assert pick(engine.flush(), "5m", T0_MS + MINUTE).requests == 1


def test_snapshot_json_is_deterministic_and_matches_the_contract_fields() -> None:
    config, slos = SliConfig(), resolver()
    engine = SliEngine(config, slos, {})
    engine.add(partials_of(config, slos, (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}]))))
    snapshot = engine.flush()[0]
    obj = orjson.loads(snapshot.to_json_bytes())
    assert list(obj)[:13] == [
        "service",
        "window",
        "window_end",
        "requests",
        "errors",
        "availability",
        "error_rate",
        "latency_ms",
        "latency_good_ratio",
        "throughput_rps",
        "burn_rate",
        "latency_burn_rate",
        "error_budget_remaining",
    ]
    assert set(obj["completeness"]) == {
        "traces",
        "metrics",
        "logs",
        "log_trace_correlation",
        "resource_attributes",
        "score",
    }
    assert set(obj["burn_rate"]) == set(config.burn_rate_windows)
    assert SliSnapshot.model_validate_json(snapshot.to_json_bytes()) == snapshot


def test_the_slo_period_is_a_window_once_even_when_configured_as_one() -> None:
    config = SliConfig(windows=["5m", "1d"])
    slos = resolver(SloConfig(service="checkout", period="1d"), SloConfig(service="cart", period="3d"))
    engine = SliEngine(config, slos, {})
    engine.add(
        partials_of(
            config,
            slos,
            (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}])),
            (Signal.TRACES, traces("cart", [{"end_ns": T0_NS}])),
        )
    )
    last = [s for s in engine.flush() if s.window_end == _iso(T0_MS + MINUTE)]
    assert sorted((s.service, s.window) for s in last) == [
        ("cart", "1d"),
        ("cart", "3d"),
        ("cart", "5m"),
        ("checkout", "1d"),
        ("checkout", "5m"),
    ]


def test_a_metrics_only_service_gets_every_sli() -> None:
    config, slos = SliConfig(), resolver()
    # 6 requests <= 100 ms, 4 in (100, 500] ms, 2 errors above 500 ms; threshold 300 ms.
    metric = checkout_request_durations(error_status=500)
    engine = SliEngine(config, slos, {})
    engine.add(partials_of(config, slos, (Signal.METRICS, metric)))
    s = pick(engine.flush(), "5m", T0_MS + MINUTE)
    assert (s.requests, s.errors) == (12, 2)
    assert s.availability == pytest.approx(10 / 12, abs=1e-6)
    assert s.latency_good_ratio == pytest.approx(8 / 12, abs=1e-6)  # half of (100, 500] assumed under 300
    assert s.latency_ms.p50 == pytest.approx(50.0, rel=0.01)  # midpoint of the first bucket (rank 5.5)
    assert s.latency_ms.p99 == pytest.approx(500.0, rel=0.01)  # the overflow bucket's lower bound
    assert s.burn_rate["5m"] == pytest.approx((2 / 12) / 0.001, rel=1e-6)
    assert (s.completeness.traces, s.completeness.metrics, s.completeness.logs) == (False, True, False)
    # Metrics 20 + resource attributes 20 * 2/6 (service.name, service.instance.id) of 100.
    assert s.completeness.score == pytest.approx(20 + 20 * 2 / 6, abs=0.01)


def test_no_channel_assigned_moves_nothing_whatever_old_reports_say() -> None:
    """Mid-rebalance the worker reads no `sli-partials` partition and declares no source. Reports of a
    worker that ran before (every source caught up, on empty topics) must not move the watermark past
    a backlog, nor let wall time in."""
    config, slos = SliConfig(idle_after="30s"), resolver()
    engine = SliEngine(config, slos, {})
    offsets: Counter[str] = Counter()
    channel = "sli-partials[0]"
    engine.set_sources({"otlp_spans[0]": False}, wall_ms=0, channels=[channel])
    message = (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS + 30 * MINUTE_NS}]))
    engine.add(tagged(config, slos, offsets, "otlp_spans[0]", message), wall_ms=0, channel=channel)
    engine.add_progress([SourceProgress("otlp_spans[0]", None, True)], wall_ms=0, channel=channel)
    engine.set_sources({}, wall_ms=60_000, channels=[])
    assert engine.advance() == []
    assert not engine.sources_caught_up()
