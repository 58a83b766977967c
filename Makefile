# oodguard: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.Version=$(VERSION)
ORT_LIB := $(CURDIR)/.cache/onnxruntime/1.24.1/linux-$(shell $(GO) env GOARCH)/libonnxruntime.so
export ONNXRUNTIME_LIB ?= $(ORT_LIB)

.PHONY: all build test ort lint bench bench-zoo fixtures clean demo debs firmware reproduce

all: build

## debs: the Debian packages the tests need (mosquitto, the arm64 cross toolchain, qemu-user); installs only missing ones, only as root
debs:
	@scripts/install-debs.sh

## ort: fetch the ONNX Runtime library (pinned by sha256) into .cache/ (once)
ort:
	@scripts/fetch-onnxruntime.sh

## build: build bin/oodguard and bin/oodguardd
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/oodguard ./cmd/oodguardd

## demo: the daemon on testdata/frames with its embedded MQTT broker; a subscriber prints the alerts;
## then the same frames scored by the plain energy score and by the detector `oodguard choose` picked
demo: ort build
	@rm -rf .cache/demo
	@echo "== oodguardd on testdata/frames (10 Fashion-MNIST frames in distribution, 10 MNIST/Tiny ImageNet frames out of it)"
	@bin/oodguard watch -broker tcp://127.0.0.1:18830 -until-offline -save .cache/demo/frames -wait 30s & watcher=$$!; \
	bin/oodguardd -config testdata/demo/oodguardd.yaml; rc=$$?; wait $$watcher; \
	echo "== flagged frames saved in .cache/demo/frames"; [ $$rc -eq 0 ] || exit $$rc; \
	scripts/demo-compare.sh

## firmware: dist/oodguardd-$(VERSION)-linux-{arm64,amd64}.tar.gz: cgo cross-build, ONNX Runtime, systemd unit, example config
FIRMWARE_ARCHS ?= arm64 amd64
firmware: debs
	VERSION=$(VERSION) GO=$(GO) scripts/cross-arm64.sh $(FIRMWARE_ARCHS)

## lint: gofmt and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## test: everything the tests need, then the tests (CI runs this)
test: debs ort lint
	OODGUARD_REQUIRE_ORT=1 $(GO) test -count=1 ./...

## bench: every benchmark, as one table of ratios against baselines measured in the same run,
## saved as .cache/bench/bench.json (PyTorch, for the ResNet-50 model and the training
## comparisons, comes from Debian's python3-torch)
BENCHTIME ?= 2s
bench: ort
	@scripts/install-debs.sh python3-torch python3-onnx
	@mkdir -p .cache/bench
	@[ -f .cache/models/resnet50.onnx ] || /usr/bin/python3 testdata/make_resnet50.py || echo "bench: no PyTorch, the ResNet-50 rows are skipped"
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./... 2>&1 | $(GO) run ./internal/benchtable -json .cache/bench/bench.json

## bench-zoo: one UMAP and one UM step of every testdata/zoo family against PyTorch (batch 64,
## 2 threads, alternating) and the peak RSS of a 20-step run of each, as a markdown table
## (.cache/bench/zoo.md; docs/benchmarks.md "Zoo: UMAP step vs PyTorch"); about 6 minutes
bench-zoo: ort
	@scripts/install-debs.sh python3-torch python3-torchvision python3-onnx
	GO=$(GO) scripts/zoo-bench.sh

## reproduce: Unleashing Mask on real data (../shared/data), end to end with oodguard train, unleash
## and eval. Default REPRODUCE=memorisation: issue #14's regime (models trained to 100% training
## accuracy, 3 seeds, Fashion-MNIST and CIFAR-10; hours on 2 cores, resumable; results in
## .cache/reproduce/memorisation/results.md); memorisation-smoke checks its every step in minutes;
## smoke|short|full: the older driver (short: about 20 minutes; docs/reproduce.md)
REPRODUCE ?= memorisation
reproduce: ort build
	@scripts/install-debs.sh python3-torch python3-onnx python3-numpy python3-pil python3-matplotlib
	REPRODUCE=$(REPRODUCE) GO=$(GO) scripts/reproduce.sh

## fixtures: remake testdata/models with PyTorch (Debian's python3-torch), then the detector
## references in testdata/detect, which depend on those models' weights
fixtures:
	/usr/bin/python3 testdata/make_models.py
	/usr/bin/python3 testdata/make_detectors.py

clean:
	rm -rf bin/ dist/
