# scry's developer entry points. The README names these targets.
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

# Debian packages scry and its tests need.
DEB_PACKAGES := chromium xvfb x11vnc novnc websockify socat tini fonts-liberation curl ca-certificates chromium-driver python3-selenium

PROFILE_DIR ?= $(CURDIR)/.profile
BIN := bin/scry
# staticcheck, pinned (module v0.8.2 is staticcheck 2026.2.2).
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build deps run test test-unit test-integration test-deploy fuzz bench bench-cdp bench-vnc container-test soak clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/scry

# deps installs what is missing (Debian packages as root, npm clients).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v node >/dev/null || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq nodejs npm; }
	@# npm ci when node_modules is missing or older than the lockfile.
	@if [ -f integration/js/package-lock.json ] && { [ ! -f integration/js/node_modules/.package-lock.json ] || \
		[ integration/js/node_modules/.package-lock.json -ot integration/js/package-lock.json ]; }; then \
		cd integration/js && npm ci --no-audit --no-fund; fi
	$(GO) mod download

# run builds scry and runs it in the foreground with a profile in ./.profile.
# Ctrl-C stops it cleanly. Set variables in the environment, not on make's
# command line (visible in ps): VNC_PASSWORD=secret make run
run: deps build
	PROFILE_DIR=$(PROFILE_DIR) ./$(BIN)

# test is the whole test suite: gofmt, go vet and staticcheck, then unit, integration (real Xvfb, Chromium,
# x11vnc; chromedp, Playwright and Puppeteer clients) and the deployment
# manifests. CI also runs container-test and a short fuzz pass.
test: deps
	@unformatted=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*')); \
		if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted (run gofmt -w on them)"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags soak ./soak/
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags soak ./soak/
	cd deploy && $(STATICCHECK) ./...
	$(GO) test -count=1 -timeout 20m ./...
	cd deploy && $(GO) test -count=1 ./...

test-unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

test-integration: deps
	$(GO) test -count=1 -v -timeout 20m ./integration/

test-deploy:
	cd deploy && $(GO) test -count=1 ./...

# fuzz runs each fuzz target briefly (the corpora are in testdata/fuzz).
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail a clean run with "context deadline exceeded" at the deadline
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 100000x
fuzz:
	@for pkg in $$($(GO) list ./internal/...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# bench prints both doors' comparisons (docs/benchmarks.md,
# docs/benchmarks-vnc.md); they are reports, never pass/fail.
bench: deps bench-cdp bench-vnc

bench-cdp:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/

# bench-vnc: interleaved rounds of direct TCP, scry's bridge and python
# websockify to the same x11vnc.
VNC_ROUNDS ?= 6
bench-vnc:
	$(GO) test -c -o bin/novnc.bench ./internal/novnc
	cd internal/novnc && for i in $$(seq 1 $(VNC_ROUNDS)); do \
		../../bin/novnc.bench -test.run '^$$' -test.bench Framebuffer -test.benchtime 100x || exit 1; \
	done

container-test:
	bash scripts/container-test.sh

# soak holds many CDP clients on one scry for SOAK_DURATION (default 2m;
# SOAK_IDLE, SOAK_ACTIVE, SOAK_PACE, SOAK_KEEPALIVE: docs/soak.md). A
# report, never part of test.
soak: deps
	$(GO) test -tags soak -count=1 -run TestSoak -v -timeout 60m ./soak/

clean:
	rm -rf bin
