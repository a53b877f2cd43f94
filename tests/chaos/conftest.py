"""The chaos suite's results table (issue 16), printed at the end of the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class ChaosTable:
    rows: list[dict[str, str]] = field(default_factory=list)

    def add(
        self,
        fault: str,
        expected: Counter[tuple],
        out: Counter[tuple],
        recovery: str = "-",
        log_lines: str = "-",
        peak_rss: str = "-",
    ) -> None:
        """One row: items in; missing (copies of an id expected but not seen out); duplicates (copies
        seen beyond those expected). Fails the test when anything is missing, after adding the row."""
        missing = sum(max(0, count - out[item]) for item, count in expected.items())
        duplicates = sum(max(0, count - expected[item]) for item, count in out.items() if item in expected)
        self.rows.append(
            {
                "fault": fault,
                "items in": f"{len(expected):,}",
                "missing": str(missing),
                "duplicates": f"{duplicates:,}",
                "recovery": recovery,
                "log lines": log_lines,
                "peak RSS": peak_rss,
            }
        )
        assert missing == 0, f"{fault}: {missing} items missing"

    def render(self) -> list[str]:
        if not self.rows:
            return []
        columns = list(self.rows[0])
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in self.rows]
        return lines


_TABLE = ChaosTable()


@pytest.fixture
def chaos_table() -> Iterator[ChaosTable]:
    yield _TABLE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = _TABLE.render()
    if lines:
        terminalreporter.section("chaos suite (issue 16)")
        for line in lines:
            terminalreporter.write_line(line)
