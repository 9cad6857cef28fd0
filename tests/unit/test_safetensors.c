/* tests/unit/test_safetensors.c: the safetensors reader accepts what it should and refuses the rest. */
#include "safetensors.h"
#include "testutil.h"

#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static void
put_u64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t) (v >> (8 * i));
}

/* A file from a raw header (hlen bytes, may hold NULs) and ndata zero data bytes. */
static uint8_t *
raw_file_n(const char *header, size_t hlen, size_t ndata, size_t *len)
{
	uint8_t    *b = calloc(1, 8 + hlen + ndata + 1);

	put_u64(b, hlen);
	memcpy(b + 8, header, hlen);
	*len = 8 + hlen + ndata;
	return b;
}

/* Parse a raw header with ndata data bytes; a failure must leave *out NULL. */
static clad_status
parse_n(const char *header, size_t hlen, size_t ndata)
{
	size_t		len;
	uint8_t    *b = raw_file_n(header, hlen, ndata, &len);
	clad_st_file *f = (clad_st_file *) (uintptr_t) 1;
	clad_status st = clad_st_parse(b, len, &f);

	if (st != CLAD_OK)
		CHECK_MSG(f == NULL, "failed parse left *out set");
	clad_st_free(f);
	free(b);
	return st;
}

static clad_status
parse_hdr(const char *header, size_t ndata)
{
	return parse_n(header, strlen(header), ndata);
}

#define OK_HDR(h, n) CHECK_MSG(parse_hdr(h, n) == CLAD_OK, "refused: %s: %s", h, clad_last_error())
#define BAD_HDR(h, n) CHECK_MSG(parse_hdr(h, n) != CLAD_OK, "accepted: %s", h)
#define BAD_HDR_ST(h, n, s) do { clad_status st_ = parse_hdr(h, n); \
	CHECK_MSG(st_ == (s), "%s: got %s (%s)", h, clad_status_name(st_), clad_last_error()); } while (0)

#define BAD_HDR_MSG(h, n, sub) do { clad_status st_ = parse_hdr(h, n); \
	CHECK_MSG(st_ != CLAD_OK && strstr(clad_last_error(), sub) != NULL, "%s: got %s (%s), want \"%s\"", \
			  h, clad_status_name(st_), clad_last_error(), sub); } while (0)

/* One tensor x of dtype F32 with the given shape and offsets. */
#define T1(shape, offs) "{\"x\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" offs "}}"

/* ------------------------------------------------------------ the valid file */

static const float a_vals[6] = {1, 2, 3, 4, 5, -6.5f};
static const int64_t count_val = 42;
static const uint8_t u_vals[3] = {7, 8, 9};
static const float g_vals[2] = {0.25f, -1e30f};	/* lands after u: unaligned */
static const double d_vals[2] = {1.0 / 3, -2e300};
static const uint16_t h_vals[3] = {0x3c00, 0xc000, 0x7bff};	/* F16 bits */
static const uint16_t bf_vals[1] = {0x3f80};
static const int32_t i32_vals[2] = {-1, INT32_MAX};
static const int16_t i16_vals[2] = {-32768, 7};
static const int8_t i8_vals[4] = {-128, 0, 1, 127};
static const uint8_t b_vals[3] = {1, 0, 1};

static const struct
{
	const char *name;
	clad_dtype	dtype;
	int			ndim;
	int64_t		shape[3];
	const void *data;
	size_t		nbytes;
}			expected[] = {
	{"a", CLAD_DTYPE_F32, 2, {2, 3}, a_vals, sizeof(a_vals)},
	{"count", CLAD_DTYPE_I64, 0, {0}, &count_val, 8},
	{"empty", CLAD_DTYPE_F32, 2, {0, 4}, NULL, 0},
	{"u", CLAD_DTYPE_U8, 1, {3}, u_vals, 3},
	{"g", CLAD_DTYPE_F32, 1, {2}, g_vals, 8},
	{"d", CLAD_DTYPE_F64, 2, {1, 2}, d_vals, 16},
	{"h", CLAD_DTYPE_F16, 1, {3}, h_vals, 6},
	{"bf", CLAD_DTYPE_BF16, 3, {1, 1, 1}, bf_vals, 2},
	{"i32", CLAD_DTYPE_I32, 1, {2}, i32_vals, 8},
	{"i16", CLAD_DTYPE_I16, 1, {2}, i16_vals, 4},
	{"i8", CLAD_DTYPE_I8, 2, {2, 2}, i8_vals, 4},
	{"flags", CLAD_DTYPE_BOOL, 1, {3}, b_vals, 3},
	{"empty2", CLAD_DTYPE_I64, 1, {0}, NULL, 0},
};
#define N_EXPECTED ((int) (sizeof(expected) / sizeof(expected[0])))

static uint8_t *
valid_file(size_t *len)
{
	clad_st_writer *w = clad_st_writer_new();
	uint8_t    *buf = NULL;

	CHECK(w != NULL);
	CHECK(clad_st_writer_meta(w, "format", "old") == CLAD_OK);
	CHECK(clad_st_writer_meta(w, "note", "caf\xc3\xa9 \"quoted\" back\\slash\nnewline") == CLAD_OK);
	CHECK(clad_st_writer_meta(w, "format", "clad-1") == CLAD_OK);	/* replaces, keeps its place */
	CHECK(clad_st_writer_meta(w, "empty", "") == CLAD_OK);
	for (int i = 0; i < N_EXPECTED; i++)
		CHECK_MSG(clad_st_writer_add(w, expected[i].name, expected[i].dtype, expected[i].ndim,
									 expected[i].shape, expected[i].data) == CLAD_OK,
				  "add %s: %s", expected[i].name, clad_last_error());
	CHECK(clad_st_writer_add(w, "a", CLAD_DTYPE_F32, 2, expected[0].shape, a_vals) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_finish(w, &buf, len) == CLAD_OK);
	{
		/* the writer stays usable: a second finish gives the same bytes */
		uint8_t    *again;
		size_t		len2;

		CHECK(clad_st_writer_finish(w, &again, &len2) == CLAD_OK);
		CHECK(len2 == *len && memcmp(again, buf, len2) == 0);
		free(again);
	}
	clad_st_writer_free(w);
	return buf;
}

static void
test_round_trip(const uint8_t *good, size_t len)
{
	clad_st_file *f = NULL;
	uint64_t	hlen = 0;
	static const char prefix[] = "{\"__metadata__\":{\"format\":\"clad-1\",\"note\":";

	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | good[i];
	CHECK((8 + hlen) % 8 == 0);	/* data start 8-aligned */
	CHECK(8 + hlen <= len);
	CHECK(memcmp(good + 8, prefix, strlen(prefix)) == 0);	/* compact, metadata first, in order */
	{
		size_t		e = hlen;

		while (e > 0 && good[8 + e - 1] == ' ')
			e--;
		CHECK(e > 0 && good[8 + e - 1] == '}' && hlen - e < 8);	/* padded with spaces only */
	}

	CHECK_MSG(clad_st_parse(good, len, &f) == CLAD_OK, "%s", clad_last_error());
	if (!f)
		return;
	CHECK(f->n_tensors == (size_t) N_EXPECTED);
	CHECK(f->n_meta == 3);
	if (f->n_meta == 3)
	{
		CHECK(strcmp(f->meta_keys[0], "format") == 0 && strcmp(f->meta_values[0], "clad-1") == 0);
		CHECK(strcmp(f->meta_keys[1], "note") == 0);
		CHECK(strcmp(f->meta_keys[2], "empty") == 0 && f->meta_values[2][0] == '\0');
	}
	CHECK(clad_st_meta(f, "note") &&
		  strcmp(clad_st_meta(f, "note"), "caf\xc3\xa9 \"quoted\" back\\slash\nnewline") == 0);
	CHECK(clad_st_meta(f, "missing") == NULL);
	CHECK(clad_st_meta(f, NULL) == NULL && clad_st_meta(NULL, "format") == NULL);
	CHECK(clad_st_find(f, "missing") == NULL);
	CHECK(clad_st_find(f, "__metadata__") == NULL);
	CHECK(clad_st_find(f, NULL) == NULL && clad_st_find(NULL, "a") == NULL);

	for (int i = 0; i < N_EXPECTED; i++)
	{
		const clad_st_tensor *t = clad_st_find(f, expected[i].name);
		size_t		numel = 1;

		for (int d = 0; d < expected[i].ndim; d++)
			numel *= (size_t) expected[i].shape[d];
		CHECK_MSG(t != NULL, "lost %s", expected[i].name);
		if (!t)
			continue;
		/* the writer writes in insertion order, the reader sorts by offset */
		CHECK_MSG(t == &f->tensors[i] || expected[i].nbytes == 0, "%s out of order", t->name);
		CHECK(t->dtype == expected[i].dtype);
		CHECK(t->ndim == expected[i].ndim);
		CHECK(memcmp(t->shape, expected[i].shape, sizeof(int64_t) * t->ndim) == 0);
		CHECK(t->numel == numel);
		CHECK(t->nbytes == expected[i].nbytes);
		CHECK(t->nbytes == t->numel * clad_dtype_size(t->dtype));
		CHECK(t->data >= good + 8 + hlen && t->data + t->nbytes <= good + len);
		CHECK(t->nbytes == 0 || memcmp(t->data, expected[i].data, t->nbytes) == 0);
		CHECK(strcmp(clad_dtype_name(t->dtype), clad_dtype_name(expected[i].dtype)) == 0);
	}

	/* read_f32: exact shape, F32 only, finite values; data may be unaligned */
	{
		float		got[6] = {0},
					g2[2] = {0};
		int64_t		sa[2] = {2, 3},
					wrong[2] = {3, 2},
					s2[1] = {2},
					se[2] = {0, 4};

		CHECK(clad_st_read_f32(f, "a", 2, sa, got) == CLAD_OK && memcmp(got, a_vals, sizeof(got)) == 0);
		CHECK(((uintptr_t) clad_st_find(f, "g")->data) % 4 != 0);
		CHECK(clad_st_read_f32(f, "g", 1, s2, g2) == CLAD_OK && memcmp(g2, g_vals, sizeof(g2)) == 0);
		CHECK(clad_st_read_f32(f, "empty", 2, se, NULL) == CLAD_OK);
		CHECK(clad_st_read_f32(f, "a", 2, wrong, got) == CLAD_ERR_SHAPE);
		CHECK(clad_st_read_f32(f, "a", 1, sa, got) == CLAD_ERR_SHAPE);
		CHECK(clad_st_read_f32(f, "a", 0, NULL, got) == CLAD_ERR_SHAPE);
		CHECK(clad_st_read_f32(f, "u", 1, (int64_t[]) {3}, got) == CLAD_ERR_FORMAT);
		CHECK(clad_st_read_f32(f, "d", 2, (int64_t[]) {1, 2}, got) == CLAD_ERR_FORMAT);
		CHECK(clad_st_read_f32(f, "nope", 1, (int64_t[]) {3}, got) == CLAD_ERR_FORMAT);
		CHECK(strstr(clad_last_error(), "nope") != NULL);
		CHECK(clad_st_read_f32(f, "a", -1, sa, got) == CLAD_ERR_INVALID);
		CHECK(clad_st_read_f32(f, "a", CLAD_ST_MAX_DIMS + 1, sa, got) == CLAD_ERR_INVALID);
		CHECK(clad_st_read_f32(f, "a", 2, NULL, got) == CLAD_ERR_INVALID);
		CHECK(clad_st_read_f32(NULL, "a", 2, sa, got) == CLAD_ERR_INVALID);
		CHECK(clad_st_read_f32(f, "a", 2, sa, NULL) == CLAD_ERR_INVALID);
	}
	clad_st_free(f);
}

/* ---------------------------------------------------------------- the writer */

static void
test_writer_errors(void)
{
	clad_st_writer *w = clad_st_writer_new();
	int64_t		s[2] = {2, 2},
				neg[1] = {-1},
				big[2] = {INT64_C(1) << 62, 16},
				zbig[3] = {0, INT64_C(1) << 62, 16};
	float		v[4] = {1, 2, 3, 4};
	uint8_t    *buf;
	size_t		len;
	clad_st_file *f;

	CHECK(clad_st_writer_add(NULL, "x", CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, NULL, CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "", CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "__metadata__", CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "bad\xff", CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "\xc0\xaf", CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);	/* overlong */
	CHECK(clad_st_writer_add(w, "\xed\xa0\x80", CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);	/* surrogate */
	CHECK(clad_st_writer_add(w, "\xf4\x90\x80\x80", CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);	/* > U+10FFFF */
	CHECK(clad_st_writer_add(w, "\xe2\x82", CLAD_DTYPE_F32, 2, s, v) == CLAD_ERR_INVALID);	/* cut short */
	CHECK(clad_st_writer_add(w, "x", (clad_dtype) 99, 2, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "x", (clad_dtype) -1, 2, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "x", CLAD_DTYPE_F32, -1, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "x", CLAD_DTYPE_F32, CLAD_ST_MAX_DIMS + 1, s, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "x", CLAD_DTYPE_F32, 2, NULL, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "x", CLAD_DTYPE_F32, 1, neg, v) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_add(w, "x", CLAD_DTYPE_F32, 2, big, v) == CLAD_ERR_OVERFLOW);
	CHECK(clad_st_writer_add(w, "x", CLAD_DTYPE_F32, 3, zbig, v) == CLAD_ERR_OVERFLOW);
	CHECK(clad_st_writer_add(w, "x", CLAD_DTYPE_F32, 2, s, NULL) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_meta(NULL, "k", "v") == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_meta(w, NULL, "v") == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_meta(w, "k", NULL) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_meta(w, "k", "\xff") == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_meta(w, "\xff", "v") == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_finish(NULL, &buf, &len) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_finish(w, NULL, &len) == CLAD_ERR_INVALID);
	CHECK(clad_st_writer_finish(w, &buf, NULL) == CLAD_ERR_INVALID && buf == NULL);

	/* none of that left a trace: the writer gives an empty file */
	CHECK(clad_st_writer_finish(w, &buf, &len) == CLAD_OK);
	CHECK(len == 16 && memcmp(buf + 8, "{}      ", 8) == 0);
	CHECK(clad_st_parse(buf, len, &f) == CLAD_OK && f && f->n_tensors == 0 && f->n_meta == 0);
	clad_st_free(f);
	free(buf);

	/* a control character and a non-ASCII name survive JSON escaping */
	CHECK(clad_st_writer_add(w, "tab\there \xe2\x82\xac", CLAD_DTYPE_F32, 2, s, v) == CLAD_OK);
	CHECK(clad_st_writer_finish(w, &buf, &len) == CLAD_OK);
	CHECK(clad_st_parse(buf, len, &f) == CLAD_OK && clad_st_find(f, "tab\there \xe2\x82\xac") != NULL);
	clad_st_free(f);
	free(buf);
	clad_st_writer_free(w);
	clad_st_writer_free(NULL);
	clad_st_free(NULL);
}

/* NaN and infinities are refused when read as parameters, and dst is left alone. */
static void
test_non_finite(void)
{
	const float bad[3] = {NAN, INFINITY, -INFINITY};

	for (int k = 0; k < 3; k++)
	{
		clad_st_writer *w = clad_st_writer_new();
		float		v[3] = {1.0f, 2.0f, 3.0f},
					out[3] = {7, 7, 7};
		int64_t		s[1] = {3};
		uint8_t    *buf;
		size_t		n;
		clad_st_file *f = NULL;

		v[k] = bad[k];
		CHECK(clad_st_writer_add(w, "w", CLAD_DTYPE_F32, 1, s, v) == CLAD_OK);
		CHECK(clad_st_writer_finish(w, &buf, &n) == CLAD_OK);
		CHECK(clad_st_parse(buf, n, &f) == CLAD_OK);	/* the file itself is fine */
		CHECK(clad_st_read_f32(f, "w", 1, s, out) == CLAD_ERR_NUMERIC);
		CHECK(out[0] == 7 && out[1] == 7 && out[2] == 7);
		clad_st_free(f);
		clad_st_writer_free(w);
		free(buf);
	}
}

/* ---------------------------------------------------------- header lengths */

static void
test_header_lengths(void)
{
	uint8_t		b[64];
	clad_st_file *f = (clad_st_file *) (uintptr_t) 1;
	clad_status st;

	CHECK(clad_st_parse(NULL, 16, &f) == CLAD_ERR_FORMAT && f == NULL);
	CHECK(clad_st_parse(b, 16, NULL) == CLAD_ERR_INVALID);

	/* files shorter than the length field, e.g. 7 bytes */
	memset(b, 0, sizeof(b));
	for (size_t n = 0; n < 8; n++)
		CHECK_MSG(clad_st_parse(b, n, &f) == CLAD_ERR_FORMAT && f == NULL, "%zu-byte file", n);

	/* length 0 and 1 */
	memcpy(b + 8, "{}", 2);
	put_u64(b, 0);
	CHECK(clad_st_parse(b, 10, &f) == CLAD_ERR_FORMAT && f == NULL);
	put_u64(b, 1);
	CHECK(clad_st_parse(b, 10, &f) == CLAD_ERR_FORMAT);
	/* the smallest valid file: "{}" with no data */
	put_u64(b, 2);
	CHECK(clad_st_parse(b, 10, &f) == CLAD_OK && f && f->n_tensors == 0);
	clad_st_free(f);
	/* length 7 with a 7-byte header (no alignment needed to read), and beyond a 14-byte file */
	memcpy(b + 8, "{}     ", 7);
	put_u64(b, 7);
	CHECK(clad_st_parse(b, 15, &f) == CLAD_OK);
	clad_st_free(f);
	CHECK(clad_st_parse(b, 14, &f) == CLAD_ERR_FORMAT && f == NULL);
	/* 2^64-1, 2^63, 2^32 */
	put_u64(b, UINT64_MAX);
	CHECK(clad_st_parse(b, sizeof(b), &f) == CLAD_ERR_FORMAT && f == NULL);
	put_u64(b, UINT64_C(1) << 63);
	CHECK(clad_st_parse(b, sizeof(b), &f) == CLAD_ERR_FORMAT);
	put_u64(b, UINT64_C(1) << 32);
	CHECK(clad_st_parse(b, sizeof(b), &f) == CLAD_ERR_FORMAT);
	/* one byte beyond the buffer */
	put_u64(b, sizeof(b) - 7);
	st = clad_st_parse(b, sizeof(b), &f);
	CHECK(st == CLAD_ERR_FORMAT && strstr(clad_last_error(), "beyond") != NULL);

	/* over the cap, in a buffer big enough to hold it (calloc'd, never touched) */
	{
		size_t		n = 8 + (size_t) CLAD_ST_MAX_HEADER + 1;
		uint8_t    *big = calloc(1, n);

		CHECK(big != NULL);
		if (big)
		{
			put_u64(big, (uint64_t) CLAD_ST_MAX_HEADER + 1);
			big[8] = '{';
			st = clad_st_parse(big, n, &f);
			CHECK_MSG(st == CLAD_ERR_FORMAT && strstr(clad_last_error(), "cap") != NULL,
					  "%s", clad_last_error());
			free(big);
		}
	}
}

/* ----------------------------------------------------------- header content */

static void
test_header_content(void)
{
	static const char nul_after[] = "{}\0";
	static const char nul_key[] = "{\"a\0b\":{}}";

	/* accepted */
	OK_HDR("{}", 0);
	OK_HDR("{ }", 0);
	OK_HDR("{}" "      ", 0);
	OK_HDR(T1("[2]", "[0,8]") "   ", 8);
	OK_HDR("{\"__metadata__\":{}}", 0);
	OK_HDR("{\"__metadata__\":{\"k\":\"caf\xc3\xa9\",\"e\":\"\\u20ac\"}}", 0);
	OK_HDR("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\"}}", 8);	/* any field order */
	OK_HDR(T1("[]", "[0,4]"), 4);				/* 0-d */
	OK_HDR(T1("[0,3]", "[0,0]"), 0);			/* empty */
	OK_HDR(T1("[1,1,1,1,1,1,1,1]", "[0,4]"), 4);	/* CLAD_ST_MAX_DIMS dims */
	/* listed out of offset order, and two empty tensors at one offset */
	OK_HDR("{\"y\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
		   "\"e1\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
		   "\"e2\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
		   "\"x\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6);
	{
		const char *h = "{\"y\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
			"\"x\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
		size_t		len;
		uint8_t    *b = raw_file_n(h, strlen(h), 6, &len);
		clad_st_file *f = NULL;

		CHECK(clad_st_parse(b, len, &f) == CLAD_OK);
		CHECK(f && f->n_tensors == 2 && strcmp(f->tensors[0].name, "x") == 0 &&
			  strcmp(f->tensors[1].name, "y") == 0 && f->tensors[1].data == b + len - 2);
		clad_st_free(f);
		free(b);
	}

	/* not starting with '{', trailing bytes other than spaces */
	BAD_HDR(" {}", 0);
	BAD_HDR("\n{}", 0);
	BAD_HDR("[]", 0);
	BAD_HDR("\"{}\"", 0);
	BAD_HDR("{}\n", 0);
	BAD_HDR("{}\t", 0);
	BAD_HDR("{}\n  ", 0);
	BAD_HDR("{}x", 0);
	BAD_HDR("{}{}", 0);
	BAD_HDR("{}  }", 0);
	CHECK(parse_n(nul_after, 3, 0) == CLAD_ERR_FORMAT);
	BAD_HDR("{          ", 0);

	/* bad JSON */
	BAD_HDR(T1("[2]", "[0,8]") "x", 8);
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8);	/* unclosed */
	BAD_HDR("{\"x\":}", 0);
	BAD_HDR("{x:1}", 0);
	BAD_HDR("{'x':{}}", 0);
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],}}", 8);	/* trailing comma */
	BAD_HDR("{\"__metadata__\":{\"k\":\"v\"},}", 0);
	BAD_HDR("{\"__metadata__\":{\"k\":\"a\nb\"}}", 0);		/* raw control character */
	BAD_HDR("{\"__metadata__\":{\"k\":\"\\x41\"}}", 0);		/* bad escape */

	/* not UTF-8 */
	BAD_HDR("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
	BAD_HDR("{\"__metadata__\":{\"k\":\"\xc3\"}}", 0);
	BAD_HDR("{\"__metadata__\":{\"k\":\"\xc0\xaf\"}}", 0);		/* overlong '/' */
	BAD_HDR("{\"__metadata__\":{\"k\":\"\xed\xa0\x80\"}}", 0);	/* UTF-16 surrogate */
	BAD_HDR("{\"__metadata__\":{\"k\":\"\\ud800\"}}", 0);		/* lone surrogate escape */
	BAD_HDR("{\"__metadata__\":{\"k\":\"\\u0000\"}}", 0);		/* NUL in a C string */
	CHECK(parse_n(nul_key, sizeof(nul_key) - 1, 0) == CLAD_ERR_FORMAT);

	/* duplicate keys, at every level */
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
			"\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
	BAD_HDR("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0);
	BAD_HDR("{\"__metadata__\":{},\"__metadata__\":{}}", 0);

	/* metadata */
	BAD_HDR_MSG("{\"__metadata__\":{\"a\":1}}", 0, "not a string");
	BAD_HDR("{\"__metadata__\":{\"a\":null}}", 0);
	BAD_HDR("{\"__metadata__\":{\"a\":{}}}", 0);
	BAD_HDR("{\"__metadata__\":{\"a\":[\"x\"]}}", 0);
	BAD_HDR("{\"__metadata__\":{\"a\":\"ok\",\"b\":true}}", 0);
	BAD_HDR("{\"__metadata__\":[]}", 0);
	BAD_HDR("{\"__metadata__\":\"x\"}", 0);
	BAD_HDR("{\"__metadata__\":null}", 0);

	/* tensor entries */
	BAD_HDR("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);	/* empty name */
	BAD_HDR("{\"x\":1}", 0);
	BAD_HDR("{\"x\":[]}", 0);
	BAD_HDR("{\"x\":{}}", 0);
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8);
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8);
	BAD_HDR("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8);
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"__metadata__\":{}}}", 8);

	/* dtypes */
	BAD_HDR_MSG("{\"x\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
	BAD_HDR("{\"x\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
	BAD_HDR("{\"x\":{\"dtype\":\"F32 \",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
	BAD_HDR("{\"x\":{\"dtype\":\"\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
	BAD_HDR("{\"x\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
	BAD_HDR("{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);	/* not supported */

	/* shapes */
	BAD_HDR(T1("[-2]", "[0,8]"), 8);
	BAD_HDR(T1("[2,-1]", "[0,8]"), 8);
	BAD_HDR(T1("[2.0]", "[0,8]"), 8);
	BAD_HDR(T1("[2e0]", "[0,8]"), 8);
	BAD_HDR(T1("[\"2\"]", "[0,8]"), 8);
	BAD_HDR(T1("[null]", "[0,8]"), 8);
	BAD_HDR(T1("[true]", "[0,8]"), 8);
	BAD_HDR(T1("[[2]]", "[0,8]"), 8);
	BAD_HDR(T1("2", "[0,8]"), 8);
	BAD_HDR(T1("{}", "[0,8]"), 8);
	BAD_HDR(T1("[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4);		/* 9 dims */
	BAD_HDR(T1("[18446744073709551616]", "[0,8]"), 8);	/* 2^64 */
	BAD_HDR(T1("[9223372036854775808]", "[0,8]"), 8);	/* 2^63 */
	BAD_HDR_ST(T1("[4611686018427387904,16]", "[0,8]"), 8, CLAD_ERR_OVERFLOW);	/* 2^62 x 16 */
	BAD_HDR_ST(T1("[4294967296,4294967296]", "[0,0]"), 0, CLAD_ERR_OVERFLOW);	/* 2^64 elements */
	BAD_HDR_ST(T1("[4611686018427387904]", "[0,0]"), 0, CLAD_ERR_OVERFLOW);	/* 2^62 x 4 bytes */
	BAD_HDR_ST(T1("[2305843009213693952]", "[0,0]"), 0, CLAD_ERR_FORMAT);	/* 2^63 bytes fit, do not match */
	BAD_HDR_ST(T1("[0,4611686018427387904,16]", "[0,0]"), 0, CLAD_ERR_OVERFLOW);	/* empty, strides overflow */
	BAD_HDR_ST(T1("[9223372036854775807]", "[0,0]"), 0, CLAD_ERR_OVERFLOW);

	/* byte length against shape x dtype size */
	BAD_HDR_ST(T1("[3]", "[0,8]"), 8, CLAD_ERR_FORMAT);
	BAD_HDR_ST(T1("[1]", "[0,8]"), 8, CLAD_ERR_FORMAT);
	BAD_HDR_ST(T1("[]", "[0,0]"), 0, CLAD_ERR_FORMAT);		/* 0-d holds one element */
	BAD_HDR_ST(T1("[0]", "[0,4]"), 4, CLAD_ERR_FORMAT);
	BAD_HDR("{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);

	/* offsets */
	BAD_HDR_MSG(T1("[2]", "[8,0]"), 8, "reversed");
	BAD_HDR_MSG(T1("[0]", "[8,0]"), 8, "reversed");
	BAD_HDR(T1("[2]", "[0,8]"), 4);						/* end beyond the data */
	BAD_HDR(T1("[0]", "[9,9]"), 8);						/* begin beyond the data */
	BAD_HDR(T1("[2]", "[0,18446744073709551615]"), 8);
	BAD_HDR(T1("[2]", "[-8,0]"), 8);					/* negative */
	BAD_HDR(T1("[0]", "[-0.0,0]"), 0);
	BAD_HDR(T1("[2]", "[0.0,8.0]"), 8);					/* not integers */
	BAD_HDR(T1("[2]", "[\"0\",\"8\"]"), 8);
	BAD_HDR(T1("[2]", "[0,8,8]"), 8);
	BAD_HDR(T1("[2]", "[0]"), 8);
	BAD_HDR(T1("[2]", "[]"), 8);
	BAD_HDR(T1("[2]", "{\"0\":8}"), 8);
	BAD_HDR_MSG(T1("[1]", "[4,8]"), 8, "gap");			/* gap at 0 */
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
			"\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12);	/* gap */
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			"\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);		/* overlap */
	BAD_HDR_MSG("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
				"\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlaps");
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
			"\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);		/* same bytes */
	BAD_HDR("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			"\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);	/* straddle */
	BAD_HDR_MSG(T1("[1]", "[0,4]"), 8, "trailing");
	BAD_HDR("{}", 1);
	BAD_HDR(T1("[0]", "[0,0]"), 1);
}

/* ------------------------------------------------ truncation and corruption */

/* The invariants the reader promises for anything it accepts. */
static void
check_invariants(const uint8_t *buf, size_t len, const clad_st_file *f)
{
	uint64_t	hlen = 0;
	size_t		expect;

	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | buf[i];
	expect = 8 + (size_t) hlen;
	for (size_t i = 0; i < f->n_tensors; i++)
	{
		const clad_st_tensor *t = &f->tensors[i];

		CHECK(t->name && t->name[0]);
		CHECK(t->ndim >= 0 && t->ndim <= CLAD_ST_MAX_DIMS);
		CHECK(t->nbytes == t->numel * clad_dtype_size(t->dtype));
		CHECK(t->data == buf + expect);
		expect += t->nbytes;
	}
	CHECK(expect == len);
	for (size_t i = 0; i < f->n_meta; i++)
		CHECK(f->meta_keys[i] && f->meta_values[i]);
}

static void
test_truncation_and_flips(const uint8_t *good, size_t len)
{
	clad_st_file *f;

	/* every proper prefix is refused (copied, so ASan sees reads past the cut) */
	for (size_t cut = 0; cut < len; cut++)
	{
		uint8_t    *b = malloc(cut ? cut : 1);

		memcpy(b, good, cut);
		f = (clad_st_file *) (uintptr_t) 1;
		CHECK_MSG(clad_st_parse(b, cut, &f) != CLAD_OK && f == NULL, "truncated at %zu parsed", cut);
		free(b);
	}
	/* and so is any extra byte */
	{
		uint8_t    *longer = calloc(1, len + 1);

		memcpy(longer, good, len);
		CHECK(clad_st_parse(longer, len + 1, &f) == CLAD_ERR_FORMAT && f == NULL);
		longer[len] = ' ';
		CHECK(clad_st_parse(longer, len + 1, &f) == CLAD_ERR_FORMAT);
		free(longer);
	}

	/* 2000 seeded corruptions (1-4 byte flips) never crash; whatever parses is sound */
	{
		uint64_t	seed = 99;
		int			accepted = 0;

		for (int i = 0; i < 2000; i++)
		{
			uint8_t    *m = malloc(len);
			int			nflip = 1 + (int) (test_rand(&seed) % 4);

			memcpy(m, good, len);
			for (int k = 0; k < nflip; k++)
				m[test_rand(&seed) % len] ^= (uint8_t) (1 + test_rand(&seed) % 255);
			if (clad_st_parse(m, len, &f) == CLAD_OK)
			{
				accepted++;
				check_invariants(m, len, f);
				clad_st_free(f);
			}
			else
				CHECK(f == NULL && clad_last_error()[0] != '\0');
			free(m);
		}
		/* flips in tensor data keep the file valid, so some must parse */
		CHECK(accepted > 0 && accepted < 2000);
	}
}

/* -------------------------------------------------------------------- files */

static int
count_entries(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void
test_files(const uint8_t *good, size_t len)
{
	char		dir[] = "/tmp/clad_st_test_XXXXXX",
				path[512],
				missing[512];
	uint8_t    *buf;
	size_t		n;

	if (!mkdtemp(dir))
	{
		CHECK_MSG(0, "mkdtemp failed");
		return;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	snprintf(missing, sizeof(missing), "%s/no/such/dir/model.safetensors", dir);

	CHECK(clad_write_file(path, good, len) == CLAD_OK);
	CHECK(clad_read_file(path, &buf, &n) == CLAD_OK && n == len && memcmp(buf, good, len) == 0);
	free(buf);
	/* overwriting replaces the file; no temporary file is left behind */
	CHECK(clad_write_file(path, good, 10) == CLAD_OK);
	CHECK(clad_read_file(path, &buf, &n) == CLAD_OK && n == 10 && memcmp(buf, good, 10) == 0);
	free(buf);
	CHECK(count_entries(dir) == 1);
	/* an empty file */
	CHECK(clad_write_file(path, NULL, 0) == CLAD_OK);
	CHECK(clad_read_file(path, &buf, &n) == CLAD_OK && n == 0 && buf != NULL);
	free(buf);

	/* errors carry strerror's text */
	CHECK(clad_read_file(missing, &buf, &n) == CLAD_ERR_IO && buf == NULL && n == 0);
	CHECK_MSG(strstr(clad_last_error(), "No such file") != NULL, "%s", clad_last_error());
	CHECK(clad_write_file(missing, good, len) == CLAD_ERR_IO);
	CHECK_MSG(strstr(clad_last_error(), "No such file") != NULL, "%s", clad_last_error());
	CHECK(clad_read_file(dir, &buf, &n) == CLAD_ERR_IO && buf == NULL);	/* a directory */
	CHECK(clad_write_file(dir, good, len) == CLAD_ERR_IO);	/* rename onto a directory */
	CHECK(count_entries(dir) == 1);
	CHECK(clad_read_file(NULL, &buf, &n) == CLAD_ERR_INVALID);
	CHECK(clad_write_file(NULL, good, len) == CLAD_ERR_INVALID);
	CHECK(clad_write_file(path, NULL, 4) == CLAD_ERR_INVALID);

	unlink(path);
	CHECK(rmdir(dir) == 0);
}

int
main(void)
{
	size_t		len = 0;
	uint8_t    *good = valid_file(&len);

	CHECK(clad_dtype_size(CLAD_DTYPE_BF16) == 2 && clad_dtype_size((clad_dtype) 42) == 0);
	CHECK(strcmp(clad_dtype_name(CLAD_DTYPE_BOOL), "BOOL") == 0);
	if (!good)
		return test_summary("test_safetensors");
	test_round_trip(good, len);
	test_writer_errors();
	test_non_finite();
	test_header_lengths();
	test_header_content();
	test_truncation_and_flips(good, len);
	test_files(good, len);
	free(good);
	return test_summary("test_safetensors");
}
