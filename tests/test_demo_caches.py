"""`make clean-cache` as the README tells a user to run it, against a real broker in a cache of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from telemetry_pipeline.kafka import broker

REPO = Path(__file__).resolve().parents[1]


def make_clean_cache(cache_home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "clean-cache"],
        env={**os.environ, "XDG_CACHE_HOME": str(cache_home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_clean_cache_refuses_while_a_broker_runs_from_it_and_removes_it_once_stopped(tmp_path: Path) -> None:
    cache_home = tmp_path.resolve()  # the broker records its data folder resolved; pgrep sees that path
    cache = cache_home / "telemetry-pipeline"
    # The jars come from the real cache (this process's); only the broker's data lives in the test's.
    with broker.running(data_dir=cache / "broker-test"):
        refused = make_clean_cache(cache_home)
        assert refused.returncode != 0, f"removed the cache under a running broker: {refused.stdout}"
        assert "still runs" in refused.stdout, refused.stdout + refused.stderr
        assert (cache / "broker-test").is_dir()
    removed = make_clean_cache(cache_home)
    # Before the fix the recipe's pgrep matched its own shell and refused here too.
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not cache.exists()
