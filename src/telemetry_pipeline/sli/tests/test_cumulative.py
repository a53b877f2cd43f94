"""Cumulative histogram series: exact per-minute deltas in the engine, whatever order the points come in."""

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.sli import SliConfig, SliEngine, SloConfig, SloDefaults, SloResolver
from telemetry_pipeline.sli.cumulative import TIME, accepts, bound, insert, new_series, prune
from telemetry_pipeline.sli.tests.builders import MINUTE_NS, MS, T0_NS, histogram
from telemetry_pipeline.sli.tests.test_engine import partials_of, pick
from telemetry_pipeline.sli.windows import ERRORS, GOOD, METRIC_REQ, REQUESTS, SKETCH, START, ZEROS

T0_MS = T0_NS // MS
SLOS = SloResolver([SloConfig(service="checkout", latency={"threshold_ms": 150.0})], SloDefaults())

# A point: (instance, minute, counts per bucket, start minute); bounds 100 ms and 200 ms.
Point = tuple[str, int, list[int], int]


def message(point: Point) -> tuple[Signal, object]:
    instance, minute, counts, start = point
    attrs = {"http.response.status_code": 503} if instance == "i-err" else {}
    spec = {
        "time_ns": T0_NS + minute * MINUTE_NS,
        "bounds": [100.0, 200.0],
        "counts": counts,
        "start_ns": T0_NS + start * MINUTE_NS,
        "attrs": attrs,
    }
    return Signal.METRICS, histogram(
        "checkout", "http.server.duration", [spec], unit="ms", cumulative=True, instance=instance
    )


def minutes(points: list[Point]) -> dict[int, tuple]:
    """Per minute, the metric request record's counts (sketch bins without zeros), each point added to
    the engine as its own message in the order given; the lateness lets every point in."""
    config = SliConfig(allowed_lateness="30m")
    store: dict[str, dict] = {}
    engine = SliEngine(config, SLOS, store)
    for point in points:
        engine.add(partials_of(config, SLOS, message(point)))
    engine.persist()
    assert engine.stats()["late_dropped"] == 0
    result = {}
    for bucket in store["checkout"]["tiers"][0]:
        requests = bucket[METRIC_REQ]
        if requests is None or (not any(requests[:SKETCH]) and not any(requests[SKETCH][1:])):
            continue  # a minute whose deltas cancelled out is a minute without metric requests
        dense = requests[SKETCH]
        bins = {index: count for index, count in enumerate(dense[1:], dense[0]) if count} if dense else {}
        minute = (bucket[START] - T0_MS) // 60_000
        result[minute] = (requests[REQUESTS], requests[ERRORS], requests[GOOD], requests[ZEROS], bins)
    return result


def test_deltas_per_series_with_baselines_and_resets() -> None:
    got = minutes(
        [
            ("i-1", 0, [5, 1, 0], -1),  # first sight of the series: a baseline only
            ("i-2", 0, [50, 50, 0], -1),  # another instance is another series: a baseline too
            ("i-1", 1, [8, 1, 0], -1),
            ("i-1", 2, [8, 2, 1], -1),
            ("i-1", 3, [2, 0, 0], 3),  # restarted process: counts since the new start
        ]
    )
    assert sorted(got) == [1, 2, 3]
    assert [got[m][REQUESTS] for m in (1, 2, 3)] == [3, 2, 2]
    # Good (threshold 150 ms): the 0-100 ms bucket, half of the 100-200 ms one, none above.
    assert [got[m][GOOD] for m in (1, 2, 3)] == [3, 0, 2]


def test_an_older_point_arriving_late_goes_to_its_own_minute() -> None:
    in_order = [("i-1", minute, [100 * (minute + 1), 0, 0], -1) for minute in range(5)]
    shuffled = [in_order[i] for i in (0, 2, 1, 4, 3)]  # minute 1's point after minute 2's
    assert minutes(shuffled) == minutes(in_order)
    assert [counts[REQUESTS] for counts in minutes(shuffled).values()] == [100] * 4


def test_a_point_sent_twice_counts_once() -> None:
    config = SliConfig()
    engine = SliEngine(config, SLOS, {})
    for point in [("i-1", 0, [1, 0, 0], -1), ("i-1", 1, [3, 0, 0], -1), ("i-1", 1, [3, 0, 0], -1)]:
        engine.add(partials_of(config, SLOS, message(point)))
    assert engine.stats()["metric_points_repeated"] == 1


def test_a_point_in_an_evaluated_minute_is_late_and_its_interval_stays_with_the_next_point() -> None:
    config = SliConfig()
    store: dict[str, dict] = {}
    engine = SliEngine(config, SLOS, store)
    for point in [("i-1", 0, [1, 0, 0], -1), ("i-1", 10, [21, 0, 0], -1)]:
        engine.add(partials_of(config, SLOS, message(point)))
    engine.flush()  # evaluates minute 0 to 10
    engine.add(partials_of(config, SLOS, message(("i-1", 5, [11, 0, 0], -1))))
    engine.persist()
    assert engine.stats()["late_dropped"] >= 1
    counted = [b[METRIC_REQ][REQUESTS] for b in store["checkout"]["tiers"][0] if b[METRIC_REQ]]
    assert counted == [20]  # minute 10 keeps the whole interval: nothing lost, nothing twice


series_points = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 5), st.booleans()),
    min_size=1,
    max_size=12,
)


def build(instance: str, increments: list[tuple[int, int, int, bool]]) -> list[Point]:
    """A series' points in time order: each minute adds the increments to the counts, or resets them."""
    points, counts, start = [], [0, 0, 0], -1
    for minute, (fast, middle, slow, reset) in enumerate(increments):
        if reset and minute:
            counts, start = [0, 0, 0], minute
        counts = [counts[0] + fast, counts[1] + middle, counts[2] + slow]
        points.append((instance, minute, counts, start))
    return points


@settings(max_examples=60, deadline=None)
@given(
    first=series_points,
    second=series_points,
    order=st.randoms(use_true_random=False),
)
def test_any_arrival_order_gives_the_buckets_of_time_order(first, second, order) -> None:
    in_order = sorted(build("i-1", first) + build("i-err", second), key=lambda p: (p[1], p[0]))
    shuffled = list(in_order)
    order.shuffle(shuffled)
    assert minutes(shuffled) == minutes(in_order)


def test_prune_keeps_what_an_insertion_can_still_need() -> None:
    def point(minute: int) -> list:
        return [T0_NS + minute * MINUTE_NS, 0, minute, [minute], 0, ["x", []], 1.0, 0]

    series = {
        key: {"cut": 0, "points": [point(m) for m in minutes]}
        for key, minutes in {"a": range(10), "b": [0], "c": [3, 4]}.items()
    }
    prune(series, before_ns=T0_NS + 5 * MINUTE_NS, forget_before_ns=T0_NS + MINUTE_NS, limit=2)
    # "b" is older than the horizon; of "a", minute 4 stays as minute 5's predecessor.
    assert {key: [(p[TIME] - T0_NS) // MINUTE_NS for p in s["points"]] for key, s in series.items()} == {
        "a": [4, 5, 6, 7, 8, 9],
        "c": [4],
    }
    assert series["a"]["cut"] == series["c"]["cut"] == T0_NS + 4 * MINUTE_NS  # nothing goes before them
    prune(series, before_ns=T0_NS, forget_before_ns=0, limit=1)
    assert list(series) == ["a"]  # beyond the limit, the series heard of longest ago go


def test_a_service_keeps_its_newest_points_within_its_budget_and_one_older_than_those_is_late() -> None:
    budget = 32
    newest = budget + 5
    config = SliConfig(allowed_lateness="50m", metric_points_per_service=budget)
    store: dict[str, dict] = {}
    engine = SliEngine(config, SLOS, store)
    for minute in range(newest, 2, -1):  # newest first, 10 requests a minute
        engine.add(partials_of(config, SLOS, message(("i-1", minute, [10 * minute, 0, 0], -1))))
    engine.persist()
    buckets = [b for b in store["checkout"]["tiers"][0] if b[METRIC_REQ] and b[METRIC_REQ][REQUESTS]]
    counted = {(b[START] - T0_MS) // 60_000: b[METRIC_REQ][REQUESTS] for b in buckets}
    # Minute 5's point came when the budget was spent: it placed minute 6's delta and went, so minutes 4
    # and 3 came after the cut: late, their intervals still in minute 6, nothing counted twice.
    assert counted == {minute: 10 for minute in range(6, newest + 1)}
    assert engine.stats()["late_dropped"] == 2
    [series] = store["checkout"]["series"].values()
    assert len(series["points"]) == budget


def test_a_series_read_an_hour_ahead_keeps_every_point_under_the_default_budget() -> None:
    config = SliConfig(allowed_lateness="50m")
    engine = SliEngine(config, SLOS, {})
    engine.set_sources({"metrics/0": False, "metrics/1": False})
    # One partition's points two hours ahead of the other's, as a backlog can read them.
    for source, minutes in (("metrics/0", range(2, 242, 2)), ("metrics/1", range(1, 241, 2))):
        for minute in minutes:
            partials = partials_of(config, SLOS, message(("i-1", minute, [10 * minute, 0, 0], -1)))
            engine.add([dataclasses.replace(partial, source=source) for partial in partials])
    assert engine.stats()["late_dropped"] == 0
    snapshots = engine.flush()
    assert pick(snapshots, "1h", T0_MS + 241 * 60_000).requests == 600  # minutes 181-240


def test_the_budget_takes_points_from_the_longest_series_first() -> None:
    def series_of(length: int) -> dict:
        points = [[T0_NS + m * MINUTE_NS, 0, m, [m], 0] for m in range(length)]
        return {"cut": 0, "head": None, "points": points}

    series = {"short": series_of(3), "long": series_of(40), "longer": series_of(50)}
    bound(series, 43)  # 3 stay with the short one, 20 each for the others
    assert {key: len(s["points"]) for key, s in series.items()} == {"short": 3, "long": 20, "longer": 20}
    assert series["longer"]["cut"] == series["longer"]["points"][0][TIME] == T0_NS + 30 * MINUTE_NS
    assert series["short"]["cut"] == 0  # untouched
    bound(series, 2)  # fewer points than series: each keeps its newest
    assert {key: len(s["points"]) for key, s in series.items()} == {"short": 1, "long": 1, "longer": 1}


def test_a_new_layout_starts_the_series_again_and_older_points_of_the_old_one_are_late() -> None:
    def point(seconds: int, total: int, bounds: list[float]) -> list:
        counts = [total] * (len(bounds) + 1)
        return [T0_NS + seconds * 1_000_000_000, 0, total, counts, 0, ["x", bounds], 1.0, 0]

    series = new_series()
    assert insert(series, point(0, 1, [])) == []  # a baseline
    [(owner, sign, delta)] = insert(series, point(60, 3, []))
    assert (owner, sign, delta) == (point(60, 3, []), 1, (2, [2], 0))
    assert accepts(series, point(120, 5, [100.0]))
    assert insert(series, point(120, 5, [100.0])) == []  # new buckets: a baseline again
    assert not accepts(series, point(90, 4, []))  # the old layout's points can no longer be placed
    assert series["points"] == [point(120, 5, [100.0])[:5]]  # the layout is kept once, in the head
