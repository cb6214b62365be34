# acco: a thin façade over the acco binary, as the team used Terraform + Ansible.
#   make test                 everything CI runs
#   make validate ENV=prod    check an environment, offline
#   make init ENV=prod        valid YAML + credentials present + state reachable
#   make deploy ENV=preprod   acco deploy: one lock, one plan (cloud + host), asks once, apply, configure, verify
#   make verify ENV=test      prove the data flow on the live environment (acco verify)
#   make bench-peer           apply, no-op plan and destroy timed on a throwaway local cloud, beside OpenTofu's figures (RUNS=3)
#   make destroy ENV=test     delete the environment's cloud resources (asks for confirmation;
#                             a protected database, as prod's, refuses)
# credentials.sh (git-ignored; see credentials.sh.example) is sourced when present;
# with ENV=local, the running local cloud's variables (acco local env) are used.

ENV ?= test
# The environment `make demo` runs: local (the local cloud with VMs) by default.
DEMO_ENV ?= local
# Runs of each measurement of make bench-peer (the table shows medians).
RUNS ?= 3
SHELL := /bin/bash
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ACCO := bin/acco
# Commands that talk to OVH read credentials.sh when it exists; the local
# environment lives on the local cloud (make demo), whose variables acco local env prints.
WITH_CREDS = $(if $(wildcard credentials.sh),source ./credentials.sh &&,) $(if $(filter local,$(ENV)),vars=$$($(ACCO) local env) && eval "$$vars" &&,)

.PHONY: bench-peer soak all build test lint fmt-check vet staticcheck unit fuzz bench deps vm-image example-backend validate init bootstrap plan apply configure deploy verify destroy db-stop db-start db-status demo local-down clean

all: build

build: ## build bin/acco
	$(GO) build -o $(ACCO) ./cmd/acco

test: deps vm-image example-backend fmt-check vet staticcheck unit ## gofmt, vet, staticcheck and the race-enabled tests (VM tests included)

deps: ## install the Debian packages the tests use, when missing
	@scripts/ensure-deps.sh

vm-image: ## install QEMU and build (or reuse) the Debian 12 guest image of the VM tests
	@scripts/vm-image.sh .acco/vm-image

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 30m ./...

lint: fmt-check vet staticcheck

fuzz: ## run each fuzz target for a while
	$(GO) test ./internal/spec -run '^$$' -fuzz FuzzLoad -fuzztime 30s
	$(GO) test ./state -run '^$$' -fuzz FuzzDecode -fuzztime 30s

bench: deps vm-image ## benchmarks: no-op plan at 50 ms latency; no-op configure vs the same Ansible playbook on a VM; db stop + start of 100 MiB vs plain pg_dump/pg_restore
	@command -v ansible-playbook >/dev/null || { [ "$$(id -u)" -eq 0 ] && export DEBIAN_FRONTEND=noninteractive && apt-get update -qq && apt-get install -y -qq ansible >/dev/null; } || echo "ansible not installed (make bench installs it as root; else sudo apt-get install ansible): the Ansible benchmark will skip"
	$(GO) test ./provision -run '^$$' -bench PlanNoop -benchtime 5x
	$(GO) test ./configure -run '^$$' -bench Noop -benchtime 3x -timeout 60m
	$(GO) test ./cmd/acco -run '^$$' -bench DBStopStart -benchtime 3x -timeout 60m

bench-peer: build ## acco's apply, no-op plan and destroy on a throwaway local cloud at 0 and 50 ms, 1 and 50 instances (RUNS=3 medians), beside OpenTofu's figures of issue 14
	@RUNS=$(RUNS) scripts/bench-peer.sh

soak: deps ## the reliability trials (kill and resume 30 times, faults over 10 seeds, black holes, rollback) with their figures
	@scripts/soak.sh

validate: build ## acco validate $(ENV)
	$(ACCO) validate $(ENV)

init: build ## validate, check credentials, reach the state bucket
	$(WITH_CREDS) $(ACCO) init $(ENV)

bootstrap: build ## create the state bucket (idempotent)
	$(WITH_CREDS) $(ACCO) bootstrap

plan: build ## acco plan $(ENV)
	$(WITH_CREDS) $(ACCO) plan $(ENV)

apply: build ## acco apply $(ENV) (asks for confirmation)
	$(WITH_CREDS) $(ACCO) apply $(ENV)

configure: build ## acco configure $(ENV)
	$(WITH_CREDS) $(ACCO) configure $(ENV)

deploy: build ## acco deploy $(ENV): one plan of cloud and host changes, asks once, applies, configures, verifies
	$(WITH_CREDS) $(ACCO) deploy $(ENV)

destroy: build ## acco destroy $(ENV): asks for confirmation; a protected database (prod) refuses
	$(WITH_CREDS) $(ACCO) destroy $(ENV)

verify: build ## acco verify $(ENV): a tracker's position through the broker into PostgreSQL, the backend, PowerSync
	$(WITH_CREDS) $(ACCO) verify $(ENV)

db-stop: build ## acco db stop $(ENV): dump an on-demand database into the state bucket, then delete its cluster (asks)
	$(WITH_CREDS) $(ACCO) db stop $(ENV)

db-start: build ## acco db start $(ENV): create a stopped on-demand database again, restore it, configure and verify
	$(WITH_CREDS) $(ACCO) db start $(ENV)

db-status: build ## acco db status $(ENV): running or stopped, since when, the dumps kept
	$(WITH_CREDS) $(ACCO) db status $(ENV)

example-backend: .acco/example-backend.tar.gz ## pack examples/backend, the local environment's backend

# Deterministic: same sources and lock file, same bytes (so configure uploads
# it only when it changed). node_modules is bundled: the host has no npm
# registry, so npm ci runs here, in a staging copy of examples/backend
# without its local node_modules or tests; this needs the npm registry.
BACKEND_SRC := $(shell find examples/backend \( -path examples/backend/node_modules -o -path examples/backend/test \) -prune -o -type f -print 2>/dev/null)
BACKEND_STAGE := .acco/example-backend.stage
.acco/example-backend.tar.gz: $(BACKEND_SRC)
	@mkdir -p .acco
	rm -rf $(BACKEND_STAGE) && mkdir -p $(BACKEND_STAGE)/backend
	tar -C examples/backend --exclude=./node_modules --exclude=./test -cf - . | tar -C $(BACKEND_STAGE)/backend -xf -
	cd $(BACKEND_STAGE)/backend && npm ci --omit=dev --ignore-scripts --no-audit --no-fund
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=go-w,a+rX -C $(BACKEND_STAGE) \
		--transform 's,^backend,package,' -cf - backend | gzip -n >$@.tmp && mv $@.tmp $@
	rm -rf $(BACKEND_STAGE)

demo: build deps vm-image example-backend ## acco's job end to end on the local cloud (no OVH account needed)
	ENV=$(DEMO_ENV) scripts/demo.sh

local-down: build ## stop the local cloud
	$(ACCO) local down

clean:
	rm -rf bin
