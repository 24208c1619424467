# Makefile for the anonymize extension (PGXS)

MODULE_big = anonymize
OBJS = \
	src/anonymize.o \
	src/audit.o \
	src/company_test.o \
	src/drop_guard.o \
	src/eligibility.o \
	src/foreign_keys.o \
	src/inspect.o \
	src/erasure.o \
	src/erasure_rules.o \
	src/mapping.o \
	src/mapping_validate.o \
	src/plan_cache.o \
	src/queue.o \
	src/requests.o \
	src/residue.o \
	src/security.o \
	src/verify.o

EXTENSION = anonymize
DATA = anonymize--1.0.sql anonymize--1.0--1.1.sql anonymize--1.1--1.2.sql anonymize--1.2.sql anonymize--1.2--1.3.sql
PGFILEDESC = "anonymize - GDPR erasure for subscription-billing databases"

PG_CPPFLAGS = -I$(srcdir)/include -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=.
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --inputdir=.
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(PGXS),)
$(error cannot run "$(PG_CONFIG) --pgxs": install PostgreSQL's server development files (Debian: postgresql-server-dev-15) or set PG_CONFIG=/path/to/pg_config)
endif
include $(PGXS)

# The supported PostgreSQL versions: 15 and later (tested: 15).
ifeq ($(shell test $(VERSION_NUM) -ge 150000; echo $$?),1)
$(error anonymize needs PostgreSQL 15 or later; $(PG_CONFIG) is PostgreSQL $(VERSION))
endif

# PGXS tracks no header dependencies: every object depends on the header.
$(OBJS): include/anonymize.h

# Out-of-tree (VPATH) builds, e.g. Debian's pg_buildext in build-15/: the
# objects go to src/ under the build directory, which nothing else creates.
# (The tests still run from the top source directory: REGRESS, ISOLATION and
# the scripts' \ir paths are relative to it.)
ifneq ($(VPATH),)
$(shell mkdir -p src)
endif
