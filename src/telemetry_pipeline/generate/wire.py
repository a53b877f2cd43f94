"""Just enough of the protobuf wire format to assemble OTLP messages from pre-encoded pieces.

Building spans field by field through the protobuf API costs a Python-to-C call per field and per
attribute; concatenating bytes encoded once per template, plus the few fields that vary per span,
is several times faster. Pieces are emitted in field-number order, so the result equals what
`SerializeToString` writes for the parsed message.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

AttributeValue = str | bool | int | float | Sequence[str]

_pack_fixed64 = struct.Struct("<Q").pack


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = tuple(varint(n) for n in range(1 << 14))


def length_delimited(field_number: int, payload: bytes) -> bytes:
    size = len(payload)
    return (
        _SMALL_VARINTS[field_number << 3 | 2]
        + (_SMALL_VARINTS[size] if size < 1 << 14 else varint(size))
        + payload
    )


def fixed64(field_number: int, value: int) -> bytes:
    return _SMALL_VARINTS[field_number << 3 | 1] + _pack_fixed64(value)


def varint_field(field_number: int, value: int) -> bytes:
    return _SMALL_VARINTS[field_number << 3] + varint(value)


def string_field(field_number: int, value: str) -> bytes:
    return length_delimited(field_number, value.encode())


def any_value(value: AttributeValue) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    result = AnyValue()
    result.array_value.values.extend(AnyValue(string_value=item) for item in value)
    return result


def key_value(key: str, value: AttributeValue) -> bytes:
    """A serialized KeyValue (not yet wrapped in the container's field)."""
    return KeyValue(key=key, value=any_value(value)).SerializeToString()


def string_key_value(key_prefix: bytes, value: str) -> bytes:
    """A serialized string KeyValue with the key part (`key_field(key)`) encoded once by the caller."""
    encoded = value.encode()
    return key_prefix + length_delimited(2, length_delimited(1, encoded))


def key_field(key: str) -> bytes:
    return string_field(1, key)


def attributes(field_number: int, items: Iterable[tuple[str, AttributeValue]]) -> bytes:
    """Repeated KeyValue entries of a container's attribute field."""
    return b"".join(length_delimited(field_number, key_value(k, v)) for k, v in items)
