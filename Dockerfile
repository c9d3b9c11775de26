# syntax=docker/dockerfile:1
#
# configsvc container image.
#
#   docker build -t configsvc:0.1.0 .
#   docker run --rm -p 50051:50051 \
#     -e CONFIGSVC_ETCD_ENDPOINTS=etcd-0:2379,etcd-1:2379,etcd-2:2379 configsvc:0.1.0
#
# Runtime configuration (environment variables read by `configsvc serve`):
#   CONFIGSVC_LISTEN          gRPC listen address            (default "[::]:50051")
#   CONFIGSVC_ETCD_ENDPOINTS  comma-separated etcd host:port list (default "127.0.0.1:2379")
#   CONFIGSVC_ROOT_PREFIX     etcd key prefix for all configsvc data (default "/configsvc")
#   CONFIGSVC_LOG_FORMAT      json | text                     (default "json")
#   CONFIGSVC_LOG_LEVEL       Python logging level            (default "INFO")
#   CONFIGSVC_GRACE_PERIOD    seconds in-flight RPCs get after SIGTERM (default 10;
#                             use `docker stop -t 15` or more to let it finish)
#   CONFIGSVC_ETCD_CA_FILE    CA bundle for etcd TLS
#   CONFIGSVC_ETCD_CERT_FILE  client certificate for etcd mTLS
#   CONFIGSVC_ETCD_KEY_FILE   client key for etcd mTLS
#
# Everything the build needs comes from the base image and PyPI.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: make the project's wheel ----------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# .dockerignore limits the context to what the wheel needs
# (pyproject.toml, README/LICENSE and the configsvc package).
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime ----------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Install the wheel and its runtime dependencies (from PyPI) into a venv.
COPY --from=build /wheels /tmp/wheels
RUN python -m venv "$VIRTUAL_ENV" \
 && pip install /tmp/wheels/configsvc-*.whl \
 && rm -rf /tmp/wheels \
 && groupadd --system --gid 10001 configsvc \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin configsvc

ENV CONFIGSVC_LISTEN="[::]:50051" \
    CONFIGSVC_LOG_FORMAT=json

# Numeric uid:gid so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /tmp

EXPOSE 50051

# grpc.health.v1 Check against the local server; grpcio-health-checking is a
# runtime dependency already, so nothing is downloaded for this. The server
# answers NOT_SERVING until its etcd mirror is synced, so "unhealthy" here
# also means "cannot reach etcd".
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; port = os.environ.get('CONFIGSVC_LISTEN', '[::]:50051').rsplit(':', 1)[1]; r = g.HealthStub(grpc.insecure_channel('localhost:' + port)).Check(h.HealthCheckRequest(), timeout=3); sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"]

ENTRYPOINT ["configsvc"]
CMD ["serve"]
