"""Replay input files: gzip by magic bytes, one clear error per unreadable file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from telemetry_pipeline.otlp.files import InputFileError, open_input

LINES = [b'{"resourceSpans": []}\n', b'{"resourceLogs": []}\n']


@pytest.mark.parametrize("name", ["plain.jsonl", "gzip.jsonl.gz", "gzip-named-plain.jsonl"])
def test_lines_come_out_the_same_whatever_the_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    data = b"".join(LINES)
    path.write_bytes(gzip.compress(data) if name.startswith("gzip") else data)
    with open_input(path) as lines:
        assert list(lines) == LINES


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (b"\x28\xb5\x2f\xfd\x00\x00", "x.jsonl.zst", "is zstd-compressed"),
        (b"BZh91AY", "x.jsonl.bz2", "is bzip2-compressed"),
        (b"{}\n", "x.gz", "is named .gz but is not gzip data"),
    ],
)
def test_other_data_is_refused_at_open(tmp_path: Path, content: bytes, name: str, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=expected) as info:
        open_input(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:20] + bytes(b ^ 0xFF for b in data[20:40]) + data[40:], "corrupt gzip data"),
    ],
)
def test_damaged_gzip_fails_while_reading_naming_the_file(tmp_path: Path, damage, expected: str) -> None:
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(damage(gzip.compress(b"".join(LINES) * 2000)))
    with open_input(path) as lines, pytest.raises(InputFileError, match=expected) as info:
        list(lines)
    assert str(path) in str(info.value)


def test_missing_path_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        open_input(tmp_path / "missing.jsonl")
    with pytest.raises(InputFileError, match="is a folder"):
        open_input(tmp_path)
