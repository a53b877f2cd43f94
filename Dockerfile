# The telemetry-pipeline image: the worker, `topics apply` and the load generator
# (docker-compose.yml runs all three from it).

# The wheel is built with a C compiler (the redaction prefilter's extension, setup.py), which the
# image it runs in does without.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml setup.py README.md ./
COPY src ./src
# The package reaches the topic files through a symlink into topics/; the wheel ships them.
COPY topics ./topics
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && useradd --system --create-home --home-dir /data --uid 10001 pipeline

# Unprivileged, and the worker's state (WorkerConfig.data_dir, relative) lands in /data.
USER pipeline
WORKDIR /data
# /metrics on every interface of the container: a published port (9464) cannot reach loopback.
ENV TP_WORKER__METRICS_HOST=0.0.0.0
EXPOSE 9464
ENTRYPOINT ["telemetry-pipeline"]
CMD ["worker"]
