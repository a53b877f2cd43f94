import math
import random

import pytest

from telemetry_pipeline.sli.sketch import (
    LatencyMapping,
    collapse_dense,
    dense_from_counts,
    hll_estimate,
    hll_max,
    hll_merge,
    hll_of,
    hll_packed,
    merge_dense,
    quantile_ms,
)


def sketch_of(values: list[float], mapping: LatencyMapping) -> list[int]:
    counts: dict[int, int] = {}
    for value in values:
        index = mapping.index(value)
        counts[index] = counts.get(index, 0) + 1
    return dense_from_counts(counts)


def exact(values: list[float], q: float) -> float:
    # The DDSketch rank rule: the value of 0-based rank floor(q * (n - 1)).
    return sorted(values)[math.floor(q * (len(values) - 1))]


@pytest.mark.parametrize("accuracy", [0.01, 0.02])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 0.999])
def test_quantiles_are_within_the_relative_accuracy(accuracy: float, q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.2) for _ in range(20_000)]  # ms, a long-tailed latency shape
    mapping = LatencyMapping(accuracy)
    estimate = quantile_ms(0, sketch_of(values, mapping), q, mapping, 0)
    assert estimate == pytest.approx(exact(values, q), rel=accuracy)


def test_collapsed_sketch_keeps_its_stated_accuracy() -> None:
    rng = random.Random(11)
    values = [rng.uniform(0.5, 5000) for _ in range(5_000)]
    mapping = LatencyMapping(0.01)
    for level in (1, 2, 3):
        collapsed = collapse_dense(sketch_of(values, mapping), level)
        for q in (0.5, 0.95, 0.99):
            estimate = quantile_ms(0, collapsed, q, mapping, level)
            assert estimate == pytest.approx(exact(values, q), rel=mapping.accuracy_at(level))
    assert 0.019 < mapping.accuracy_at(1) < 0.021


def test_collapse_is_the_bin_of_the_coarser_mapping() -> None:
    fine, coarse = LatencyMapping(0.01), LatencyMapping(0.01)
    coarse.multiplier /= 2  # log base gamma^2
    values = [0.7, 1.0, 3.3, 250.0, 251.0, 9_999.0]
    assert collapse_dense(sketch_of(values, fine), 1) == sketch_of(values, coarse)


def test_merge_equals_the_sketch_of_the_union() -> None:
    mapping = LatencyMapping(0.01)
    a, b = [1.0, 2.0, 50.0], [0.3, 2.0, 900.0, 901.0]
    assert merge_dense(sketch_of(a, mapping), sketch_of(b, mapping)) == sketch_of(a + b, mapping)
    assert merge_dense(sketch_of(b, mapping), sketch_of(a, mapping)) == sketch_of(a + b, mapping)
    assert merge_dense([], sketch_of(a, mapping)) == sketch_of(a, mapping)


def test_zero_latencies_answer_zero_and_empty_answers_none() -> None:
    mapping = LatencyMapping(0.01)
    assert quantile_ms(3, sketch_of([10.0], mapping), 0.5, mapping, 0) == 0.0
    assert quantile_ms(3, sketch_of([10.0], mapping), 1.0, mapping, 0) == pytest.approx(10.0, rel=0.01)
    assert quantile_ms(0, [], 0.5, mapping, 0) is None


@pytest.mark.parametrize("n", [5, 100, 1_000, 20_000])
def test_hyperloglog_estimate_is_within_three_standard_errors(n: int) -> None:
    estimate = hll_estimate(hll_packed(hll_of(f"span-{i}" for i in range(n))))
    assert abs(estimate - n) <= max(1, 3 * 0.092 * n)


def test_hyperloglog_merge_equals_the_sketch_of_the_union() -> None:
    a = hll_of(f"k{i}" for i in range(0, 600))
    b = hll_of(f"k{i}" for i in range(400, 1000))
    assert hll_merge(a, b) == hll_of(f"k{i}" for i in range(1000))
    assert hll_merge(None, b) == b
    assert hll_estimate(hll_packed(None)) == 0
    assert len(a) == 2 * 128


def test_packed_register_max_equals_the_per_register_max() -> None:
    rng = random.Random(5)
    for _ in range(200):
        a = bytes(rng.choice([0, 1, 2, 63, rng.randrange(64)]) for _ in range(128))
        b = bytes(rng.choice([0, 1, 2, 63, rng.randrange(64)]) for _ in range(128))
        merged = hll_max(int(a.hex(), 16), int(b.hex(), 16)).to_bytes(128, "big")
        assert merged == bytes(map(max, a, b))
