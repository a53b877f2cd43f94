"""Types of the C extension `_wire.c`: the redaction prefilter's work on protobuf wire bytes."""

from collections.abc import Callable
from typing import Any

class Matches:
    """A Hyperscan match handler that keeps each match's pattern id and end."""

    def __call__(self, pattern: int, start: int, end: int, flags: int, context: object) -> None: ...

def select(
    payload: bytes,
    matches: Matches,
    first_key_id: int,
    max_depth: int,
    attribute_tag: int,
    keys: dict[int, Any],
    scanned: frozenset[int],
    is_rule_key: Callable[[bytes], bool],
) -> tuple[list[int], list[int], list[list[tuple[int, tuple[bool, list[int]] | None]]]]: ...
