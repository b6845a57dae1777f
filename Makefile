VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 30s

.PHONY: run test build fuzz clean

## run: start the server with the embedded defaults (port 1935); override with env vars
run:
	go run ./cmd/rtmp-server --config etc/rtmp-server.env

## test: install missing test peers (as root), then gofmt, go vet and go test -race
test:
	bash scripts/test.sh

## build: static binary in bin/
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/rtmp-server ./cmd/rtmp-server

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$(go list ./internal/...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    go test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin dist
