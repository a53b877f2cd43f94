"""Repeated log lines, summarised: the first occurrence in full, then one count per interval.

During a broker outage aiokafka logs its metadata retries without backoff (~2,900 ERROR lines/s),
and librdkafka and Faust repeat harmless warnings hundreds of times per run; that volume hides the
lines that matter and fills disks. Lines are grouped by logger and message with the digits taken
out (addresses, sizes, counts), so one retry loop is one group.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

# Known repeated warnings, explained once when first seen.
MEANINGS = {
    "Coordinator load in progress": "the broker is still loading its group coordinator after a start; "
    "the client retries by itself (harmless at start-up)",
}
_DIGITS = re.compile(r"\d+")


@dataclass
class _Group:
    first_s: float
    suppressed: int = 0


class RepeatSummary(logging.Filter):
    """A handler filter: passes the first record of each group of WARNING and above, suppresses the
    rest, and on the first record after `interval_s` passes that one with a count of those suppressed."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._groups: dict[tuple[str, str], _Group] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's to report; a filter must never raise
            return True
        key = record.name, _DIGITS.sub("#", message[:120])
        now = time.monotonic()
        group = self._groups.get(key)
        if group is None:
            self._groups[key] = _Group(now)
            meaning = next((text for pattern, text in MEANINGS.items() if pattern in message), None)
            if meaning:
                _amend(record, f"{message} [{meaning}; repeats are counted every {self._interval_s:g}s]")
            return True
        if now - group.first_s < self._interval_s:
            group.suppressed += 1
            return False
        if group.suppressed:
            seconds = now - group.first_s
            _amend(record, f"{message} [and {group.suppressed} more like it in the last {seconds:.0f}s]")
        self._groups[key] = _Group(now)
        return True


def _amend(record: logging.LogRecord, message: str) -> None:
    record.msg, record.args = message.replace("%", "%%"), ()


class RateLimitedLog:
    """Our own repeated warning: logged at once, then at most once per interval with a count."""

    def __init__(self, logger: logging.Logger, what: str, interval_s: float = 10.0) -> None:
        self._logger = logger
        self._what = what
        self._interval_s = interval_s
        self._last_s: float | None = None
        self._since = 0

    def record(self, detail: str) -> None:
        now = time.monotonic()
        self._since += 1
        if self._last_s is None or now - self._last_s >= self._interval_s:
            repeats = f" ({self._since} times since the last line)" if self._last_s is not None else ""
            self._logger.warning("%s: %s%s", self._what, detail, repeats)
            self._last_s, self._since = now, 0


def install(interval_s: float = 10.0) -> RepeatSummary:
    """Summarise repeats on every handler of the root logger (call after logging is configured)."""
    summary = RepeatSummary(interval_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(summary)
    return summary
