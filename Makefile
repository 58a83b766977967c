# oodguard: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.Version=$(VERSION)
ORT_LIB := $(CURDIR)/.cache/onnxruntime/1.24.1/linux-$(shell $(GO) env GOARCH)/libonnxruntime.so
export ONNXRUNTIME_LIB ?= $(ORT_LIB)

.PHONY: all build test ort lint bench fixtures clean

all: build

## ort: fetch the ONNX Runtime library (pinned by sha256) into .cache/ (once)
ort:
	@scripts/fetch-onnxruntime.sh

## build: build bin/oodguard and bin/oodguardd
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/oodguard ./cmd/oodguardd

## lint: gofmt and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## test: everything the tests need, then the tests (CI runs this)
test: ort lint
	OODGUARD_REQUIRE_ORT=1 $(GO) test -count=1 ./...

## bench: the benchmarks, with ratios against their baselines
bench: ort
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

## fixtures: remake testdata/models with PyTorch (Debian's python3-torch)
fixtures:
	/usr/bin/python3 testdata/make_models.py

clean:
	rm -rf bin/
