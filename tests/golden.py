"""Golden files shared by the tests that pin an output byte for byte: compare what a run produced with
the committed files, or rewrite those with `TP_UPDATE_GOLDEN=1` after an intended change."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def check_golden(folder: Path, produced: Mapping[str, bytes], label: str) -> None:
    """Each of `produced` (file name -> bytes) equals `folder`/name, line for line."""
    if os.environ.get("TP_UPDATE_GOLDEN"):
        for name, data in produced.items():
            (folder / name).write_bytes(data)
    for name, data in produced.items():
        expected = (folder / name).read_bytes().splitlines()
        lines = data.splitlines()
        differ = [i for i, (got, want) in enumerate(zip(lines, expected, strict=False)) if got != want]
        first = differ[0] if differ else min(len(lines), len(expected))
        assert lines == expected, (
            f"{label}/{name}: {len(lines)} lines, expected {len(expected)}; first difference at line "
            f"{first + 1} "
            "(TP_UPDATE_GOLDEN=1 rewrites the expected files after an intended change)"
        )
