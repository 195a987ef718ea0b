#
# sipguard - top-level build
#
#   make            Rust core (target/release/libsipguard.a) + Kamailio
#                   module (build/sipguard.so)
#   make install    copy the module into Kamailio's module directory
#   make deb        Debian package kamailio-sipguard-modules in build/deb/
#                   (bash scripts/deb.sh; lintian must report no error)
#   make run        build and run kamailio with kamailio-cfg/sipguard.cfg
#   make opensips   OpenSIPS from source (build/opensips/) and the sipguard
#                   OpenSIPS module build/opensips/lib/modules/sipguard.so
#   make test       bash scripts/test.sh
#   make bench      cargo bench, bash scripts/bench-kamailio.sh,
#                   bash scripts/bench-opensips.sh, then bench-ir,
#                   then bash scripts/bench-cluster.sh
#   make bench-ir   bash scripts/bench-ir.sh: instructions per request (callgrind)
#   make clean      remove build products (keeps the downloaded source)
#
# The module is compiled by Kamailio's own build system, in a source tree
# matching the installed package (scripts/kamailio-src.sh), configured the
# way Debian configures it, so module version and flags match /usr/sbin/kamailio.
# Run scripts/deps.sh once (as root) on a fresh machine.

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := $(ROOT)/build
CARGO ?= cargo
KSRC_LINK := $(BUILD)/kamailio-src/current
KSRC_STAMP := $(BUILD)/kamailio-src/.configured
KMOD_DIR := $(KSRC_LINK)/src/modules/sipguard
CORE_LIB := $(ROOT)/target/release/libsipguard.a
MODULE := $(BUILD)/sipguard.so
SHIM_SRC := $(wildcard $(ROOT)/c-shim/kamailio/*.c \
	$(ROOT)/c-shim/kamailio/*.h) $(ROOT)/c-shim/kamailio/Makefile
HEADER := $(ROOT)/include/sipguard.h

MULTIARCH := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || \
	gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
KAMAILIO_MODDIR ?= /usr/lib/$(MULTIARCH)/kamailio/modules

# Debian's configure step (debian/rules of the kamailio package): hardening
# build flags, no build date, the standard module group.
DEB_ENV := DEB_BUILD_MAINT_OPTIONS=hardening=+all
KCC_EXTRA = $(shell $(DEB_ENV) dpkg-buildflags --get CPPFLAGS) \
	$(shell $(DEB_ENV) dpkg-buildflags --get CFLAGS) -DVERSION_NODATE
KLD_EXTRA = $(shell $(DEB_ENV) dpkg-buildflags --get LDFLAGS)
KCFG_ARGS = prefix=/usr cfg_target=/etc/kamailio/ FLAVOUR=kamailio \
	LIBDIR=lib/$(MULTIARCH) group_include=kstandard \
	CC_EXTRA_OPTS="$(KCC_EXTRA)" LD_EXTRA_OPTS="$(KLD_EXTRA)"

.PHONY: all core module install deb run test bench bench-ir clean distclean FORCE
.PHONY: opensips opensips-module

all: $(MODULE)

# cargo decides itself whether anything changed; the library is the
# rule's target (not a phony one's prerequisite) so that make looks at its
# time again after cargo ran, and relinks the module when it changed
core: $(CORE_LIB)
$(CORE_LIB): FORCE
	cd $(ROOT) && $(CARGO) build --release

# Kamailio source of the installed version, configured like Debian's build
$(KSRC_STAMP): $(ROOT)/scripts/kamailio-src.sh
	bash $(ROOT)/scripts/kamailio-src.sh
	$(MAKE) -C $(KSRC_LINK) cfg quiet=verbose $(KCFG_ARGS) >$(BUILD)/kamailio-cfg.log 2>&1 \
		|| { cat $(BUILD)/kamailio-cfg.log; exit 1; }
	touch $@

module: $(MODULE)

$(MODULE): $(CORE_LIB) $(KSRC_STAMP) $(SHIM_SRC) $(HEADER)
	mkdir -p $(KMOD_DIR)
	@# the shim's files as they are now: none left from an older layout
	rm -f $(KMOD_DIR)/*.c $(KMOD_DIR)/*.h $(KMOD_DIR)/*.o $(KMOD_DIR)/*.d
	cp -p $(ROOT)/c-shim/kamailio/Makefile $(ROOT)/c-shim/kamailio/*.c \
		$(ROOT)/c-shim/kamailio/*.h $(KMOD_DIR)/
	$(MAKE) -C $(KSRC_LINK) modules modules=src/modules/sipguard \
		SIPGUARD_ROOT=$(ROOT) SIPGUARD_LIB=$(CORE_LIB)
	@# replace by rename: a running kamailio keeps its mapping of the old file
	cp $(KMOD_DIR)/sipguard.so $@.tmp
	mv -f $@.tmp $@
	@echo "built $@"

install: $(MODULE)
	install -d $(DESTDIR)$(KAMAILIO_MODDIR)
	install -m 644 $(MODULE) $(DESTDIR)$(KAMAILIO_MODDIR)/sipguard.so.tmp
	mv -f $(DESTDIR)$(KAMAILIO_MODDIR)/sipguard.so.tmp \
		$(DESTDIR)$(KAMAILIO_MODDIR)/sipguard.so

deb: $(MODULE)
	bash $(ROOT)/scripts/deb.sh

run:
	bash $(ROOT)/scripts/run.sh

# OpenSIPS: its core and the modules the tests use, built from source into
# build/opensips/ (scripts/opensips-build.sh), and the sipguard module built
# in that same tree (OpenSIPS loads only a module built with its core)
OSIPS_DIR := $(BUILD)/opensips
OSIPS_STAMP := $(OSIPS_DIR)/.built
OSIPS_MOD_DIR := $(OSIPS_DIR)/src/modules/sipguard
OSIPS_MODULE := $(OSIPS_DIR)/lib/modules/sipguard.so
OSIPS_SHIM_SRC := $(wildcard $(ROOT)/c-shim/opensips/*.c \
	$(ROOT)/c-shim/opensips/*.h) $(ROOT)/c-shim/opensips/Makefile

opensips: $(OSIPS_MODULE)
opensips-module: $(OSIPS_MODULE)

$(OSIPS_STAMP): $(ROOT)/scripts/opensips-build.sh
	bash $(ROOT)/scripts/opensips-build.sh

$(OSIPS_MODULE): $(CORE_LIB) $(OSIPS_STAMP) $(OSIPS_SHIM_SRC) $(HEADER)
	mkdir -p $(OSIPS_MOD_DIR)
	rm -f $(OSIPS_MOD_DIR)/*.c $(OSIPS_MOD_DIR)/*.h $(OSIPS_MOD_DIR)/*.o \
		$(OSIPS_MOD_DIR)/*.d
	cp -p $(ROOT)/c-shim/opensips/Makefile $(ROOT)/c-shim/opensips/*.c \
		$(ROOT)/c-shim/opensips/*.h $(OSIPS_MOD_DIR)/
	$(MAKE) -C $(OSIPS_DIR)/src modules module=sipguard \
		SIPGUARD_ROOT=$(ROOT) SIPGUARD_LIB=$(CORE_LIB)
	cp $(OSIPS_MOD_DIR)/sipguard.so $@.tmp
	mv -f $@.tmp $@
	@echo "built $@"

test:
	bash $(ROOT)/scripts/test.sh

bench:
	cd $(ROOT) && $(CARGO) bench
	bash $(ROOT)/scripts/bench-kamailio.sh
	bash $(ROOT)/scripts/bench-opensips.sh
	bash $(ROOT)/scripts/bench-ir.sh
	bash $(ROOT)/scripts/bench-cluster.sh

bench-ir:
	bash $(ROOT)/scripts/bench-ir.sh

clean:
	cd $(ROOT) && $(CARGO) clean
	rm -rf $(BUILD)/sipguard.so $(BUILD)/run $(BUILD)/deb $(BUILD)/kamailio-cfg.log \
		$(KSRC_STAMP)
	if [ -d $(KMOD_DIR) ]; then rm -rf $(KMOD_DIR); fi
	@# the OpenSIPS module; the OpenSIPS build itself stays (distclean)
	rm -f $(OSIPS_MODULE)
	if [ -d $(OSIPS_MOD_DIR) ]; then rm -rf $(OSIPS_MOD_DIR); fi

# also forget the downloaded Kamailio source
distclean: clean
	rm -rf $(BUILD)

FORCE:
