# Two commands on a fresh machine: `make run` and `make test`.
# Installs come from requirements/dev.txt (exact versions, sha256-checked); pyproject.toml keeps the ranges.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements/dev.txt
STAMP  := $(VENV)/.installed
# Resolution settings for `make lock`: every platform (markers kept), the oldest Python kinko supports.
UV_COMPILE := pip compile --universal --python-version 3.11 --generate-hashes --quiet
# pytest-randomly shuffles the order and prints its seed in the header ("Using --randomly-seed=N");
# replay that order with `make test PYTEST_ARGS=--randomly-seed=N`.
PYTEST_ARGS ?=

.PHONY: run demo test lint bench bench-peer bench-ha clean setup lock test-latest fuzz soak image

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# The main job: a dev server on a throwaway SQLite vault (initialised, unsealed; prints address and root token).
run: $(STAMP)
	$(BIN)/kinko server --dev

# A short local walk-through (init -> unseal -> put -> get -> list -> delete -> recover -> seal) with no server.
demo: $(STAMP)
	$(BIN)/python -m kinko.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

test: $(STAMP) lint
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

# The fuzz targets (tests/fuzz) run long: KINKO_FUZZ_EXAMPLES examples each (make test runs a few hundred).
FUZZ_EXAMPLES ?= 20000
fuzz: $(STAMP)
	KINKO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -n auto -p no:randomly tests/fuzz $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/core.py

# KV v2 reads against the real OpenBao server (needs wrk), and several servers on PostgreSQL (bench/RESULTS.md).
bench-peer: $(STAMP)
	$(BIN)/python bench/vault_peer.py

bench-ha: $(STAMP)
	$(BIN)/python bench/ha.py

# A real server under mixed load for SOAK_SECONDS: errors, RSS growth and the audit chain (bench/RESULTS.md).
SOAK_SECONDS ?= 300
soak: $(STAMP)
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS)

# The server image the manifests in deploy/ name, from deploy/Dockerfile, with whichever of docker, podman or
# buildah is installed (IMAGE=... to tag it for your registry).
IMAGE ?= ghcr.io/kinko/kinko:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image:
	@for tool in docker podman buildah; do \
	    if command -v $$tool >/dev/null 2>&1; then \
	        echo "building $(IMAGE) from deploy/Dockerfile with $$tool"; \
	        if [ $$tool = buildah ]; then exec buildah build -f deploy/Dockerfile -t "$(IMAGE)" .; fi; \
	        exec $$tool build -f deploy/Dockerfile -t "$(IMAGE)" .; \
	    fi; \
	done; \
	echo "make image: none of docker, podman or buildah is installed (install one, e.g. apt-get install podman)" >&2; \
	exit 1

# Refresh the lock files from pyproject.toml's ranges (+ requirements/*.in). Commit the result.
lock: $(STAMP)
	$(BIN)/uv $(UV_COMPILE) --extra dev pyproject.toml requirements/tools.in -o $(LOCK)
	$(BIN)/uv $(UV_COMPILE) pyproject.toml -c $(LOCK) -o requirements/runtime.txt
	$(BIN)/uv $(UV_COMPILE) requirements/build.in -c $(LOCK) -o requirements/build.txt

# Not in CI: the newest releases allowed by pyproject.toml's ranges, in a separate venv, so a breaking release
# is seen before `make lock` takes it in.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	.venv-latest/bin/python -m pip list --format freeze > .venv-latest/versions.txt
	.venv-latest/bin/ruff check src tests bench
	.venv-latest/bin/mypy src
	.venv-latest/bin/lint-imports
	.venv-latest/bin/pytest -n auto $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .venv-latest build *.egg-info src/*.egg-info
