"""The C extension only (the protobuf wire walks of the redaction prefilter); the rest of the project's
metadata is in pyproject.toml. `pip install` builds it (a C compiler and Python's headers)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("telemetry_pipeline.redaction._wire", ["src/telemetry_pipeline/redaction/_wire.c"]),
    ]
)
