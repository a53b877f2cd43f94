"""The HMAC key and the passwords never show in what the command writes: --help, check-config, errors,
replay's output and logs. Each run gets known secret values, and everything it wrote is searched.
(The worker's log and /metrics are searched by tests/integration/test_tls_sasl.py.)"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from telemetry_pipeline.cli import main
from telemetry_pipeline.otlp import Encoding, Signal, decode, encode
from telemetry_pipeline.otlp.tests.sdk_payloads import sdk_spans

HMAC_KEY = "hmac-key-5ecret-0123456789abcdef"
SASL_PASSWORD = "sasl-pa55word-5ecret"
KEY_PASSWORD = "tls-key-pa55word-5ecret"
SECRETS = (HMAC_KEY, SASL_PASSWORD, KEY_PASSWORD)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> Callable[[list[str], dict[str, str]], str]:
    """Runs the command in this process (as the console script would) in `tmp_path`; returns all it
    wrote to stdout, stderr and the log."""
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)

    def run_command(args: list[str], env: dict[str, str]) -> str:
        with monkeypatch.context() as scoped:
            for name in [name for name in os.environ if name.startswith("TP_")]:
                scoped.delenv(name)
            for name, value in env.items():
                scoped.setenv(name, value)
            with contextlib.suppress(SystemExit):  # --help exits
                main(args)
        captured = capsys.readouterr()
        written = captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records)
        caplog.clear()
        return written

    return run_command


def _assert_no_secret(text: str, what: str) -> None:
    found = [secret for secret in SECRETS if secret in text]
    assert not found, f"{what} shows a secret"


def _written(directory: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in directory.rglob("*") if path.is_file())


ENV = {"TP_REDACTION__HMAC_KEY": HMAC_KEY, "TP_KAFKA__SASL_PASSWORD": SASL_PASSWORD}


@pytest.mark.parametrize(
    "args", [["--help"], ["worker", "--help"], ["check-config", "--help"], ["replay", "--help"],
             ["demo", "--help"], ["topics", "apply", "--help"], ["broker", "start", "--help"]]
)
def test_help_shows_no_secret(args: list[str], run: Callable) -> None:
    output = run(args, ENV)
    assert "usage:" in output
    _assert_no_secret(output, " ".join(args))


def test_check_config_shows_no_secret_valid_or_not(run: Callable, tmp_path: Path) -> None:
    (tmp_path / "password").write_text(SASL_PASSWORD)
    good = {
        "environment": "production",
        "kafka": {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                  "sasl_username": "tp", "sasl_password_file": str(tmp_path / "password")},
        "redaction": {"hmac_key": HMAC_KEY},
    }
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    output = run(["check-config", "--config", "good.yaml"], {})
    assert "configuration valid" in output
    _assert_no_secret(output, "check-config")

    for name, config, env in [
        # A secret where it does not belong, a wrong type next to secrets, a key too short.
        ("sasl-on-plaintext", {"kafka": {"sasl_password": SASL_PASSWORD}}, {}),
        ("bad-field", {"kafka": {"ssl_key_password": KEY_PASSWORD, "security_protocol": "SSL",
                                 "ssl_check_hostname": "maybe"}}, ENV),
        ("short-key", {"environment": "production"}, {"TP_REDACTION__HMAC_KEY": HMAC_KEY[:10]}),
        ("key-as-list", {"redaction": {"hmac_key": [HMAC_KEY]}}, {}),
    ]:
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        output = run(["check-config", "--config", f"{name}.yaml"], env)
        assert "invalid configuration" in output, name
        _assert_no_secret(output, f"check-config error ({name})")
    # A file YAML cannot parse: its error must not quote the line holding the secret.
    (tmp_path / "broken.yaml").write_text(f"kafka:\n  sasl_password: '{SASL_PASSWORD}\n  x: [\n")
    output = run(["check-config", "--config", "broken.yaml"], {})
    assert "broken.yaml" in output and "line" in output
    _assert_no_secret(output, "a YAML error")


def test_replay_writes_no_secret(run: Callable, tmp_path: Path) -> None:
    spans = encode(decode(Signal.TRACES, sdk_spans()), Encoding.JSON)
    (tmp_path / "in.jsonl").write_bytes(spans + b"\n" + b"{broken\n")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"environment": "production"}))
    env = {"TP_REDACTION__HMAC_KEY": HMAC_KEY}
    output = run(["replay", "--config", "config.yaml", "--out", "out", "in.jsonl"], env)
    assert "lines in" in output
    _assert_no_secret(output, "replay's output")
    _assert_no_secret(_written(tmp_path / "out"), "replay's files")
