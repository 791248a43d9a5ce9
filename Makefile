# Citadel front door. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PROTOS := $(shell find proto/citadel -name '*.proto' | LC_ALL=C sort)
TEST_PROTOS := $(shell find tests/protos -name '*.proto' | LC_ALL=C sort)
VENDORED := google/api/annotations.proto google/api/http.proto google/api/field_behavior.proto
PYTEST_ARGS ?=

.PHONY: install run test generate check-generated lint breaking bench load clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Start the gateway on the embedded default: no external servers needed. Authentication is
# off here (with a warning in the log); see README "Authentication" to switch it on.
run: install
	$(BIN)/citadel serve $(if $(CONFIG),--config $(CONFIG),--insecure-no-auth)

# The whole test suite (integration tests start real processes on loopback).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Regenerate everything derived from proto/ (byte-for-byte reproducible).
generate: install
	rm -rf generated/citadel proto/vendor
	mkdir -p generated/citadel
	for f in $(VENDORED); do install -D -m 644 $(SITE)/$$f proto/vendor/$$f; done
	$(PY) -m grpc_tools.protoc -Iproto -Iproto/vendor \
	  --python_out=generated --pyi_out=generated --grpc_python_out=generated \
	  --include_imports --include_source_info \
	  --descriptor_set_out=generated/citadel/descriptor_set.binpb $(PROTOS)
	find generated/citadel -type d -exec touch {}/__init__.py \;
	rm -rf tests/generated && mkdir -p tests/generated
	$(PY) -m grpc_tools.protoc -Iproto -Iproto/vendor -Itests/protos --python_out=tests/generated \
	  --include_imports --include_source_info \
	  --descriptor_set_out=tests/generated/descriptor_set.binpb $(TEST_PROTOS)
	$(PY) -m citadel.adapters.generate generated/citadel
	$(PY) -m citadel.adapters.generate tests/generated --descriptor-set tests/generated/descriptor_set.binpb
# The Python SDK (citadel.sdk): betterproto2 dataclasses with sync grpcio stubs, in a package of
# its own so its google/ cannot shadow protobuf's. The plugin formats with ruff from PATH: the pinned one.
	rm -rf generated/sdk && mkdir -p generated/sdk
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m grpc_tools.protoc -Iproto -Iproto/vendor \
	  --python_betterproto2_out=client_generation=sync:generated/sdk $(PROTOS)

# Fails when generated/ or proto/vendor differ from what `make generate` writes.
check-generated: generate
	git add -N generated proto/vendor tests/generated
	git diff --exit-code --stat -- generated proto/vendor tests/generated || \
	  (echo "generated code drifted from proto/: run 'make generate' and commit" >&2; exit 1)

lint: install
	$(BIN)/buf lint
	$(BIN)/ruff check .

# Guards main: every change to proto/citadel in history is checked against the version
# before it, so no commit on main ever breaks a client of the previous contract.
breaking: install
	@set -e; revs=$$(git rev-list HEAD -- proto/citadel); prev=""; \
	for rev in $$revs; do \
	  if [ -n "$$prev" ]; then \
	    echo "buf breaking: $$(git rev-parse --short $$prev) against $$(git rev-parse --short $$rev)"; \
	    $(BIN)/buf breaking ".git#ref=$$prev" --against ".git#ref=$$rev"; \
	  fi; prev=$$rev; \
	done; \
	$(BIN)/buf breaking --against ".git#ref=HEAD"

bench: install
	$(PY) -m bench

# 60 s of mixed search/upsert/embed over gRPC, REST and GraphQL; fails on any error.
load: install
	$(PY) -m bench.load --seconds $(or $(LOAD_SECONDS),60)

clean:
	rm -rf $(VENV) build *.egg-info
