"""What the project keeps once per machine, under `$XDG_CACHE_HOME/telemetry-pipeline/`: Kafka's jars
and the local broker's data (`kafka.broker`), the benchmarks' Collector build, and compiled Hyperscan
databases.

Compiling the redaction prefilter's database and the service-token rules' takes about 1.7 s of CPU
at every start of a worker, a replay or a test process (a tenth of the worker's samples in a
pre-loaded benchmark run, before its first output). Hyperscan serializes a compiled database, and
loading one takes a millisecond, so each is kept in `hyperscan/`, named by a digest of everything its
compile takes. Hyperscan checks a serialized database's version and platform when it loads one, not
its bytes (a file with bytes changed loads, and would scan wrongly: a missed hit is a leak), so the
file starts with the SHA-256 of the rest and one that does not match is compiled again. A cache that
cannot be read or written is no error: the database is compiled as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import hyperscan


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "telemetry-pipeline"


# Part of every database file's name: a change to how files are written or named is a new name.
_LAYOUT = b"1"
# Databases kept (one per configuration of detectors, regions and key rules; up to 2.5 MB each): the
# least recently used go first.
MAX_DATABASES = 16


def compile_database(
    expressions: list[bytes], flags: list[int], *, literal: bool = False
) -> hyperscan.Database:
    """A block-mode database of `expressions` (ids: their indices) with their `flags`, from the cache
    when it holds this very compile."""
    key = hashlib.sha256(repr((_LAYOUT, hyperscan.__version__, literal, expressions, flags)).encode())
    path = cache_dir() / "hyperscan" / f"{key.hexdigest()}.db"
    database = _load(path)
    if database is None:
        database = hyperscan.Database()
        database.compile(
            expressions=expressions, flags=flags, ids=list(range(len(expressions))),
            elements=len(expressions), literal=literal,
        )
        _store(path, hyperscan.dumpb(database))
    return database


def _load(path: Path) -> hyperscan.Database | None:
    try:
        if path.stat().st_uid != os.getuid():  # only this user's: a database decides what is redacted
            return None
        data = path.read_bytes()
    except OSError:
        return None
    serialized = data[32:]
    if hashlib.sha256(serialized).digest() != data[:32]:
        return None
    try:
        database = hyperscan.loadb(serialized, hyperscan.HS_MODE_BLOCK)
        database.scratch = hyperscan.Scratch(database)  # a compiled database gets one; a loaded one not
    except hyperscan.error:  # another Hyperscan's or another CPU's database
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # used: the last to go
    return database


def _store(path: Path, serialized: bytes) -> None:
    """Written whole or not at all: to a file of its own, then renamed (processes starting together
    may write the same database at once)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, written = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(hashlib.sha256(serialized).digest() + serialized)
        os.replace(written, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(written)
        return
    with contextlib.suppress(OSError):  # another process may be removing the same files
        kept = sorted(path.parent.glob("*.db"), key=lambda file: file.stat().st_mtime, reverse=True)
        for stale in kept[MAX_DATABASES:]:
            stale.unlink()
