"""`telemetry-pipeline demo`: the whole pipeline on this machine, with its SLIs on screen.

Starts a broker (or reuses the one `telemetry-pipeline broker start` runs on that port), applies the
topics, publishes the context tables, runs a worker process and a paced load generator (an hour of
event time, with an error spike on `checkout` early on and a latency regression on `payment`), and
shows the latest SLI snapshot per service, with the incident events (trigger, update, resolve) below
it, until the snapshots cover all generated traffic; then
stops what it started, load first, and removes what it wrote.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.generate import (
    GeneratedMessage,
    GeneratorConfig,
    OutputTopics,
    context_records,
    iter_messages,
    produce_context,
    produce_kafka,
)
from telemetry_pipeline.generate.commands import QUIET_PRODUCER, paced
from telemetry_pipeline.generate.config import ErrorSpike, LatencyRegression
from telemetry_pipeline.kafka import broker, topics
from telemetry_pipeline.kafka.connection import librdkafka_settings
from telemetry_pipeline.sli.config import duration_ms

# An hour of event time: the checkout outage early on pages, and its page resolves once the 30-minute
# burn-rate window has cleared and then 10 quiet minutes have passed, all within the run.
EVENT_SPAN = timedelta(minutes=60)
SHOWN_WINDOW = "5m"
SHOWN_INCIDENTS = 10
LOG_TAIL_LINES = 15
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")
# After the load: how long to wait for the snapshots of its last minutes beyond the SLI stage's own
# idle time (the worker evaluates them once its input has been idle that long).
FINAL_SNAPSHOTS_GRACE_S = 90.0


@dataclass
class _Load:
    """The load generator thread's progress, read by the watcher."""

    stop: threading.Event = field(default_factory=threading.Event)
    sent: Counter[str] = field(default_factory=Counter)
    last_event_ns: int = 0
    error: str | None = None
    done: bool = False


def run_demo(config: PipelineConfig, config_path: Path | None, *, duration_s: float, port: int) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # logs and CI: room for every column
    local = broker.status(broker.default_data_dir(port))
    if local is None and broker._port_in_use(port):
        raise broker.BrokerError(
            f"port {port} is taken by another program: free it, or run the demo on another port "
            f"(telemetry-pipeline demo --port {port + 10000}, or make demo DEMO_ARGS='--port {port + 10000}')"
        )
    work_dir = Path(tempfile.mkdtemp(prefix="tp-demo-"))
    if local is None:
        console.print(
            f"[bold]broker[/] starting on 127.0.0.1:{port} (the first run downloads Kafka with Maven)..."
        )
        local = broker.start(port=port, data_dir=work_dir / "broker")
    else:
        console.print(f"[bold]broker[/] reusing the one running at {local.bootstrap} (pid {local.pid})")
    bootstrap = local.bootstrap
    # Every run gets its own topics and Faust app id: a reused broker still holds an earlier run's
    # input and SLI state, whose watermark would make this run's data late.
    prefix = f"demo-{time.strftime('%Y%m%d%H%M%S')}-"
    config = _prefixed(config, prefix)
    load = _Load()
    worker: subprocess.Popen | None = None
    load_thread: threading.Thread | None = None
    failed = True
    try:
        report = topics.apply(bootstrap, topics.load_specs(topics.default_topics_dir()), name_prefix=prefix)
        console.print(f"[bold]topics[/] {report}")
        generator = demo_traffic(config, datetime.now(UTC))
        names = config.topics
        output_topics = OutputTopics(
            traces=names.spans,
            metrics=names.metrics,
            logs=names.logs,
            user_context=config.context.user_context_topic,
            service_catalog=config.context.service_catalog_topic,
        )
        users, services = context_records(generator)
        produce_context(users, services, bootstrap, output_topics, producer_config=QUIET_PRODUCER)

        env = {
            **os.environ,
            "TP_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "TP_WORKER__DATA_DIR": str(work_dir / "worker"),
            "TP_WORKER__APP_ID": config.worker.app_id,
            "TP_CONTEXT__USER_CONTEXT_TOPIC": config.context.user_context_topic,
            "TP_CONTEXT__SERVICE_CATALOG_TOPIC": config.context.service_catalog_topic,
            **{f"TP_TOPICS__{name.upper()}": topic for name, topic in names.model_dump().items()},
        }
        log_path = work_dir / "worker.log"
        console.print(f"[bold]worker[/] starting (log: {log_path})")
        command = [sys.executable, "-m", "telemetry_pipeline.cli", "worker", "--loglevel", "warning"]
        if config_path is not None:
            command += ["--config", str(config_path)]
        with log_path.open("wb") as log:
            worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        speed = EVENT_SPAN / timedelta(seconds=duration_s)
        load_thread = threading.Thread(
            target=_run_load, args=(generator, speed, bootstrap, output_topics, load), daemon=True
        )
        load_thread.start()
        failed = not _watch(
            console, bootstrap, config, load, _Processes(worker, log_path, local), sorted(services)
        )
    finally:
        # The load first: it would otherwise keep sending to a stopped broker.
        load.stop.set()
        if load_thread is not None:
            load_thread.join(timeout=30)
        if worker is not None:
            stop_worker(worker)
        if local.started:
            broker.stop(local.data_dir)
            console.print("[bold]broker[/] stopped")
        else:
            topics.delete_topics(bootstrap, [n for n in _topic_names(bootstrap) if n.startswith(prefix)])
        if failed:
            console.print(f"[bold]kept[/] {work_dir} (worker and broker logs and data) for a look")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


def demo_traffic(config: PipelineConfig, now: datetime) -> GeneratorConfig:
    """What the demo sends (docker-compose.yml's generator sends the same; a test compares them)."""
    # Event time ends `lateness + step` before the wall clock: once the input is idle, the worker's
    # watermark (wall clock minus lateness) passes the last minute at once and its snapshots come.
    settle = timedelta(
        milliseconds=duration_ms(config.sli.allowed_lateness) + duration_ms(config.sli.evaluation_step)
    )
    return GeneratorConfig(
        start_time=now - EVENT_SPAN - settle,
        duration=EVENT_SPAN,
        rate=15,  # as many requests as 30 minutes at 30 per second
        faults=[
            ErrorSpike(service="checkout", at=timedelta(minutes=5), duration=timedelta(minutes=5), rate=0.3),
            LatencyRegression(
                service="payment", at=timedelta(minutes=15), duration=timedelta(minutes=10), factor=4.0
            ),
        ],
    )


@dataclass
class _Processes:
    """What the demo started, to notice when one of them dies."""

    worker: subprocess.Popen
    worker_log: Path
    kafka: broker.Broker

    def death(self) -> str | None:
        """Which process died, with the last lines of its log; None while all live."""
        if self.worker.poll() is not None:
            return f"the worker exited with code {self.worker.returncode}" + _tail(self.worker_log)
        if broker.status(self.kafka.data_dir) is None:
            return f"the broker (pid {self.kafka.pid}) is gone" + _tail(self.kafka.data_dir / broker.LOG_FILE)
        return None


def _tail(path: Path) -> str:
    """The log's crash line or first error (the cause; what follows is the shutdown) and its last lines."""
    try:
        # Without the terminal control sequences Faust writes (its spinner), which would garble ours.
        lines = _CONTROL.sub("", path.read_text(errors="replace")).splitlines()
    except OSError:
        return f"; its log {path} cannot be read"
    # Faust marks the service that brought the worker down with "Crashed reason="; ERROR lines
    # before it are often harmless start-up noise.
    crash = next((line for line in lines if "Crashed reason=" in line), None)
    first_error = crash or next((line for line in lines if "ERROR" in line), None)
    cause = f"; {'the crash' if crash else 'its first error'}: {first_error}" if first_error else ""
    return f"{cause}\nthe last lines of {path}:\n" + "\n".join(lines[-LOG_TAIL_LINES:])


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

    return list(AdminClient(librdkafka_settings(bootstrap)).list_topics(timeout=30).topics)


def _run_load(
    generator: GeneratorConfig, speed: float, bootstrap: str, output: OutputTopics, load: _Load
) -> None:
    """Send the generated messages paced to `speed` times real time, until done or `load.stop`."""

    def counted(messages: Iterable[GeneratedMessage]) -> Iterator[GeneratedMessage]:
        for message in messages:
            load.sent[str(message.signal)] += 1
            load.last_event_ns = max(load.last_event_ns, message.event_time_ns)
            yield message

    try:
        produce_kafka(
            counted(paced(iter_messages(generator), speed, load.stop)),
            bootstrap,
            output,
            compression="lz4",
            producer_config=QUIET_PRODUCER,
            flush_timeout_s=20,
        )
    except Exception as exc:  # any failure: the watcher reports it and stops the demo
        load.error = f"{type(exc).__name__}: {exc}"
    finally:
        load.done = True


def _watch(
    console: Console,
    bootstrap: str,
    config: PipelineConfig,
    load: _Load,
    processes: _Processes,
    services: list[str],
) -> bool:
    """Show the snapshots until they cover all generated traffic; False when something failed."""
    consumer = Consumer(
        {**librdkafka_settings(bootstrap), "group.id": f"demo-{os.getpid()}", "enable.auto.commit": False}
    )
    # The run's own topics, read from their start; assigned, not subscribed: no consumer group to join.
    watched = [config.topics.sli, config.topics.dlq, config.topics.incidents]
    metadata = consumer.list_topics(timeout=30).topics
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in watched for p in metadata[t].partitions])
    latest: dict[str, dict] = {}
    seen: Counter[str] = Counter()
    incidents: list[dict] = []  # incident events in the order they came
    step_ms = duration_ms(config.sli.evaluation_step)
    final_wait_s = duration_ms(config.sli.idle_after) / 1000 + FINAL_SNAPSHOTS_GRACE_S
    load_ended_at: float | None = None
    problem: str | None = None
    try:
        with Live(
            _render(latest, seen, load.sent, incidents),
            console=console,
            refresh_per_second=2,
            transient=False,
            auto_refresh=console.is_terminal,
        ) as live:
            last_print = time.monotonic()
            while True:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    kind = {config.topics.sli: "snapshots", config.topics.dlq: "dlq"}.get(
                        message.topic(), "incidents"
                    )
                    seen[kind] += 1
                    if message.topic() == config.topics.sli:
                        snapshot = orjson.loads(message.value())
                        if snapshot["window"] == SHOWN_WINDOW:
                            latest[snapshot["service"]] = snapshot
                    elif message.topic() == config.topics.incidents:
                        incidents.append(orjson.loads(message.value()))
                problem = processes.death() or (
                    f"the load generator failed: {load.error}" if load.error else None
                )
                if problem:
                    break
                if load.done and load_ended_at is None:
                    load_ended_at = time.monotonic()
                    console.print("[bold]load[/] done; waiting for the snapshots of the last minutes...")
                if load_ended_at is not None:
                    final_end = _step_end(load.last_event_ns // 1_000_000, step_ms)
                    if _covered(latest, services, final_end):
                        break
                    if time.monotonic() - load_ended_at > final_wait_s:
                        reached = min((latest[s]["window_end"] for s in latest), default="none")
                        problem = (
                            f"the snapshots stop at {reached[11:19]} but the traffic runs to "
                            f"{_iso(final_end)[11:19]}: the worker did not evaluate its last minutes within "
                            f"{final_wait_s:.0f} s of the load's end (see its log, {processes.worker_log})"
                        )
                        break
                if console.is_terminal:
                    live.update(_render(latest, seen, load.sent, incidents))
                elif time.monotonic() - last_print > 10:
                    console.print(_render(latest, seen, load.sent, incidents))
                    last_print = time.monotonic()
            live.update(_render(latest, seen, load.sent, incidents))
    finally:
        consumer.close()
    console.line()  # off the table's last line, which a non-terminal Live leaves open
    if problem:
        console.print(f"[red]demo stopped: {escape(problem)}[/]")
        return False
    console.print(f"the table covers all generated traffic (event time up to {_iso(final_end)[11:19]} UTC)")
    return True


def _step_end(event_ms: int, step_ms: int) -> int:
    """End of the evaluation step holding `event_ms`: the snapshot that counts it."""
    return event_ms - event_ms % step_ms + step_ms


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _covered(latest: dict[str, dict], services: list[str], final_end_ms: int) -> bool:
    """Every service has a snapshot for the window ending at (or after) the traffic's last step."""
    final_end = _iso(final_end_ms)
    return all(service in latest and latest[service]["window_end"] >= final_end for service in services)


def _render(latest: dict[str, dict], seen: Counter[str], sent: Counter[str], incidents: list[dict]) -> Group:
    received = ", ".join(f"{count} {kind}" for kind, count in sorted(seen.items())) or "nothing yet"
    table = Table(
        title=f"SLIs per service, {SHOWN_WINDOW} window "
        f"(sent {sum(sent.values())} messages; received {received})"
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
    return Group(table, _incidents_table(incidents))


def _incidents_table(incidents: list[dict]) -> Table:
    """The latest incident events (trigger, update, resolve), newest last."""
    table = Table(title=f"Incidents ({len(incidents)} events; the last {SHOWN_INCIDENTS} shown)")
    for column in ("observed", "action", "type", "service", "severity", "routing", "since", "resolved"):
        table.add_column(column)
    for event in incidents[-SHOWN_INCIDENTS:]:
        style = {"trigger": "red", "resolve": "green"}.get(event["action"], "")
        routing = event["routing"] + (f" ({event['suppressed_by']})" if event["suppressed_by"] else "")
        table.add_row(
            event["observed_at"][11:19],
            f"[{style}]{event['action']}[/]" if style else event["action"],
            event["type"],
            event["service"],
            event["severity"],
            routing,
            event["started_at"][11:19],
            (event["resolved_at"] or "")[11:19],
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
