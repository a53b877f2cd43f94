"""The SLI agent's records are acknowledged only once a written SLI state holds their partials."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from telemetry_pipeline.analysis import AnalysisStep
from telemetry_pipeline.app.worker import _Shell


def test_records_taken_while_the_snapshots_are_sent_wait_for_a_written_state() -> None:
    """`advance_sli` acknowledges the SLI agent's records once a written state holds their partials.
    Records the agent takes while the step's snapshots are being sent are in none yet."""
    released: list[str] = []

    async def release(_stream: object, event: str) -> None:
        released.append(event)

    shell = SimpleNamespace(sli_unacked=[(None, "before")], _advancing=asyncio.Lock())
    step = AnalysisStep([], persisted=True)  # nothing unwritten as of the step
    shell.analysis = lambda: SimpleNamespace(advance=lambda *_a, **_k: step)
    shell.snapshot_records = shell.incident_records = lambda _items: []
    shell.commit_guard = SimpleNamespace(release=release)

    async def send(_records: list) -> None:
        shell.sli_unacked.append((None, "during"))  # the SLI agent took a record meanwhile

    asyncio.run(_Shell.advance_sli(shell, SimpleNamespace(send=send), now_ms=0))
    assert released == ["before"]
    assert shell.sli_unacked == [(None, "during")]
