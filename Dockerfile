# aerostat in a container: the StatsD → Prometheus bridge for Apache Airflow.
#
#   docker build -t aerostat .
#   docker run -p 9125:9125/udp -p 9102:9102 aerostat
#
# The Helm chart in charts/aerostat runs this image; any other arguments
# replace the default command, e.g. `serve --airflow --statsd.ttl=30m`.
# Needs BuildKit (the default builder since Docker 23) for RUN --mount.

ARG PYTHON_VERSION=3.12

# Build stage: turns the source into wheels (aerostat and its runtime
# dependencies only, not the [dev] extras), so the image that runs carries
# neither the sources nor the build tools.
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
# exactly what pyproject.toml needs to build: the readme and licence are part
# of the package metadata
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
# pip compiled the bytecode at install time; the chart runs the container
# with a read-only root filesystem, where writing it later would fail anyway
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# the wheels are bind-mounted from the build stage, so no layer keeps them
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels aerostat \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin aerostat

# A numeric user, so that Kubernetes' runAsNonRoot can verify it is not root
# without a runAsUser in every pod spec.
USER 10001:10001

# StatsD from Airflow: UDP is what Airflow's StatsD client sends; TCP takes
# newline-framed lines from clients that keep a stream open.
EXPOSE 9125/udp 9125/tcp
# HTTP: /metrics for Prometheus, /-/healthy and /-/ready for probes.
EXPOSE 9102/tcp
# OTLP/HTTP from Airflow's OpenTelemetry mode, with --otlp.listen-address=:4318
EXPOSE 4318/tcp

# slim images have no curl: Python's own urllib asks, and a refused
# connection or an error status makes it exit non-zero. Assumes the default
# --web.listen-address=:9102.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9102/-/healthy', timeout=3)"]

ENTRYPOINT ["aerostat"]
# --airflow: the built-in mapping of Airflow's metrics
CMD ["serve", "--airflow"]
