# The telemetry-pipeline image: the worker, `topics apply` and the load generator
# (docker-compose.yml runs all three from it).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
# The package reaches the topic files through a symlink into topics/; the wheel ships them.
COPY topics ./topics
RUN pip install . && rm -rf /build \
    && useradd --system --create-home --home-dir /data --uid 10001 pipeline

# Unprivileged, and the worker's state (WorkerConfig.data_dir, relative) lands in /data.
USER pipeline
WORKDIR /data
# /metrics on every interface of the container: a published port (9464) cannot reach loopback.
ENV TP_WORKER__METRICS_HOST=0.0.0.0
EXPOSE 9464
ENTRYPOINT ["telemetry-pipeline"]
CMD ["worker"]
