# Fusebox: set-up, build, run, test and bench in one place.
# `make run` and `make test` do all set-up on a fresh Debian 12 machine.

BUILD       ?= build
FUZZ_BUILD  ?= build-fuzz
CORPUS      ?= $(abspath ../shared/corpus/hlo)
PACKAGES     = meson ninja-build pkg-config gcc g++ clang libclang-rt-dev \
               libglib2.0-dev libgtk-4-dev libjson-c-dev llvm-19-dev \
               libopenblas-dev libopenblas0-pthread libdnnl-dev xvfb xauth gettext \
               desktop-file-utils appstream libcairo2-dev libpango1.0-dev
BENCH_PACKAGES = python3-torch python3-numpy python3-venv graphviz valgrind libblis4-serial
GUI_ENV      = GTK_A11Y=none GSK_RENDERER=cairo GDK_BACKEND=x11
SAMPLE       = data/models/mlp.hlo

.PHONY: all deps build run test test-fuzz bench clean

all: build

deps:
	@build-aux/install-deps.sh $(PACKAGES)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --native-file build-aux/native.ini

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	@if [ -n "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ]; then \
	  export GSETTINGS_SCHEMA_DIR="$(abspath $(BUILD))/data"; exec $(BUILD)/app/fusebox $(SAMPLE); \
	else \
	  echo "No display (DISPLAY and WAYLAND_DISPLAY are unset): printing the pass-by-pass report of $(SAMPLE) instead."; \
	  $(BUILD)/app/fusebox-cli compile $(SAMPLE) --passes all; \
	fi

# The whole suite: unit, corpus and gui tests under Xvfb, then the parser fuzzer.
test: build
	@rm -f $(BUILD)/meson-logs/testlog.json $(FUZZ_BUILD)/meson-logs/testlog.json
	@status=0; \
	if [ -d "$(CORPUS)" ]; then export FUSEBOX_CORPUS="$(CORPUS)"; \
	else echo "note: $(CORPUS) not found; corpus tests will be skipped"; fi; \
	$(GUI_ENV) xvfb-run -a meson test -C $(BUILD) --print-errorlogs --num-processes 2 \
	  --no-suite fuzz --no-suite slow || status=1; \
	$(MAKE) --no-print-directory test-fuzz || status=1; \
	exit $$status

test-fuzz: deps
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dgui=false --native-file build-aux/native.ini
	ninja -C $(FUZZ_BUILD) tests/fuzz-parser
	meson test -C $(FUZZ_BUILD) --suite fuzz --print-errorlogs

bench: build
	@build-aux/install-deps.sh $(BENCH_PACKAGES)
	bench/run-all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
