# syntax=docker/dockerfile:1
# The IOC Platform image. One image runs every component: the operator, the MQTT bridge, the stream workers,
# the warehouse migrations, and the site dashboards and workers the operator creates. charts/ioc-platform
# runs it (image.repository and image.tag; the tag defaults to the chart's appVersion, the project's version).
#
#   docker build -t ghcr.io/ioc-platform/ioc:0.1.0 .
#
# Stage "build" turns the project and every dependency into wheels (a compiler is there for any dependency
# without a binary wheel). The final stage installs those wheels, and nothing else, into a virtualenv on the
# slim Python image: no compiler, no source tree, no wheel files left in a layer (a bind mount, not a COPY).
# It runs as the unprivileged user 10001 (numeric, so the chart's runAsNonRoot can verify it), and nothing
# writes to the image at run time: .pyc files are compiled at install, and HOME is /tmp (an emptyDir in the chart).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The packages of pyproject.toml's [tool.setuptools.packages.find]; .dockerignore keeps the rest out.
COPY pyproject.toml README.md ./
COPY iocctl iocctl
COPY ioc ioc
COPY sensors sensors
COPY streams streams
COPY operators operators
COPY dashboards dashboards
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ioc-platform" \
      org.opencontainers.image.description="IOC Platform: MQTT bridge, Faust stream workers, Kopf operator, Streamlit dashboards" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/ioc \
    PATH=/opt/ioc/bin:$PATH \
    HOME=/tmp
# The build stage's identity (iocctl.image passes its content hash): buildah's layer cache keys this stage's RUN on
# its text and parent only, not on the bind-mounted wheels, so without it a changed source reused a stale layer.
ARG SOURCE_KEY=""
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/ioc \
 && /opt/ioc/bin/pip install --no-index --find-links=/wheels ioc-platform \
 && /opt/ioc/bin/pip uninstall -y pip \
 && groupadd --system --gid 10001 ioc \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin ioc
USER 10001:10001
WORKDIR /tmp
# Each component's command is set by the chart (or the operator): python -m operators, python -m sensors.bridge,
# python -m streams worker, ioc warehouse migrate, ioc dashboard --site CODE.
CMD ["ioc", "--help"]
