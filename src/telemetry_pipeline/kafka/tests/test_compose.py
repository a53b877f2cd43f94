"""docker-compose.yml and the Dockerfile (no Docker engine here): the stack's shape and versions."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from telemetry_pipeline.kafka.broker import KAFKA_VERSION

REPO = Path(__file__).resolve().parents[4]


def test_compose_runs_the_pinned_kafka_and_the_pipeline_against_it() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert set(services) == {"kafka", "topics", "worker", "generator"}

    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    environment = kafka["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert len(base64.urlsafe_b64decode(environment["CLUSTER_ID"] + "==")) == 16
    listeners = environment["KAFKA_ADVERTISED_LISTENERS"].split(",")
    advertised = dict(listener.split("://") for listener in listeners)
    internal = advertised["INTERNAL"]  # what the other containers must use

    assert services["topics"]["command"] == ["topics", "apply", "--bootstrap", internal]
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["environment"]["TP_KAFKA__BOOTSTRAP_SERVERS"] == internal
    generate = services["generator"]["command"]
    assert generate[:3] == ["generate", "--to", "kafka"]
    assert generate[generate.index("--bootstrap") + 1] == internal
    for name in ("worker", "generator"):
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert {service["image"] for name, service in services.items() if name != "kafka"} == {
        services["topics"]["image"]
    }


def test_dockerfile_ships_the_topic_files_the_package_links_to() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY topics ./topics" in dockerfile
    assert 'ENTRYPOINT ["telemetry-pipeline"]' in dockerfile


def test_dockerfile_builds_the_c_extension_where_a_compiler_is() -> None:
    build, runtime = (REPO / "Dockerfile").read_text().split("\nFROM python:3.11-slim\n")
    assert "COPY pyproject.toml setup.py" in build  # setup.py declares the extension
    assert "apt-get install" in build and " gcc " in build
    assert "pip wheel" in build and "COPY --from=build /wheels" in runtime


def test_compose_generator_sends_what_the_demo_sends_paced_and_in_the_past() -> None:
    from datetime import UTC, datetime, timedelta

    from telemetry_pipeline.cli import _parser
    from telemetry_pipeline.config import load_config
    from telemetry_pipeline.demo import demo_traffic
    from telemetry_pipeline.generate.commands import _config

    command = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["generator"]["command"]
    args = _parser().parse_args(command)
    config = _config(args)
    demo = demo_traffic(load_config(None, environ={}), datetime.now(UTC))
    assert args.pace == "90s"
    assert (config.duration, config.rate, config.faults) == (demo.duration, demo.rate, demo.faults)
    # Ends as long before the wall clock as the demo's (parsed now): never in the future.
    assert abs(config.start_time - demo.start_time) < timedelta(minutes=1)
    assert config.start_time + config.duration < datetime.now(UTC)


def test_the_image_serves_metrics_on_every_interface() -> None:
    from telemetry_pipeline.config import load_config

    dockerfile = (REPO / "Dockerfile").read_text()
    setting = next(line for line in dockerfile.splitlines() if "TP_WORKER__METRICS_HOST" in line)
    name, value = setting.removeprefix("ENV ").split("=")
    assert load_config(None, environ={name: value}).worker.metrics_host == "0.0.0.0"
    assert load_config(None, environ={}).worker.metrics_host == "127.0.0.1"
