/*
 * tests/fuzz/fuzz_model.c: libFuzzer harness for the whole model loader
 * (safetensors, metadata, architecture, every tensor's shape and values), as
 * clad_load_model and a backend's cache call it.  Input: see complete.h.
 */
#include "complete.h"
#include "model.h"
#include "status.h"

#include <stdint.h>
#include <stdlib.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	clad_model *m = NULL;
	size_t		len = 0;
	uint8_t    *buf = fuzz_complete(data, size, &len);

	if (!buf)
		return 0;
	if (clad_model_load(buf, len, &m) == CLAD_OK)
		clad_model_free(m);
	free(buf);
	return 0;
}
