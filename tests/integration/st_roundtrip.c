/* tests/integration/st_roundtrip.c: validate a safetensors file with clad's reader and rewrite it with clad's writer.
 *
 * usage: st_roundtrip IN OUT
 * Reads IN, parses it with clad_st_parse, writes every tensor (in offset
 * order) and every metadata entry (in file order) to OUT with clad's
 * writer, then parses OUT again and checks that it holds the same tensors
 * and metadata byte for byte.  Exits 0 on success, 1 on any error.
 */
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
fail(const char *what, const char *path)
{
	fprintf(stderr, "st_roundtrip: %s %s: %s\n", what, path, clad_last_error());
	return 1;
}

/* b holds the same tensors (same order) and metadata as a. */
static int
same_contents(const clad_st_file *a, const clad_st_file *b)
{
	if (a->n_tensors != b->n_tensors || a->n_meta != b->n_meta)
		return 0;
	for (size_t i = 0; i < a->n_tensors; i++)
	{
		const clad_st_tensor *x = &a->tensors[i],
				   *y = &b->tensors[i];

		if (strcmp(x->name, y->name) != 0 || x->dtype != y->dtype || x->ndim != y->ndim ||
			memcmp(x->shape, y->shape, sizeof(int64_t) * x->ndim) != 0 || x->nbytes != y->nbytes ||
			(x->nbytes && memcmp(x->data, y->data, x->nbytes) != 0))
		{
			fprintf(stderr, "st_roundtrip: tensor \"%s\" differs after rewriting\n", x->name);
			return 0;
		}
	}
	for (size_t i = 0; i < a->n_meta; i++)
		if (strcmp(a->meta_keys[i], b->meta_keys[i]) != 0 ||
			strcmp(a->meta_values[i], b->meta_values[i]) != 0)
		{
			fprintf(stderr, "st_roundtrip: metadata \"%s\" differs after rewriting\n", a->meta_keys[i]);
			return 0;
		}
	return 1;
}

int
main(int argc, char **argv)
{
	uint8_t    *in = NULL,
			   *out = NULL;
	size_t		in_len,
				out_len;
	clad_st_file *f = NULL,
			   *g = NULL;
	clad_st_writer *w = NULL;
	int			rc = 1;

	if (argc != 3)
	{
		fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
		return 2;
	}
	if (clad_read_file(argv[1], &in, &in_len) != CLAD_OK)
		return fail("cannot read", argv[1]);
	if (clad_st_parse(in, in_len, &f) != CLAD_OK)
	{
		rc = fail("invalid safetensors file", argv[1]);
		goto done;
	}
	if (!(w = clad_st_writer_new()))
	{
		fprintf(stderr, "st_roundtrip: out of memory\n");
		goto done;
	}
	for (size_t i = 0; i < f->n_meta; i++)
		if (clad_st_writer_meta(w, f->meta_keys[i], f->meta_values[i]) != CLAD_OK)
		{
			rc = fail("cannot add metadata from", argv[1]);
			goto done;
		}
	for (size_t i = 0; i < f->n_tensors; i++)
	{
		const clad_st_tensor *t = &f->tensors[i];

		if (clad_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) != CLAD_OK)
		{
			rc = fail("cannot add a tensor from", argv[1]);
			goto done;
		}
	}
	if (clad_st_writer_finish(w, &out, &out_len) != CLAD_OK)
	{
		rc = fail("cannot serialise", argv[2]);
		goto done;
	}
	if (clad_st_parse(out, out_len, &g) != CLAD_OK)
	{
		rc = fail("clad's own output does not parse for", argv[2]);
		goto done;
	}
	if (!same_contents(f, g))
		goto done;
	if (clad_write_file(argv[2], out, out_len) != CLAD_OK)
	{
		rc = fail("cannot write", argv[2]);
		goto done;
	}
	printf("st_roundtrip: %zu tensors, %zu metadata entries, %zu -> %zu bytes\n",
		   f->n_tensors, f->n_meta, in_len, out_len);
	rc = 0;

done:
	clad_st_free(g);
	clad_st_free(f);
	clad_st_writer_free(w);
	free(out);
	free(in);
	return rc;
}
