"""`telemetry-pipeline demo`: the whole pipeline on this machine, with its SLIs on screen.

Starts (or reuses) the local broker, applies the topics, publishes the context tables, runs a
worker process and a paced load generator (30 minutes of event time, with an error spike on
`checkout` and a latency regression on `payment` half way), and shows the latest SLI snapshot per
service until the load is done; then stops what it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Consumer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.generate import (
    GeneratorConfig,
    OutputTopics,
    context_records,
    iter_messages,
    produce_context,
    produce_kafka,
)
from telemetry_pipeline.generate.config import ErrorSpike, LatencyRegression
from telemetry_pipeline.kafka import broker, topics

EVENT_SPAN = timedelta(minutes=30)
SHOWN_WINDOW = "5m"


def run_demo(config: PipelineConfig, config_path: Path | None, *, duration_s: float, port: int) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # logs and CI: room for every column
    data_dir = Path(tempfile.mkdtemp(prefix="tp-demo-"))
    console.print(f"[bold]broker[/] starting on 127.0.0.1:{port} (first run downloads Kafka with Maven)...")
    local = broker.start(port=port)
    bootstrap = local.bootstrap
    # Every run gets its own topics and Faust app id: a broker kept from an earlier demo still holds
    # that run's input and SLI state, whose watermark would make this run's data late.
    prefix = f"demo-{time.strftime('%Y%m%d%H%M%S')}-"
    config = _prefixed(config, prefix)
    report = topics.apply(bootstrap, topics.load_specs(topics.default_topics_dir()), name_prefix=prefix)
    console.print(f"[bold]topics[/] {report}")

    generator = GeneratorConfig(
        start_time=datetime.now(UTC) - EVENT_SPAN,
        duration=EVENT_SPAN,
        rate=30,
        faults=[
            ErrorSpike(service="checkout", at=timedelta(minutes=12), duration=timedelta(minutes=8), rate=0.3),
            LatencyRegression(
                service="payment", at=timedelta(minutes=15), duration=timedelta(minutes=10), factor=4.0
            ),
        ],
    )
    names = config.topics
    output_topics = OutputTopics(
        traces=names.spans,
        metrics=names.metrics,
        logs=names.logs,
        user_context=config.context.user_context_topic,
        service_catalog=config.context.service_catalog_topic,
    )
    users, services = context_records(generator)
    produce_context(users, services, bootstrap, output_topics)

    env = {
        **os.environ,
        "TP_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "TP_WORKER__DATA_DIR": str(data_dir),
        "TP_WORKER__APP_ID": config.worker.app_id,
        "TP_CONTEXT__USER_CONTEXT_TOPIC": config.context.user_context_topic,
        "TP_CONTEXT__SERVICE_CATALOG_TOPIC": config.context.service_catalog_topic,
        **{f"TP_TOPICS__{field.upper()}": name for field, name in names.model_dump().items()},
    }
    log_path = data_dir / "worker.log"
    console.print(f"[bold]worker[/] starting (log: {log_path})")
    command = [sys.executable, "-m", "telemetry_pipeline.cli", "worker", "--loglevel", "warning"]
    if config_path is not None:
        command += ["--config", str(config_path)]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    sent: Counter[str] = Counter()
    load = threading.Thread(
        target=_paced_load, args=(generator, bootstrap, output_topics, duration_s, sent), daemon=True
    )
    try:
        load.start()
        _watch(console, bootstrap, config, load, worker, sent, deadline=time.monotonic() + duration_s + 30)
    finally:
        stop_worker(worker)
        topics.delete_topics(bootstrap, [n for n in _topic_names(bootstrap) if n.startswith(prefix)])
        if local.started:
            broker.stop(local.data_dir)
            console.print("[bold]broker[/] stopped")
    return 0 if worker.returncode in (0, -signal.SIGTERM) else 1


def _prefixed(config: PipelineConfig, prefix: str) -> PipelineConfig:
    names = {field: prefix + name for field, name in config.topics.model_dump().items()}
    context = config.context
    return config.model_copy(
        update={
            "topics": config.topics.model_copy(update=names),
            "context": context.model_copy(
                update={
                    "user_context_topic": prefix + context.user_context_topic,
                    "service_catalog_topic": prefix + context.service_catalog_topic,
                }
            ),
            "worker": config.worker.model_copy(update={"app_id": prefix + config.worker.app_id}),
        }
    )


def _topic_names(bootstrap: str) -> list[str]:
    """Every topic on the broker, the worker's changelogs included."""
    from confluent_kafka.admin import AdminClient

    return list(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics)


def _paced_load(
    generator: GeneratorConfig, bootstrap: str, output: OutputTopics, duration_s: float, sent: Counter[str]
) -> None:
    """Produce the generated messages so that the whole event span takes `duration_s` of wall time."""
    speed = EVENT_SPAN.total_seconds() / duration_s
    start_ns = generator.start_ns()
    wall_start = time.monotonic()
    chunk = []
    for message in iter_messages(generator):
        chunk.append(message)
        due = wall_start + (message.event_time_ns - start_ns) / 1e9 / speed
        if due > time.monotonic() + 0.2:
            sent.update(produce_kafka(chunk, bootstrap, output, compression="lz4"))
            chunk = []
            time.sleep(max(0.0, due - time.monotonic()))
    sent.update(produce_kafka(chunk, bootstrap, output, compression="lz4"))


def _watch(
    console: Console,
    bootstrap: str,
    config: PipelineConfig,
    load: threading.Thread,
    worker: subprocess.Popen,
    sent: Counter[str],
    deadline: float,
) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"demo-{os.getpid()}",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([config.topics.sli, config.topics.dlq, config.topics.incidents])
    latest: dict[str, dict] = {}
    seen: Counter[str] = Counter()
    try:
        with Live(
            _render(latest, seen, sent),
            console=console,
            refresh_per_second=2,
            transient=False,
            auto_refresh=console.is_terminal,
        ) as live:
            last_print = time.monotonic()
            while time.monotonic() < deadline and worker.poll() is None:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    seen[message.topic()] += 1
                    if message.topic() == config.topics.sli:
                        snapshot = orjson.loads(message.value())
                        if snapshot["window"] == SHOWN_WINDOW:
                            latest[snapshot["service"]] = snapshot
                if not load.is_alive() and time.monotonic() > deadline - 25:
                    break
                if console.is_terminal:
                    live.update(_render(latest, seen, sent))
                elif time.monotonic() - last_print > 10:
                    console.print(_render(latest, seen, sent))
                    last_print = time.monotonic()
            live.update(_render(latest, seen, sent))
    finally:
        consumer.close()
    if worker.poll() is not None:
        console.print(f"[red]worker exited with {worker.returncode}[/]")


def _render(latest: dict[str, dict], seen: Counter[str], sent: Counter[str]) -> Table:
    table = Table(
        title=f"SLIs per service, {SHOWN_WINDOW} window "
        f"(sent {sum(sent.values())} messages; received {dict(seen)})"
    )
    for column in (
        "service",
        "window end",
        "requests",
        "error rate",
        "availability",
        "p99 ms",
        "burn 1h",
        "completeness",
    ):
        table.add_column(column, justify="right" if column != "service" else "left")
    for service, s in sorted(latest.items()):
        burn = s.get("burn_rate", {}).get("1h")
        table.add_row(
            service,
            s["window_end"][11:19],
            str(s["requests"]),
            _fmt(s["error_rate"], "{:.2%}"),
            _fmt(s["availability"], "{:.3%}"),
            _fmt(s["latency_ms"].get("p99")),
            _fmt(burn),
            str(s["completeness"]["score"]),
        )
    return table


def _fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    """A number for the table; windows without requests have null ratios and latencies."""
    return "-" if value is None else pattern.format(value)


def stop_worker(process: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM (Faust stops its agents and commits), SIGKILL if it is still running after `timeout_s`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
