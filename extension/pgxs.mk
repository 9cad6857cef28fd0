# extension/pgxs.mk: the PostgreSQL extension, built with PGXS.
# Run from the repository root by the top-level Makefile (make, make install,
# make installcheck); core/libcladcore.a (position-independent) is linked in.
MODULE_big = clad
OBJS       = extension/clad.o extension/cache.o extension/prepared_files.o extension/input.o \
             extension/functions.o
EXTENSION  = clad
DATA       = $(wildcard sql/clad--*.sql)
PGFILEDESC = "clad - image anomaly detection (CLAD) inside PostgreSQL"

PG_CPPFLAGS = -Icore -Iextension $(shell pkg-config --cflags jansson libpng)
SHLIB_LINK  = core/libcladcore.a $(shell pkg-config --libs jansson libpng) -lxxhash -ljpeg -lz -ldl -lm

# pg_regress: tests/sql/*.sql against tests/expected/*.out (make installcheck)
REGRESS      = setup scoring overloads formats lifecycle errors models privileges pinned adversarial install parallel
REGRESS_OPTS = --inputdir=tests --outputdir=tests/build/regress

# paths here are relative to the repository root, not to this file
VPATH = .

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): $(wildcard extension/*.h) $(wildcard core/*.h)
$(shlib): core/libcladcore.a
