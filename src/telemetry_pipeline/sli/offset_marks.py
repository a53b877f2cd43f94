"""Which input offsets of a source a service's state already includes, so redelivered input counts once.

Offsets of a source do not always reach the engine in order: around a rebalance or a restart Faust can
hand an agent records fetched after a gap before the gap's records, which come after a seek back
(seen on the broker: offsets 122-129 of a partition, then 114-121, then 122-129 again). A highest-offset
mark alone then skips 114-121 as if applied, and their requests, latencies or cumulative points are
lost (or, for a cumulative series, counted in a later minute). So each mark also keeps the offsets below
it that it has *not* applied, for the last `WINDOW` offsets: a hole is filled once, an offset applied
is skipped again. An offset further than `WINDOW` below the mark is taken as applied (redelivery never
reorders that far: it is bounded by what Faust buffers per partition, a few hundred records).

A mark, as the engine keeps it and the store writes it (JSON): [highest offset applied, newest event
time (ms) from the source, holes], where `holes` is a hex string whose bit i (1 <= i < WINDOW) is set
when offset `highest - i` is not applied ("" for none). A service in every message of the source has
none once it has had `WINDOW` offsets from it (up to then, the offsets before its first are holes).
"""

from __future__ import annotations

WINDOW = 2048
_MASK = (1 << WINDOW) - 1

OFFSET, NEWEST_MS, HOLES = range(3)


def includes(mark: list | None, offset: int) -> bool:
    """Whether the input at `offset` is already applied (redelivered input). Untagged input (offset -1)
    never is."""
    if mark is None or offset < 0 or offset > mark[OFFSET]:
        return False
    back = mark[OFFSET] - offset
    if back >= WINDOW:
        return True
    return not (_holes(mark) >> back) & 1


def with_offset(mark: list | None, offset: int, max_time_ms: int) -> list:
    """The mark once the input at `offset` (not `includes`d) is applied too."""
    if mark is None:
        # The first input of this source for this service: nothing below it is applied yet.
        return [offset, max_time_ms, _hex(_MASK & ~1)] if offset >= 0 else [offset, max_time_ms, ""]
    newest = max(mark[NEWEST_MS], max_time_ms)
    highest, holes = mark[OFFSET], _holes(mark)
    if offset < 0:
        return [highest, newest, mark[HOLES]]
    if offset > highest:
        skipped = offset - highest - 1  # the offsets between become holes
        holes = ((holes << (skipped + 1)) | (((1 << skipped) - 1) << 1)) & _MASK
        return [offset, newest, _hex(holes)]
    return [highest, newest, _hex(holes & ~(1 << (highest - offset)))]


def _holes(mark: list) -> int:
    return int(mark[HOLES], 16) if mark[HOLES] else 0


def _hex(holes: int) -> str:
    return format(holes, "x") if holes else ""
