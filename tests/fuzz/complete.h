/*
 * tests/fuzz/complete.h: inputs for the model harnesses.  A clad model is
 * megabytes of weights behind a few kilobytes of header; mutating the weights
 * teaches a fuzzer little and makes every run slow.  So the first input byte
 * picks the mode: even, the rest is the file as it is; odd, the rest is a file
 * whose data section is completed with zero bytes up to the largest end offset
 * its header names (at most 32 MB), so a small seed (the header of a real
 * model) reaches every check behind the parser.  The caller frees *buf.
 */
#ifndef CLAD_FUZZ_COMPLETE_H
#define CLAD_FUZZ_COMPLETE_H

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *
fuzz_complete(const uint8_t *data, size_t size, size_t *out_len)
{
	uint64_t	hlen = 0,
				want = 0;
	uint8_t    *buf;
	int			pad;
	json_t	   *root;
	const char *key;
	json_t	   *val;

	if (size < 1)
		return NULL;
	pad = data[0] & 1;
	data++;
	size--;
	if (pad && size >= 8)
	{
		for (int i = 7; i >= 0; i--)
			hlen = (hlen << 8) | data[i];
		if (hlen <= size - 8 && (root = json_loadb((const char *) data + 8, (size_t) hlen, 0, NULL)))
		{
			want = 0;
			json_object_foreach(root, key, val)
			{
				json_t	   *off = json_object_get(val, "data_offsets");
				json_t	   *end = off ? json_array_get(off, 1) : NULL;

				if (json_is_integer(end) && json_integer_value(end) > 0 &&
					(uint64_t) json_integer_value(end) > want)
					want = (uint64_t) json_integer_value(end);
			}
			json_decref(root);
		}
		if (want > ((uint64_t) 32 << 20))
			want = 0;
		else if (want > 0)
			want += 8 + hlen;	/* hlen <= size - 8 here */
	}
	if (want < size)
		want = size;
	if (!(buf = calloc(1, (size_t) want ? (size_t) want : 1)))
		return NULL;
	memcpy(buf, data, size);
	*out_len = (size_t) want;
	return buf;
}

#endif
