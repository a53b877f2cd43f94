"""Replay input files: OTLP/JSON Lines, plain or gzip, opened with one clear error per mistake.

Gzip is recognised by its magic bytes, not by the name: a gzip file named `.jsonl` is read as gzip,
and a plain file named `.gz` is refused rather than read as junk. Every error is an `InputFileError`
naming the file, worded for the person who gave it; reading errors (a truncated or corrupt gzip
stream) surface the same way while the lines are iterated.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
# Compressions a user may have used instead of gzip: named, so the error says what to do.
OTHER_COMPRESSIONS = {b"\x28\xb5\x2f\xfd": "zstd", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}


class InputFileError(ValueError):
    """An input file cannot be read as OTLP/JSON Lines; the message names the file and the problem."""


class InputFile:
    """An open input file: a context manager; iterating gives its lines (bytes, with their newline)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._raw = path.open("rb")
        except FileNotFoundError:
            raise InputFileError(f"input {path}: no such file") from None
        except IsADirectoryError:
            raise InputFileError(f"input {path} is a folder: name the files in it ({path}/*.jsonl)") from None
        except OSError as exc:
            raise InputFileError(f"input {path}: cannot open it ({exc.strerror})") from None
        magic = self._raw.peek(6)[:6]  # peek does not consume: a plain file is read from its start
        self._lines: IO[bytes] = self._raw
        if magic.startswith(GZIP_MAGIC):
            self._lines = gzip.GzipFile(fileobj=self._raw, mode="rb")
            return
        other = next((name for prefix, name in OTHER_COMPRESSIONS.items() if magic.startswith(prefix)), None)
        problem = (
            f"is {other}-compressed; only gzip is read directly: decompress it" if other
            else "is named .gz but is not gzip data" if path.suffix == ".gz"
            else None
        )
        if problem:
            self._raw.close()
            raise InputFileError(f"input {path} {problem}")

    def __enter__(self) -> InputFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._lines.close()
        self._raw.close()  # a GzipFile leaves the file it reads open

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._lines
        except EOFError:
            raise InputFileError(
                f"input {self.path}: the gzip data is truncated (it ends before its end marker)"
            ) from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise InputFileError(f"input {self.path}: corrupt gzip data ({exc})") from None
        except OSError as exc:
            raise InputFileError(f"input {self.path}: cannot read it ({exc.strerror})") from None


def open_input(path: str | Path) -> InputFile:
    """Open a replay input; raises InputFileError naming `path` when it cannot be read."""
    return InputFile(Path(path))
