"""JsonValues: a table of JSON bytes seen as a mapping of values."""

from __future__ import annotations

import json

import pytest

from telemetry_pipeline.app.tables import JsonValues


def test_a_write_is_a_snapshot_and_a_read_a_fresh_copy() -> None:
    table: dict[str, bytes] = {}
    values = JsonValues(table)
    state = {"tiers": [[[60_000, 3]]], "sources": {"otlp_spans[0]": [7, 120_000, ""]}}
    values["checkout"] = state
    state["tiers"][0].append([120_000, 1])  # changed after the write, before Faust would send it
    assert isinstance(table["checkout"], bytes)
    read = values["checkout"]
    assert read == {"tiers": [[[60_000, 3]]], "sources": {"otlp_spans[0]": [7, 120_000, ""]}}
    read["tiers"].clear()
    assert values["checkout"]["tiers"] == [[[60_000, 3]]]


def test_the_bytes_are_the_json_faust_wrote_before_and_read_its_records() -> None:
    """Records written with Faust's json serializer (the changelog before this layout) load, and
    the bytes written now are JSON any reader of the changelog decodes the same."""
    value = {"version": 3, "late_dropped": 2, "detection": None, "series": {}}
    table = {"checkout": json.dumps(value).encode()}
    values = JsonValues(table)
    assert values["checkout"] == value
    values["cart"] = value
    assert json.loads(table["cart"]) == value


def test_membership_and_deletion_go_to_the_table() -> None:
    table = {"checkout": b"not json"}  # never decoded by these
    values = JsonValues(table)
    assert "checkout" in values and "cart" not in values
    assert list(values) == ["checkout"] and len(values) == 1
    del values["checkout"]
    assert table == {}
    assert values.get("checkout") is None
    with pytest.raises(KeyError):
        values["checkout"]
