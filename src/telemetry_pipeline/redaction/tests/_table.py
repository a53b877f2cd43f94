"""The per-family and per-type tables the recall tests print: one layout for all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Tally:
    """Positives found and negatives touched, per family or entity type."""

    positives: int = 0
    hits: int = 0
    negatives: int = 0
    false_positives: int = 0

    def add(self, other: Tally) -> None:
        self.positives += other.positives
        self.hits += other.hits
        self.negatives += other.negatives
        self.false_positives += other.false_positives

    def row(self, name: str) -> list[object]:
        """name, positives, recall, negatives, false positives, false-positive rate."""
        return [name, self.positives, rate(self.hits, self.positives), self.negatives, self.false_positives,
                rate(self.false_positives, self.negatives)]


TALLY_COLUMNS = (("positives", 9), ("recall", 7), ("negatives", 9), ("fp", 4), ("fp rate", 7))


def format_table(columns: Sequence[tuple[str, int]], rows: Sequence[Sequence[object]]) -> str:
    """`columns`: (heading, width) each; the first column is left-aligned, the rest right-aligned;
    floats are printed with three decimals (nan where a rate has no denominator)."""
    def cell(value: object, width: int, first: bool) -> str:
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        return f"{text:<{width}}" if first else f"{text:>{width}}"

    lines = [" ".join(cell(heading, width, index == 0) for index, (heading, width) in enumerate(columns))]
    lines += [
        " ".join(
            cell(value, width, index == 0)
            for index, (value, (_, width)) in enumerate(zip(row, columns, strict=True))
        )
        for row in rows
    ]
    return "\n".join(lines)


def rate(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")
