# qeval build. One obvious way: `make` builds build/qeval, `make test` runs
# every unit test, `make check` is what CI runs (gcc + clang, -Werror, and the
# whole suite again under ASan+UBSan).
#
# Layout is discovered, not listed: every src/*.c is the library, every
# src/cli/*.c is the command line, every tests/test_*.c is one cmocka test
# binary linked against the library, every data/*.jsonl is compiled in.
#
#   make BUILD=build-asan SAN=1 CC=clang test   # sanitizer build, own dir

ifeq ($(origin CC),default)
CC      := gcc
endif
BUILD   ?= build
SAN     ?= 0
PKGS    := jansson libcurl sqlite3 yaml-0.1 gmp mpfr libpcre2-8 libcrypto
TESTPKG := cmocka libmicrohttpd

WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Isrc -I$(BUILD)/gen \
           $(shell pkg-config --cflags $(PKGS))
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lm -lpthread
TESTLIBS:= $(shell pkg-config --libs $(TESTPKG))

# FUZZ=1 (with CC=clang): library instrumented for libFuzzer; see scripts/fuzz.sh
ifeq ($(FUZZ),1)
SAN     := 1
CFLAGS  += -fsanitize=fuzzer-no-link
endif

ifeq ($(SAN),1)
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC  := $(wildcard src/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TOOL_SRC := $(wildcard tests/fake_*.c)
BENCH_SRC:= $(wildcard bench/bench_*.c)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
DATA     := $(wildcard data/*.jsonl)

GEN_C    := $(BUILD)/gen/embedded_data.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/embedded_data.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TOOLS    := $(TOOL_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZERS  := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all test check bench fuzzers fuzz valgrind clean
all: $(BUILD)/qeval $(TOOLS)

$(BUILD)/qeval: $(CLI_OBJ) $(BUILD)/libqeval.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libqeval.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c $(wildcard src/*.h src/cli/*.h) | $(BUILD)/gen/embedded_data.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# Datasets are compiled into the binary so qeval works from any directory.
$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/gen/embedded_data.h $(GEN_C): $(BUILD)/tools/embed $(DATA)
	@mkdir -p $(BUILD)/gen
	$(BUILD)/tools/embed $(BUILD)/gen/embedded_data $(DATA)

$(BUILD)/gen/embedded_data.o: $(GEN_C)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/tests/fake_%: tests/fake_%.c $(BUILD)/libqeval.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TESTLIBS)

$(BUILD)/tests/test_%: tests/test_%.c $(BUILD)/libqeval.a $(wildcard tests/*.h fuzz/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(BUILD)/libqeval.a $(LDLIBS) $(TESTLIBS)

$(BUILD)/bench/bench_%: bench/bench_%.c $(BUILD)/libqeval.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Tests run from the repo root; each gets QEVAL_BIN and QEVAL_BUILD so
# end-to-end tests can start the CLI and the fake servers. The benchmarks are
# built too (not run), so both compilers keep them -Werror clean.
test: all $(TESTS) $(BENCHES)
	@QEVAL_BUILD=$(abspath $(BUILD)) tests/run_all.sh $(TESTS)

check:
	$(MAKE) CC=gcc BUILD=build test
	$(MAKE) CC=clang BUILD=build-clang-san SAN=1 test

bench: all $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

fuzzers: $(FUZZERS)

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c $(BUILD)/libqeval.a $(wildcard fuzz/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(BUILD)/libqeval.a $(LDLIBS)

# Every fuzz target for FUZZ_SECONDS each (docs/fuzzing.md); fails on a finding.
FUZZ_SECONDS ?= 30
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The whole suite under valgrind memcheck: any memory error or definite leak
# fails (children started with exec, like qeval and fake_server, are not
# traced). Own -O0 build in build-vg/: with optimization a forked test child
# may keep the parent's heap pointers only in clobbered registers, and
# memcheck in that child then reports the parent's live buffers as lost.
# QEVAL_VALGRIND=1 tells tests to skip peak-RSS bounds (memcheck keeps freed
# blocks in a 20 MB queue).
VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
VG_TESTS := $(TEST_SRC:tests/%.c=build-vg/tests/%)
valgrind:
	CFLAGS="-O0 -g -Wno-format-truncation" $(MAKE) CC=gcc BUILD=build-vg SAN=0 FUZZ=0 all $(VG_TESTS)
	@fail=""; for t in $(VG_TESTS); do echo "== valgrind $$t"; \
	    QEVAL_BUILD=$(abspath build-vg) QEVAL_VALGRIND=1 $(VALGRIND) $$t || fail="$$fail $$t"; done; \
	if [ -n "$$fail" ]; then echo "valgrind failed:$$fail"; exit 1; fi; \
	echo "valgrind: $(words $(VG_TESTS)) test binaries clean"

clean:
	rm -rf build build-*
