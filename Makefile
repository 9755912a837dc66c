# qtdb -- build, test, sanitizers, fuzzing, benchmarks.
#
#   make            build/qtdb and build/libqtdb.a (release: -O2 -g)
#   make run        build, then serve on the embedded defaults (./data, loopback)
#   make test       every unit/integration test + replay of fuzz/corpus/*
#   make asan       the same suite built with ASan+UBSan (build/asan/)
#   make fuzz       libFuzzer targets with clang (build/fuzz/); FUZZ_SECONDS=N runs each
#   make bench      benchmarks (release build), prints tables against targets
#   make format     clang-format -i every source file
#   make check      check-format + check-layers + test
#
# Sources are discovered by wildcard: a new module is format/x.c + format/x.h,
# a new test is tests/test_x.c, a new fuzz target is fuzz/fuzz_x.c.
# CI (CI=true) adds -Werror.

MODE    ?= release
CC      ?= cc
PKGS    := liblz4 libxxhash liburing libpcre2-8 inih libmicrohttpd zlib

ifeq ($(MODE),asan)
B       := build/asan
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -DQT_NO_JEMALLOC -DQT_DEBUG
LDOPT   := -fsanitize=address,undefined
JEMALLOC :=
else
B       := build
OPT     := -O2 -g
LDOPT   :=
JEMALLOC := -ljemalloc
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 \
           -Wpointer-arith -Wundef -Wno-unused-parameter -Wno-format-truncation
# -Wno-format-truncation: gcc 12 flags every snprintf of a path built from a
# PATH_MAX buffer, even when the result is checked; path joins check their
# result (-ENAMETOOLONG) instead.
ifeq ($(CI),true)
WARN    += -Werror
endif
ifeq ($(WERROR),1)
WARN    += -Werror
endif

# -ffp-contract=off: the float codec's bit-exact round trip depends on the
# decoder doing exactly the multiplications the encoder verified (no FMA).
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -ffp-contract=off -fno-strict-aliasing -I. \
              -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(JEMALLOC) -lpthread -lm
LDFLAGS_ALL := $(LDOPT) $(LDFLAGS)

LIB_SRC   := $(filter-out server/main.c,$(wildcard format/*.c storage/*.c query/*.c server/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(B)/obj/%.o)
MAIN_OBJ  := $(B)/obj/server/main.o
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_SUP  := $(filter-out tests/test_%.c,$(wildcard tests/*.c))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(B)/tests/%)
TEST_SUP_OBJ := $(TEST_SUP:%.c=$(B)/obj/%.o)
FUZZ_SRC  := $(wildcard fuzz/fuzz_*.c)
REPLAY_BIN := $(FUZZ_SRC:fuzz/%.c=$(B)/replay/%)
BENCH_MAIN := $(wildcard bench/bench_*.c)
BENCH_SUP := $(filter-out bench/bench_%.c,$(wildcard bench/*.c)) tests/citygen.c
BENCH_SUP_OBJ := $(BENCH_SUP:%.c=$(B)/obj/%.o)
BENCH_BIN := $(BENCH_MAIN:bench/%.c=$(B)/bench/%)

.SECONDARY:

Q := $(if $(V),,@)

.PHONY: all deps run test test-bins asan fuzz bench format check check-format check-layers clean
.DEFAULT_GOAL := all

all: deps $(B)/libqtdb.a $(B)/qtdb

deps:
	@sh .ci/deps

$(B)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@$(if $(V),true,echo '  CC     $<')
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/libqtdb.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/qtdb: $(MAIN_OBJ) $(B)/libqtdb.a
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(MAIN_OBJ) $(B)/libqtdb.a $(LIBS)

$(B)/tests/%: $(B)/obj/tests/%.o $(TEST_SUP_OBJ) $(B)/libqtdb.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(TEST_SUP_OBJ) $(B)/libqtdb.a $(LIBS)

# Corpus replay: each fuzz target linked with a plain main() (fuzz/replay.c).
$(B)/replay/%: $(B)/obj/fuzz/%.o $(B)/obj/fuzz/replay.o $(B)/libqtdb.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(B)/obj/fuzz/replay.o $(B)/libqtdb.a $(LIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(BENCH_SUP_OBJ) $(B)/libqtdb.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(BENCH_SUP_OBJ) $(B)/libqtdb.a $(LIBS)

test-bins: all $(TEST_BIN) $(REPLAY_BIN)

test: test-bins
	@B=$(B) sh tests/run.sh

asan:
	$(MAKE) MODE=asan test

run: all
	./$(B)/qtdb serve

bench: all $(BENCH_BIN)
	@sh .ci/deps --bench || echo "bench: VictoriaMetrics missing; the side-by-side rows will be skipped"
	@B=$(B) sh bench/run.sh

# libFuzzer build: library and targets compiled by clang with the fuzzer
# instrumentation; run each target for FUZZ_SECONDS (default: build only).
FUZZ_B    := build/fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer-no-link,address,undefined \
               -ffp-contract=off -fno-strict-aliasing -DQT_NO_JEMALLOC -DQT_DEBUG -I. \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_B)/obj/%.o)
FUZZ_BIN  := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_B)/%)
FUZZ_SECONDS ?= 0

$(FUZZ_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_B)/fuzz_%: $(FUZZ_B)/obj/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(shell pkg-config --libs $(PKGS)) -lpthread -lm

fuzz:
	@sh .ci/deps --fuzz
	$(MAKE) $(FUZZ_BIN)
	@FUZZ_B=$(FUZZ_B) FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh

FMT_SRC := $(wildcard format/*.[ch] storage/*.[ch] query/*.[ch] server/*.[ch] tests/*.[ch] fuzz/*.[ch] bench/*.[ch])
format:
	clang-format -i $(FMT_SRC)

check-format:
	clang-format --dry-run --Werror $(FMT_SRC)

# Layers point one way: server -> query -> storage -> format.
check-layers:
	@! grep -nE '#include "(storage|query|server)/' format/*.[ch] || (echo "format/ includes an upper layer" && false)
	@! grep -nE '#include "(query|server)/' storage/*.[ch] || (echo "storage/ includes an upper layer" && false)
	@! grep -nE '#include "server/' query/*.[ch] || (echo "query/ includes server/" && false)
	@echo "layers ok"

check: check-layers test

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
