VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 60s

.PHONY: run test build fuzz clean

## run: start the server with the embedded defaults (port 1935); override with env vars.
## Built first, then exec'd: Ctrl-C reaches the server alone, and make ends with its status.
run:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/rtmp-server-run ./cmd/rtmp-server
	exec bin/rtmp-server-run --config etc/rtmp-server.env

## test: install missing test peers (as root), then gofmt, go vet, staticcheck and go test -race
test:
	bash scripts/test.sh

## build: static binary in bin/
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/rtmp-server ./cmd/rtmp-server

## fuzz: run every fuzz target for FUZZTIME each (CI runs them for a few seconds)
fuzz:
	FUZZ_TIME=$(FUZZTIME) bash scripts/fuzz-ci.sh

clean:
	rm -rf bin dist

## bench: load this server and nginx-rtmp with cmd/rtmp-bench and compare (see BENCHMARKS.md)
.PHONY: bench
bench:
	bash bench/run.sh

## package: .deb and .rpm in dist/ with go tool nfpm, from the nfpms entry of
## .goreleaser.yaml (see packaging/nfpm); PKG_ARCH=amd64|arm64|arm (ARMv7),
## PKG_OUT=DIR to write them elsewhere
PKG_ARCH ?= $(shell go env GOARCH)
PKG_OUT ?= dist
PKG_DIR := bin/pkg
package:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(PKG_ARCH) GOARM=7 go build -trimpath -ldflags "$(LDFLAGS)" \
	  -o $(PKG_DIR)/linux_$(PKG_ARCH)/rtmp-server ./cmd/rtmp-server
	go run ./packaging/man -version $(VERSION) -o $(PKG_DIR)/rtmp-server.8.gz
	go run ./packaging/nfpm -version $(VERSION) -arch $(PKG_ARCH) \
	  -binary $(PKG_DIR)/linux_$(PKG_ARCH)/rtmp-server -o $(PKG_DIR)/nfpm-$(PKG_ARCH).yaml
	@mkdir -p $(PKG_OUT)
	go tool nfpm package -f $(PKG_DIR)/nfpm-$(PKG_ARCH).yaml -p deb -t $(PKG_OUT)/
	go tool nfpm package -f $(PKG_DIR)/nfpm-$(PKG_ARCH).yaml -p rpm -t $(PKG_OUT)/

## test-packages: lint the packages, then install, run, reload, upgrade and
## remove them under a booted systemd in a container (root; see the script)
test-packages:
	bash packaging/test/nspawn.sh

## test-fresh: check that make test's install step sets up a fresh Debian 12
## (chroot of a debootstrapped root plus this Go; root; see the script)
test-fresh:
	bash packaging/test/fresh.sh

## test-image: build the container image with podman and stream through it
test-image:
	bash packaging/test/image.sh

## image: the container image localhost/rtmp-server:$(VERSION) (podman)
image:
	VERSION=$(VERSION) bash packaging/test/image.sh --build-only

## release-snapshot: everything a release makes, without publishing (needs
## goreleaser v2: go install github.com/goreleaser/goreleaser/v2@v2.15.1, and
## a docker CLI for the images, or RELEASE_SKIP=publish,docker)
RELEASE_SKIP ?= publish
release-snapshot:
	goreleaser release --snapshot --clean --skip=$(RELEASE_SKIP)

.PHONY: package test-packages test-fresh test-image image release-snapshot
