"""worker.malloc_arenas caps glibc's malloc arenas at start-up, unless the operator set MALLOC_ARENA_MAX."""

from __future__ import annotations

import platform

import pytest

from telemetry_pipeline.app.startup import limit_malloc_arenas
from telemetry_pipeline.config import PipelineConfig

GLIBC = platform.libc_ver()[0] == "glibc"


def test_the_cap_applies_on_glibc_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(PipelineConfig().worker.malloc_arenas) is GLIBC


def test_the_environment_variable_wins_and_null_leaves_glibc_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas(None) is False


def test_a_cap_below_one_fails_at_start_up_naming_the_field() -> None:
    with pytest.raises(ValueError, match="malloc_arenas"):
        PipelineConfig.model_validate({"worker": {"malloc_arenas": 0}})
