# Thin wrappers around CMake/CTest.  `make run` and `make test` work on a fresh
# Debian machine: both install what is missing first (.ci/install-deps, as root).
BUILD ?= build
JOBS  ?= 2
CMAKE_FLAGS ?=
PREFIX ?= /usr/local
# every benchmark under bench/ (each prints its table against the tool a user would
# pick instead); BENCHES='bench/startup.py bench/metrics.py' runs some of them
BENCHES ?= $(filter-out bench/benchlib.py,$(sort $(wildcard bench/*.py)))
# the studies whose cpu-preset figures `make figures` makes (each a script in experiments/
# and a notebook in notebooks/); STUDIES='backbones diversity' makes some of them
STUDIES ?= scaling_models num_images diversity backbones frozen_vs_finetuned alignment robustness \
	cross_dataset attribution iterations

.PHONY: all deps configure build test run figures bench install sanitize format clean

all: build

deps:
	@bash .ci/install-deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: deps
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

run: deps
	@$(MAKE) --no-print-directory build
	$(BUILD)/cfx experiments/scaling_models.lua

# Every study's cpu preset (results in runs/<study>/; finished runs are skipped), then its
# notebook executed headless, which writes the figures into docs/figures/.
figures: deps
	@$(MAKE) --no-print-directory build
	@for s in $(STUDIES); do \
	  echo "== $$s"; \
	  $(BUILD)/cfx experiments/$$s.lua --out runs/$$s || exit 1; \
	  CFX_RESULTS=runs/$$s/$$s-cpu.h5 CFX_FIGDIR=docs/figures jupyter nbconvert --to notebook --execute \
	    --output-dir $(BUILD)/notebooks notebooks/$$s.ipynb || exit 1; \
	done

# Runs every benchmark with the program and library of $(BUILD); one that fails is
# reported and the others still run (the target fails at the end).
bench: deps
	@$(MAKE) --no-print-directory build
	@failed=''; for b in $(BENCHES); do \
	  echo "== /usr/bin/python3 $$b"; \
	  CFX_BIN=$(abspath $(BUILD))/cfx CFX_LUAJIT_CMD=$(abspath $(BUILD))/cfx CFX_LIB=$(abspath $(BUILD))/libcfx.so \
	    /usr/bin/python3 $$b || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed"; exit 1; fi

# cfx on the PATH: the program, libcfx and the Lua library under $(PREFIX) (bin/cfx,
# lib/, share/cfx/lua); `make install PREFIX=$$HOME/.local` needs no root.
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The C tests and Lua specs against an ASan+UBSan build of libcfx (LuaJIT itself is
# not instrumented, so the runtime is preloaded).
sanitize: deps
	cmake -S . -B build-asan -DCFX_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 ctest -L '^(c|lua)$$' --output-on-failure

format:
	clang-format -i core/include/cfx/*.h core/src/*.c core/torch/*.cpp core/torch/*.h core/app/*.c tests/c/*.c

clean:
	rm -rf $(BUILD)
