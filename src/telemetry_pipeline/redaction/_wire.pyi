"""Types of the C extension `_wire.c` (the redaction prefilter's protobuf wire walks)."""

from collections.abc import Callable
from typing import Any

def walk(payload: bytes) -> tuple[list[int], list[int], list[int], list[int]]: ...
def record_parts(
    data: bytes,
    position: int,
    end: int,
    attribute_tag: int,
    keys: dict[int, Any],
    scanned: frozenset[int],
    offsets: list[tuple[int, bool]],
    is_rule_key: Callable[[bytes], bool],
) -> tuple[bool, list[int]]: ...
