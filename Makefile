# configsvc: every tool the tests need is installed by these targets.
#   make run    create the venv, install everything, start `configsvc dev`
#   make test   lint, check generated stubs, run the whole suite with coverage
SHELL := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := $(abspath .tools)
GOBIN  := $(TOOLS)/bin
BUF    := $(TOOLS)/node_modules/.bin/buf
GRPCURL := $(GOBIN)/grpcurl
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard protos/configsvc/v1/*.proto protos/configsvc/internal/v1/*.proto)
PYTEST_ARGS ?=
# The released contract: `buf breaking` (FILE rules) compares protos/ against it, so a field
# number, name or type that changes meaning fails lint. Refresh only when cutting a release.
PROTO_BASELINE := protos-baseline/v1.binpb

GHZ    := $(GOBIN)/ghz
NATIVE_WATCHER := $(GOBIN)/native_watcher
GRPCURL_VERSION := v1.9.4
GHZ_VERSION     := v0.93.0
PROTOC_GEN_GO_VERSION := v1.36.12
BUF_VERSION     := 1.75.0

export PATH := $(abspath $(BIN)):$(GOBIN):$(PATH)

.PHONY: install tools run test unit lint proto proto-baseline proto-check bench bench-tools native-watcher-protos helm-lint clean

install: $(STAMP) tools

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,test]' -e ./clients/python
	$(BIN)/python -m pip check
	touch $@

tools: $(GRPCURL) $(BUF)

$(GRPCURL):
	GOBIN=$(GOBIN) GOFLAGS=-mod=mod go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

$(BUF):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) @bufbuild/buf@$(BUF_VERSION)

run: install
	$(BIN)/configsvc dev $(ARGS)

# Regenerate the Python stubs from protos/ (committed; CI checks they are current):
# the server's in configsvc/, the client library's own copy in clients/python.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --grpc_python_out=. \
		--pyi_out=. $(PROTOS)
	$(BIN)/python clients/python/tools/generate.py
	$(BIN)/python scripts/gen_flagd_stubs.py

proto-baseline: install
	$(BUF) build -o $(PROTO_BASELINE)

proto-check: $(STAMP)
	@tmp=$$(mktemp -d); \
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=$$tmp --grpc_python_out=$$tmp \
		--pyi_out=$$tmp $(PROTOS) && \
	for f in $$(cd $$tmp && find . -name '*.py*' -type f); do \
		cmp -s $$tmp/$$f $$f || { echo "stale generated stub: $$f (run make proto)"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "generated server stubs are current"
	$(BIN)/python clients/python/tools/generate.py --check
	$(BIN)/python scripts/gen_flagd_stubs.py --check

lint: install
	$(BUF) lint
	$(BUF) breaking --against $(PROTO_BASELINE)
	$(BIN)/ruff check configsvc tests bench scripts
	$(BIN)/ruff format --check configsvc tests bench scripts
	$(BIN)/python scripts/check_layers.py
	$(BIN)/mypy
	cd clients/python && ../../$(BIN)/ruff check . && ../../$(BIN)/ruff format --check . && ../../$(BIN)/mypy

test: install proto-check lint
	$(BIN)/python -m pytest --cov=configsvc --cov-report=term --cov-fail-under=85 $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Native load generators: ghz (Go module proxy) and h2load (Debian nghttp2-client).
bench-tools: $(GHZ) $(NATIVE_WATCHER)
	command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client; }
	$(BIN)/python -m pip install --quiet -e '.[bench]'

$(GHZ):
	GOBIN=$(GOBIN) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

# The Go watcher processes of bench.watch --watchers native (module pinned by its go.sum).
$(NATIVE_WATCHER): $(wildcard bench/native_watcher/*.go) $(shell find bench/native_watcher/pb -name '*.go') bench/native_watcher/go.mod bench/native_watcher/go.sum
	cd bench/native_watcher && GOFLAGS=-mod=mod go build -o $(NATIVE_WATCHER) .

# Regenerate the watcher's Go types (bench/native_watcher/pb, checked in) after the
# Watch messages change: from the descriptors the Python side of bench.watch uses.
native-watcher-protos: install $(BUF)
	GOBIN=$(GOBIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(BIN)/python -c "import sys; from bench.watch import native_watcher_protoset as p; sys.stdout.buffer.write(p())" > $(TOOLS)/watch.binpb
	rm -rf bench/native_watcher/pb
	cd bench/native_watcher && $(BUF) generate $(TOOLS)/watch.binpb --exclude-path google

bench: install bench-tools
	$(BIN)/python -m bench.run $(ARGS)

helm-lint:
	bash scripts/helm-lint.sh

clean:
	rm -rf $(VENV) $(TOOLS) .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache
