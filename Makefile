# EdgeOS: the two commands are `make run` and `make test`; the rest are their parts.
# Every target installs what it needs first (tools/install-deps.sh is quick when nothing is missing).

SYSTEM ?= system.xml
BOARD  ?= qemu-virt-aarch64
IMAGE  ?= build/edgeos.img
REPORT ?= build/edgeos.report.txt
FUZZ_SECONDS ?= 20
EDGEOS := cargo run -q --release --bin edgeos --

.PHONY: run test deps bare image check graph bench idle baseline baseline-smoke host-test lint sdfgen-test memcached-test loadgen-test system-test net-test memcached-qemu-test instances-test policy-test model-check fuzz-smoke net-bench clean

## run: build the default system (system.xml) and boot it in QEMU (Ctrl-A X quits)
run: image
	qemu/run.sh $(IMAGE)

## test: every test: host unit and fixture tests, lints, QEMU system tests, a fuzz smoke run
test: deps host-test model-check lint sdfgen-test memcached-test loadgen-test system-test net-test memcached-qemu-test instances-test policy-test baseline-smoke fuzz-smoke
	@echo "make test: all suites passed"

deps:
	@tools/install-deps.sh

## bare: the kernel and every PD program, for aarch64-unknown-none, into build/elf/
bare: deps
	@tools/build-bare.sh

## image: the bootable image of $(SYSTEM) and its report
image: bare
	$(EDGEOS) build $(SYSTEM) --board $(BOARD) --search-path build/elf -o $(IMAGE) --report $(REPORT)

## check: validate $(SYSTEM)
check:
	$(EDGEOS) check $(SYSTEM)

## graph: $(SYSTEM) as Graphviz DOT and SVG in build/
graph:
	@mkdir -p build
	$(EDGEOS) graph $(SYSTEM) -o build/system.dot --svg build/system.svg

host-test:
	cargo test -q

lint: deps
	cargo clippy -q --all-targets -- -D warnings
	tools/build-bare.sh --lint

## model-check: the ring wake-up protocol under loom (every interleaving)
model-check:
	libs/rings/loom.sh

memcached-test:
	tests/memcached/run.sh

loadgen-test:
	tests/loadgen/run.sh

sdfgen-test: bare
	tests/sysdesc/run.sh

system-test: bare
	MATRIX=1 tests/system/run.sh
	tests/system/boot-default.sh

net-test: bare
	tests/net/run.sh

## memcached-qemu-test: pymemcache and libmemcached-tools against the memcached instances in QEMU
memcached-qemu-test: bare
	tests/memcached-qemu/run.sh

## instances-test: 300 memcached instances at once (one per port) under the load generator
instances-test: bare
	SKIP_BUILD=1 tests/instances/run.sh

## policy-test: per-client policy: each client address gets its own memcached instance (raw L2 link)
policy-test: bare
	SKIP_BUILD=1 tests/policy/run.sh

fuzz-smoke:
	libs/sysdesc/fuzz/run.sh $(FUZZ_SECONDS)
	pds/virtualiser/core/fuzz/run.sh $(FUZZ_SECONDS)
	tenants/memcached/fuzz/run.sh $(FUZZ_SECONDS)
	pds/manager/core/fuzz/run.sh $(FUZZ_SECONDS)

## bench: IPC round trips and boot time in guest instructions (-icount), see docs/benchmarks.md
bench: bare
	tests/system/run.sh bench boot_time

## net-bench: the network path's measurements (docs/benchmarks.md, "Network path"): round trips and
## echoes/s into build/net-bench.txt, then instructions per packet under -icount
net-bench: bare
	tests/net/run.sh bench
	tests/net/run.sh icount

## idle: host CPU time of QEMU while the default system idles
idle: image
	tests/system/idle.sh $(IMAGE)

## baseline: Linux in the same QEMU, side by side with EdgeOS (build/baseline/results.md)
baseline: deps
	tools/baseline/compare.sh

baseline-smoke: deps
	tests/baseline/smoke.sh

clean:
	rm -rf build target
