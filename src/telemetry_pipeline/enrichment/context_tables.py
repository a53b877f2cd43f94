"""The user-context and service-catalog tables: loaded from files (replay) or fed from topics (worker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import orjson

Pseudonymize = Callable[[str], str]


class ContextFileError(ValueError):
    """A context file that is not one `{"key": ..., "value": {...}}` per line: names file and line."""


def load_context_file(path: Path) -> dict[str, dict]:
    """Read a context file: one ``{"key": ..., "value": {...}}`` per line, like a compacted topic.

    Later lines win; a ``null`` value deletes the key (a tombstone). Blank lines are skipped.
    """
    table: dict[str, dict] = {}
    with Path(path).open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
                key, value = entry["key"], entry.get("value")
            except (orjson.JSONDecodeError, KeyError, TypeError):
                expected = '{"key": ..., "value": {...}}'
                raise ContextFileError(f"{path}:{number}: expected {expected}") from None
            if not isinstance(key, str) or not (value is None or isinstance(value, dict)):
                problem = "the key must be a string and the value an object or null"
                raise ContextFileError(f"{path}:{number}: {problem}")
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
    return table


class UserDirectory:
    """User profiles by raw user id (the user-context topic's key), indexed by pseudonym as well.

    The trace-context store only ever holds pseudonyms, so lookups through a trace go by pseudonym;
    each key is hashed once, when it is loaded (or when the pseudonymiser is bound, for profiles
    loaded before). Profiles are kept as given; the enricher picks its configured fields.
    """

    def __init__(self, pseudonymize: Pseudonymize | None = None) -> None:
        self._by_user: dict[str, dict] = {}
        self._by_pseudonym: dict[str, dict] = {}
        self._pseudonymize = pseudonymize

    def bind(self, pseudonymize: Pseudonymize) -> None:
        """Use this pseudonymiser (the redactor's) for the index; re-indexes what is loaded."""
        if pseudonymize is self._pseudonymize:
            return
        self._pseudonymize = pseudonymize
        self._by_pseudonym = {pseudonymize(user): profile for user, profile in self._by_user.items()}

    def update(self, user_id: str, profile: Mapping | None) -> None:
        """Apply one user-context record; ``None`` (a tombstone) removes the user."""
        token = self._pseudonymize(user_id) if self._pseudonymize is not None else None
        if profile is None:
            self._by_user.pop(user_id, None)
            if token is not None:
                self._by_pseudonym.pop(token, None)
            return
        profile = dict(profile)
        self._by_user[user_id] = profile
        if token is not None:
            self._by_pseudonym[token] = profile

    def load(self, table: Mapping[str, Mapping]) -> None:
        for user_id, profile in table.items():
            self.update(user_id, profile)

    def get(self, user_id: str) -> dict | None:
        return self._by_user.get(user_id)

    def by_pseudonym(self, pseudonym: str) -> dict | None:
        return self._by_pseudonym.get(pseudonym)

    def __len__(self) -> int:
        return len(self._by_user)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_user)
