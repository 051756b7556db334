# One entry point for developers and CI. `make install` then `make test`; see README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install lint test test-cluster test-realnode dev-cluster dev-cluster-down bench demo clean

install: $(BIN)/kubeswarm
	@scripts/ensure-chromium

$(BIN)/kubeswarm: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

lint: $(BIN)/kubeswarm
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Tiers 1-3 (unit, schema, local end to end): only Python and Chromium needed, a few minutes.
test: $(BIN)/kubeswarm
	$(BIN)/python -m pytest -m "not cluster"

# Tier 4: a real control plane built from Go modules (cached after the first build).
test-cluster: $(BIN)/kubeswarm
	bash tests/cluster/controlplane/build.sh
	$(BIN)/python -m pytest -m cluster tests/cluster

# Tier 5: a real single-node cluster on this machine (kubelet, containerd, runc); needs root.
# Missing Debian packages are installed; binaries and images are built once into the cache.
test-realnode: $(BIN)/kubeswarm
	bash tests/realnode/install-packages.sh
	bash tests/cluster/controlplane/build.sh node
	bash tests/realnode/images/build-kubeswarm.sh "$$(bash tests/realnode/images/build.sh)"
	$(BIN)/python -m pytest -m realnode tests/realnode

# The same single-node cluster, standalone: prints its kubeconfig; stop it with dev-cluster-down.
dev-cluster: $(BIN)/kubeswarm
	$(BIN)/python -m tests.realnode up

dev-cluster-down: $(BIN)/kubeswarm
	$(BIN)/python -m tests.realnode down

demo: $(BIN)/kubeswarm
	$(BIN)/kubeswarm demo

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
