"""The SLI state changelog format is versioned: old values load, unknown versions fail clearly."""

from __future__ import annotations

import pytest

from telemetry_pipeline.sli.state import STATE_VERSION, ServiceState, StateFormatError, StateStore


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
    """Faust's memory table keeps the value object and serializes it only when the changelog record
    is sent: changes the engine makes after saving must not reach it (nor a loaded state's changes the
    value it was loaded from)."""
    store: dict[str, dict] = {}
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
