"""End-to-end throughput of the real pipeline: broker, fresh topics, W Faust workers, `.clean` out.

    .venv/bin/python benchmarks/throughput.py [--workers W] [--partitions P] [--rate SPANS_PER_S] [...]

Starts (or reuses) the local broker, creates this run's topics under a unique prefix, publishes
the context tables, pre-loads the workload (or, with --rate, produces it paced while the workers
run), starts W workers (`telemetry-pipeline worker`) and reads the `.clean` topics until every
input message has come out. Then it stops the workers, times the core stage by stage on a sample of
the same workload plus the producing of its outputs, deletes the run's topics and writes
`results/<stamp>.json`, `results/<stamp>.png` (throughput, consumer lag, CPU and RSS over time)
and `results/<stamp>-profile.txt` (pyinstrument call tree of Core.process).

Every input message carries two headers, which the worker copies onto its `.clean` record:
`bench.seq` (its index in the workload) and `bench.ts` (wall-clock ns when it was produced), so
latency is producer timestamp to arrival at this process's `.clean` consumer. A paced run also
reports it for the messages produced after its first STARTUP_S seconds, which the target is judged on.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import dataclasses
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import psutil
from _stages import drive, new_core, profile_core, stage_breakdown
from _workload import (
    DEFAULT_BATCH_MESSAGES,
    ITEM_NAMES,
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
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from telemetry_pipeline.app.delivery import Delivery, OutboundRecord
from telemetry_pipeline.config import PipelineConfig, TopicNames, load_config
from telemetry_pipeline.generate import OutputTopics, produce_context
from telemetry_pipeline.kafka import broker, topics
from telemetry_pipeline.otlp import Signal

SEQ_HEADER, TS_HEADER = "bench.seq", "bench.ts"
SAMPLE_INTERVAL_S = 0.5
LAG_INTERVAL_S = 1.0
SLOWEST_SHOWN = 12  # messages listed with their time in the run, a paced run's tail
TARGETS = {"spans_per_s_one_worker": 50_000, "p99_latency_ms_at_half_rate": 500, "peak_rss_mb": 250}
# A paced run's latency target is judged on the messages produced after this many seconds of it (what an
# operator sees once a worker runs); the first seconds' tail (one-time costs of the first records) is
# reported next to it.
STARTUP_S = 10.0


# -- topics and worker environment ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunTopics:
    """This run's topic names: the configured ones behind a unique prefix, so runs never meet."""

    prefix: str
    partitions: int  # of every topic
    names: TopicNames
    user_context: str
    service_catalog: str

    @classmethod
    def of(cls, prefix: str, partitions: int, config: PipelineConfig) -> RunTopics:
        names = TopicNames(**{field: prefix + value for field, value in config.topics.model_dump().items()})
        context = config.context
        return cls(
            prefix,
            partitions,
            names,
            prefix + context.user_context_topic,
            prefix + context.service_catalog_topic,
        )

    @property
    def app_id(self) -> str:
        return self.prefix + "app"  # Faust's consumer group and the prefix of its internal topics

    def inputs(self) -> list[str]:
        return [self.names.input(signal) for signal in Signal]

    def input_partitions(self) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for topic in self.inputs() for p in range(self.partitions)]

    def clean_signals(self) -> dict[str, Signal]:
        return {self.names.clean(signal): signal for signal in Signal}

    def worker_env(self, bootstrap: str, data_dir: Path) -> dict[str, str]:
        env = {f"TP_TOPICS__{field.upper()}": value for field, value in self.names.model_dump().items()}
        env.update(
            {
                "TP_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                "TP_CONTEXT__USER_CONTEXT_TOPIC": self.user_context,
                "TP_CONTEXT__SERVICE_CATALOG_TOPIC": self.service_catalog,
                "TP_WORKER__APP_ID": self.app_id,
                "TP_WORKER__DATA_DIR": str(data_dir),
                "TP_WORKER__TABLE_PARTITIONS": str(self.partitions),  # co-partitioned with the inputs
                "TP_WORKER__METRICS_PORT": "null",  # W workers on one host would fight for the port
            }
        )
        return env


def _create_topics(bootstrap: str, run: RunTopics) -> None:
    partitions = run.partitions
    specs = topics.load_specs(topics.default_topics_dir())
    topics.apply(bootstrap, specs, partitions=partitions, name_prefix=run.prefix)
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    for name in run.inputs():
        found = metadata.topics.get(name)
        if found is None or len(found.partitions) != partitions:
            raise RuntimeError(f"topic {name} was not created with {partitions} partitions")


def _delete_run_topics(bootstrap: str, run: RunTopics, groups: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(run.prefix)]
    if names:
        topics.delete_topics(bootstrap, names)
    for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
        with contextlib.suppress(KafkaException):
            future.result()


# -- load ---------------------------------------------------------------------------------------------


def _input_producer(bootstrap: str, compression: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "compression.type": compression,
            "queue.buffering.max.kbytes": 512 * 1024,
            "message.max.bytes": 8 * 1024 * 1024,
            "acks": "all",
            # Keyed input is partitioned as Java clients do, as the worker's tables assume.
            "partitioner": "murmur2_random",
        }
    )


def _produce(producer: Producer, run: RunTopics, workload: Workload, index: int) -> None:
    message = workload.messages[index]
    headers = [(SEQ_HEADER, str(index).encode()), (TS_HEADER, str(time.time_ns()).encode())]
    topic = run.names.input(message.signal)
    # Unkeyed messages round-robin, for an even load per partition (librdkafka's sticky
    # partitioner would put runs of them on one partition); keyed ones go by the key's hash.
    target = {"partition": index % run.partitions} if message.key is None else {}
    while True:
        try:
            producer.produce(topic, message.payload, message.key, headers=headers, **target)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


def _flush(producer: Producer) -> None:
    if producer.flush(60):
        raise RuntimeError("input messages still unacknowledged after 60 s")


def preload(bootstrap: str, run: RunTopics, workload: Workload, compression: str) -> float:
    started = time.perf_counter()
    producer = _input_producer(bootstrap, compression)
    for index in range(len(workload.messages)):
        _produce(producer, run, workload, index)
    _flush(producer)
    return time.perf_counter() - started


class PacedLoad(threading.Thread):
    """Produces the workload at `spans_per_s` (logs and metrics in between, as generated)."""

    def __init__(
        self, bootstrap: str, run: RunTopics, workload: Workload, spans_per_s: float, compression: str
    ) -> None:
        super().__init__(name="paced-load", daemon=True)
        self._producer = _input_producer(bootstrap, compression)
        self._run, self._workload, self._rate = run, workload, spans_per_s
        self._stop_event = threading.Event()
        self.error: BaseException | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            start = time.monotonic()
            self.started_at = time.time()
            spans = 0
            for index, message in enumerate(self._workload.messages):
                if self._stop_event.is_set():
                    return
                delay = start + spans / self._rate - time.monotonic()
                if delay > 0 and self._stop_event.wait(delay):
                    return
                _produce(self._producer, self._run, self._workload, index)
                if message.signal is Signal.TRACES:
                    spans += message.records
            _flush(self._producer)
            self.finished_at = time.time()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


# -- reading .clean -----------------------------------------------------------------------------------


class CleanReader(TopicReader):
    """Reads the `.clean` topics from the start; records arrival time and latency per input message."""

    def __init__(self, bootstrap: str, run: RunTopics, workload: Workload) -> None:
        self._signals = run.clean_signals()
        partitions = [TopicPartition(topic, p, 0) for topic in self._signals for p in range(run.partitions)]
        super().__init__("clean-reader", bootstrap, run.prefix + "bench-reader", partitions)
        self._records = [message.records for message in workload.messages]
        self.seen: set[int] = set()
        # (arrival ns, signal, items, latency ns), first arrival of each input message only.
        self.arrivals: list[tuple[int, Signal, int, int]] = []
        self.duplicates = 0
        self.items: Counter[Signal] = Counter()

    def on_message(self, message: Any, arrived_ns: int) -> None:
        headers = dict(message.headers() or ())
        seq = int(headers[SEQ_HEADER])
        if seq in self.seen:
            self.duplicates += 1  # at-least-once: a redelivery after a rebalance
            return
        self.seen.add(seq)
        signal_ = self._signals[message.topic()]
        items = self._records[seq]
        self.items[signal_] += items
        self.arrivals.append((arrived_ns, signal_, items, arrived_ns - int(headers[TS_HEADER])))


# -- workers and sampling -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WorkerSample:
    """One worker's counters from the OS, cumulative since it started (except RSS)."""

    cpu_s: float  # all its threads
    rss: int  # bytes
    # Seconds its main thread was runnable but waiting for a CPU (Linux schedstat): how much
    # the other processes on this machine held the worker back.
    runqueue_wait_s: float


def _runqueue_wait_s(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


class Workers:
    """W `telemetry-pipeline worker` processes, each in its own session so that ^C reaches only us."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.handles: list[psutil.Process] = []

    def start(
        self,
        count: int,
        run: RunTopics,
        bootstrap: str,
        work_dir: Path,
        loglevel: str,
        env_overrides: dict[str, str] | None = None,
    ) -> None:
        for number in range(count):
            data_dir = work_dir / f"worker-{number}"
            data_dir.mkdir(parents=True)
            log_path = work_dir / f"worker-{number}.log"
            env = {**os.environ, **run.worker_env(bootstrap, data_dir), **(env_overrides or {})}
            with log_path.open("wb") as log_file:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "telemetry_pipeline.cli", "worker", "--loglevel", loglevel],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            self.logs.append(log_path)
            self.handles.append(psutil.Process(self.processes[-1].pid))

    def check_alive(self) -> None:
        for process, log_path in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"worker pid {process.pid} exited with {process.returncode}:\n{tail}")

    def sample(self) -> list[WorkerSample]:
        samples = []
        for handle in self.handles:
            try:
                with handle.oneshot():
                    cpu = handle.cpu_times()
                    cpu_s = cpu.user + cpu.system + cpu.children_user + cpu.children_system
                    samples.append(
                        WorkerSample(cpu_s, handle.memory_info().rss, _runqueue_wait_s(handle.pid))
                    )
            except psutil.Error:
                samples.append(WorkerSample(float("nan"), 0, float("nan")))
        return samples

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (Faust stops its agents and commits), SIGKILL after `timeout`; only our own pids."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


class PySpy:
    """py-spy sampling one worker from outside (no change to the worker); ends when the worker does."""

    def __init__(self, pid: int, path: Path) -> None:
        self.path = path
        self._process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "100",
                "--format",
                "raw",
                "--output",
                str(path),
                "--nonblocking",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> None:
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.send_signal(signal.SIGINT)  # py-spy writes what it has on ^C
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


# Where a sample of a worker is spent: the innermost frame from one of these places decides.
_PYSPY_PLACES = (
    ("otlp/codec.py", "decode/encode"),
    ("enrichment/", "enrich"),
    ("redaction/", "redact"),
    ("sli/", "aggregate"),
    ("telemetry_pipeline/core.py", "core (other)"),
    ("app/delivery.py", "produce .clean (confluent-kafka)"),
    ("telemetry_pipeline/app/", "worker shell"),
    ("logging/", "logging"),
    ("faust/tables/", "faust tables (get/set)"),
    ("faust/transport/producer.py", "faust producer (changelog, sli-partials)"),
    ("aiokafka/producer/", "faust producer (changelog, sli-partials)"),
    ("aiokafka/consumer/", "consume (aiokafka)"),
    ("aiokafka/", "aiokafka (connections, codecs)"),
    ("faust/", "faust and the event loop"),
    ("mode/", "faust and the event loop"),
)


def summarize_pyspy(path: Path, top: int = 20) -> dict[str, Any]:
    """Shares of a worker's active samples: by place (stage, Faust, Kafka client) and by leaf function."""
    places: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaves[frames[-1]] += count
        places[_place(frames)] += count
    return {
        "samples": total,
        "by_place": {place: rate(count, total) for place, count in places.most_common()},
        "top_leaf_functions": [
            {"function": name, "share": rate(count, total)} for name, count in leaves.most_common(top)
        ],
    }


def _place(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, place in _PYSPY_PLACES:
            if marker in frame:
                return place
    return "other"


def group_lag(admin: AdminClient, run: RunTopics) -> int | None:
    """Messages not yet committed by the workers' consumer group, over the input partitions."""
    group, partitions = run.app_id, run.input_partitions()
    try:
        ends = {
            tp: future.result().offset
            for tp, future in admin.list_offsets(
                {tp: OffsetSpec.latest() for tp in partitions}, request_timeout=5
            ).items()
        }
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        committed = admin.list_consumer_group_offsets(request, request_timeout=5)[group].result()
    except KafkaException:
        return None
    end_of = {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
    return sum(
        max(0, end_of[(tp.topic, tp.partition)] - max(tp.offset, 0)) for tp in committed.topic_partitions
    )


def wait_for_assignment(admin: AdminClient, run: RunTopics, workers: Workers, timeout: float = 90.0) -> float:
    """Seconds until every input partition is assigned to a member of the workers' group."""
    started = time.monotonic()
    group = run.app_id
    wanted = {(tp.topic, tp.partition) for tp in run.input_partitions()}
    while time.monotonic() - started < timeout:
        workers.check_alive()
        try:
            description = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
            assigned = {
                (tp.topic, tp.partition)
                for member in description.members
                for tp in member.assignment.topic_partitions
            }
            if wanted <= assigned:
                return time.monotonic() - started
        except KafkaException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the workers' group {group} did not get every input partition within {timeout:.0f} s")


# -- the run ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    t: float  # wall-clock seconds
    workers: list[WorkerSample]
    lag: int | None


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like ^C, so the cleanup below runs either way."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def local_broker(args: argparse.Namespace, console: Console) -> Iterator[str]:
    if args.bootstrap:
        yield args.bootstrap
        return
    with console.status(f"starting (or reusing) the local broker on port {args.port}"):
        running = broker.start(args.port)
    console.print(
        f"broker {running.bootstrap} ({'started' if running.started else 'reused'}, pid {running.pid})"
    )
    try:
        yield running.bootstrap
    finally:
        if running.started:
            broker.stop(running.data_dir)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=True)
    stamp = run_stamp()
    with console.status("generating the workload"):
        workload = build_workload(args)
    config = load_config()
    run_topics = RunTopics.of(f"bench-{stamp.lower()}-", args.partitions, config)
    work_dir = Path(tempfile.mkdtemp(prefix="tp-bench-"))
    try:
        with terminate_on_sigterm(), local_broker(args, console) as bootstrap:
            result = _run(args, console, stamp, workload, config, run_topics, bootstrap, work_dir)
    except KeyboardInterrupt:
        console.print(f"[red]interrupted; everything started was stopped; worker logs in {work_dir}")
        return 130
    except BaseException:
        console.print(f"[red]run failed; everything started was stopped; worker logs in {work_dir}")
        raise
    shutil.rmtree(work_dir)
    json_path = args.out / f"{stamp}.json"
    write_json(json_path, result)
    plot(result, args.out / f"{stamp}.png")
    _print_summary(console, result)
    console.print(f"wrote {json_path} and {json_path.with_suffix('.png').name}")
    return 0 if result["end_to_end"]["complete"] else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_workload_flags(parser, default_spans=500_000)
    run = parser.add_argument_group("run")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    run.add_argument(
        "--rate",
        type=float,
        default=None,
        help="produce at this many spans/s while the workers run, instead of pre-loading",
    )
    run.add_argument(
        "--duration",
        type=float,
        default=150.0,
        help="give up waiting for the outputs after this many seconds of running (default 150)",
    )
    run.add_argument("--bootstrap", default=None, help="reuse this broker instead of the local one")
    run.add_argument("--port", type=int, default=9092, help="port of the local broker (default 9092)")
    run.add_argument(
        "--input-compression",
        default="none",
        choices=("none", "lz4", "zstd", "snappy", "gzip"),
        help="compression of the input topics' batches, as a Collector might set (default none)",
    )
    run.add_argument(
        "--breakdown-spans",
        type=int,
        default=100_000,
        help="spans of the workload timed stage by stage after the run (0: skip)",
    )
    run.add_argument("--py-spy", action="store_true", help="sample worker 0 with py-spy during the run")
    run.add_argument("--loglevel", default="warning", help="workers' log level (logs kept if the run fails)")
    return parser


def _run(
    args: argparse.Namespace,
    console: Console,
    stamp: str,
    workload: Workload,
    config: PipelineConfig,
    run: RunTopics,
    bootstrap: str,
    work_dir: Path,
) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    spans_total = workload.items()[Signal.TRACES]
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_delete_run_topics, bootstrap, run, [run.app_id, run.prefix + "bench-reader"])
        _create_topics(bootstrap, run)
        context_topics = OutputTopics(user_context=run.user_context, service_catalog=run.service_catalog)
        produce_context(workload.users, workload.services, bootstrap, context_topics)
        preload_s = None
        if args.rate is None:
            with console.status(f"pre-loading {len(workload.messages):,} messages"):
                preload_s = preload(bootstrap, run, workload, args.input_compression)
        reader = CleanReader(bootstrap, run, workload)
        reader.start()
        cleanup.callback(reader.stop)
        workers = Workers()
        cleanup.callback(workers.stop)  # registered first: stops whatever was started
        workers.start(args.workers, run, bootstrap, work_dir, args.loglevel)
        started = time.time()
        spy = PySpy(workers.processes[0].pid, work_dir / "py-spy.txt") if args.py_spy else None
        if spy:
            cleanup.callback(spy.stop)
        pacer = None
        assigned_s = None
        if args.rate is not None:
            with console.status("waiting for the workers to be assigned every input partition"):
                assigned_s = wait_for_assignment(admin, run, workers)
            pacer = PacedLoad(bootstrap, run, workload, args.rate, args.input_compression)
            pacer.start()
            cleanup.callback(pacer.stop)

        samples = _watch(
            args,
            console,
            workers,
            reader,
            pacer,
            admin,
            run,
            spans_total,
            started,
            len(workload.messages),
        )
        workers.stop()
        reader.stop()
        pyspy = None
        if spy:
            spy.stop()
            if spy.path.exists():
                pyspy_path = args.out / f"{stamp}-worker-pyspy.txt"
                pyspy_path.parent.mkdir(parents=True, exist_ok=True)
                pyspy_path.write_bytes(spy.path.read_bytes())
                pyspy = {"raw": pyspy_path.name, **summarize_pyspy(pyspy_path)}
        breakdown = None
        if args.breakdown_spans:
            with console.status("timing the core stage by stage, and producing its outputs"):
                breakdown = _breakdown(args, stamp, workload, config, run, bootstrap)

    end_to_end = _figures(reader, samples, workload, started, paced=args.rate is not None)
    return {
        "kind": "throughput",
        "stamp": stamp,
        "command": [sys.executable, *sys.argv],
        "host": host_info(),
        "mode": "paced" if args.rate is not None else "preload",
        "rate_spans_per_s": args.rate,
        # What the paced producer achieved (it shares the CPUs with the workers).
        "produced_spans_per_s": (
            rate(spans_total, pacer.finished_at - pacer.started_at)
            if pacer and pacer.started_at and pacer.finished_at
            else None
        ),
        "workers": args.workers,
        "partitions": args.partitions,
        "input_compression": args.input_compression,
        "worker_overrides": {name: value for name, value in os.environ.items() if name.startswith("TP_")},
        "output_producer": config.kafka.producer_config() | {"bootstrap.servers": bootstrap},
        "workload": workload.describe(),
        "preload_s": preload_s,
        "seconds_to_assignment": assigned_s,
        "end_to_end": end_to_end,
        "timeline": _timeline(reader, samples, started),
        "breakdown": breakdown,
        "worker_profile_py_spy": pyspy,
        "targets": _targets(args, end_to_end, breakdown),
    }


def _watch(
    args: argparse.Namespace,
    console: Console,
    workers: Workers,
    reader: CleanReader,
    pacer: PacedLoad | None,
    admin: AdminClient,
    run: RunTopics,
    spans_total: int,
    started: float,
    messages_total: int,
) -> list[Sample]:
    samples: list[Sample] = []
    next_lag = 0.0
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("spans"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("waiting for the workers", total=spans_total)
        while len(reader.seen) < messages_total:
            now = time.time()
            if now - started > args.duration:
                console.print(
                    f"[yellow]gave up after {args.duration:.0f} s: "
                    f"{len(reader.seen):,} of {messages_total:,} messages came out"
                )
                break
            for thread in (reader, pacer):
                if thread is not None and thread.error is not None:
                    raise RuntimeError(f"{thread.name} failed") from thread.error
            workers.check_alive()
            lag = None
            if now >= next_lag:
                lag = group_lag(admin, run)
                next_lag = now + LAG_INTERVAL_S
            samples.append(Sample(now, workers.sample(), lag))
            if lag is not None:
                progress.update(task, description=f"consumer lag {lag:,} messages")
            progress.update(task, completed=reader.items[Signal.TRACES])
            time.sleep(SAMPLE_INTERVAL_S)
        samples.append(Sample(time.time(), workers.sample(), group_lag(admin, run)))
    return samples


def _breakdown(
    args: argparse.Namespace,
    stamp: str,
    workload: Workload,
    config: PipelineConfig,
    run: RunTopics,
    bootstrap: str,
) -> dict[str, Any]:
    """Stage CPU on a prefix of the workload, its profile, and the cost of producing its outputs."""
    sample = dataclasses.replace(workload, messages=_prefix(workload, args.breakdown_spans))
    stages = stage_breakdown(sample, config, DEFAULT_BATCH_MESSAGES)
    profile_path = args.out / f"{stamp}-profile.txt"
    top = profile_core(sample, config, DEFAULT_BATCH_MESSAGES, profile_path)
    produce = _time_produce(sample, config, run, bootstrap)
    spans = stages["spans"]
    stages["cpu_s"]["produce"] = produce["cpu_s"]
    stages["us_per_span"]["produce"] = rate(produce["cpu_s"] * 1e6, spans)
    total = sum(stages["cpu_s"].values())
    stages["share"] = {stage: rate(seconds, total) for stage, seconds in stages["cpu_s"].items()}
    stages["spans_per_cpu_s_with_produce"] = rate(spans, total)
    return {
        "stages": stages,
        "produce": produce,
        "profile": {"call_tree": profile_path.name, "top_self_time": top},
    }


def _prefix(workload: Workload, spans: int) -> list:
    taken, count = [], 0
    for message in workload.messages:
        taken.append(message)
        count += message.records if message.signal is Signal.TRACES else 0
        if count >= spans:
            break
    return taken


def _time_produce(sample: Workload, config: PipelineConfig, run: RunTopics, bootstrap: str) -> dict[str, Any]:
    """The worker's own delivery path (`Delivery.send`, confluent-kafka) for the sample's outputs.

    One send per core batch, as the worker does, to this run's `.clean` topics. The CPU time
    includes librdkafka's threads.
    """
    core = new_core(sample, config)
    records = [
        [OutboundRecord(run.names.clean(clean.signal), clean.key, clean.value) for clean in result.clean]
        for result in drive(core, sample, DEFAULT_BATCH_MESSAGES)
    ]
    kafka = config.kafka.model_copy(update={"bootstrap_servers": bootstrap})
    delivery = Delivery(kafka.producer_config(), config.worker.delivery_timeout_s)

    async def send_all() -> None:
        for batch in records:
            await delivery.send(batch)

    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(send_all())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    delivery.close()
    messages = sum(len(batch) for batch in records)
    return {
        "messages": messages,
        "bytes": sum(len(r.value) for batch in records for r in batch),
        "wall_s": wall,
        "cpu_s": cpu,
    }


# -- figures ------------------------------------------------------------------------------------------


def _percentile(sorted_values: list[float], share: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def _workers_at(samples: list[Sample], t: float, counter: str) -> float:
    """A cumulative counter (`cpu_s`, `runqueue_wait_s`) summed over the workers at wall time `t`,
    interpolated between samples."""
    times = [s.t for s in samples]
    totals = [sum(getattr(worker, counter) for worker in s.workers) for s in samples]
    i = bisect.bisect_left(times, t)
    if i == 0:
        return totals[0]
    if i >= len(times):
        return totals[-1]
    left, right = times[i - 1], times[i]
    return totals[i - 1] + (totals[i] - totals[i - 1]) * (t - left) / (right - left)


def _figures(
    reader: CleanReader, samples: list[Sample], workload: Workload, started: float, paced: bool
) -> dict[str, Any]:
    arrivals = sorted(reader.arrivals)
    expected = workload.items()
    figures: dict[str, Any] = {
        "complete": len(reader.seen) == len(workload.messages),
        "messages_out": len(reader.seen),
        "messages_in": len(workload.messages),
        "duplicates": reader.duplicates,
        "items_in": {ITEM_NAMES[s]: n for s, n in expected.items()},
        "items_out": {ITEM_NAMES[s]: reader.items[s] for s in Signal},
        "peak_rss_mb": [
            max(s.workers[i].rss for s in samples) / 2**20 for i in range(len(samples[0].workers))
        ],
        "worker_cpu_s_total": [worker.cpu_s for worker in samples[-1].workers],
    }
    if len(arrivals) < 2:
        return figures
    first, last = arrivals[0][0] / 1e9, arrivals[-1][0] / 1e9
    window = last - first
    cpu = _workers_at(samples, last, "cpu_s") - _workers_at(samples, first, "cpu_s")
    waited = _workers_at(samples, last, "runqueue_wait_s") - _workers_at(samples, first, "runqueue_wait_s")
    latencies = sorted(latency / 1e6 for _, _, _, latency in arrivals)
    by_signal: dict[str, list[float]] = {}
    for _, signal_, _, latency in arrivals:
        by_signal.setdefault(ITEM_NAMES[signal_], []).append(latency / 1e6)
    figures.update(
        {
            "seconds_to_first_output": first - started,
            "window_s": window,  # first to last message out
            "worker_cpu_s_in_window": cpu,
            # Per worker: share of the window on a CPU, and waiting for one (held back by other load).
            "worker_busy_share": rate(cpu, window * len(samples[0].workers)),
            "worker_runqueue_wait_share": rate(waited, window * len(samples[0].workers)),
            "per_s": {ITEM_NAMES[s]: rate(reader.items[s], window) for s in Signal},
            "per_cpu_s": {ITEM_NAMES[s]: rate(reader.items[s], cpu) for s in Signal},
            "latency_ms": {
                "p50": _percentile(latencies, 0.50),
                "p99": _percentile(latencies, 0.99),
                "max": latencies[-1],
                "messages": len(latencies),
                "measures": "producer timestamp to arrival on .clean"
                + ("" if paced else ", including the wait of pre-loaded messages (use --rate)"),
                # Where a tail comes from: logs wait in the hold for their trace's root span.
                "by_signal": {
                    name: {"p50": _percentile(sorted(ms), 0.50), "max": max(ms), "messages": len(ms)}
                    for name, ms in by_signal.items()
                },
            },
        }
    )
    if paced:
        figures["latency_ms"]["after_startup"] = _after_startup(arrivals)
    return figures


def _after_startup(arrivals: list[tuple[int, Signal, int, int]]) -> dict[str, Any]:
    """Latency of the messages produced STARTUP_S or more after the first one (producer timestamps)."""
    produced_ns = [arrived - latency for arrived, _, _, latency in arrivals]
    start_ns = min(produced_ns)
    cutoff_ns = start_ns + STARTUP_S * 1e9
    steady = sorted(
        latency / 1e6 for (_, _, _, latency), at in zip(arrivals, produced_ns, strict=True) if at >= cutoff_ns
    )
    return {
        "excludes_first_s": STARTUP_S,
        "p50": _percentile(steady, 0.50) if steady else None,
        "p99": _percentile(steady, 0.99) if steady else None,
        "max": steady[-1] if steady else None,
        "messages": len(steady),
        # Where the tail lies in the run: periodic work (a table's persistence, a GC pass) shows as
        # slow messages at regular times.
        "slowest": [
            {"produced_s": round((at - start_ns) / 1e9, 2), "produced_unix_s": round(at / 1e9, 2),
             "signal": ITEM_NAMES[signal_], "ms": round(latency / 1e6, 1)}
            for (_, signal_, _, latency), at in sorted(
                zip(arrivals, produced_ns, strict=True), key=lambda pair: -pair[0][3]
            )
            if at >= cutoff_ns
        ][:SLOWEST_SHOWN],
    }


def _timeline(reader: CleanReader, samples: list[Sample], started: float) -> dict[str, Any]:
    """Per-second throughput of `.clean` and the sampled lag, CPU and RSS, from the workers' start."""
    seconds = int(max([s.t for s in samples] + [a[0] / 1e9 for a in reader.arrivals]) - started) + 1
    per_second = {ITEM_NAMES[s]: [0] * seconds for s in Signal}
    for arrived_ns, signal_, items, _ in reader.arrivals:
        per_second[ITEM_NAMES[signal_]][int(arrived_ns / 1e9 - started)] += items
    cpu_share: list[list[float]] = []
    for previous, current in itertools.pairwise(samples):
        span = current.t - previous.t
        cpu_share.append(
            [rate(c.cpu_s - p.cpu_s, span) for p, c in zip(previous.workers, current.workers, strict=True)]
        )
    return {
        "throughput_per_s": per_second,
        "samples": [
            {
                "t": s.t - started,
                "lag_messages": s.lag,
                "rss_mb": [worker.rss / 2**20 for worker in s.workers],
                "cpu_share": cpu_share[i - 1] if i else None,
            }
            for i, s in enumerate(samples)
        ],
    }


def _targets(args: argparse.Namespace, figures: dict[str, Any], breakdown: dict[str, Any] | None) -> dict:
    spans_per_s = figures.get("per_s", {}).get("spans", 0.0)
    p99 = figures.get("latency_ms", {}).get("p99")
    peak_rss = max(figures["peak_rss_mb"])
    targets: dict[str, Any] = {
        "peak_rss_mb": {
            "target": TARGETS["peak_rss_mb"],
            "measured": peak_rss,
            "met": peak_rss < TARGETS["peak_rss_mb"],
        },
    }
    if args.rate is None and args.workers == 1:
        target = TARGETS["spans_per_s_one_worker"]
        targets["spans_per_s_one_worker"] = {
            "target": target,
            "measured": spans_per_s,
            "met": spans_per_s >= target,
        }
    if args.rate is not None:
        target = TARGETS["p99_latency_ms_at_half_rate"]
        steady_p99 = figures.get("latency_ms", {}).get("after_startup", {}).get("p99")
        targets["p99_latency_ms"] = {
            "target": target,
            "at_rate_spans_per_s": args.rate,
            "judged_on": f"messages produced after the first {STARTUP_S:.0f} s",
            "measured": steady_p99,
            "including_startup": p99,
            "met": steady_p99 is not None and steady_p99 < target,
            "half_of_target_rate": args.rate <= TARGETS["spans_per_s_one_worker"] / 2,
        }
    if breakdown:
        measured = breakdown["stages"]["spans_per_cpu_s_all_stages"]
        targets["core_spans_per_cpu_s"] = {
            "target": 100_000,
            "measured": measured,
            "met": measured >= 100_000,
        }
    return targets


def plot(result: dict[str, Any], path: Path) -> None:
    timeline = result["timeline"]
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for name, values in timeline["throughput_per_s"].items():
        top.plot(range(len(values)), values, label=f"{name}/s", drawstyle="steps-post")
    if result["mode"] == "preload":
        top.axhline(
            TARGETS["spans_per_s_one_worker"],
            color="grey",
            linestyle=":",
            linewidth=1,
            label="target, 1 worker",
        )
    top.set_ylabel("items out per second")
    top.legend(loc="upper right")
    e2e = result["end_to_end"]
    latency = e2e.get("latency_ms", {})
    top.set_title(
        f"{result['mode']}, {result['workers']} worker(s), {result['partitions']} partitions: "
        f"{e2e.get('per_s', {}).get('spans', 0):,.0f} spans/s, "
        f"{e2e.get('per_cpu_s', {}).get('spans', 0):,.0f} per CPU s, "
        f"p50/p99 {latency.get('p50') or 0:,.0f}/{latency.get('p99') or 0:,.0f} ms"
    )
    samples = timeline["samples"]
    lagged = [(s["t"], s["lag_messages"]) for s in samples if s["lag_messages"] is not None]
    if lagged:
        middle.plot(*zip(*lagged, strict=True), color="tab:red")
    middle.set_ylabel("consumer lag (messages)")
    for worker in range(result["workers"]):
        t = [s["t"] for s in samples if s["cpu_share"]]
        bottom.plot(
            t, [s["cpu_share"][worker] * 100 for s in samples if s["cpu_share"]], label=f"w{worker} CPU %"
        )
        bottom.plot(
            [s["t"] for s in samples],
            [s["rss_mb"][worker] for s in samples],
            linestyle="--",
            label=f"w{worker} RSS MB",
        )
    bottom.set_xlabel("seconds since the workers started")
    bottom.set_ylabel("CPU % / RSS MB")
    bottom.legend(loc="upper right")
    save_figure(figure, path)


def _print_summary(console: Console, result: dict[str, Any]) -> None:
    e2e = result["end_to_end"]
    per_s, per_cpu, latency = e2e.get("per_s", {}), e2e.get("per_cpu_s", {}), e2e.get("latency_ms", {})
    console.print(
        f"{result['mode']}, W={result['workers']}, P={result['partitions']}: "
        f"{e2e['messages_out']:,}/{e2e['messages_in']:,} messages out; "
        + ", ".join(f"{per_s.get(n, 0):,.0f} {n}/s" for n in ("spans", "logs", "points"))
        + f"; {per_cpu.get('spans', 0):,.0f} spans per worker CPU s; "
        f"latency p50 {latency.get('p50') or 0:,.0f} ms, p99 {latency.get('p99') or 0:,.0f} ms; "
        + (
            f"after the first {STARTUP_S:.0f} s p50 {steady.get('p50') or 0:,.0f} ms, "
            f"p99 {steady.get('p99') or 0:,.0f} ms; "
            if (steady := latency.get("after_startup"))
            else ""
        )
        + f"peak RSS {', '.join(f'{m:,.0f}' for m in e2e['peak_rss_mb'])} MB; "
        f"workers on a CPU {e2e.get('worker_busy_share', 0):.0%} of the time, "
        f"waiting for one {e2e.get('worker_runqueue_wait_share', 0):.0%}"
    )
    breakdown = result["breakdown"]
    if breakdown:
        stages = breakdown["stages"]
        console.print(
            "stages, CPU us per span: "
            + ", ".join(
                f"{stage} {us:.2f} ({stages['share'][stage]:.0%})"
                for stage, us in stages["us_per_span"].items()
            )
        )
    for name, target in result["targets"].items():
        console.print(
            f"  {name}: {'met' if target['met'] else 'NOT met'} "
            f"(measured {target['measured'] or 0:,.0f}, target {target['target']:,})"
        )


if __name__ == "__main__":
    sys.exit(main())
