# glared - artifact repository server (OpenStack Glare v1 API), C core, Lua types.
#
#   make            build ./glared
#   make run        install missing Debian packages, build, serve on 127.0.0.1:9494
#   make test       install missing packages, build, run every test suite
#   make asan       the same tests against an AddressSanitizer + UBSan build,
#                   plus every fuzz harness for a bounded time
#   make fuzz       build the libFuzzer harnesses (tests/fuzz) into build/fuzz
#   make bench      benchmarks (print figures next to their baselines)
#   make install    PREFIX=/usr DESTDIR=... (binary, Lua library, types,
#                   example config, man page, systemd unit)
#   make compile_commands.json   the compilation database for editors/clangd
#
# The build prints one short line per step ("CC src/x.c"); make V=1 prints
# the full commands.

# ---- settings ---------------------------------------------------------------
CC      ?= cc
PKGS    := libevent jansson lua5.4 libcurl sqlite3 openssl libedit libpq \
           librabbitmq
OPT     ?= -O2
# -Wall -Wextra must stay clean; the extra warnings catch the bugs that
# hurt most in a byte-pushing server (silent truncation, format strings).
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?= $(OPT) -g
SAN     ?=
# pkg-config runs once per make, not once per compiled file (a recursive
# variable with $(shell) would run it for every recipe that expands it)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
# the project's flags stay even when CFLAGS is given on the command line
ALL_CFLAGS = $(CFLAGS) $(SAN) -std=gnu11 -D_GNU_SOURCE \
           -DGLARED_VERSION=\"0.1.0\" -D_FILE_OFFSET_BITS=64 $(WARN) \
           $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lhttp_parser -lm -lpthread

# quiet build: "CC src/x.c" per step; V=1 shows the commands themselves
V ?= 0
ifeq ($(V),0)
say      = @printf '  %-4s %s\n' $(1) $(2);
else
say      =
endif

BUILD   ?= build
SRCS    := $(sort $(wildcard src/*.c))
OBJS    := $(SRCS:src/%.c=$(BUILD)/%.o)
LIBOBJS := $(filter-out $(BUILD)/main.o,$(OBJS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_OBJS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%.o) $(BUILD)/unit/main.o

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined

# libFuzzer harnesses: every tests/fuzz/fuzz_<name>.c defines
# LLVMFuzzerTestOneInput and is linked against the project's objects, all
# built by clang with the fuzzer's coverage and ASan + UBSan into their own
# directory; seeds live in tests/fuzz/corpus/<name>/ (run-tests.sh runs
# each harness for FUZZ_SECONDS under make asan).
FUZZ_CC    ?= clang-14
FUZZ_BUILD := build/fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -std=gnu11 \
              -D_GNU_SOURCE -DGLARED_VERSION=\"0.1.0\" -D_FILE_OFFSET_BITS=64 \
              $(WARN) $(PKG_CFLAGS)
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_OBJS  := $(filter-out $(FUZZ_BUILD)/obj/main.o,\
              $(SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o))

.PHONY: all deps test-deps run test asan unit fuzz bench clean install \
        compile_commands.json

# ---- install ----------------------------------------------------------------
PREFIX  ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
# glared finds lua/ and types/ in ../share/glared next to its binary
DATADIR ?= $(PREFIX)/share/glared
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
STATEDIR ?= /var/lib/glared

all: glared

deps:
	@sh scripts/deps.sh

test-deps:
	@sh scripts/deps.sh test

# ---- build ------------------------------------------------------------------
glared: $(BUILD)/glared
	@cp $< $@.tmp && mv -f $@.tmp $@   # mv: a running ./glared is fine

$(BUILD)/glared: $(OBJS)
	$(call say,LD,$@)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD) $(BUILD)/unit:
	@mkdir -p $@

# unit test runner: every tests/unit/test_<x>.c contributes suite <x>
$(BUILD)/unit/suites.inc: $(UNIT_SRCS) | $(BUILD)/unit
	@for f in $(UNIT_SRCS); do \
	  b=$$(basename $$f .c); echo "SUITE($${b#test_})"; done > $@.tmp
	@cmp -s $@.tmp $@ 2>/dev/null || mv $@.tmp $@; rm -f $@.tmp

$(BUILD)/unit/main.o: tests/unit/main.c $(BUILD)/unit/suites.inc
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -I$(BUILD)/unit -c -o $@ $<

$(BUILD)/unit/%.o: tests/unit/%.c | $(BUILD)/unit
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -Isrc -MMD -MP -c -o $@ $<

$(BUILD)/unit-tests: $(UNIT_OBJS) $(LIBOBJS)
	$(call say,LD,$@)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(BUILD)/unit-tests

-include $(OBJS:.o=.d) $(UNIT_OBJS:.o=.d)

# The compilation database, written from the same flags as the rules above
# (no build needed): one entry per server and unit-test source.
compile_commands.json:
	$(call say,GEN,$@)CDB_DIR='$(CURDIR)' CDB_CC='$(CC)' \
	  CDB_FLAGS='$(subst ','\'',$(ALL_CFLAGS))' \
	  CDB_SRCS='$(SRCS)' CDB_UNIT='$(UNIT_SRCS)' \
	  CDB_UNIT_INC='-Isrc -I$(BUILD)/unit' \
	  python3 -c 'import json, os, shlex; e = os.environ; \
	    f = shlex.split(e["CDB_FLAGS"]); u = shlex.split(e["CDB_UNIT_INC"]); \
	    db = [{"directory": e["CDB_DIR"], "file": s, \
	           "arguments": [e["CDB_CC"]] + f + (u if s.startswith("tests/") else []) + ["-c", s]} \
	          for s in e["CDB_SRCS"].split() + e["CDB_UNIT"].split()]; \
	    print(json.dumps(db, indent=1))' > $@.tmp && mv -f $@.tmp $@

# ---- fuzz harnesses -----------------------------------------------------------
$(FUZZ_BUILD)/obj:
	@mkdir -p $@

$(FUZZ_BUILD)/obj/%.o: src/%.c | $(FUZZ_BUILD)/obj
	$(call say,CC,$<)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/obj/fuzz_%.o: tests/fuzz/fuzz_%.c | $(FUZZ_BUILD)/obj
	$(call say,CC,$<)$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz_%.o $(FUZZ_OBJS)
	$(call say,LD,$@)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# the objects are kept between builds, not removed as intermediates
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/obj/%.o)

fuzz:
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

-include $(wildcard $(FUZZ_BUILD)/obj/*.d)

# ---- run and test -----------------------------------------------------------
run: deps glared
	@mkdir -p data
	./glared db upgrade --config-file etc/glared.conf
	exec ./glared serve --config-file etc/glared.conf

test: test-deps
	@$(MAKE) --no-print-directory glared unit
	@sh scripts/run-tests.sh $(BUILD)

asan: test-deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	  SAN="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
	  build/asan/glared build/asan/unit-tests
	@$(MAKE) --no-print-directory fuzz
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	 UBSAN_OPTIONS=print_stacktrace=1 GLARED_ASAN=1 \
	 GLARED_FUZZ=$(FUZZ_BUILD) \
	 sh scripts/run-tests.sh build/asan

bench: deps glared
	@sh bench/run.sh

install: glared
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DATADIR) \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/glared
	install -m 0755 glared $(DESTDIR)$(SBINDIR)/glared
	cp -R lua types $(DESTDIR)$(DATADIR)/
	find $(DESTDIR)$(DATADIR) -type d -exec chmod 0755 {} +
	find $(DESTDIR)$(DATADIR) -type f -exec chmod 0644 {} +
	install -m 0644 man/glared.8 $(DESTDIR)$(MANDIR)/man8/glared.8
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  etc/glared.service.in > $(DESTDIR)$(UNITDIR)/glared.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/glared.service
	install -m 0644 etc/glared.sysusers $(DESTDIR)$(SYSUSERSDIR)/glared.conf
	@# the example config, with the state under $(STATEDIR); an
	@# existing one is the operator's and stays
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/glared/glared.conf ]; then \
	  { echo "# glared.conf - installed by make install; options: glared(8),"; \
	    echo "# Glare's names. State under $(STATEDIR) (the unit's StateDirectory)."; \
	    sed -e '/^#/d' -e 's|\.\./data|$(STATEDIR)|g' etc/glared.conf; \
	  } > $(DESTDIR)$(SYSCONFDIR)/glared/glared.conf; \
	  chmod 0640 $(DESTDIR)$(SYSCONFDIR)/glared/glared.conf; \
	fi

clean:
	rm -rf build glared
