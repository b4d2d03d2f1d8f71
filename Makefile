# Roomcast. `make run` starts the demo gateway; `make test` runs everything.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
FUZZTIME ?= 5s
LONGFUZZTIME ?= 2m
CLIENT_JS := demo/static/vendor/socket.io.min.js

.PHONY: all build run test deps lint unit fuzz fuzz-short interop k6-smoke loadtest bench capacity clean cluster cluster-start cluster-stop

all: build

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(CLIENT_JS): node_modules/.package-lock.json
	mkdir -p $(dir $@)
	cp node_modules/socket.io-client/dist/socket.io.min.js $@

build: $(CLIENT_JS)
	$(GO) build -o bin/gateway ./cmd/gateway

## run: the gateway with the chat demo on http://localhost:8080 (single node, no Redis)
run: build
	./bin/gateway --demo --allow-anonymous --allow-anonymous-dm --addr :8080 --admin-addr :9090

## test: install what the tests need, then lint, unit (race), short fuzz, interop and browser tests
test: deps lint unit fuzz-short interop k6-smoke

deps:
	./scripts/install-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...
	$(GO) mod tidy -diff
	@# loadtest/peer-go (the socket.io Go port peer) is a module of its own.
	cd loadtest/peer-go && $(GO) vet ./... && $(GOBIN)/staticcheck ./... && $(GO) mod tidy -diff
	@# A single-node program built on the library must not link go-redis:
	@# the Redis adapters and queue store live in their own packages.
	@for p in ./adapter ./queue ./socketio ./engineio ./room; do \
	  deps=$$($(GO) list -deps $$p) || exit 1; \
	  if grep -q go-redis <<<"$$deps"; then echo "package $$p links go-redis"; exit 1; fi; done

unit: $(CLIENT_JS)
	$(GO) test -race -count=1 -timeout 10m ./...
	cd loadtest/peer-go && $(GO) test -race -count=1 ./...

# Every fuzz target, briefly (make fuzz runs them longer).
FUZZ_TARGETS := \
	./engineio:FuzzDecodePacket \
	./engineio:FuzzDecodePayload \
	./engineio:FuzzDecodeHandover \
	./internal/parser:FuzzDecoder \
	./internal/auth:FuzzVerify \
	./internal/auth:FuzzVerifyClaims \
	./internal/auth:FuzzMatch \
	./internal/auth:FuzzJWKS \
	./internal/ratelimit:FuzzClientIP \
	./internal/parser:FuzzArgs \
	./internal/parser:FuzzEventData \
	./internal/msgpack:FuzzDecode \
	./adapter/redisadapter:FuzzDecodeMessage \
	./queue/redisqueue:FuzzDecodeLive \
	./queue/redisqueue:FuzzDecodeEntry \
	./queue:FuzzParseOffset \
	./queue:FuzzReplayHandoff \
	./socketio:FuzzParseOffset \
	./socketio:FuzzDecodeHandoverState \
	./broadcastlog/redislog:FuzzDecodeEntry \
	./presence/redispresence:FuzzDecodeEntry \
	./loadtest/cmd/loadgen:FuzzFrames \
	./loadtest/cmd/loadgen:FuzzCFMessages \
	./hook:FuzzDecodeEventResponse \
	./hook:FuzzDecodeLifecycleRequest

fuzz-short:
	GO=$(GO) ./scripts/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(LONGFUZZTIME)

interop: build
	INTEROP_REQUIRE_REDIS=1 GATEWAY_BIN=$(CURDIR)/bin/gateway node --test --test-concurrency=1 interop/

## k6-smoke: 5 seconds of loadtest/socketio.js against a fresh single node (thresholds enforced)
k6-smoke: build
	./loadtest/k6-smoke.sh

## loadtest: the k6 script against `make cluster` (start it first: make cluster-start)
loadtest: build
	TARGET=$${TARGET:-http://127.0.0.1:8080} JWT_SECRET=$${JWT_SECRET:-dev-secret} \
	  $(GOBIN)/k6 run loadtest/socketio.js

## bench: micro-benchmarks, then the side-by-side run against socket.io 4.8 and its Go port (rewrites docs/BENCHMARKS.md)
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/parser ./engineio ./room ./adapter/... ./socketio ./queue/... ./internal/auth ./internal/ratelimit
	./scripts/bench.sh

## capacity: 1, 2, 4 gateways on a 3-master Redis Cluster under loadgen fanout -rooms (markdown to stdout, or OUT=file; docs/CAPACITY.md)
capacity: build
	./scripts/capacity.sh

## cluster: Redis + 3 gateways + HAProxy (+ Prometheus) from local binaries on 127.0.0.1; Ctrl-C stops it
cluster: build
	./scripts/cluster.sh

cluster-start: build
	./scripts/cluster.sh start

cluster-stop:
	./scripts/cluster.sh stop

clean:
	rm -rf bin $(CLIENT_JS)
