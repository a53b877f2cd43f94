"""Reading and writing OTLP attribute lists (repeated KeyValue) without per-call allocation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

SERVICE_NAME = "service.name"
UNKNOWN_SERVICE = "unknown_service"


def get_value(attributes: Iterable[KeyValue], key: str) -> AnyValue | None:
    for kv in attributes:
        if kv.key == key:
            return kv.value
    return None


def get_str(attributes: Iterable[KeyValue], key: str) -> str | None:
    """The value of `key` as a string (ints and bools are rendered), or None when absent."""
    value = get_value(attributes, key)
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind in ("int_value", "double_value", "bool_value"):
        return str(getattr(value, kind))
    return None


def set_str(attributes, key: str, value: str) -> None:
    """Set `key` to a string value, replacing an existing entry of that key."""
    for kv in attributes:
        if kv.key == key:
            kv.value.Clear()
            kv.value.string_value = value
            return
    attributes.add(key=key).value.string_value = value


def set_strs(attributes, values: Mapping[str, str]) -> None:
    """Set several string attributes with one pass over the existing list."""
    pending = dict(values)
    for kv in attributes:
        if kv.key in pending:
            kv.value.Clear()
            kv.value.string_value = pending.pop(kv.key)
    for key, value in pending.items():
        attributes.add(key=key).value.string_value = value


def service_name(resource: Resource) -> str:
    return get_str(resource.attributes, SERVICE_NAME) or UNKNOWN_SERVICE
