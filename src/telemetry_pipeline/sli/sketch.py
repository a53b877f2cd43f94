"""Mergeable sketches kept as plain JSON values: a DDSketch-style latency histogram and a HyperLogLog.

Latency: the DDSketch algorithm (Masson, Rim, Lee, VLDB 2019). A value v > 0 goes to bin
ceil(log_gamma v) with gamma = (1 + a) / (1 - a); answering a quantile with 2 gamma^i / (gamma + 1)
is within relative error a of the true value of that rank, and sketches of the same gamma merge
exactly by adding bin counts. Our own few lines rather than the `ddsketch` package because the
ingest side adds ~25k values per second per core and the per-value cost (one log, one dict
increment) matters, and because the state must be plain JSON for the changelog.
Bins are stored dense: [offset, c0, c1, ...] for bins offset, offset+1, ... "Collapsing" a sketch
by L levels maps bin i to ceil(i / 2^L), which is exactly the bin of the same value under
gamma^(2^L): coarser, older buckets keep fewer bins at a known, larger relative error.
"""

from __future__ import annotations

import functools
import hashlib
import math
import operator
from collections.abc import Iterable, Mapping

MIN_LATENCY_MS = 1e-3  # below one microsecond a latency counts as zero


class LatencyMapping:
    """Value <-> bin index for one relative accuracy."""

    def __init__(self, relative_accuracy: float) -> None:
        self.relative_accuracy = relative_accuracy
        self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self.multiplier = 1 / math.log(self.gamma)

    def index(self, value_ms: float) -> int:
        return math.ceil(math.log(value_ms) * self.multiplier)

    def accuracy_at(self, level: int) -> float:
        """Relative accuracy after `level` collapses."""
        gamma = self.gamma ** (1 << level)
        return (gamma - 1) / (gamma + 1)

    def value(self, index: int, level: int) -> float:
        gamma = self.gamma ** (1 << level)
        return 2 * gamma**index / (gamma + 1)


def dense_from_counts(counts: Mapping[int, int]) -> list[int]:
    """{bin: count} -> [offset, c0, c1, ...] (empty list for no bins)."""
    if not counts:
        return []
    low, high = min(counts), max(counts)
    dense = [low] + [0] * (high - low + 1)
    for index, count in counts.items():
        dense[index - low + 1] += count
    return dense


def merge_dense(into: list[int], other: list[int]) -> list[int]:
    """Add `other`'s bins to `into` (same level); returns the result, reusing `into` when it covers them."""
    if not other:
        return into
    if not into:
        return list(other)
    into_end, other_end = into[0] + len(into) - 1, other[0] + len(other) - 1  # one past the last bin
    low, high = min(into[0], other[0]), max(into_end, other_end)
    if low < into[0] or high > into_end:
        into = [low, *[0] * (into[0] - low), *into[1:], *[0] * (high - into_end)]
    start = other[0] - low + 1
    # Slice arithmetic runs the per-bin loop in C: merging is most of an evaluation step.
    into[start : start + len(other) - 1] = map(operator.add, into[start : start + len(other) - 1], other[1:])
    return into


def collapse_dense(dense: list[int], levels: int) -> list[int]:
    if not dense or levels == 0:
        return list(dense)
    counts: dict[int, int] = {}
    for index, count in enumerate(dense[1:], dense[0]):
        if count:
            coarse = -((-index) >> levels)  # ceil(index / 2^levels), exact for negatives too
            counts[coarse] = counts.get(coarse, 0) + count
    return dense_from_counts(counts)


def quantile_ms(zeros: int, dense: list[int], q: float, mapping: LatencyMapping, level: int) -> float | None:
    """DDSketch's rank rule: the value at rank q * (n - 1) (0-based), None for an empty sketch."""
    total = zeros + sum(dense[1:])
    if total == 0:
        return None
    rank = q * (total - 1)
    seen = zeros
    if seen > rank:
        return 0.0
    for index, count in enumerate(dense[1:], dense[0]):
        seen += count
        if seen > rank:
            return mapping.value(index, level)
    return mapping.value(dense[0] + len(dense) - 2, level)  # pragma: no cover - rank < total always


# HyperLogLog with 2^7 registers (standard error 1.04 / sqrt(128) ~ 9%): enough to see a name or key
# set grow tenfold. Registers are kept as 128 bytes in hex; merging (a per-register max) runs on them
# packed into one integer, 8-bit lanes compared all at once, since windows merge many of them a step.
HLL_PRECISION = 7
HLL_REGISTERS = 1 << HLL_PRECISION
_HLL_REST_BITS = 64 - HLL_PRECISION
_HLL_REST_MASK = (1 << _HLL_REST_BITS) - 1
_HLL_ALPHA = 0.7213 / (1 + 1.079 / HLL_REGISTERS)
_HLL_HEX_DIGITS = 2 * HLL_REGISTERS
_LANE_HIGH_BITS = int("80" * HLL_REGISTERS, 16)  # register values stay below 64, so bit 7 is free


def hll_of(values: Iterable[str]) -> str:
    registers = bytearray(HLL_REGISTERS)
    for value in values:
        register, rank = _hll_slot(value)
        if rank > registers[register]:
            registers[register] = rank
    return registers.hex()


@functools.lru_cache(maxsize=65_536)  # span names and attribute keys repeat from message to message
def _hll_slot(value: str) -> tuple[int, int]:
    # A stable hash: Python's hash() differs per process and would break replay.
    hashed = int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")
    return hashed >> _HLL_REST_BITS, _HLL_REST_BITS - (hashed & _HLL_REST_MASK).bit_length() + 1


def hll_packed(registers: str | None) -> int:
    return int(registers, 16) if registers else 0


def hll_max(a: int, b: int) -> int:
    """Per-register max of two packed sketches (SWAR: lane bit 7 of (a|H) - b is set where a >= b)."""
    a_wins = (((a | _LANE_HIGH_BITS) - b) & _LANE_HIGH_BITS) >> 7
    mask = a_wins * 0xFF
    return (a & mask) | (b & ~mask)


def hll_hex(packed: int) -> str | None:
    return format(packed, f"0{_HLL_HEX_DIGITS}x") if packed else None


def hll_merge(a: str | None, b: str | None) -> str | None:
    if not a or not b:
        return a or b
    return hll_hex(hll_max(int(a, 16), int(b, 16)))


def hll_estimate(packed: int) -> int:
    if not packed:
        return 0
    values = packed.to_bytes(HLL_REGISTERS, "big")
    estimate = _HLL_ALPHA * HLL_REGISTERS**2 / sum(2.0**-v for v in values)
    empty = values.count(0)
    if estimate <= 2.5 * HLL_REGISTERS and empty:
        estimate = HLL_REGISTERS * math.log(HLL_REGISTERS / empty)  # linear counting for small sets
    return round(estimate)
