from __future__ import annotations

import argparse
import gzip

import orjson
import pytest

from telemetry_pipeline.generate.commands import parse_fault, register
from telemetry_pipeline.generate.config import Deploy, LatencyRegression


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(required=True))
    return parser


def test_parse_fault_reads_kind_and_options() -> None:
    fault = parse_fault("latency_regression:service=payment,at=10m,for=90s,factor=2.5")
    assert isinstance(fault, LatencyRegression)
    assert (fault.at.total_seconds(), fault.duration.total_seconds(), fault.factor) == (600, 90, 2.5)
    deploy = parse_fault("deploy:service=cart,at=1h30m,version=2.0.0,error_rate=0.1")
    assert isinstance(deploy, Deploy) and deploy.at.total_seconds() == 5400 and deploy.duration is None
    for bad in ("error_spike:service=cart,rate=3", "meltdown:service=cart", "silent:service"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_fault(bad)


def test_generate_to_file_with_context(tmp_path, capsys) -> None:
    out = tmp_path / "load.jsonl.gz"
    args = _parser().parse_args(
        [
            "generate",
            "--to",
            "file",
            "--out",
            str(out),
            "--duration",
            "70s",
            "--rate",
            "5",
            "--seed",
            "3",
            "--fault",
            "silent:service=cart,at=0s,for=10m",
            "--context-out",
            str(tmp_path / "ctx"),
        ]
    )
    assert args.run(args) == 0
    lines = [orjson.loads(line) for line in gzip.decompress(out.read_bytes()).splitlines()]
    assert {next(iter(line)) for line in lines} == {"resourceSpans", "resourceLogs", "resourceMetrics"}
    assert b'"cart"' not in gzip.decompress(out.read_bytes())
    assert (tmp_path / "ctx" / "users.jsonl").exists() and (tmp_path / "ctx" / "catalog.jsonl").exists()
    assert "spans/s" in capsys.readouterr().out


def test_generate_rejects_an_unknown_fault_service(tmp_path, capsys) -> None:
    args = _parser().parse_args(
        ["generate", "--out", str(tmp_path / "x.jsonl"), "--fault", "silent:service=nope"]
    )
    assert args.run(args) == 2
    assert "unknown service" in capsys.readouterr().err


def test_paced_spreads_event_time_over_wall_time_and_stops_when_told() -> None:
    import threading
    import time

    from telemetry_pipeline.generate import GeneratorConfig, iter_messages
    from telemetry_pipeline.generate.commands import paced

    config = GeneratorConfig(duration="60s", rate=2)
    times = [message.event_time_ns for message in iter_messages(config)]
    span_s = (max(times) - min(times)) / 1e9
    began = time.monotonic()
    assert len(list(paced(iter_messages(config), speed=120))) == len(times)
    elapsed = time.monotonic() - began
    assert span_s / 120 <= elapsed < 10, f"{span_s:.0f} s of event time at 120x took {elapsed:.2f} s"
    stop = threading.Event()
    stop.set()
    assert list(paced(iter_messages(config), speed=1, stop=stop)) == []
