"""The per-family and per-type tables the recall tests print: one layout for all of them."""

from __future__ import annotations

from collections.abc import Sequence


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
