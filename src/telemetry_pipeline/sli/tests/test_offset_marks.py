"""Which offsets a mark includes: every offset applied once, whatever order they come in."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from telemetry_pipeline.sli.offset_marks import WINDOW, includes, with_offset


def _feed(offsets: list[int]) -> tuple[list | None, list[int]]:
    """The mark after `offsets` in that order (through a JSON round trip each time, as the store keeps
    it), and the offsets applied: those not included yet when they came."""
    mark, applied = None, []
    for offset in offsets:
        if not includes(mark, offset):
            applied.append(offset)
            mark = orjson.loads(orjson.dumps(with_offset(mark, offset, offset * 1000)))
    return mark, applied


def test_a_gap_filled_after_the_offsets_past_it_counts_once() -> None:
    # As Faust handed them after a seek back (seen on the broker): 122-129, then 114-129.
    order = [*range(122, 130), *range(114, 130)]
    mark, applied = _feed(order)
    assert applied == [*range(122, 130), *range(114, 122)]
    assert mark[:2] == [129, 129_000]
    assert all(includes(mark, offset) for offset in range(114, 130))
    assert not includes(mark, 113)  # before the first offset seen: never applied


def test_offsets_of_other_services_stay_holes_until_they_come() -> None:
    mark, applied = _feed([10, 13, 11])  # 12 carried no partial of this service
    assert applied == [10, 13, 11]
    assert not includes(mark, 12)
    assert includes(mark, 13) and includes(mark, 11) and includes(mark, 10)
    assert not includes(mark, 9)  # before the first: never applied, may still come


def test_far_below_the_window_counts_as_applied() -> None:
    mark, _ = _feed([5, 5 + WINDOW + 10])
    assert includes(mark, 5)
    assert includes(mark, 9)  # more than WINDOW back: taken as redelivered
    assert not includes(mark, 5 + WINDOW)  # within the window and never applied


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=200))
def test_any_order_applies_each_offset_exactly_once(offsets: list[int]) -> None:
    mark, applied = _feed(offsets)
    assert sorted(applied) == sorted(set(offsets))
    assert all(includes(mark, offset) for offset in offsets)
    if offsets:
        assert mark[0] == max(offsets) and mark[1] == max(offsets) * 1000
