"""Compiled Hyperscan databases are kept per machine: loaded when the file is whole, compiled again
when it is not or cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

import hyperscan
import pytest

from telemetry_pipeline import cache

EXPRESSIONS = [rb"AKIA[A-Z0-9]{16}", rb"[0-9]{3}-[0-9]{2}-[0-9]{4}"]
FLAGS = [0, hyperscan.HS_FLAG_SINGLEMATCH]
TEXT = b"id AKIAABCDEFGHIJKLMNOP and 123-45-6789"


def _matches(database: hyperscan.Database) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    database.scan(TEXT, match_event_handler=lambda i, _s, end, _f, _c: found.append((i, end)))
    return found


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "telemetry-pipeline" / "hyperscan"


def _no_compiling(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("compiled although the cache holds the database")


def test_the_second_process_loads_what_the_first_compiled(
    cached: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled = cache.compile_database(EXPRESSIONS, FLAGS)
    assert [path.suffix for path in cached.iterdir()] == [".db"]
    monkeypatch.setattr(cache.hyperscan, "Database", _no_compiling)
    loaded = cache.compile_database(EXPRESSIONS, FLAGS)
    assert _matches(loaded) == _matches(compiled) == [(0, 23), (1, 39)]


def test_another_compile_is_another_file(cached: Path) -> None:
    cache.compile_database(EXPRESSIONS, FLAGS)
    cache.compile_database(EXPRESSIONS, [0, 0])
    cache.compile_database(EXPRESSIONS[:1], FLAGS[:1], literal=True)
    assert len(list(cached.iterdir())) == 3


def test_a_changed_file_is_compiled_again_and_rewritten(
    cached: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = _matches(cache.compile_database(EXPRESSIONS, FLAGS))
    [path] = cached.iterdir()
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # Hyperscan itself would load this and scan with it
    path.write_bytes(bytes(data))
    assert _matches(cache.compile_database(EXPRESSIONS, FLAGS)) == expected
    monkeypatch.setattr(cache.hyperscan, "Database", _no_compiling)
    assert _matches(cache.compile_database(EXPRESSIONS, FLAGS)) == expected


def test_a_cache_that_cannot_be_written_only_costs_the_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "telemetry-pipeline").write_text("a file where the folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _matches(cache.compile_database(EXPRESSIONS, FLAGS)) == [(0, 23), (1, 39)]
    assert [path.name for path in tmp_path.iterdir()] == ["telemetry-pipeline"]


def test_the_least_recently_used_go_beyond_the_bound(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "MAX_DATABASES", 2)
    cache.compile_database(EXPRESSIONS[:1], [0])
    first = set(cached.iterdir())
    cache.compile_database(EXPRESSIONS[1:], [0])
    for path in cached.iterdir():  # both a while ago; the first used again since
        os.utime(path, (1_000_000, 1_000_000))
    cache.compile_database(EXPRESSIONS[:1], [0])
    cache.compile_database(EXPRESSIONS, FLAGS)
    kept = set(cached.iterdir())
    assert len(kept) == 2 and first <= kept
