# claude-proxy — `make run` and `make test` do all setup on a fresh Debian 12 machine.
SHELL := /bin/bash
SWIFT ?= swift
BIN := bin/claude-proxy
CONFIG ?= config.yaml
CERTS ?= certs
# System packages the build and the tests need (checked with dpkg, installed with apt-get when missing).
APT_PACKAGES := libssl-dev libnghttp2-dev zlib1g-dev libmimalloc-dev pkg-config openssl curl ca-certificates nghttp2-client nghttp2-server haproxy \
	python3 python3-venv python3-pip faketime
FORMAT_PATHS := Package.swift Sources Tests
# Dashboard browser tests (Tests/Browser): Debian's Chromium and its driver, Selenium from PyPI in a venv.
APT_PACKAGES += python3 python3-venv python3-pip chromium chromium-driver
BROWSER_VENV := .venv-browser
SELENIUM_VERSION := 4.51.0

# The end-to-end suite (tests/e2e): the official `anthropic` SDK from PyPI in its own virtual environment.
E2E_VENV := .venv-e2e
E2E_PYTHON ?= python3
E2E_ARGS ?=

.PHONY: all deps build run be test test-e2e e2e-venv e2e-run test-browser dashboard format format-check test-coverage certs clean

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

# The production binary: optimised across modules (NIO's generic code specialised into ours), with the Swift runtime
# linked in statically (direct calls and thread-local access instead of the shared library's PLT and
# __tls_get_addr), linked by the toolchain's lld. See docs/benchmarks.md (session 15) for what each part is worth.
# A plain `swift build -c release` uses other flags: switching between the two rebuilds everything.
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -cross-module-optimization -Xswiftc -use-ld=lld

build: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product claude-proxy
	@mkdir -p bin && cp "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/claude-proxy" $(BIN)
	@echo "built $(BIN)"

# config.yaml from the example with a fresh random admin key (printed once); dev certificates if absent.
$(CONFIG):
	@key=$$(openssl rand -base64 33 | tr '+/' '-_' | tr -d '=\n'); \
	sed "s|^  api_key: .*|  api_key: \"$$key\"|" config.example.yaml > $(CONFIG); \
	chmod 600 $(CONFIG); \
	echo "created $(CONFIG); admin key (shown once, it is in $(CONFIG)): $$key"

certs: $(BIN)
	@if [ ! -f $(CERTS)/server.crt ] || [ ! -f $(CERTS)/server.key ]; then $(BIN) gen-cert --out $(CERTS); fi

$(BIN):
	@$(MAKE) --no-print-directory build

run: build $(CONFIG) certs
	@echo "serving https://localhost:4000 (trust $(CERTS)/ca.crt, e.g. curl --cacert $(CERTS)/ca.crt https://localhost:4000/health)"
	$(BIN) serve --config $(CONFIG)

be: run

test: deps e2e-venv
	$(SWIFT) build --build-tests
	@mkdir -p test-output; set -o pipefail; $(SWIFT) test --skip-build --disable-xctest 2>&1 | tee test-output/swift-test.log \
		|| { scripts/test-failures.sh test-output/swift-test.log; exit 1; }
	@$(MAKE) --no-print-directory e2e-run
	@$(MAKE) --no-print-directory test-browser

$(BROWSER_VENV)/.selenium-$(SELENIUM_VERSION):
	python3 -m venv $(BROWSER_VENV)
	$(BROWSER_VENV)/bin/pip install --quiet selenium==$(SELENIUM_VERSION)
	@touch $@

# Drives headless Chromium through the dashboard of the debug binary; screenshots in test-output/browser/.
test-browser: deps $(BROWSER_VENV)/.selenium-$(SELENIUM_VERSION)
	$(SWIFT) build --product claude-proxy
	CLAUDE_PROXY_BIN="$$($(SWIFT) build --show-bin-path)/claude-proxy" \
		$(BROWSER_VENV)/bin/python Tests/Browser/run.py

# After editing a file under Sources/ProxyServer/Dashboard/Assets.
dashboard:
	scripts/embed-dashboard.sh

# The end-to-end suite alone: the debug binaries (claude-proxy, mock-claude), then pytest.
test-e2e: deps e2e-venv
	$(SWIFT) build
	@$(MAKE) --no-print-directory e2e-run

$(E2E_VENV)/.installed: tests/e2e/requirements.txt
	rm -rf $(E2E_VENV)
	$(E2E_PYTHON) -m venv $(E2E_VENV)
	$(E2E_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
	touch $@

e2e-venv: $(E2E_VENV)/.installed

# Bounded: on SIGTERM pytest's teardown stops the servers it started (by PID).
# Twice: on our reactors (`server.io: reactor`, the default) and on NIO's event loops (`server.io: nio`).
e2e-run:
	E2E_BIN_DIR="$$($(SWIFT) build --show-bin-path)" timeout -k 10 300 \
		$(E2E_VENV)/bin/python -m pytest tests/e2e $(E2E_ARGS)
	E2E_SERVER_IO=nio E2E_BIN_DIR="$$($(SWIFT) build --show-bin-path)" timeout -k 10 300 \
		$(E2E_VENV)/bin/python -m pytest tests/e2e $(E2E_ARGS)

format:
	$(SWIFT) format --in-place --recursive --parallel $(FORMAT_PATHS)

format-check:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

test-coverage: deps
	$(SWIFT) test --enable-code-coverage --disable-xctest
	@llvm_cov=$$(command -v llvm-cov || echo "$$(dirname $$(readlink -f $$(command -v swift)))/llvm-cov"); \
	bin_path=$$($(SWIFT) build --show-bin-path); \
	$$llvm_cov report "$$bin_path/claude-proxyPackageTests.xctest" -instr-profile="$$bin_path/codecov/default.profdata" \
		-ignore-filename-regex='(\.build|Tests|checkouts)/'

clean:
	rm -rf .build bin $(E2E_VENV) $(BROWSER_VENV)
