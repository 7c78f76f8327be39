# Freshet's build and test entry points. `make test` is what CI runs (through .ci/run): it
# installs everything the tests need on a machine that has only Go and Node.js, then runs
# the format check, go vet, staticcheck and the whole test suite under the race detector.

GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
PEERS_STAMP := integration/peers/node_modules/.freshet-installed
TEST_TIMEOUT ?= 25m
MVN         ?= mvn
JAVA_DIR    := integration/java
JAVA_STAMP  := $(JAVA_DIR)/kcl/target/classpath.txt $(JAVA_DIR)/kpl/target/classpath.txt
JAVA_SRC    := $(shell find $(JAVA_DIR)/*/src -name '*.java' 2>/dev/null)

.PHONY: test deps peers java tools fmt-check vet staticcheck unit modules bench soak quickstart

test: deps fmt-check vet staticcheck unit

deps: peers java tools
	$(GO) mod download
	cd otel && $(GO) mod download

# The Java peers (KCL 3.x and KPL programs, integration/java): Maven resolves the pinned
# dependencies from Maven Central into integration/java/.m2 (git-ignored) on the first
# build, and works offline after that. Each module's target/classpath.txt is what the Go
# helpers run.
java: $(JAVA_STAMP)

$(JAVA_STAMP) &: $(JAVA_DIR)/pom.xml $(JAVA_DIR)/*/pom.xml $(JAVA_SRC)
	cd $(JAVA_DIR) && if [ -d .m2 ]; then $(MVN) -B -q -o -Dmaven.repo.local=.m2 package || \
		$(MVN) -B -q -Dmaven.repo.local=.m2 package; else $(MVN) -B -q -Dmaven.repo.local=.m2 package; fi

peers: $(PEERS_STAMP)

$(PEERS_STAMP): integration/peers/package.json integration/peers/package-lock.json
	cd integration/peers && npm ci --no-audit --no-fund
	touch $@

tools: $(STATICCHECK)

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './integration/peers/node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# vet also checks the builds without the amd64 assembly (arm64, the purego tag) and a
# non-unix one (windows), which this machine never compiles otherwise.
vet:
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	$(GO) vet -tags purego ./internal/lanehash/ ./aggregation/
	cd otel && $(GO) vet ./...

staticcheck: tools
	$(STATICCHECK) ./...
	cd otel && $(STATICCHECK) ./...

# The quickstart demo's short run is CPU-bound for ten seconds: it runs on its own after
# the rest of the suite so that it does not compete with other packages for the cores.
DEMO_PKG := ./examples/quickstart

unit: modules
	$(GO) test -race -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v '/examples/quickstart$$')
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(DEMO_PKG)
	cd otel && $(GO) test -race -timeout $(TEST_TIMEOUT) ./...

# Modules of their own (a user's view: they import only Freshet's public packages, with a
# replace directive pointing at this checkout), vetted, linted and tested like the rest.
MODULES := examples/testing_with_freshettest

modules: tools
	for m in $(MODULES); do (cd $$m && $(GO) mod download && $(GO) vet ./... && $(STATICCHECK) ./... && \
		$(GO) test -race -timeout $(TEST_TIMEOUT) ./...) || exit 1; done

# Benchmarks of every hot path (not part of `make test`).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	cd otel && $(GO) test -run '^$$' -bench . -benchmem ./...

# Long-running soak variants of the chaos tests.
soak:
	FRESHET_SOAK=1 $(GO) test -race -timeout 90m -run 'Chaos|Soak|MixedFleet' ./...

quickstart:
	$(GO) run ./examples/quickstart
