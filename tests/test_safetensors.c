/* tests/test_safetensors.c: the safetensors reader accepts what it should and refuses the rest. */
#include "safetensors.h"
#include "rng.h"
#include "testutil.h"

#include <string.h>

/* A file from a raw header string and n data bytes. */
static uint8_t *
raw_file(const char *header, size_t ndata, size_t *len)
{
	size_t		h = strlen(header);
	uint8_t    *b = calloc(1, 8 + h + ndata + 1);

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t) ((uint64_t) h >> (8 * i));
	memcpy(b + 8, header, h);
	*len = 8 + h + ndata;
	return b;
}

static int
parses(const char *header, size_t ndata)
{
	size_t		len;
	uint8_t    *b = raw_file(header, ndata, &len);
	clad_st_file *f;
	clad_status st = clad_st_parse(b, len, &f);

	clad_st_free(f);
	free(b);
	return st == CLAD_OK;
}

static uint8_t *
valid_file(size_t *len)
{
	clad_st_writer *w = clad_st_writer_new();
	float		a[6] = {1, 2, 3, 4, 5, 6};
	int64_t		sa[2] = {2, 3}, c = 42, se[2] = {0, 4};
	uint8_t		u[3] = {7, 8, 9};
	int64_t		su[1] = {3};
	uint8_t    *buf;

	CHECK(clad_st_writer_meta(w, "format", "clad-1") == CLAD_OK);
	CHECK(clad_st_writer_meta(w, "note", "caf\xc3\xa9") == CLAD_OK);
	CHECK(clad_st_writer_add(w, "a", CLAD_DTYPE_F32, 2, sa, a) == CLAD_OK);
	CHECK(clad_st_writer_add(w, "count", CLAD_DTYPE_I64, 0, NULL, &c) == CLAD_OK);
	CHECK(clad_st_writer_add(w, "empty", CLAD_DTYPE_F32, 2, se, NULL) == CLAD_OK);
	CHECK(clad_st_writer_add(w, "u", CLAD_DTYPE_U8, 1, su, u) == CLAD_OK);
	CHECK(clad_st_writer_add(w, "a", CLAD_DTYPE_F32, 2, sa, a) != CLAD_OK);	/* duplicate */
	CHECK(clad_st_writer_finish(w, &buf, len) == CLAD_OK);
	clad_st_writer_free(w);
	return buf;
}

int
main(void)
{
	size_t		len;
	uint8_t    *good = valid_file(&len);
	clad_st_file *f = NULL;

	/* round trip */
	CHECK(good[0] % 8 == 0);	/* the data start 8-aligned */
	CHECK(clad_st_parse(good, len, &f) == CLAD_OK);
	if (f)
	{
		const clad_st_tensor *a = clad_st_find(f, "a"), *c = clad_st_find(f, "count"),
				   *u = clad_st_find(f, "u"), *e = clad_st_find(f, "empty");
		float		got[6];
		int64_t		sa[2] = {2, 3}, wrong[2] = {3, 2};

		CHECK(f->n_tensors == 4 && f->n_meta == 2);
		CHECK(a && a->dtype == CLAD_DTYPE_F32 && a->ndim == 2 && a->numel == 6);
		CHECK(c && c->ndim == 0 && c->numel == 1 && c->nbytes == 8);
		CHECK(u && u->nbytes == 3 && u->data[2] == 9);
		CHECK(e && e->numel == 0 && e->nbytes == 0);
		CHECK(clad_st_meta(f, "format") && strcmp(clad_st_meta(f, "format"), "clad-1") == 0);
		CHECK(clad_st_meta(f, "missing") == NULL);
		CHECK(clad_st_read_f32(f, "a", 2, sa, got) == CLAD_OK && got[5] == 6.0f);
		CHECK(clad_st_read_f32(f, "a", 2, wrong, got) == CLAD_ERR_SHAPE);
		CHECK(clad_st_read_f32(f, "u", 1, (int64_t[]) {3}, got) == CLAD_ERR_FORMAT);
		CHECK(clad_st_read_f32(f, "nope", 1, (int64_t[]) {3}, got) == CLAD_ERR_FORMAT);
		clad_st_free(f);
	}

	/* truncation at every offset, and trailing bytes */
	for (size_t cut = 0; cut < len; cut++)
	{
		CHECK_MSG(clad_st_parse(good, cut, &f) != CLAD_OK && f == NULL, "truncated at %zu parsed", cut);
	}
	{
		uint8_t    *longer = calloc(1, len + 1);

		memcpy(longer, good, len);
		CHECK(clad_st_parse(longer, len + 1, &f) != CLAD_OK);
		free(longer);
	}

	/* header lengths: 0, 7, 2^64-1, beyond the buffer, over the cap */
	{
		uint8_t		b[64] = {0};

		CHECK(clad_st_parse(b, sizeof(b), &f) != CLAD_OK);
		b[0] = 7;
		CHECK(clad_st_parse(b, sizeof(b), &f) != CLAD_OK);
		memset(b, 0xff, 8);
		CHECK(clad_st_parse(b, sizeof(b), &f) != CLAD_OK);
		memset(b, 0, 8);
		b[0] = 60;
		CHECK(clad_st_parse(b, sizeof(b), &f) != CLAD_OK);
		memset(b, 0, 8);
		b[0] = 0x01; b[3] = 0x10;	/* about 268 MB > cap */
		CHECK(clad_st_parse(b, sizeof(b), &f) != CLAD_OK);
	}

	/* the header itself */
	CHECK(parses("{}", 0));
	CHECK(parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ", 8));
	CHECK(!parses(" {}", 0));									/* not starting with '{' */
	CHECK(!parses("[]", 0));
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8));	/* bad JSON */
	CHECK(!parses("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8));	/* not UTF-8 */
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
				  "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8));	/* duplicate */
	CHECK(!parses("{\"__metadata__\":{\"a\":1}}", 0));			/* non-string metadata */
	CHECK(!parses("{\"x\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8));	/* dtype */
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8));
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8));
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,16],\"data_offsets\":[0,8]}}", 8));
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8));	/* size */
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8));
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8));
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8));	/* reversed */
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4));	/* range */
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8));	/* gap at 0 */
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
				  "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12));	/* gap */
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
				  "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8));	/* overlap */
	CHECK(!parses("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8));	/* trailing */
	CHECK(!parses("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4));	/* empty name */

	/* NaN weights are refused when read as parameters */
	{
		clad_st_writer *w = clad_st_writer_new();
		float		v[2] = {1.0f, NAN};
		int64_t		s[1] = {2};
		uint8_t    *buf;
		size_t		n;
		float		out[2];

		clad_st_writer_add(w, "w", CLAD_DTYPE_F32, 1, s, v);
		CHECK(clad_st_writer_finish(w, &buf, &n) == CLAD_OK);
		CHECK(clad_st_parse(buf, n, &f) == CLAD_OK);
		CHECK(clad_st_read_f32(f, "w", 1, s, out) == CLAD_ERR_NUMERIC);
		clad_st_free(f);
		clad_st_writer_free(w);
		free(buf);
	}

	/* 2000 seeded byte flips never crash */
	{
		clad_rng	r;
		uint8_t    *m = malloc(len);

		clad_rng_seed(&r, 99);
		for (int i = 0; i < 2000; i++)
		{
			memcpy(m, good, len);
			for (int k = 0; k < 1 + (int) clad_rng_below(&r, 4); k++)
				m[clad_rng_below(&r, len)] ^= (uint8_t) (1 + clad_rng_below(&r, 255));
			if (clad_st_parse(m, len, &f) == CLAD_OK)
				clad_st_free(f);
		}
		free(m);
	}
	free(good);
	return test_summary("test_safetensors");
}
