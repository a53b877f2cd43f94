"""telemetry-pipeline: a stream-processing stage for OpenTelemetry data on Kafka."""

__version__ = "0.1.0"
