# hotrestart: zero-downtime restarts for unmodified Linux servers.
#   make            build build/libhotrestart.so and build/hotrestart-keeper
#   make test       install missing dependencies, build, run every test
#   make demo       restart a sample server under load and print the figures
#   make bench      side-by-side benchmarks (QUICK=1 for a short run)
#   make soak       1,000 restarts of a fork-per-connection server under load, canaries (root, ~12 min)
#   make install    PREFIX=/usr/local DESTDIR=
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
SONAME = libhotrestart.so.0

WARN = -Wall -Wextra -Werror
BASE_CFLAGS = -std=gnu11 -g $(WARN) -pthread
# The shim: position independent, only the hooks visible. -fexceptions makes
# pthread_cleanup_push a cleanup attribute instead of a sigsetjmp on every accept.
SHIM_CFLAGS = $(BASE_CFLAGS) -D_GNU_SOURCE -O2 -fPIC -fvisibility=hidden -fexceptions
SHIM_LDFLAGS = -shared -Wl,-soname,$(SONAME) -Wl,--version-script=shim/libhotrestart.map \
	-Wl,-z,now -Wl,-z,defs -ldl -pthread
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer

SHIM_SRC = $(wildcard shim/*.c)
SHIM_HDR = $(wildcard shim/*.h)
# The keeper: its own files plus the shim's pure ones (config, log, pid file,
# sd_notify, LISTEN_FDS, addresses, address matching, SCM_RIGHTS) and the libc table they use.
KEEPER_SRC = $(wildcard shim/keeper/*.c) shim/config.c shim/log.c shim/pidfile.c \
	shim/notify.c shim/listenfds.c shim/sockaddr.c shim/addrmatch.c shim/libc.c \
	shim/scmrights.c
KEEPER = $(BUILD)/hotrestart-keeper
# Everything but the hooks and the constructor: what unit tests link.
CORE_SRC = $(filter-out shim/hooks.c shim/init.c,$(SHIM_SRC))

SERVER_SRC = $(filter-out tests/servers/common.c,$(wildcard tests/servers/*.c))
SERVERS = $(patsubst tests/servers/%.c,$(BUILD)/servers/%,$(SERVER_SRC))
# Static builds: servers LD_PRELOAD cannot reach (the seccomp path).
STATIC_CC ?= $(if $(shell command -v musl-gcc),musl-gcc,$(CC))
STATIC_SERVERS = $(addprefix $(BUILD)/servers-static/,blocking epoll_lt epoll_graceful)
UNIT_SRC = $(wildcard tests/unit/*.c)

LIB = $(BUILD)/libhotrestart.so
ASAN_LIB = $(BUILD)/asan/libhotrestart.so

.PHONY: all test unit integration asan-test deps demo bench soak install uninstall clean

all: $(LIB) $(KEEPER) $(SERVERS) $(STATIC_SERVERS) $(BUILD)/loadclient

$(KEEPER): $(KEEPER_SRC) $(wildcard shim/keeper/*.h) $(SHIM_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -D_GNU_SOURCE -O2 -o $@ $(KEEPER_SRC) -ldl

$(LIB): $(SHIM_SRC) $(SHIM_HDR) shim/libhotrestart.map
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) -o $@ $(SHIM_SRC) $(SHIM_LDFLAGS)

$(ASAN_LIB): $(SHIM_SRC) $(SHIM_HDR) shim/libhotrestart.map
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) $(SAN_FLAGS) -o $@ $(SHIM_SRC) $(SHIM_LDFLAGS)

$(BUILD)/servers/%: tests/servers/%.c tests/servers/common.c tests/servers/common.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $< tests/servers/common.c

$(BUILD)/servers-static/%: tests/servers/%.c tests/servers/common.c tests/servers/common.h
	@mkdir -p $(@D)
	$(STATIC_CC) $(BASE_CFLAGS) -O2 -static -o $@ $< tests/servers/common.c

$(BUILD)/loadclient: tests/loadclient.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $<

# The soak's canary: a process outside the service that logs every signal.
$(BUILD)/canary: tests/canary.c
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
	python3 tests/integration/run.py --lib $(LIB) --jobs 2
	python3 tests/integration/run.py --lib $(ASAN_LIB) --sanitized --quick

demo: deps all
	python3 scripts/demo.py

bench: deps all
	python3 scripts/bench/run.py $(if $(QUICK),--quick)

# Long (about 12 minutes), so not part of `make test`; needs root (it writes
# /proc/sys/kernel/ns_last_pid to put canaries on the service's old PIDs).
soak: all $(BUILD)/canary
	python3 tests/integration/soak.py --lib $(LIB)

# Files installed besides the library and the wrapper (uninstall removes just these).
UNITS = $(notdir $(wildcard scripts/systemd/*.service scripts/systemd/*.socket))
MANPAGES = man1/hotrestart.1 man7/libhotrestart.7

# PREFIX is baked into the wrapper and the example units; DESTDIR only stages.
install: $(LIB) $(KEEPER)
	@case "$(PREFIX)" in /*) ;; *) echo "install: PREFIX must be absolute" >&2; exit 1;; esac
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/lib/hotrestart $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/share/doc/hotrestart \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libhotrestart.so
	install -m 0755 $(KEEPER) $(DESTDIR)$(PREFIX)/lib/hotrestart/hotrestart-keeper
	sed -e 's|^LIBRARY_PATH = None$$|LIBRARY_PATH = "$(PREFIX)/lib/$(SONAME)"|' \
	    -e 's|^KEEPER_PATH = None$$|KEEPER_PATH = "$(PREFIX)/lib/hotrestart/hotrestart-keeper"|' \
		scripts/hotrestart > $(DESTDIR)$(PREFIX)/bin/hotrestart.tmp
	@grep -qxF 'LIBRARY_PATH = "$(PREFIX)/lib/$(SONAME)"' $(DESTDIR)$(PREFIX)/bin/hotrestart.tmp \
		&& grep -qxF 'KEEPER_PATH = "$(PREFIX)/lib/hotrestart/hotrestart-keeper"' \
			$(DESTDIR)$(PREFIX)/bin/hotrestart.tmp \
		|| { rm -f $(DESTDIR)$(PREFIX)/bin/hotrestart.tmp; \
		     echo "install: no 'LIBRARY_PATH = None' or 'KEEPER_PATH = None' line in scripts/hotrestart" >&2; exit 1; }
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/hotrestart.tmp
	mv -f $(DESTDIR)$(PREFIX)/bin/hotrestart.tmp $(DESTDIR)$(PREFIX)/bin/hotrestart
	for unit in $(UNITS); do \
		sed 's|/usr/local/bin/hotrestart|$(PREFIX)/bin/hotrestart|g' scripts/systemd/$$unit \
			> $(DESTDIR)$(PREFIX)/share/doc/hotrestart/$$unit || exit 1; \
		chmod 0644 $(DESTDIR)$(PREFIX)/share/doc/hotrestart/$$unit; \
	done
	install -m 0644 man/hotrestart.1 $(DESTDIR)$(PREFIX)/share/man/man1/hotrestart.1
	install -m 0644 man/libhotrestart.7 $(DESTDIR)$(PREFIX)/share/man/man7/libhotrestart.7

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/$(SONAME) $(DESTDIR)$(PREFIX)/lib/libhotrestart.so \
		$(DESTDIR)$(PREFIX)/lib/hotrestart/hotrestart-keeper \
		$(DESTDIR)$(PREFIX)/bin/hotrestart \
		$(addprefix $(DESTDIR)$(PREFIX)/share/man/,$(MANPAGES)) \
		$(addprefix $(DESTDIR)$(PREFIX)/share/doc/hotrestart/,$(UNITS))
	rmdir $(DESTDIR)$(PREFIX)/share/doc/hotrestart $(DESTDIR)$(PREFIX)/lib/hotrestart 2>/dev/null || true

clean:
	rm -rf $(BUILD)
