"""Side by side: a stock OpenTelemetry Collector against one worker of this project, per CPU second.

    .venv/bin/python benchmarks/collector.py [--pairs N] [--spans N] [...]

Builds the Collector peer once with the OpenTelemetry Collector Builder (`ocb`, from the Go module
proxy; cached under ~/.cache/telemetry-pipeline/otelcol-<version>), with the stock contrib
components `kafkareceiver -> redactionprocessor -> kafkaexporter` (`collector/builder.yaml`,
`collector/config.yaml`: 12 blocked value patterns, HMAC-SHA256 hashing). Starts a broker of its
own, pre-loads the traces of the default workload re-encoded by the OpenTelemetry Python SDK's own
exporter code (500 spans per message, 12 attributes per span, 5% with PII) once, then runs the
Collector and one worker (`telemetry-pipeline worker`, every stage on) alternately, N pairs, each
run with a consumer group and output topics of its own over the same input. Per run: spans out per
CPU second of the process between its first and last output message, and between 10% and 90% of
the spans out; peak RSS. Writes `results/<stamp>-collector.json` and `results/<stamp>-collector.png`.

Without Go it writes a JSON saying the comparison was skipped, and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import psutil
from _workload import (
    TopicReader,
    Workload,
    add_workload_flags,
    build_workload,
    host_info,
    rate,
    run_stamp,
    save_figure,
    write_json,
)
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from rich.console import Console
from throughput import (
    RunTopics,
    Sample,
    Workers,
    _create_topics,
    _delete_run_topics,
    _workers_at,
    preload,
    terminate_on_sigterm,
)

from telemetry_pipeline.cache import cache_dir
from telemetry_pipeline.config import PipelineConfig, load_config
from telemetry_pipeline.generate import GeneratedMessage, OutputTopics, produce_context
from telemetry_pipeline.kafka import broker
from telemetry_pipeline.otlp import Signal

# One release for every collector module: contrib v0.165.1 goes with core v0.165.0 (the builder's).
COLLECTOR_VERSION = "0.165.1"
BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder@v0.165.0"
PEER_DIR = Path(__file__).resolve().parent / "collector"
PEER_BINARY = "otelcol-tp-peer"  # dist.name in builder.yaml
SAMPLE_INTERVAL_S = 0.5
WINDOW_SHARES = (0.10, 0.90)  # the steady part of a run: from 10% to 90% of the spans out
SDK_ENCODER = "opentelemetry-exporter-otlp-proto-common trace_encoder.encode_spans"


# -- the Collector peer ---------------------------------------------------------------------------------


def peer_dir() -> Path:
    return cache_dir() / f"otelcol-{COLLECTOR_VERSION}"


def build_peer(console: Console) -> Path:
    """The Collector binary, built with ocb on first use (minutes: Go compiles the contrib modules)."""
    out = peer_dir()
    binary = out / PEER_BINARY
    if binary.exists():
        return binary
    tools = cache_dir() / "ocb"
    builder = tools / "builder"
    env = {**os.environ, "GOBIN": str(tools), "GOFLAGS": "-buildvcs=false"}
    with console.status(f"installing the Collector Builder ({BUILDER_MODULE})"):
        if not builder.exists():
            _run_go(["go", "install", BUILDER_MODULE], env)
    manifest = (PEER_DIR / "builder.yaml").read_text().replace("${OUTPUT_PATH}", str(out))
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "builder.yaml"
    manifest_path.write_text(manifest)
    with console.status(f"building the Collector peer into {out} (several minutes the first time)"):
        _run_go([str(builder), "--config", str(manifest_path)], env, cwd=out)
    if not binary.exists():
        raise RuntimeError(f"the builder finished but {binary} is missing")
    return binary


def _run_go(command: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command[:2])} failed ({done.returncode}):\n{tail}")


# -- the workload, as the OpenTelemetry Python SDK encodes it --------------------------------------------


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _context(trace_id: bytes, span_id: bytes, flags: int = 1, state: str = "") -> SpanContext:
    return SpanContext(
        int.from_bytes(trace_id),
        int.from_bytes(span_id),
        is_remote=False,
        trace_flags=TraceFlags(flags & 0xFF),
        trace_state=TraceState.from_header([state]) if state else None,
    )


def _readable(span: Span, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    code = StatusCode(span.status.code)
    return ReadableSpan(
        span.name,
        context=_context(span.trace_id, span.span_id, span.flags or 1, span.trace_state),
        parent=_context(span.trace_id, span.parent_span_id) if span.parent_span_id else None,
        resource=resource,
        attributes=_attributes(span.attributes),
        events=[Event(e.name, _attributes(e.attributes), e.time_unix_nano) for e in span.events],
        links=[
            Link(_context(link.trace_id, link.span_id, link.flags or 1), _attributes(link.attributes))
            for link in span.links
        ],
        # OTLP numbers kinds from 1 (INTERNAL), the SDK from 0; 0 (UNSPECIFIED) has no SDK twin.
        kind=SpanKind(max(span.kind - 1, 0)),
        status=Status(code, span.status.message if code is StatusCode.ERROR else None),
        start_time=span.start_time_unix_nano,
        end_time=span.end_time_unix_nano,
        instrumentation_scope=scope,
    )


def sdk_encoded(message: GeneratedMessage) -> GeneratedMessage:
    """The same spans, encoded by the SDK's OTLP exporter code (what real SDK producers write)."""
    spans = []
    for resource_spans in message.message.resource_spans:  # type: ignore[union-attr]
        resource = Resource(_attributes(resource_spans.resource.attributes), resource_spans.schema_url)
        for scope_spans in resource_spans.scope_spans:
            scope = InstrumentationScope(
                scope_spans.scope.name, scope_spans.scope.version or None, scope_spans.schema_url or None
            )
            spans.extend(_readable(span, resource, scope) for span in scope_spans.spans)
    payload = encode_spans(spans).SerializeToString()
    return GeneratedMessage(Signal.TRACES, message.key, payload, message.event_time_ns, len(spans))


def sdk_workload(args: argparse.Namespace) -> Workload:
    generated = build_workload(args)
    traces = [sdk_encoded(m) for m in generated.messages if m.signal is Signal.TRACES and not m.is_garbage]
    return dataclasses.replace(generated, messages=traces)


# -- one run: a process reading the shared input, its output counted span by span ----------------------


class OutputCounter(TopicReader):
    """Reads one traces output topic from the start; records (arrival ns, spans) per message."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        assigned = [TopicPartition(topic, p, 0) for p in range(partitions)]
        super().__init__(f"count-{topic}", bootstrap, topic + ".counter", assigned)
        self.arrivals: list[tuple[int, int]] = []
        self.spans = 0

    def on_message(self, message: Any, arrived_ns: int) -> None:
        traces = TracesData.FromString(message.value())
        count = sum(len(ss.spans) for rs in traces.resource_spans for ss in rs.scope_spans)
        self.spans += count
        self.arrivals.append((arrived_ns, count))


@dataclasses.dataclass
class Contender:
    """One side of a pair: how to start it, and where its traces come out."""

    name: str
    output_topic: str
    start: Any  # (Workers, run directory) -> None


def run_once(
    contender: Contender,
    bootstrap: str,
    partitions: int,
    spans_in: int,
    work_dir: Path,
    duration: float,
    console: Console,
) -> dict[str, Any]:
    counter = OutputCounter(bootstrap, contender.output_topic, partitions)
    counter.start()
    processes = Workers()
    samples: list[Sample] = []
    try:
        contender.start(processes, work_dir)
        started = time.time()
        with console.status(f"{contender.name}: waiting for {spans_in:,} spans"):
            while counter.spans < spans_in and time.time() - started < duration:
                if counter.error is not None:
                    raise RuntimeError("the output counter failed") from counter.error
                processes.check_alive()
                samples.append(Sample(time.time(), processes.sample(), None))
                time.sleep(SAMPLE_INTERVAL_S)
            samples.append(Sample(time.time(), processes.sample(), None))
    finally:
        processes.stop()
        counter.stop()
    return figures(contender.name, counter.arrivals, samples, spans_in, started)


def figures(
    name: str, arrivals: list[tuple[int, int]], samples: list[Sample], spans_in: int, started: float
) -> dict[str, Any]:
    spans_out = sum(count for _, count in arrivals)
    result: dict[str, Any] = {
        "contender": name,
        "complete": spans_out >= spans_in,
        "spans_in": spans_in,
        "spans_out": spans_out,
        "peak_rss_mb": max(s.workers[0].rss for s in samples) / 2**20,
        "cpu_s_total": samples[-1].workers[0].cpu_s,
    }
    if len(arrivals) < 2:
        return result
    result["seconds_to_first_output"] = arrivals[0][0] / 1e9 - started
    result["first_to_last"] = _window(arrivals, samples, arrivals[0][0] / 1e9, arrivals[-1][0] / 1e9)
    low, high = (_time_of_share(arrivals, spans_out, share) for share in WINDOW_SHARES)
    result["p10_to_p90"] = _window(arrivals, samples, low, high)
    return result


def _time_of_share(arrivals: list[tuple[int, int]], total: int, share: float) -> float:
    seen = 0
    for arrived_ns, count in arrivals:
        seen += count
        if seen >= share * total:
            return arrived_ns / 1e9
    return arrivals[-1][0] / 1e9


def _window(arrivals: list[tuple[int, int]], samples: list[Sample], low: float, high: float) -> dict:
    # Spans that arrived after `low` up to `high`: the work done in that interval.
    spans = sum(count for arrived_ns, count in arrivals if low < arrived_ns / 1e9 <= high)
    cpu = _workers_at(samples, high, "cpu_s") - _workers_at(samples, low, "cpu_s")
    return {
        "seconds": high - low,
        "spans": spans,
        "cpu_s": cpu,
        "spans_per_s": rate(spans, high - low),
        "spans_per_cpu_s": rate(spans, cpu),
    }


# -- the two contenders ----------------------------------------------------------------------------------


def collector_contender(binary: Path, bootstrap: str, shared: RunTopics, output_topic: str) -> Contender:
    def start(processes: Workers, work_dir: Path) -> None:
        env = {
            **os.environ,
            "PEER_BROKERS": bootstrap,
            "PEER_GROUP_ID": output_topic + ".group",
            "PEER_INPUT_TOPIC": shared.names.spans,
            "PEER_OUTPUT_TOPIC": output_topic,
            "PEER_HMAC_KEY": secrets.token_hex(32),  # 64 characters; never written anywhere
        }
        log_path = work_dir / "collector.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [str(binary), "--config", str(PEER_DIR / "config.yaml")],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Workers.stop signals the process group
            )
        processes.processes.append(process)
        processes.logs.append(log_path)
        processes.handles.append(psutil.Process(process.pid))

    return Contender("collector", output_topic, start)


def worker_contender(
    bootstrap: str, shared: RunTopics, own: RunTopics, loglevel: str
) -> Contender:
    # The worker's own outputs, consumer group and tables; the shared input and context topics.
    names = own.names.model_copy(
        update={"spans": shared.names.spans, "logs": shared.names.logs, "metrics": shared.names.metrics}
    )
    run = dataclasses.replace(
        own, names=names, user_context=shared.user_context, service_catalog=shared.service_catalog
    )

    def start(processes: Workers, work_dir: Path) -> None:
        processes.start(1, run, bootstrap, work_dir, loglevel)

    return Contender("worker", run.names.spans_clean, start)


# -- the whole comparison ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=True)
    stamp = run_stamp()
    json_path = args.out / f"{stamp}-collector.json"
    if shutil.which("go") is None:
        reason = "Go is not installed (the `go` command is not on PATH): the Collector peer cannot be built"
        console.print(f"[yellow]skipped: {reason}")
        write_json(json_path, {"kind": "collector", "stamp": stamp, "skipped": reason})
        return 0
    binary = build_peer(console)
    with console.status("generating the workload and re-encoding it with the OpenTelemetry SDK"):
        workload = sdk_workload(args)
    config = load_config()
    work_dir = Path(tempfile.mkdtemp(prefix="tp-collector-"))
    try:
        with terminate_on_sigterm(), broker.running(data_dir=work_dir / "broker") as running:
            console.print(f"broker {running.bootstrap} (pid {running.pid})")
            runs = compare(args, console, stamp, workload, config, binary, running.bootstrap, work_dir)
    except KeyboardInterrupt:
        console.print(f"[red]interrupted; everything started was stopped; logs in {work_dir}")
        return 130
    except BaseException:
        console.print(f"[red]run failed; everything started was stopped; logs in {work_dir}")
        raise
    shutil.rmtree(work_dir)
    result = {
        "kind": "collector",
        "stamp": stamp,
        "command": [sys.executable, *sys.argv],
        "host": host_info(),
        "collector": {
            "version": COLLECTOR_VERSION,
            "builder": BUILDER_MODULE,
            "manifest": "benchmarks/collector/builder.yaml",
            "config": "benchmarks/collector/config.yaml",
        },
        "worker_overrides": {name: value for name, value in os.environ.items() if name.startswith("TP_")},
        "workload": workload.describe() | {"encoder": SDK_ENCODER},
        "runs": runs,
        "summary": summarize(runs),
    }
    write_json(json_path, result)
    plot(result, json_path.with_suffix(".png"))
    print_summary(console, result)
    console.print(f"wrote {json_path} and {json_path.with_suffix('.png').name}")
    return 0 if all(run["complete"] for run in runs) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_workload_flags(parser, default_spans=200_000)
    parser.set_defaults(attrs_min=12, attrs_max=12)
    parser.add_argument("--pairs", type=int, default=3, help="Collector/worker pairs, run alternately")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    parser.add_argument(
        "--duration", type=float, default=240.0, help="give up on a run after this many seconds"
    )
    parser.add_argument("--loglevel", default="warning", help="the worker's log level")
    return parser


def compare(
    args: argparse.Namespace,
    console: Console,
    stamp: str,
    workload: Workload,
    config: PipelineConfig,
    binary: Path,
    bootstrap: str,
    work_dir: Path,
) -> list[dict[str, Any]]:
    prefix = f"bench-{stamp.lower()}-"
    shared = RunTopics.of(prefix + "in-", args.partitions, config)
    _create_topics(bootstrap, shared)
    produce_context(
        workload.users,
        workload.services,
        bootstrap,
        OutputTopics(user_context=shared.user_context, service_catalog=shared.service_catalog),
    )
    with console.status(f"pre-loading {len(workload.messages):,} messages"):
        preload(bootstrap, shared, workload, "none")
    spans_in = workload.items()[Signal.TRACES]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    runs = []
    for pair in range(args.pairs):
        own = RunTopics.of(f"{prefix}w{pair}-", args.partitions, config)
        _create_topics(bootstrap, own)
        collector_out = f"{prefix}c{pair}-otlp_spans.out"
        for future in admin.create_topics([NewTopic(collector_out, args.partitions, 1)]).values():
            future.result()
        contenders = [
            collector_contender(binary, bootstrap, shared, collector_out),
            worker_contender(bootstrap, shared, own, args.loglevel),
        ]
        # Alternate which goes first, so drift in the machine's load does not favour one side.
        for contender in contenders[:: 1 if pair % 2 == 0 else -1]:
            run_dir = work_dir / f"pair{pair}-{contender.name}"
            run_dir.mkdir()
            run = run_once(contender, bootstrap, args.partitions, spans_in, run_dir, args.duration, console)
            run["pair"] = pair
            runs.append(run)
            console.print(_run_line(run))
        with contextlib.suppress(Exception):  # best effort: the broker and its data go at the end
            _delete_run_topics(bootstrap, own, [own.app_id, collector_out + ".group"])
    return runs


# -- figures ----------------------------------------------------------------------------------------------

METRICS = {
    "first_to_last": "spans per CPU second, first to last output",
    "p10_to_p90": "spans per CPU second, 10%-90% of the spans out",
}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per pair, worker / Collector; the median over pairs (ratio > 1: the worker does better)."""
    pairs: dict[int, dict[str, dict]] = {}
    for run in runs:
        pairs.setdefault(run["pair"], {})[run["contender"]] = run
    ratios: dict[str, list[float]] = {metric: [] for metric in METRICS} | {"peak_rss": []}
    for pair in pairs.values():
        collector, worker = pair["collector"], pair["worker"]
        for metric in METRICS:
            if metric in collector and metric in worker:
                ratios[metric].append(
                    rate(worker[metric]["spans_per_cpu_s"], collector[metric]["spans_per_cpu_s"])
                )
        ratios["peak_rss"].append(rate(worker["peak_rss_mb"], collector["peak_rss_mb"]))
    summary: dict[str, Any] = {}
    for name in ("collector", "worker"):
        own = [run for run in runs if run["contender"] == name]
        summary[name] = {
            metric: [run[metric]["spans_per_cpu_s"] for run in own if metric in run] for metric in METRICS
        } | {"peak_rss_mb": [run["peak_rss_mb"] for run in own]}
    summary["worker_over_collector"] = {
        metric: {"per_pair": values, "median": statistics.median(values) if values else None}
        for metric, values in ratios.items()
    }
    return summary


def _run_line(run: dict[str, Any]) -> str:
    line = f"pair {run['pair']} {run['contender']:>9}: {run['spans_out']:,}/{run['spans_in']:,} spans out"
    for metric in METRICS:
        if metric in run:
            line += f"; {metric} {run[metric]['spans_per_cpu_s']:,.0f} spans/CPU s"
    return line + f"; peak RSS {run['peak_rss_mb']:,.0f} MB"


def print_summary(console: Console, result: dict[str, Any]) -> None:
    summary = result["summary"]
    for metric, label in [*METRICS.items(), ("peak_rss", "peak RSS")]:
        key = "peak_rss_mb" if metric == "peak_rss" else metric
        ratio = summary["worker_over_collector"][metric]
        collector, worker = _range(summary["collector"][key]), _range(summary["worker"][key])
        console.print(
            f"{label}: Collector {collector}, worker {worker}; "
            f"worker / Collector {ratio['median'] or 0:.2f}x (median of pairs: "
            + ", ".join(f"{r:.2f}" for r in ratio["per_pair"])
            + ")"
        )


def _range(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}" if values else "-"


def plot(result: dict[str, Any], path: Path) -> None:
    summary = result["summary"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for metric, label in METRICS.items():
        per_pair = summary["worker_over_collector"][metric]["per_pair"]
        left.plot(range(1, len(per_pair) + 1), per_pair, marker="o", label=label)
    rss = summary["worker_over_collector"]["peak_rss"]["per_pair"]
    left.plot(range(1, len(rss) + 1), rss, marker="s", linestyle="--", label="peak RSS")
    left.axhline(1.0, color="grey", linewidth=1)
    left.set_xlabel("pair")
    left.set_ylabel("worker / Collector")
    left.set_yscale("log")
    left.set_title("ratio per pair (above 1: the worker's figure is higher)")
    left.legend(fontsize=8)
    names = ["collector", "worker"]
    for offset, metric in zip((-0.2, 0.2), METRICS, strict=True):
        values = [statistics.median(summary[name][metric]) if summary[name][metric] else 0 for name in names]
        bars = right.bar([i + offset for i in range(2)], values, width=0.4, label=METRICS[metric])
        right.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    right.set_xticks(range(2), [f"Collector {COLLECTOR_VERSION}", "worker (1 process)"])
    right.set_ylabel("spans per CPU second (median of runs)")
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    workload = result["workload"]
    figure.suptitle(
        f"{workload['items'].get('spans', 0):,} spans, SDK-encoded, {len(rss)} pairs, "
        f"{result['stamp']}"
    )
    save_figure(figure, path)


if __name__ == "__main__":
    sys.exit(main())
