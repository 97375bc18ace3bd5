# normscope build.
#   make                 library + CLI (float), ./normscope links to it
#   make PRECISION=double the same in double (build/double)
#   make check           dependencies, then unit + CLI tests in float and double
#   make check SAN=1     the same under AddressSanitizer and UBSan
#   make bench           normscope against the PyTorch peer
#   make demo            train, plot and report on Fashion-MNIST
#   make fuzz            libFuzzer harnesses, FUZZ_TIME seconds each (not in check)
#   make install         PREFIX=/usr/local: binary, headers, library, .pc
PRECISION ?= float
SAN ?=
PREFIX ?= /usr/local
PYTHON ?= /usr/bin/python3

ifneq ($(PRECISION),float)
ifneq ($(PRECISION),double)
$(error PRECISION must be float or double)
endif
endif

BUILD ?= build
B := $(BUILD)/$(PRECISION)$(if $(SAN),-san)
DEPS_CMD ?= sh .ci/deps
PKGS := hdf5 lapacke inih zlib openblas check
# pkg-config prints nothing when any one package is missing, so the flags are
# read here only to build; the targets that install (check, demo, bench) run
# deps first and then a sub-make, which reads them again.
PKG_MISSING := $(shell for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || printf '%s ' $$p; done)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs hdf5 lapacke inih zlib openblas 2>/dev/null) -lhdf5_hl -lgsl -larpack
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CC ?= cc
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror
OPT := -O3 -march=native -fno-math-errno
ifdef SAN
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
DEFS := -D_POSIX_C_SOURCE=200809L -DNS_PREFIX=\"$(PREFIX)\" $(if $(filter double,$(PRECISION)),-DNS_DOUBLE)
CFLAGS_ALL := -std=c11 $(OPT) $(WARN) -fopenmp $(DEFS) -Iinclude -Isrc $(PKG_CFLAGS) $(CFLAGS)
SANFLAGS := -fsanitize=address,undefined
LDFLAGS_ALL := -fopenmp $(if $(SAN),$(SANFLAGS)) $(LDFLAGS)
LIBS := $(PKG_LIBS) -lm

LIB_SRC := $(sort $(wildcard src/core/*.c src/nn/*.c src/norm/*.c src/train/*.c \
             src/data/*.c src/io/*.c src/analysis/*.c src/plot/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/obj/%.o)
TESTS := $(TEST_SRC:tests/%.c=$(B)/tests/%)
LIBA := $(B)/libnormscope.a
BIN := $(B)/normscope

.PHONY: all build lib tests check check-one bench bench-one demo demo-one fuzz fuzz-one fuzz-h5image deps have-deps install clean
.SECONDARY:
all: have-deps $(BIN)
ifeq ($(PRECISION)$(SAN)$(BUILD),floatbuild)
	@ln -sf $(BIN) normscope
endif

lib: $(LIBA)

# A clear stop instead of 'hdf5.h: No such file or directory'.
have-deps:
ifneq ($(strip $(PKG_MISSING)),)
	@echo "normscope: pkg-config finds no: $(PKG_MISSING)- run 'make deps' (or 'make check' / 'make demo', which run it)" >&2; exit 2
endif

$(B)/obj/%.o: %.c | have-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIBA)
	$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJ) $(LIBA) $(LIBS)

$(B)/tests/%: $(B)/obj/tests/%.o $(B)/obj/tests/testutil.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(B)/obj/tests/testutil.o $(LIBA) $(CHECK_LIBS) $(LIBS)

tests: $(TESTS) $(BIN)

# One precision: every Check suite, then the CLI tests.
check-one: tests
	@PYTHON=$(PYTHON) NS_BIN=$(abspath $(BIN)) NS_PRECISION=$(PRECISION) \
	  sh tests/run_tests.sh $(TESTS)

# Both precisions (gradient checks run in the double build).
check: deps
	$(MAKE) check-one PRECISION=double
	$(MAKE) check-one PRECISION=float
	@echo "all test suites passed"

BENCH_BIN := $(B)/bench/ns_throughput
$(BENCH_BIN): $(B)/obj/bench/ns_throughput.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIBA) $(LIBS)

bench: deps
	$(MAKE) bench-one

bench-one: all $(BENCH_BIN)
	PYTHON=$(PYTHON) NS_BIN=$(abspath $(BIN)) NS_THROUGHPUT=$(abspath $(BENCH_BIN)) sh bench/run.sh

demo: deps
	$(MAKE) demo-one

demo-one: all
	PYTHON=$(PYTHON) sh analyses/demo.sh $(abspath $(BIN))

# The targets a fresh machine starts with install first, then build in a
# sub-make (which runs pkg-config again, now that the packages are there).
build: deps
	$(MAKE) all

deps:
	@$(DEPS_CMD)

# ------------------------------------------------------------------ fuzz
# The library and the harnesses of tests/fuzz built with clang, libFuzzer,
# ASan and UBSan in build/fuzz; each harness runs FUZZ_TIME seconds, FUZZ_PAR
# at a time, from seed corpora that tests/fuzz/run.sh makes.
FUZZ_TIME ?= 60
FUZZ_PAR ?= 1
FUZZERS ?= idx arch runfile options
FZ := $(BUILD)/fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=c11 -g -O1 -fno-omit-frame-pointer -fopenmp \
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
  -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc $(PKG_CFLAGS)
FUZZ_OBJ := $(LIB_SRC:%.c=$(FZ)/obj/%.o)

$(FZ)/obj/%.o: %.c | have-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FZ)/libnormscope.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FZ)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h tests/fuzz/fuzz_run.h $(FZ)/libnormscope.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FZ)/libnormscope.a $(LIBS)

fuzz:
	@$(DEPS_CMD) clang libclang-rt-14-dev libomp-14-dev
	$(MAKE) fuzz-one

# libhdf5's own parser on raw file images: its findings are upstream ones
# (see README), so it is not part of make fuzz.
fuzz-h5image:
	@$(DEPS_CMD) clang libclang-rt-14-dev libomp-14-dev
	$(MAKE) fuzz-one FUZZERS=h5image

fuzz-one: all $(FUZZERS:%=$(FZ)/fuzz_%)
	FUZZ_TIME=$(FUZZ_TIME) FUZZ_PAR=$(FUZZ_PAR) PYTHON=$(PYTHON) \
	  sh tests/fuzz/run.sh $(FZ) $(abspath $(BIN)) $(FUZZERS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include/normscope $(DESTDIR)$(PREFIX)/share/normscope/plots
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/normscope
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/libnormscope.a
	install -m 644 include/normscope/*.h $(DESTDIR)$(PREFIX)/include/normscope/
	install -m 644 plots/*.gp $(DESTDIR)$(PREFIX)/share/normscope/plots/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/#define NS_VERSION "\(.*\)"/\1/p' include/normscope/core.h)|' \
	  normscope.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/normscope.pc

clean:
	rm -rf build normscope

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(wildcard $(B)/obj/tests/*.d $(B)/obj/bench/*.d $(FZ)/obj/src/*/*.d)
