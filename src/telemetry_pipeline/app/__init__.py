"""The Faust worker: a thin shell that feeds Kafka records to the core and writes what it returns."""

from telemetry_pipeline.app.worker import create_app, run_worker

__all__ = ["create_app", "run_worker"]
