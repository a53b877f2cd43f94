"""Every mistake a new user makes gets one line on stderr, a non-zero exit and no traceback (issue 13).

Each case runs the real command line in a subprocess, as a user would.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A key in the environment keeps the development-key warning out of stderr: only the error is left.
ENV = {**os.environ, "TP_REDACTION__HMAC_KEY": "0123456789abcdef0123456789abcdef"}
SPAN_LINE = b'{"resourceSpans": []}\n'


def run_cli(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemetry_pipeline.cli", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    stderr = result.stderr
    assert result.returncode != 0, f"exit 0; stdout: {result.stdout!r}"
    assert "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, f"more than one line on stderr:\n{stderr}"
    for text in expected:
        assert text in stderr, f"{text!r} not in {stderr!r}"
    return stderr


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A folder with good and broken replay inputs, and an existing plain file."""
    (tmp_path / "spans.jsonl").write_bytes(SPAN_LINE)
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain.gz").write_bytes(SPAN_LINE)
    (tmp_path / "truncated.gz").write_bytes(gzip.compress(SPAN_LINE * 5000)[:200])
    (tmp_path / "taken").write_text("a file, not a folder\n")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--out", "out", "/nonexistent.jsonl"], ["/nonexistent.jsonl: no such file"]),
        (["--out", "out", "folder"], ["input folder is a folder"]),
        (["--out", "out", "plain.gz"], ["plain.gz is named .gz but is not gzip data"]),
        (["--out", "out", "truncated.gz"], ["truncated.gz: the gzip data is truncated"]),
        (["--out", "taken", "spans.jsonl"], ["--out taken is an existing file"]),
        (["--out", "taken/below", "spans.jsonl"], ["--out taken/below: cannot write there"]),
        # sysfs: a folder nobody can create files in, root included (tests may run as root).
        (["--out", "/sys", "spans.jsonl"], ["--out /sys: cannot write there"]),
    ],
)
def test_replay_input_and_output_mistakes(inputs: Path, args: list[str], expected: list[str]) -> None:
    assert_one_line_error(run_cli(inputs, "replay", *args), *expected)


def test_replay_reads_gzip_by_its_magic_bytes_not_its_name(inputs: Path) -> None:
    (inputs / "really-gzip.jsonl").write_bytes(gzip.compress(SPAN_LINE * 3))
    result = run_cli(inputs, "replay", "--out", "out", "really-gzip.jsonl")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3 lines in;"), result.stdout
    assert (inputs / "out" / "dlq.jsonl").read_bytes() == b""


def test_check_config_refuses_a_missing_context_file(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("context:\n  user_context_file: users.jsonl\n")
    result = run_cli(tmp_path, "check-config", "--config", "config.yaml")
    assert_one_line_error(result, "config.yaml", "context.user_context_file", "users.jsonl does not exist")


def test_replay_with_a_malformed_context_file_names_file_and_line(inputs: Path) -> None:
    (inputs / "users.jsonl").write_text('{"key": "u1", "value": {"plan": "pro"}}\n{"key": "u2", "value": \n')
    (inputs / "config.yaml").write_text("context:\n  user_context_file: users.jsonl\n")
    result = run_cli(inputs, "replay", "--config", "config.yaml", "--out", "out", "spans.jsonl")
    assert_one_line_error(result, "users.jsonl:2: expected")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, ["no topic files", "topics"]),
        ({"a.yaml": 'name: "s3cret-topic\npartitions: 3\n'}, ["a.yaml", "line 3, column 1"]),
        ({"a.yaml": "name: s3cret-topic\npartitions: many\n"}, ["a.yaml", "partitions"]),
    ],
    ids=["empty folder", "invalid YAML", "invalid field"],
)
def test_topics_apply_file_mistakes_exit_2_naming_the_file(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    (tmp_path / "topics").mkdir()
    for name, text in files.items():
        (tmp_path / "topics" / name).write_text(text)
    # No broker is needed: the files are read first, and the address is never reached.
    result = run_cli(tmp_path, "topics", "apply", "--dir", "topics", "--bootstrap", "127.0.0.1:1")
    stderr = assert_one_line_error(result, *expected)
    assert result.returncode == 2
    assert "s3cret" not in stderr


def test_invalid_yaml_says_file_line_and_column_not_the_content(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text('kafka:\n  sasl_password: "hunter2-s3cret\n  x: 1\n')
    stderr = assert_one_line_error(
        run_cli(tmp_path, "check-config", "--config", "config.yaml"), "config.yaml", "line 4, column 1"
    )
    assert "hunter2" not in stderr


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--fault", "error_spike:service="], ["--fault", "'service' has no value"]),
        (["--fault", "error_spike:service=nope"], ["fault error_spike: unknown service 'nope'"]),
        (["--duration", "banana"], ["--duration: expected a duration"]),
        (["--rate", "-5"], ["--rate: ", "greater than 0"]),
        (["--rate", "many"], ["--rate", "invalid float value"]),
        (["--start", "now-banana"], ["--start now-banana"]),
    ],
)
def test_generate_option_mistakes_name_the_option(
    tmp_path: Path, option: list[str], expected: list[str]
) -> None:
    stderr = assert_one_line_error(run_cli(tmp_path, "generate", *option), *expected)
    assert "pydantic" not in stderr and "validation error" not in stderr
    assert not (tmp_path / "otlp.jsonl").exists()


def test_generate_to_an_unreachable_broker_fails_fast_in_one_line(tmp_path: Path) -> None:
    began = time.monotonic()
    result = run_cli(tmp_path, "generate", "--to", "kafka", "--bootstrap", "127.0.0.1:1", "--duration", "1m")
    elapsed = time.monotonic() - began
    assert_one_line_error(result, "no Kafka broker answered at 127.0.0.1:1")
    assert elapsed < 30, f"took {elapsed:.0f} s"
    assert result.returncode == 1


def test_generate_to_file_says_what_it_wrote(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "generate", "--duration", "5s", "--rate", "2", "--out", "load.jsonl")
    assert result.returncode == 0, result.stderr
    assert "wrote load.jsonl (" in result.stdout
    assert (tmp_path / "load.jsonl").stat().st_size > 0
