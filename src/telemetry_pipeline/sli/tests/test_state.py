"""The SLI state changelog format is versioned: old values load, unknown versions fail clearly. Its
store (JsonValues) keeps snapshots: the engine's live state never leaks into a written value."""

from __future__ import annotations

import json

import pytest

from telemetry_pipeline.sli.state import STATE_VERSION, JsonValues, ServiceState, StateFormatError, StateStore


def _state() -> ServiceState:
    marks = {"otlp_spans[0]": [7, 120_000, "6"]}  # offsets 5 and 6 not applied
    return ServiceState("checkout", 120_000, 60_000, 2, 60_000, marks, [[], []])


def _older(store: dict[str, dict], version: int | None) -> None:
    """The stored value as `version` wrote it: marks without holes ([offset, max_time_ms])."""
    value = store["checkout"]
    value["sources"] = {source: mark[:2] for source, mark in value["sources"].items()}
    if version is None:
        del value["version"]
    else:
        value["version"] = version


def test_saved_state_carries_its_version_and_loads_back_equal() -> None:
    store: dict[str, dict] = {}
    StateStore(store).save(_state())
    assert store["checkout"]["version"] == STATE_VERSION
    assert StateStore(store).load() == {"checkout": _state()}


@pytest.mark.parametrize("version", [None, 1])
def test_a_version_1_value_loads_without_cumulative_series(version: int | None) -> None:
    """Version 1 (also a value written before versions) had no `series`: deltas came from ingest."""
    store: dict[str, dict] = {}
    StateStore(store).save(_state())
    del store["checkout"]["series"]
    _older(store, version)
    loaded = StateStore(store).load()["checkout"]
    assert loaded.series == {}
    assert loaded.sources == {"otlp_spans[0]": [7, 120_000, ""]}


def test_a_version_2_mark_loads_with_every_offset_up_to_it_applied() -> None:
    """Versions 1 and 2 kept the highest offset only, and skipped everything up to it: so does the
    migrated mark (no holes)."""
    store: dict[str, dict] = {}
    StateStore(store).save(_state())
    _older(store, 2)
    loaded = StateStore(store).load()["checkout"]
    assert loaded.sources == {"otlp_spans[0]": [7, 120_000, ""]}
    assert loaded.tiers == _state().tiers


def test_cumulative_series_points_round_trip() -> None:
    store: dict[str, dict] = {}
    state = _state()
    state.series["ab12"] = {"cut": 0, "points": [[60_000_000_000, 0, 5, [4, 1], 0, ["x", [100.0]], 1.0, 0]]}
    StateStore(store).save(state)
    assert StateStore(store).load() == {"checkout": state}


@pytest.mark.parametrize(
    ("version", "shown"), [(STATE_VERSION + 1, str(STATE_VERSION + 1)), ("x9", "that is not a number")]
)
def test_an_unknown_version_fails_naming_it_not_the_value(version: object, shown: str) -> None:
    store: dict[str, dict] = {}
    StateStore(store).save(_state())
    store["checkout"]["version"] = version
    with pytest.raises(StateFormatError, match=f"'checkout' has version {shown}") as failure:
        StateStore(store).load()
    assert "otlp_spans" not in str(failure.value)


def test_a_saved_value_stays_as_saved_while_the_state_goes_on() -> None:
    """The engine goes on with the very objects it saved (no copy is made): Faust would serialize a
    kept object only when the changelog record is sent, so the store (JsonValues) keeps the bytes, and a
    loaded state shares nothing with the value it was loaded from."""
    store = JsonValues({})
    state = _state()
    StateStore(store).save(state)
    state.sources["otlp_spans[0]"][0] = 9
    state.tiers[0].append([60_000, 1])
    assert store["checkout"]["sources"] == {"otlp_spans[0]": [7, 120_000, "6"]}
    assert store["checkout"]["tiers"] == [[], []]
    loaded = StateStore(store).load()["checkout"]
    loaded.sources["otlp_spans[0]"][0] = 11
    loaded.tiers[1].append([0, 1])
    assert StateStore(store).load() == {"checkout": _state()}


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

