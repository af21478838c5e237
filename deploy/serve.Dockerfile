# The model server's image: `conveyor serve` and what it imports, nothing else (no Airflow,
# no compilers, no uv, no sources). Two stages: the first installs exactly what uv.lock pins
# into /opt/conveyor/venv; the second copies that environment onto a clean Python image and
# runs it as an unprivileged user. docs/deploy.md, docs/decisions/0036.
#
#   docker build -f deploy/serve.Dockerfile -t conveyor-serve:local .   # from the repository root
#   docker run -p 8081:8080 -e MODEL_URI=models:/breast_cancer_classifier@production \
#       -e MLFLOW_TRACKING_URI=http://mlflow.internal:5000 conveyor-serve:local
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---------------------------------------------------------------------------- build stage
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
# The runtime stage has the same interpreter at the same path, so the copied venv works;
# bytecode compiled here saves every worker ~5 s of compiling at start.
ENV UV_PROJECT_ENVIRONMENT=/opt/conveyor/venv \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes, not the sources.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project
COPY src/ src/
# --no-editable: the package itself is installed into the venv, so /src is not needed later.
RUN uv sync --frozen --no-dev --no-editable

# -------------------------------------------------------------------------- runtime stage
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG UID=10001
RUN groupadd --system --gid "${UID}" conveyor \
    && useradd --system --uid "${UID}" --gid conveyor --create-home --home-dir /home/conveyor \
       --shell /usr/sbin/nologin conveyor
COPY --from=build /opt/conveyor/venv /opt/conveyor/venv

# Set at run time (docker run -e, the compose service), never baked in:
#   MODEL_URI             models:/NAME@ALIAS or models:/NAME/N (with MLFLOW_TRACKING_URI), or an
#                         exported model folder mounted into the container
#   MLFLOW_TRACKING_URI   the MLflow server the registry URIs resolve against
#   CONVEYOR_STORE        where sampled requests go (s3://bucket/store; default the home's)
#   CONVEYOR_SERVE_TOKEN  when set, /invocations and /predict require "Authorization: Bearer
#                         <token>"; only the variable's name reaches the command line
#   WORKERS, HOST, PORT   uvicorn worker processes and the listening address
ENV PATH=/opt/conveyor/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CONVEYOR_HOME=/home/conveyor/.conveyor \
    MODEL_URI=models:/breast_cancer_classifier@production \
    HOST=0.0.0.0 \
    PORT=8080 \
    WORKERS=2

USER ${UID}:${UID}
WORKDIR /home/conveyor
EXPOSE 8080

# /ready answers 200 once a model is loaded (503 before); a server still loading its first
# model is "starting", not "unhealthy", for start-period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('PORT', '8080'), timeout=4)"]

# exec: the server is PID 1 and gets SIGTERM itself (it drains in-flight requests, then exits).
ENTRYPOINT ["/bin/sh", "-c", "exec conveyor serve \"${MODEL_URI:?set MODEL_URI (models:/NAME@ALIAS or an exported model folder)}\" --host \"${HOST}\" --port \"${PORT}\" --workers \"${WORKERS}\" ${CONVEYOR_STORE:+--store \"$CONVEYOR_STORE\"} ${CONVEYOR_SERVE_TOKEN:+--token-env CONVEYOR_SERVE_TOKEN} \"$@\"", "conveyor-serve"]
CMD []
