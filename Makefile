# libfidius_host: build, test, demo, benchmark.
#
#   make demo    build everything, then run examples-c/demo
#   make test    every test: header freshness, Rust tests, C tests under valgrind
#   make bench   per-call and load benchmarks (release builds; cdylib, JSON, WASM, Python)
#   make install PREFIX=/usr/local   library, headers, pkg-config and CMake files

CARGO     ?= cargo
CC        ?= cc
CXX       ?= c++
CBINDGEN  ?= cbindgen
FIDIUS    ?= fidius
VALGRIND  ?= valgrind
GO        ?= go
ZIG_VERSION := 0.17.1
CBINDGEN_VERSION := 0.29.4
# The optional runtimes `make lib` and `make install` build (Cargo features).
FEATURES  ?= wasm python
ZIG       ?= python3 -m ziglang

TARGET    := $(or $(CARGO_TARGET_DIR),target)
LIB_DIR   := $(TARGET)/release
SHARED    := $(LIB_DIR)/libfidius_host.so
STATIC    := $(LIB_DIR)/libfidius_host.a
FIXTURES  := $(abspath $(TARGET)/test-fixtures)
BUILD_C   := $(TARGET)/c
CFLAGS_STRICT := -std=c99 -Wall -Wextra -Werror -pedantic -g -Iinclude
# The static library needs what its dependencies link: libpython (feature
# `python`) and the C runtime.
PYTHON_LIBS := $(shell python3-config --ldflags --embed)
STATIC_LIBS := $(PYTHON_LIBS) -lpthread -ldl -lm -lgcc_s -lc

# Versions: the shared library's soname is libfidius_host.so.$(SOVERSION)
# (major.minor before 1.0, major after), as build.rs sets it.
VERSION   := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
SOVERSION := $(if $(filter 0,$(VERSION_MAJOR)),$(VERSION_MAJOR).$(word 2,$(subst ., ,$(VERSION))),$(VERSION_MAJOR))

CRAFTED_DEFECTS := magic registry_version abi descriptor_size null_vtable bad_utf8_name \
	null_construct construct_returns_null null_registry huge_count no_free_buffer \
	second_bad no_symbol host_imports_magic host_imports_null_array host_imports_null_bind \
	host_imports_bad_name host_imports_huge_count

.PHONY: go-test zig-test cpp-test bindings-test install install-test python-host-test feature-check precompile wasm-fixtures python-fixtures interfaces all lib header check-header header-compile fixtures rust-fixtures crafted-fixtures \
	signed-fixtures test rust-test c-test exports-test examples demo bench clean tools

all: lib

WORKER    := $(LIB_DIR)/fidius-host-worker

# The library, and the worker executable isolated plugins run in (a
# one-line program over the shared library, found next to it).
lib:
	$(CARGO) build --release --lib --no-default-features --features "$(FEATURES)"
	@ln -sf libfidius_host.so $(LIB_DIR)/libfidius_host.so.$(SOVERSION)
	$(CC) $(CFLAGS_STRICT) -O2 tools/worker/fidius_host_worker.c -o $(WORKER) -L$(LIB_DIR) -lfidius_host \
		-Wl,-rpath,'$$ORIGIN:$$ORIGIN/../lib'

tools:
	@$(CBINDGEN) --version 2>/dev/null | grep -qx 'cbindgen $(CBINDGEN_VERSION)' || $(CARGO) install cbindgen --version $(CBINDGEN_VERSION) --locked --force
	@command -v $(FIDIUS) >/dev/null || $(CARGO) install fidius-cli --version 0.5.9 --locked
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@python3 -m ziglang version 2>/dev/null | grep -qx $(ZIG_VERSION) || python3 -m pip install -q ziglang==$(ZIG_VERSION)

# cbindgen reads the whole crate and notes every item it leaves out of the
# header (the core's constants and statics): those notes go to
# $(TARGET)/cbindgen.log, counted. Any other warning is shown and fails.
CBINDGEN_RUN = $(CBINDGEN) --config cbindgen.toml --crate libfidius-host --output $(1) 2>$(TARGET)/cbindgen.log || exit 1; \
	echo "cbindgen: $$(grep -c . $(TARGET)/cbindgen.log) item(s) outside the C API skipped (see $(TARGET)/cbindgen.log)"; \
	if grep -v -E '^WARN: Skip(ping)? libfidius-host::[A-Za-z_0-9]+ - ' $(TARGET)/cbindgen.log; then \
		echo "cbindgen warned (above)"; exit 1; fi

header:
	@mkdir -p $(TARGET)
	@$(call CBINDGEN_RUN,include/fidius_host.h)

check-header:
	@mkdir -p $(TARGET)
	@$(call CBINDGEN_RUN,$(TARGET)/fidius_host.h.fresh)
	@diff -u include/fidius_host.h $(TARGET)/fidius_host.h.fresh \
		|| (echo "include/fidius_host.h is stale: run 'make header'" && exit 1)
	@echo "header: fresh"

header-compile:
	@mkdir -p $(BUILD_C)
	@printf '#include "fidius_host.h"\nint main(void) { return fidius_host_version_number() == FIDIUS_HOST_VERSION_NUMBER ? 0 : 1; }\n' > $(BUILD_C)/header_only.c
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -c $(BUILD_C)/header_only.c -o $(BUILD_C)/header_c99.o
	$(CXX) -x c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -c $(BUILD_C)/header_only.c -o $(BUILD_C)/header_cxx17.o

# ---- fixtures -------------------------------------------------------------

fixtures: rust-fixtures crafted-fixtures signed-fixtures wasm-fixtures python-fixtures

# Debug builds for tests (debug fidius plugins abort on a NULL input pointer,
# so the tests would catch one), release builds for the benchmark.
rust-fixtures:
	cd tests/fixtures/rust && $(CARGO) build --target-dir $(abspath $(TARGET))/fixtures
	cd tests/fixtures/rust && $(CARGO) build --release --target-dir $(abspath $(TARGET))/fixtures
	@mkdir -p $(FIXTURES)/plugins $(FIXTURES)/arena $(FIXTURES)/types $(FIXTURES)/release $(FIXTURES)/configured
	cp $(TARGET)/fixtures/debug/libcalc_plugin.so $(FIXTURES)/plugins/
	cp $(TARGET)/fixtures/debug/libscaler_plugin.so $(FIXTURES)/configured/
	@mkdir -p $(FIXTURES)/hostcall
	cp $(TARGET)/fixtures/debug/libhostcall_plugin.so $(FIXTURES)/hostcall/
	@mkdir -p $(FIXTURES)/hostcall-drift
	cp $(TARGET)/fixtures/debug/libauditor_plugin.so $(FIXTURES)/hostcall-drift/
	@mkdir -p $(FIXTURES)/streams
	cp $(TARGET)/fixtures/debug/libstream_plugin.so $(FIXTURES)/streams/
	@mkdir -p $(FIXTURES)/faulty
	cp $(TARGET)/fixtures/debug/libfaulty_plugin.so $(FIXTURES)/faulty/
	cp $(TARGET)/fixtures/debug/libarena_plugin.so $(FIXTURES)/arena/
	cp $(TARGET)/fixtures/debug/libtypes_plugin.so $(FIXTURES)/types/
	@mkdir -p $(FIXTURES)/interfaces
	cp examples-c/interfaces/*.toml $(FIXTURES)/interfaces/
	cp $(TARGET)/fixtures/release/libcalc_plugin.so $(TARGET)/fixtures/release/libarena_plugin.so \
		$(TARGET)/fixtures/release/libtypes_plugin.so $(TARGET)/fixtures/release/libhostcall_plugin.so \
		$(TARGET)/fixtures/release/libstream_plugin.so $(FIXTURES)/release/
	@mkdir -p $(FIXTURES)/faulty-release
	cp $(TARGET)/fixtures/release/libfaulty_plugin.so $(FIXTURES)/faulty-release/

# WebAssembly components (fidius-guest 0.5.9, wasm32-wasip2), staged as
# packages: wasm/ (unsigned), wasm-signed/ (package.sig by the fidius CLI),
# the configured scaler in configured/wasm-scaler, and the Bookkeeper that
# calls its host in hostcall-wasm/bookkeeper.
WASM_PACKAGES := calc:calc_component hostile:hostile_component fetch:fetch_component dialer:socket_component \
	stream:stream_component

wasm-fixtures: tools signed-fixtures
	cd tests/fixtures/wasm && $(CARGO) build --release --target wasm32-wasip2 --target-dir $(abspath $(TARGET))/fixtures-wasm
	@for pair in $(WASM_PACKAGES); do pkg=$${pair%%:*}; bin=$${pair##*:}; \
		for kind in wasm wasm-signed; do \
			rm -rf $(FIXTURES)/$$kind/$$pkg && mkdir -p $(FIXTURES)/$$kind/$$pkg && \
			cp tests/fixtures/wasm/packages/$$pkg/package.toml $(FIXTURES)/$$kind/$$pkg/ && \
			cp $(TARGET)/fixtures-wasm/wasm32-wasip2/release/$$bin.wasm $(FIXTURES)/$$kind/$$pkg/ || exit 1; \
		done; \
		$(FIDIUS) package sign --key $(FIXTURES)/keys/trusted.secret $(FIXTURES)/wasm-signed/$$pkg >/dev/null || exit 1; \
	done
	rm -rf $(FIXTURES)/configured/wasm-scaler && mkdir -p $(FIXTURES)/configured/wasm-scaler
	cp tests/fixtures/configured/wasm-scaler.toml $(FIXTURES)/configured/wasm-scaler/package.toml
	cp $(TARGET)/fixtures-wasm/wasm32-wasip2/release/scaler_component.wasm $(FIXTURES)/configured/wasm-scaler/
	rm -rf $(FIXTURES)/hostcall-wasm && mkdir -p $(FIXTURES)/hostcall-wasm/bookkeeper
	cp tests/fixtures/hostcall/wasm-bookkeeper.toml $(FIXTURES)/hostcall-wasm/bookkeeper/package.toml
	cp $(TARGET)/fixtures-wasm/wasm32-wasip2/release/hostcall_component.wasm $(FIXTURES)/hostcall-wasm/bookkeeper/
	@mkdir -p $(FIXTURES)/archives
	$(FIDIUS) package pack $(FIXTURES)/wasm/calc --output $(FIXTURES)/archives/calc.fid >/dev/null 2>&1
	$(FIDIUS) package pack $(FIXTURES)/wasm-signed/calc --output $(FIXTURES)/archives/calc-signed.fid >/dev/null 2>&1

# Python packages, staged as python/ (unsigned) and python-signed/calc
# (package.sig by the fidius CLI), and the calculator packed by the CLI as
# archives/py-calc.fid and py-calc-signed.fid.
python-fixtures: tools signed-fixtures
	rm -rf $(FIXTURES)/python $(FIXTURES)/python-signed
	@mkdir -p $(FIXTURES)/python-signed
	cp -r tests/fixtures/python $(FIXTURES)/python
	rm -rf $(FIXTURES)/isolated && cp -r tests/fixtures/isolated $(FIXTURES)/isolated
	rm -rf $(FIXTURES)/configured/python-scaler && mkdir -p $(FIXTURES)/configured
	cp -r tests/fixtures/configured/python-scaler $(FIXTURES)/configured/
	cp -r tests/fixtures/python/calc $(FIXTURES)/python-signed/calc
	$(FIDIUS) package sign --key $(FIXTURES)/keys/trusted.secret $(FIXTURES)/python-signed/calc >/dev/null
	@mkdir -p $(FIXTURES)/archives
	$(FIDIUS) package pack $(FIXTURES)/python/calc --output $(FIXTURES)/archives/py-calc.fid >/dev/null 2>&1
	$(FIDIUS) package pack $(FIXTURES)/python-signed/calc --output $(FIXTURES)/archives/py-calc-signed.fid >/dev/null 2>&1

crafted-fixtures:
	@mkdir -p $(FIXTURES)/crafted
	$(CC) -std=c99 -Wall -Wextra -Werror -Wno-unused -shared -fPIC tests/fixtures/crafted/crafted.c -o $(FIXTURES)/crafted/libcrafted.so
	$(CC) -std=c99 -Wall -Wextra -Werror -Wno-unused -shared -fPIC -DMARKER tests/fixtures/crafted/crafted.c -o $(FIXTURES)/crafted/libmarker.so
	$(CC) -std=c99 -Wall -Wextra -Werror -Wno-unused -shared -fPIC -DSTREAM_START_FAILS tests/fixtures/crafted/crafted.c \
		-o $(FIXTURES)/crafted/libstream_start_fails.so
	$(CC) -std=c99 -Wall -Wextra -Werror -Wno-unused -shared -fPIC -DHOST_IMPORTS tests/fixtures/crafted/crafted.c \
		-o $(FIXTURES)/crafted/libhost_imports.so
	@# Libraries whose initialisers crash or hang: a folder of their own,
	@# which only a discovery in a worker process may scan.
	@mkdir -p $(FIXTURES)/probe
	$(CC) -std=c99 -Wall -Wextra -Werror -Wno-unused -shared -fPIC -DINIT_CRASH tests/fixtures/crafted/crafted.c \
		-o $(FIXTURES)/probe/libinit_crash.so
	$(CC) -std=c99 -Wall -Wextra -Werror -Wno-unused -shared -fPIC -D_POSIX_C_SOURCE=200809L -DINIT_HANG \
		tests/fixtures/crafted/crafted.c -o $(FIXTURES)/probe/libinit_hang.so
	@for d in $(CRAFTED_DEFECTS); do \
		D=$$(echo $$d | tr a-z A-Z); \
		$(CC) -std=c99 -Wall -Wextra -Werror -Wno-unused -shared -fPIC -DDEFECT_$$D tests/fixtures/crafted/crafted.c \
			-o $(FIXTURES)/crafted/libdefect_$$d.so || exit 1; \
	done

# Keys and signatures made by the real fidius CLI (fidius-cli 0.5.9).
signed-fixtures: rust-fixtures crafted-fixtures tools
	@mkdir -p $(FIXTURES)/keys $(FIXTURES)/signed
	@test -f $(FIXTURES)/keys/trusted.secret || $(FIDIUS) keygen --out $(FIXTURES)/keys/trusted
	@test -f $(FIXTURES)/keys/untrusted.secret || $(FIDIUS) keygen --out $(FIXTURES)/keys/untrusted
	cp $(FIXTURES)/plugins/libcalc_plugin.so $(FIXTURES)/signed/
	$(FIDIUS) sign --key $(FIXTURES)/keys/trusted.secret $(FIXTURES)/signed/libcalc_plugin.so
	cp $(FIXTURES)/crafted/libmarker.so $(FIXTURES)/signed/libmarker.so
	$(FIDIUS) sign --key $(FIXTURES)/keys/untrusted.secret $(FIXTURES)/signed/libmarker.so
	cp $(FIXTURES)/release/libcalc_plugin.so $(FIXTURES)/release/libcalc_signed.so
	$(FIDIUS) sign --key $(FIXTURES)/keys/trusted.secret $(FIXTURES)/release/libcalc_signed.so

# ---- tests ----------------------------------------------------------------

test: tools check-header header-compile lib feature-check fixtures rust-test c-test null-args-test hostile-test python-host-test bindings-test exports-test install-test examples fuzz-smoke
	@echo "make test: all suites passed"

# The library builds without its optional runtimes too; without `python` it
# does not link libpython and reports Python loads as UNSUPPORTED.
feature-check: fixtures
	$(CARGO) check --lib --no-default-features
	$(CARGO) build --lib --no-default-features --features wasm
	@if ldd $(TARGET)/debug/libfidius_host.so | grep -q libpython; then \
		echo "a build without the python feature links libpython"; exit 1; fi
	FIDIUS_TEST_FIXTURES=$(FIXTURES) $(CARGO) test --no-default-features --features wasm --test without_python

# A Python program embeds the library (ctypes) and loads a Python plugin in
# the interpreter already running.
python-host-test: lib fixtures
	python3 tests/python/host_in_python.py $(abspath $(SHARED)) $(FIXTURES)

rust-test: fixtures lib
	FIDIUS_TEST_FIXTURES=$(FIXTURES) $(CARGO) test --workspace

C_TESTS := test_capi test_json test_wasm test_egress test_python test_configured test_host_functions test_streams test_isolated
# Suites whose hosts come from test_builder(), run once more isolated.
C_ISOLATED_TESTS := test_capi test_json test_python

$(BUILD_C)/%-shared: tests/c/%.c tests/c/check.h include/fidius_host.h lib
	@mkdir -p $(BUILD_C)
	$(CC) $(CFLAGS_STRICT) $< -o $@ -L$(LIB_DIR) -lfidius_host -Wl,-rpath,$(abspath $(LIB_DIR)) -lpthread

$(BUILD_C)/%-static: tests/c/%.c tests/c/check.h include/fidius_host.h lib
	@mkdir -p $(BUILD_C)
	$(CC) $(CFLAGS_STRICT) $< -o $@ $(STATIC) $(STATIC_LIBS)

# RUST_BACKTRACE=0 for runs under valgrind: with backtraces on, a panicking
# Rust plugin's own std caches symbolization data it never frees.
# PYTHONMALLOC=malloc: CPython's own small-object allocator reads memory
# valgrind cannot track; with malloc every allocation is checked.
VALGRIND_FLAGS := --quiet --fair-sched=yes --num-callers=40 --keep-debuginfo=yes --suppressions=tests/c/valgrind.supp --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite,indirect,possible

c-test: fixtures $(foreach t,$(C_TESTS),$(BUILD_C)/$(t)-shared $(BUILD_C)/$(t)-static)
	@for t in $(C_TESTS); do for kind in shared static; do \
		echo "== $$t ($$kind, valgrind)"; \
		RUST_BACKTRACE=0 PYTHONMALLOC=malloc FIDIUS_TEST_FIXTURES=$(FIXTURES) $(VALGRIND) $(VALGRIND_FLAGS) $(BUILD_C)/$$t-$$kind || exit 1; \
	done; done
	@# The runtime suites again with every native and Python plugin in a
	@# worker process (tests/c/check.h: test_builder).
	@for t in $(C_ISOLATED_TESTS); do \
		echo "== $$t (shared, isolated, valgrind)"; \
		FIDIUS_TEST_ISOLATION=isolated RUST_BACKTRACE=0 PYTHONMALLOC=malloc FIDIUS_TEST_FIXTURES=$(FIXTURES) $(VALGRIND) $(VALGRIND_FLAGS) $(BUILD_C)/$$t-shared || exit 1; \
	done

# Every fidius_host_* function of the header, called with NULL for each
# pointer parameter in turn, each call in its own process (generated from
# the header, so a new function is covered without editing the test).
.PHONY: null-args-test hostile-test
$(BUILD_C)/null_args.c: tests/hostile/gen_null_args.py tests/hostile/null_args_support.h include/fidius_host.h
	@mkdir -p $(BUILD_C)
	python3 tests/hostile/gen_null_args.py include/fidius_host.h -o $@

$(BUILD_C)/null_args: $(BUILD_C)/null_args.c lib
	$(CC) $(CFLAGS_STRICT) -Itests/hostile $< -o $@ -L$(LIB_DIR) -lfidius_host -Wl,-rpath,$(abspath $(LIB_DIR))

null-args-test: lib $(BUILD_C)/null_args
	RUST_BACKTRACE=0 FIDIUS_TEST_FIXTURES=$(FIXTURES) $(BUILD_C)/null_args

# Hostile files and inputs (tests/hostile/hostile.c): each case in its own
# process, each expecting one status within a time bound, under valgrind
# (bounds scaled by HOSTILE_TIME_SCALE for its slowness).
$(BUILD_C)/hostile: tests/hostile/hostile.c include/fidius_host.h lib
	@mkdir -p $(BUILD_C)
	$(CC) $(CFLAGS_STRICT) $< -o $@ -L$(LIB_DIR) -lfidius_host -Wl,-rpath,$(abspath $(LIB_DIR))

hostile-test: fixtures $(BUILD_C)/hostile
	RUST_BACKTRACE=0 PYTHONMALLOC=malloc HOSTILE_TIME_SCALE=6 FIDIUS_TEST_FIXTURES=$(FIXTURES) \
		$(VALGRIND) $(VALGRIND_FLAGS) $(BUILD_C)/hostile

# Only fidius_host_* symbols may be exported by the shared library.
exports-test: lib
	@bad=$$(nm -D --defined-only $(SHARED) | awk '{print $$3}' | grep -v '^fidius_host_' || true); \
	if [ -n "$$bad" ]; then echo "unexpected exports:"; echo "$$bad"; exit 1; fi; \
	echo "exports: $$(nm -D --defined-only $(SHARED) | grep -c ' T fidius_host_') functions, all prefixed fidius_host_"

# ---- interface files ------------------------------------------------------

# The interface files of the fixture interfaces, generated from their Rust
# source (tools/interface-gen checks the committed ones are current).
INTERFACES := calculator:Calculator echo:Echo type_echo:TypeEcho hostile:Hostile fetcher:Fetcher dialer:Dialer streamer:Streamer faulty:Faulty

interfaces:
	$(CARGO) build -p fidius-interface-gen
	@for pair in $(INTERFACES); do file=$${pair%%:*}; trait=$${pair##*:}; \
		$(TARGET)/debug/fidius-interface-gen tests/fixtures/rust/calc-interface --trait $$trait \
			-o examples-c/interfaces/$$file.toml || exit 1; done
	$(TARGET)/debug/fidius-interface-gen tests/fixtures/rust/calc-interface --trait Scaler --config ScaleConfig \
		-o examples-c/interfaces/scaler.toml
	$(TARGET)/debug/fidius-interface-gen tests/fixtures/rust/hostcall-plugin --trait Ledger -o examples-c/interfaces/ledger.toml
	$(TARGET)/debug/fidius-interface-gen tests/fixtures/rust/hostcall-plugin --trait Bookkeeper \
		-o examples-c/interfaces/bookkeeper.toml

# Ahead-of-time compile a WebAssembly component for this library's wasmtime:
#   make precompile COMPONENT=path/to/plugin.wasm   (writes path/to/plugin.cwasm)
precompile:
	@test -n "$(COMPONENT)" || { echo "usage: make precompile COMPONENT=path/to/plugin.wasm"; exit 2; }
	$(CARGO) run --release -q -p fidius-precompile -- $(COMPONENT)

# ---- bindings ---------------------------------------------------------------

# Go (cgo), against the library built here: vet, the tests, the tests under
# the race detector, the tests in forced-GC mode (build tag fidius_gcdebug:
# a collection at every entry into C, so a handle the Go side lets go too
# early fails loudly), and the example.
go-test: lib fixtures
	cd bindings/go && CGO_CFLAGS=-I$(abspath include) \
		CGO_LDFLAGS="-L$(abspath $(LIB_DIR)) -Wl,-rpath,$(abspath $(LIB_DIR))" \
		FIDIUS_TEST_FIXTURES=$(FIXTURES) RUST_BACKTRACE=0 \
		sh -c '$(GO) vet ./... && $(GO) vet -tags fidius_gcdebug ./... && $(GO) test -count=1 ./... && $(GO) test -count=1 -race ./... && $(GO) test -count=1 -tags fidius_gcdebug ./... && $(GO) run ./example $(FIXTURES)/plugins'

# Zig: `zig build test` of the package (Zig from PyPI, see `tools`).
zig-test: lib fixtures tools
	cd bindings/zig && FIDIUS_TEST_FIXTURES=$(FIXTURES) \
		$(ZIG) build test -Dinclude-dir=$(abspath include) -Dlib-dir=$(abspath $(LIB_DIR))

# C++17 wrapper: its header alone under the strictest warnings, then the
# GoogleTest suite under valgrind, and the example.
CPP_BUILD := $(TARGET)/cpp
CXXFLAGS_STRICT := -std=c++17 -Wall -Wextra -Werror -pedantic -g -Iinclude -Ibindings/cpp/include
cpp-test: lib fixtures
	@mkdir -p $(CPP_BUILD)
	$(CXX) $(CXXFLAGS_STRICT) -Wshadow -Wconversion -Wold-style-cast -x c++ -fsyntax-only bindings/cpp/include/fidius_host.hpp
	$(CXX) $(CXXFLAGS_STRICT) bindings/cpp/tests/test_fidius_host.cpp -o $(CPP_BUILD)/test_fidius_host \
		-L$(LIB_DIR) -lfidius_host -Wl,-rpath,$(abspath $(LIB_DIR)) -lgtest -lgtest_main -pthread
	$(CXX) $(CXXFLAGS_STRICT) bindings/cpp/example.cpp -o $(CPP_BUILD)/example \
		-L$(LIB_DIR) -lfidius_host -Wl,-rpath,$(abspath $(LIB_DIR))
	RUST_BACKTRACE=0 PYTHONMALLOC=malloc FIDIUS_TEST_FIXTURES=$(FIXTURES) $(VALGRIND) $(VALGRIND_FLAGS) $(CPP_BUILD)/test_fidius_host
	$(CPP_BUILD)/example $(FIXTURES)/plugins $(FIXTURES)/interfaces/calculator.toml BasicCalculator greet '["C++"]'

bindings-test: go-test zig-test cpp-test

# ---- fuzzing ----------------------------------------------------------------

# libFuzzer targets (fuzz/, see fuzz/README.md), built on the stable toolchain
# with the coverage instrumentation cargo-fuzz passes: for an explicit
# --target, so that build scripts and proc macros are not instrumented, and in
# their own target directory, so that these RUSTFLAGS do not invalidate the
# main build. A failing input is saved under $(FUZZ_DIR)/artifacts/<target>/.
#   make fuzz-smoke   each target for FUZZ_SMOKE_SECONDS on a scratch copy of fuzz/corpus
#   make fuzz         each target for FUZZ_SECONDS; inputs that reach new code (edges, not hit
#                     counts: the corpus stays small) are merged into fuzz/corpus
FUZZ_TARGETS := interface_builder interface_file manifest json_call elf_header fid_archive
FUZZ_DIR := $(abspath $(TARGET))/fuzz
FUZZ_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_BIN := $(FUZZ_DIR)/$(FUZZ_TRIPLE)/release
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 4
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
	-Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing
# Without a sanitizer libFuzzer does not enforce -malloc_limit_mb itself: the
# targets' allocator reads it (fuzz/src/lib.rs).
FUZZ_FLAGS := -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -print_final_stats=1
# What failed, from a target's log (the backtrace stays in the log).
FUZZ_REPORT = grep -E -A6 'panicked at|^==ERROR|ERROR: libFuzzer' $(1) | head -n 24; echo "log: $(1)"

.PHONY: fuzz-build fuzz-smoke fuzz
fuzz-build:
	cd fuzz && RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(CARGO) build --release --target $(FUZZ_TRIPLE) --target-dir $(FUZZ_DIR)

fuzz-smoke: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		run=$(FUZZ_DIR)/smoke/$$t; rm -rf $$run && mkdir -p $$run/corpus $(FUZZ_DIR)/artifacts/$$t && cp fuzz/corpus/$$t/* $$run/corpus/ && \
		$(FUZZ_BIN)/$$t $$run/corpus $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SMOKE_SECONDS) \
			-artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ > $$run/log 2>&1 \
			|| { $(call FUZZ_REPORT,$$run/log); echo "fuzz $$t: FAILED (input saved under $(FUZZ_DIR)/artifacts/$$t/)"; exit 1; }; \
		echo "fuzz $$t: $$(sed -n 's/^stat::number_of_executed_units: *//p' $$run/log) executions in $(FUZZ_SMOKE_SECONDS) s"; \
	done

fuzz: fuzz-build
	@failed=; for t in $(FUZZ_TARGETS); do \
		new=$(FUZZ_DIR)/new/$$t; mkdir -p $$new $(FUZZ_DIR)/artifacts/$$t; \
		echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
		$(FUZZ_BIN)/$$t $$new fuzz/corpus/$$t $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ > $$new.log 2>&1 \
			|| { $(call FUZZ_REPORT,$$new.log); failed="$$failed $$t"; }; \
		echo "fuzz $$t: $$(sed -n 's/^stat::number_of_executed_units: *//p' $$new.log) executions"; \
		$(FUZZ_BIN)/$$t -set_cover_merge=1 -use_counters=0 $(FUZZ_FLAGS) fuzz/corpus/$$t $$new > $$new.merge.log 2>&1 \
			|| { $(call FUZZ_REPORT,$$new.merge.log); failed="$$failed $$t(merge)"; }; \
		grep -h '^MERGE-OUTER: .* new files' $$new.merge.log; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (inputs under $(FUZZ_DIR)/artifacts/)"; exit 1; fi

# ---- install ----------------------------------------------------------------

PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL_LIB := $(DESTDIR)$(PREFIX)/lib
INSTALL_INCLUDE := $(DESTDIR)$(PREFIX)/include
# What a program linking the static library also needs (pkg-config
# Libs.private, the CMake static target's link libraries).
PRIVATE_LIBS := $(PYTHON_LIBS) -lpthread -ldl -lm -lgcc_s
PRIVATE_LIBS_CMAKE := $(subst $(eval) ,;,$(strip $(PRIVATE_LIBS)))
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@SOVERSION@|$(SOVERSION)|g' \
	-e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' -e 's|@PRIVATE_LIBS@|$(PRIVATE_LIBS)|g' -e 's|@PRIVATE_LIBS_CMAKE@|$(PRIVATE_LIBS_CMAKE)|g'

install: lib
	install -d $(INSTALL_LIB)/pkgconfig $(INSTALL_LIB)/cmake/fidius_host $(INSTALL_INCLUDE)
	install -m 755 $(SHARED) $(INSTALL_LIB)/libfidius_host.so.$(VERSION)
	ln -sf libfidius_host.so.$(VERSION) $(INSTALL_LIB)/libfidius_host.so.$(SOVERSION)
	ln -sf libfidius_host.so.$(SOVERSION) $(INSTALL_LIB)/libfidius_host.so
	install -m 644 $(STATIC) $(INSTALL_LIB)/libfidius_host.a
	install -d $(DESTDIR)$(PREFIX)/libexec
	install -m 755 $(WORKER) $(DESTDIR)$(PREFIX)/libexec/fidius-host-worker
	sed -e 's/^#define FIDIUS_HOST_BUILT_WITH_WASM 1$$/#define FIDIUS_HOST_BUILT_WITH_WASM $(if $(filter wasm,$(FEATURES)),1,0)/' \
		-e 's/^#define FIDIUS_HOST_BUILT_WITH_PYTHON 1$$/#define FIDIUS_HOST_BUILT_WITH_PYTHON $(if $(filter python,$(FEATURES)),1,0)/' \
		include/fidius_host.h > $(INSTALL_INCLUDE)/fidius_host.h
	install -m 644 bindings/cpp/include/fidius_host.hpp $(INSTALL_INCLUDE)/
	$(SUBST) packaging/fidius_host.pc.in > $(INSTALL_LIB)/pkgconfig/fidius_host.pc
	$(SUBST) packaging/fidius_hostConfig.cmake.in > $(INSTALL_LIB)/cmake/fidius_host/fidius_hostConfig.cmake
	$(SUBST) packaging/fidius_hostConfigVersion.cmake.in > $(INSTALL_LIB)/cmake/fidius_host/fidius_hostConfigVersion.cmake

# Installs into a scratch prefix, then builds tests/install/hello.c out of
# tree with pkg-config (shared and static) and with CMake, and runs each.
INSTALL_CHECK := $(abspath $(TARGET)/install-check)
install-test: fixtures
	rm -rf $(INSTALL_CHECK)
	$(MAKE) --no-print-directory install PREFIX=$(INSTALL_CHECK)/prefix
	@test "$$(readelf -d $(INSTALL_CHECK)/prefix/lib/libfidius_host.so | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" = libfidius_host.so.$(SOVERSION) \
		|| { echo "the installed library's soname is not libfidius_host.so.$(SOVERSION)"; exit 1; }
	@mkdir -p $(INSTALL_CHECK)/pkg-config
	PKG_CONFIG_PATH=$(INSTALL_CHECK)/prefix/lib/pkgconfig; export PKG_CONFIG_PATH; \
	$(CC) -std=c99 -Wall -Wextra -Werror tests/install/hello.c -o $(INSTALL_CHECK)/pkg-config/hello \
		$$(pkg-config --cflags --libs fidius_host) -Wl,-rpath,$(INSTALL_CHECK)/prefix/lib && \
	$(CC) -std=c99 -Wall -Wextra -Werror tests/install/hello.c -o $(INSTALL_CHECK)/pkg-config/hello_static \
		$$(pkg-config --cflags fidius_host) $(INSTALL_CHECK)/prefix/lib/libfidius_host.a $$(pkg-config --static --libs-only-other --libs-only-l fidius_host | sed 's/-lfidius_host//')
	$(INSTALL_CHECK)/pkg-config/hello $(FIXTURES)/plugins
	$(INSTALL_CHECK)/pkg-config/hello $(FIXTURES)/plugins isolated
	$(INSTALL_CHECK)/pkg-config/hello_static $(FIXTURES)/plugins
	cmake -S tests/install -B $(INSTALL_CHECK)/cmake -DCMAKE_PREFIX_PATH=$(INSTALL_CHECK)/prefix -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(INSTALL_CHECK)/cmake >/dev/null
	$(INSTALL_CHECK)/cmake/hello $(FIXTURES)/plugins
	$(INSTALL_CHECK)/cmake/hello_static $(FIXTURES)/plugins

# ---- examples, demo, benchmark ---------------------------------------------

# One program per task a C host does; each runs against the fixtures. The
# examples are built with C99 and the same warnings as the tests.
EXAMPLES := demo discover load_and_call signatures wasm_egress python host_functions streams isolated
IFACES := $(FIXTURES)/interfaces
ARGS_demo := $(FIXTURES)/plugins
ARGS_discover := $(FIXTURES)/plugins $(FIXTURES)/wasm $(FIXTURES)/python $(FIXTURES)/crafted
ARGS_load_and_call := $(FIXTURES)/plugins $(IFACES)/calculator.toml
ARGS_signatures := $(FIXTURES)/signed $(FIXTURES)/plugins/libcalc_plugin.so $(FIXTURES)/keys/trusted.public
ARGS_wasm_egress := $(FIXTURES)/wasm $(IFACES)/fetcher.toml $(IFACES)/hostile.toml
ARGS_python := $(FIXTURES)/python $(IFACES)/calculator.toml
ARGS_host_functions := $(FIXTURES)/hostcall/libhostcall_plugin.so $(IFACES)/bookkeeper.toml $(IFACES)/ledger.toml
ARGS_streams := $(FIXTURES)/wasm/stream $(IFACES)/streamer.toml
ARGS_isolated := $(FIXTURES)/faulty/libfaulty_plugin.so $(IFACES)/faulty.toml

$(BUILD_C)/examples/%: examples-c/%.c include/fidius_host.h lib
	@mkdir -p $(BUILD_C)/examples
	$(CC) $(CFLAGS_STRICT) $< -o $@ -L$(LIB_DIR) -lfidius_host -Wl,-rpath,$(abspath $(LIB_DIR))

examples: fixtures $(foreach e,$(EXAMPLES),$(BUILD_C)/examples/$(e))
	@$(foreach e,$(EXAMPLES),echo "== example $(e)" && RUST_BACKTRACE=0 $(BUILD_C)/examples/$(e) $(ARGS_$(e)) &&) true
	@echo "== example demo (valgrind)"
	@RUST_BACKTRACE=0 $(VALGRIND) $(VALGRIND_FLAGS) $(BUILD_C)/examples/demo $(ARGS_demo) > /dev/null

demo: tools lib fixtures $(BUILD_C)/examples/demo
	$(BUILD_C)/examples/demo $(FIXTURES)/plugins

$(BUILD_C)/bench: bench/bench.c include/fidius_host.h lib
	@mkdir -p $(BUILD_C)
	$(CC) -std=c99 -O2 -Wall -Wextra -Werror -Iinclude $< -o $@ -L$(LIB_DIR) -lfidius_host -Wl,-rpath,$(abspath $(LIB_DIR)) -ldl -lpthread

bench: tools lib fixtures $(BUILD_C)/bench
	$(BUILD_C)/bench $(FIXTURES)/release $(FIXTURES)/keys/trusted.public $(FIXTURES)/interfaces/type_echo.toml
	FIDIUS_TEST_FIXTURES=$(FIXTURES) $(CARGO) bench --bench wasm --bench python

clean:
	$(CARGO) clean
