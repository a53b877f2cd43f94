"""The worker started with no broker: it retries with backoff for `worker.startup_timeout_s`, one
line per attempt, then exits non-zero with one line naming the address and the setting; no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from telemetry_pipeline.kafka.broker import free_port


def test_worker_without_a_broker_retries_then_exits_with_one_line() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("TP_")}
    env |= {
        "TP_KAFKA__BOOTSTRAP_SERVERS": address,
        "TP_WORKER__STARTUP_TIMEOUT_S": "4",
        "TP_WORKER__METRICS_PORT": "null",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "telemetry_pipeline.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    attempts = [line for line in output.splitlines() if "not reachable (attempt" in line]
    assert len(attempts) >= 2, output  # backoff 0.5, 1, 2 s within 4 s
    [final] = [line for line in output.splitlines() if line.startswith("telemetry-pipeline:")]
    assert address in final
    assert "kafka.bootstrap_servers" in final and "TP_KAFKA__BOOTSTRAP_SERVERS" in final
    assert "worker.startup_timeout_s" in final
    assert 3.5 <= elapsed < 30, elapsed
    # Only our lines: no librdkafka connection noise.
    assert "Connection refused" not in output, output
