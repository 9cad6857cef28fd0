/*
 * tests/fuzz/fuzz_safetensors.c: libFuzzer harness for the safetensors parser:
 * parse, look up the metadata, and read every F32 tensor with its own shape
 * (so the offsets and sizes the parser accepted are used for real reads).
 * Input: see complete.h.
 */
#include "complete.h"
#include "safetensors.h"
#include "status.h"

#include <stdint.h>
#include <stdlib.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	clad_st_file *f = NULL;
	size_t		len = 0;
	uint8_t    *buf = fuzz_complete(data, size, &len);

	if (!buf)
		return 0;
	if (clad_st_parse(buf, len, &f) != CLAD_OK)
	{
		free(buf);
		return 0;
	}
	(void) clad_st_meta(f, "format");
	for (size_t i = 0; i < f->n_tensors; i++)
	{
		const clad_st_tensor *t = &f->tensors[i];
		float	   *dst;

		if (t->dtype != CLAD_DTYPE_F32 || clad_st_find(f, t->name) != t)
			continue;
		if (t->numel > ((size_t) 1 << 24) || !(dst = malloc(t->numel * sizeof(float) + 1)))
			continue;
		(void) clad_st_read_f32(f, t->name, t->ndim, t->shape, dst);
		free(dst);
	}
	clad_st_free(f);
	free(buf);
	return 0;
}
