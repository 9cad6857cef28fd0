# tests/fuzz/fuzz.mk: libFuzzer harnesses (clang, ASan + UBSan), included by the
# top Makefile (it uses CLAD_CFLAGS, LIBS and CORE_SRC from there).
#   make fuzz         every harness for FUZZ_SECONDS (600) each
#   make check-fuzz   replay the committed seeds and regression inputs, then 15 s each
# Runs work on copies of the committed corpora (tests/build/fuzz/corpus-NAME);
# findings land in tests/build/fuzz/artifacts/.  See tests/fuzz/README.md.
FUZZ_CC      ?= clang
FUZZ_FLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SECONDS ?= 600
FUZZ_NAMES    = image safetensors model
FUZZ_BIN      = $(patsubst %,tests/build/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_CORE_OBJ = $(patsubst core/%.c,tests/build/fuzz/core/%.o,$(CORE_SRC))
.SECONDARY: $(FUZZ_CORE_OBJ)

# core for the fuzzers: instrumented for coverage and the sanitizers
tests/build/fuzz/core/%.o: core/%.c $(wildcard core/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(subst fuzzer,fuzzer-no-link,$(FUZZ_FLAGS)) $(CLAD_CFLAGS) -c -o $@ $<

tests/build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/complete.h $(FUZZ_CORE_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(CLAD_CFLAGS) -o $@ $< $(FUZZ_CORE_OBJ) $(LIBS)

.PHONY: fuzz check-fuzz
fuzz: $(FUZZ_BIN)
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/fuzz/run.sh $(FUZZ_NAMES)

check-fuzz: $(FUZZ_BIN)
	./tests/fuzz/run.sh --replay $(FUZZ_NAMES)
	FUZZ_SECONDS=15 ./tests/fuzz/run.sh $(FUZZ_NAMES)
