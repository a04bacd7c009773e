# hotrestart: zero-downtime restarts for unmodified Linux servers.
#   make            build build/libhotrestart.so
#   make test       install missing dependencies, build, run every test
#   make demo       restart a sample server under load and print the figures
#   make bench      side-by-side benchmarks (QUICK=1 for a short run)
#   make install    PREFIX=/usr/local DESTDIR=
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
SONAME = libhotrestart.so.0

WARN = -Wall -Wextra -Werror
BASE_CFLAGS = -std=gnu11 -g $(WARN) -pthread
# The shim: position independent, only the hooks visible.
SHIM_CFLAGS = $(BASE_CFLAGS) -D_GNU_SOURCE -O2 -fPIC -fvisibility=hidden
SHIM_LDFLAGS = -shared -Wl,-soname,$(SONAME) -Wl,--version-script=shim/libhotrestart.map \
	-Wl,-z,now -Wl,-z,defs -ldl -pthread
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer

SHIM_SRC = $(wildcard shim/*.c)
SHIM_HDR = $(wildcard shim/*.h)
# Everything but the hooks and the constructor: what unit tests link.
CORE_SRC = $(filter-out shim/hooks.c shim/init.c,$(SHIM_SRC))

SERVER_SRC = $(filter-out tests/servers/common.c,$(wildcard tests/servers/*.c))
SERVERS = $(patsubst tests/servers/%.c,$(BUILD)/servers/%,$(SERVER_SRC))
UNIT_SRC = $(wildcard tests/unit/*.c)

LIB = $(BUILD)/libhotrestart.so
ASAN_LIB = $(BUILD)/asan/libhotrestart.so

.PHONY: all test unit integration asan-test deps demo bench install uninstall clean

all: $(LIB) $(SERVERS) $(BUILD)/loadclient

$(LIB): $(SHIM_SRC) $(SHIM_HDR) shim/libhotrestart.map
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) -o $@ $(SHIM_SRC) $(SHIM_LDFLAGS)

$(ASAN_LIB): $(SHIM_SRC) $(SHIM_HDR) shim/libhotrestart.map
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) $(SAN_FLAGS) -o $@ $(SHIM_SRC) $(SHIM_LDFLAGS)

$(BUILD)/servers/%: tests/servers/%.c tests/servers/common.c tests/servers/common.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $< tests/servers/common.c

$(BUILD)/loadclient: tests/loadclient.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $<

$(BUILD)/unit-tests: $(UNIT_SRC) $(wildcard tests/unit/*.h) $(CORE_SRC) $(SHIM_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -D_GNU_SOURCE -O1 $(SAN_FLAGS) -Ishim -o $@ $(UNIT_SRC) $(CORE_SRC) \
		-lcriterion -ldl -lm

deps:
	@scripts/install-deps.sh

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests --jobs 1

integration: all
	python3 tests/integration/run.py --lib $(LIB)

asan-test: $(ASAN_LIB) all
	python3 tests/integration/run.py --lib $(ASAN_LIB) --sanitized --quick

test: deps
	$(MAKE) all $(BUILD)/unit-tests $(ASAN_LIB)
	python3 tests/integration/test_wrapper_cli.py
	$(BUILD)/unit-tests --jobs 1
	python3 tests/integration/run.py --lib $(LIB)
	python3 tests/integration/run.py --lib $(ASAN_LIB) --sanitized --quick

demo: deps all
	python3 scripts/demo.py

bench: deps all
	python3 scripts/bench/run.py $(if $(QUICK),--quick)

install: $(LIB)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/share/doc/hotrestart \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libhotrestart.so
	sed 's|^LIBRARY_PATH = None$$|LIBRARY_PATH = "$(PREFIX)/lib/$(SONAME)"|' scripts/hotrestart \
		> $(DESTDIR)$(PREFIX)/bin/hotrestart
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/hotrestart
	install -m 0644 scripts/systemd/* $(DESTDIR)$(PREFIX)/share/doc/hotrestart/
	install -m 0644 man/hotrestart.1 $(DESTDIR)$(PREFIX)/share/man/man1/hotrestart.1
	install -m 0644 man/libhotrestart.7 $(DESTDIR)$(PREFIX)/share/man/man7/libhotrestart.7

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/$(SONAME) $(DESTDIR)$(PREFIX)/lib/libhotrestart.so \
		$(DESTDIR)$(PREFIX)/bin/hotrestart \
		$(DESTDIR)$(PREFIX)/share/man/man1/hotrestart.1 \
		$(DESTDIR)$(PREFIX)/share/man/man7/libhotrestart.7
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/hotrestart

clean:
	rm -rf $(BUILD)
