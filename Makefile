# IOC Platform developer commands. `make demo` and `make test` work on a fresh machine: they install
# what is missing (Python packages into .venv, Debian packages, Kafka jars, Go builds into ~/.cache/ioc).
# Python packages come from uv.lock, the committed resolution of pyproject.toml's ranges: every install gets
# the versions the suite last passed with. `make lock` moves them to the newest the ranges allow.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The uv that installs from uv.lock; `make lock` does not move it.
UV_VERSION := 0.13.9
export UV_CACHE_DIR ?= $(HOME)/.cache/ioc/uv
PYTEST_ARGS ?=

.PHONY: help venv lock deps test test-fast lint format bench bench-cluster demo demo-node schemas clean image node-up node-down

help:
	@echo "make demo       run the whole platform locally on real services"
	@echo "make test       install what is missing and run the whole test suite"
	@echo "make test-fast  unit tests only (no real services): -m 'not slow'"
	@echo "make lint       ruff, mypy --strict, import-linter, helm lint and helm template of the chart"
	@echo "make bench      every benchmark; one JSON per benchmark in bench-results/"
	@echo "make deps       the local stack's prerequisites (apt, Maven, Go builds: etcd, kube-apiserver, kubectl, helm)"
	@echo "make image      the platform image from the Dockerfile with buildah (no Docker), cached by content (root)"
	@echo "make node-up    a real one-node Kubernetes cluster with the image loaded (root); make node-down stops it"
	@echo "make demo-node  the platform as pods on that node (helm install, the 101 sites, the simulator; root)"
	@echo "make bench-cluster  the 101 sites on the node: time to all Ready, dashboards' memory, CPU (root)"
	@echo "make lock       upgrade uv.lock to the newest versions pyproject.toml allows (then make test, commit)"

# uv, pinned: it is what reads uv.lock.
$(BIN)/uv: Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

# Exactly the locked versions, the project editable. --locked fails when uv.lock no longer matches
# pyproject.toml: after editing the dependencies, `.venv/bin/uv lock` (moves only what it must) or
# `make lock`. --inexact leaves pip and uv, which the lock does not list, in the venv.
$(VENV)/.installed: pyproject.toml uv.lock $(BIN)/uv
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync -q --locked --inexact --extra dev --python $(PY)
	touch $@

venv: $(VENV)/.installed

lock: $(BIN)/uv
	$(BIN)/uv lock --upgrade

deps: venv
	$(BIN)/ioc deps

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# helm comes from `ioc deps` (built from Go modules into ~/.cache/ioc; the first time takes minutes). The chart
# is linted and rendered with its defaults and with every optional feature on.
CHART := charts/ioc-platform
CHART_ALL_ON := --set strimzi.enabled=true,clickhouseInstallation.enabled=true \
	--set clickhouse.auth.existingSecret=ioc-clickhouse,mqtt.tls.enabled=true,mqtt.tls.caSecret=ioc-mqtt-ca \
	--set gateway.enabled=true,gateway.existingSecret=ioc-gateway,reporting.enabled=true,reporting.existingSecret=ioc-reporting \
	--set ingress.enabled=true,ingress.tls.secretName=ioc-tls

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	@HELM="$$($(BIN)/ioc deps --which helm)" && set -x && \
	"$$HELM" lint --strict $(CHART) && \
	"$$HELM" lint --strict $(CHART) $(CHART_ALL_ON) && \
	"$$HELM" template ioc $(CHART) --namespace ioc-system > /dev/null && \
	"$$HELM" template ioc $(CHART) --namespace ioc-system $(CHART_ALL_ON) > /dev/null

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

image: venv
	$(BIN)/ioc image build

node-up: venv
	$(BIN)/ioc node up

node-down: venv
	$(BIN)/ioc node down

bench: deps
	$(PY) -m bench

schemas: venv
	$(BIN)/ioc schema export schemas

demo: deps
	$(BIN)/ioc up

# The same platform with the operator, bridge, workers, API and the sites' dashboards as pods on the local node.
demo-node: deps
	$(BIN)/ioc up --on-node

bench-cluster: deps
	$(PY) -m bench cluster

clean:
	rm -rf $(VENV) bench-results .mypy_cache .ruff_cache .pytest_cache
