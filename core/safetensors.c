/* core/safetensors.c: strict safetensors parsing (jansson) and writing. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L	/* strdup, fileno, fsync under plain -std=c11 */
#endif
#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct
{
	const char *name;
	size_t		size;
}			dtypes[] = {
	[CLAD_DTYPE_F32] = {"F32", 4}, [CLAD_DTYPE_F64] = {"F64", 8},
	[CLAD_DTYPE_F16] = {"F16", 2}, [CLAD_DTYPE_BF16] = {"BF16", 2},
	[CLAD_DTYPE_I64] = {"I64", 8}, [CLAD_DTYPE_I32] = {"I32", 4},
	[CLAD_DTYPE_I16] = {"I16", 2}, [CLAD_DTYPE_I8] = {"I8", 1},
	[CLAD_DTYPE_U8] = {"U8", 1}, [CLAD_DTYPE_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int) (sizeof(dtypes) / sizeof(dtypes[0])))

#define METADATA_KEY "__metadata__"

size_t
clad_dtype_size(clad_dtype dt)
{
	return (int) dt >= 0 && (int) dt < N_DTYPES ? dtypes[dt].size : 0;
}

const char *
clad_dtype_name(clad_dtype dt)
{
	return (int) dt >= 0 && (int) dt < N_DTYPES ? dtypes[dt].name : "?";
}

/* Whether s names a dtype (then in *out). */
static int
dtype_from_name(const char *s, clad_dtype *out)
{
	for (int i = 0; i < N_DTYPES; i++)
		if (strcmp(dtypes[i].name, s) == 0)
		{
			*out = (clad_dtype) i;
			return 1;
		}
	return 0;
}

/*
 * Element and byte count of a shape: 0 on success, -1 for a negative dim,
 * 1 on overflow.  The product of the non-zero dims (times the element size)
 * must fit as well, so [0, 2^62, 16] is refused like [2^62, 16, 0]: strides
 * computed from such a shape would overflow even though it holds nothing.
 */
static int
shape_size(int ndim, const int64_t *shape, size_t elsize, size_t *numel, size_t *nbytes)
{
	size_t		nz = 1;
	int			zero = 0;

	for (int i = 0; i < ndim; i++)
	{
		if (shape[i] < 0)
			return -1;
		if ((uint64_t) shape[i] > SIZE_MAX)
			return 1;
		if (shape[i] == 0)
			zero = 1;
		else if (clad_mul_size(nz, (size_t) shape[i], &nz))
			return 1;
	}
	if (clad_mul_size(nz, elsize, nbytes))
		return 1;
	*numel = zero ? 0 : nz;
	*nbytes = zero ? 0 : *nbytes;
	return 0;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int
valid_utf8(const char *str)
{
	const unsigned char *s = (const unsigned char *) str;

	while (*s)
	{
		unsigned	c = *s;
		int			n;
		uint32_t	cp;

		if (c < 0x80)
		{
			s++;
			continue;
		}
		else if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return 0;
		for (int i = 1; i <= n; i++)
		{
			if ((s[i] & 0xc0) != 0x80)	/* also stops at the NUL */
				return 0;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
			cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* ------------------------------------------------------------------ parse */

typedef struct span
{
	size_t		begin, end;
	size_t		idx;			/* position in the header, breaks ties */
} span;

/* qsort order of spans: by begin, end, then header position. */
static int
compare_spans(const void *a, const void *b)
{
	const span *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* A JSON integer in [0, limit], else 0 with *ok cleared. */
static uint64_t
json_uint(json_t *v, uint64_t limit, int *ok)
{
	json_int_t	i;

	if (!json_is_integer(v) || (i = json_integer_value(v)) < 0 || (uint64_t) i > limit)
	{
		*ok = 0;
		return 0;
	}
	return (uint64_t) i;
}

/* One header entry into t and its byte span, checked against the data. */
static clad_status
parse_tensor(const char *name, json_t *spec, size_t data_len, clad_st_tensor *t, span *sp)
{
	json_t	   *jd,
			   *js,
			   *jo;
	int			ok = 1,
				r;

	if (!json_is_object(spec))
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": entry is not an object", name);
	jd = json_object_get(spec, "dtype");
	js = json_object_get(spec, "shape");
	jo = json_object_get(spec, "data_offsets");
	if (!jd || !js || !jo || json_object_size(spec) != 3)
		return clad_fail(CLAD_ERR_FORMAT,
						 "tensor \"%s\": needs exactly dtype, shape and data_offsets", name);
	if (!json_is_string(jd) || !dtype_from_name(json_string_value(jd), &t->dtype))
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": unknown dtype", name);
	if (!json_is_array(js) || json_array_size(js) > CLAD_ST_MAX_DIMS)
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": shape must be an array of at most %d dims",
						 name, CLAD_ST_MAX_DIMS);
	t->ndim = (int) json_array_size(js);
	for (int i = 0; i < t->ndim; i++)
	{
		t->shape[i] = (int64_t) json_uint(json_array_get(js, i), INT64_MAX, &ok);
		if (!ok)
			return clad_fail(CLAD_ERR_FORMAT,
							 "tensor \"%s\": shape entries must be non-negative integers", name);
	}
	r = shape_size(t->ndim, t->shape, clad_dtype_size(t->dtype), &t->numel, &t->nbytes);
	if (r != 0)
		return clad_fail(CLAD_ERR_OVERFLOW, "tensor \"%s\": shape overflows", name);
	if (!json_is_array(jo) || json_array_size(jo) != 2)
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": data_offsets must be [begin, end]", name);
	sp->begin = (size_t) json_uint(json_array_get(jo, 0), data_len, &ok);
	sp->end = (size_t) json_uint(json_array_get(jo, 1), data_len, &ok);
	if (!ok)
		return clad_fail(CLAD_ERR_FORMAT,
						 "tensor \"%s\": data_offsets must be integers in [0, %zu]", name, data_len);
	if (sp->end < sp->begin)
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": data_offsets reversed", name);
	if (sp->end - sp->begin != t->nbytes)
		return clad_fail(CLAD_ERR_FORMAT,
						 "tensor \"%s\": %zu bytes for a %s tensor of %zu elements",
						 name, sp->end - sp->begin, clad_dtype_name(t->dtype), t->numel);
	return CLAD_OK;
}

/* The header's metadata object (string values only) into f. */
static clad_status
parse_metadata(json_t *meta, clad_st_file *f)
{
	const char *key;
	json_t	   *val;
	size_t		n;

	if (!json_is_object(meta))
		return clad_fail(CLAD_ERR_FORMAT, METADATA_KEY " must be an object");
	n = json_object_size(meta);
	f->meta_keys = calloc(n ? n : 1, sizeof(char *));
	f->meta_values = calloc(n ? n : 1, sizeof(char *));
	if (!f->meta_keys || !f->meta_values)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory reading metadata");
	json_object_foreach(meta, key, val)
	{
		size_t		i = f->n_meta;

		if (!json_is_string(val))
			return clad_fail(CLAD_ERR_FORMAT, METADATA_KEY " value of \"%s\" is not a string", key);
		f->meta_keys[i] = strdup(key);
		f->meta_values[i] = strdup(json_string_value(val));
		f->n_meta++;			/* counted before the check so clad_st_free frees both */
		if (!f->meta_keys[i] || !f->meta_values[i])
			return clad_fail(CLAD_ERR_NOMEM, "out of memory reading metadata");
	}
	return CLAD_OK;
}

clad_status
clad_st_parse(const uint8_t *buf, size_t len, clad_st_file **out)
{
	uint64_t	hlen = 0;
	size_t		data_len,
				json_len,
				n,
				k = 0,
				expect = 0;
	const uint8_t *data;
	json_t	   *root = NULL,
			   *val;
	json_error_t jerr;
	const char *key;
	clad_st_file *f = NULL;
	span	   *spans = NULL;
	clad_st_tensor *sorted = NULL;
	clad_status st = CLAD_OK;

	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "clad_st_parse: no output pointer");
	*out = NULL;
	if (!buf || len < 8)
		return clad_fail(CLAD_ERR_FORMAT, "model file too short: %zu bytes", buf ? len : 0);
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | buf[i];
	if (hlen < 2)
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header length %llu too small",
						 (unsigned long long) hlen);
	if (hlen > CLAD_ST_MAX_HEADER)
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header length %llu over the %u-byte cap",
						 (unsigned long long) hlen, CLAD_ST_MAX_HEADER);
	if (hlen > len - 8)
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header length %llu beyond the %zu-byte file",
						 (unsigned long long) hlen, len);
	if (buf[8] != '{')
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header does not start with '{'");

	/*
	 * Writers pad the header with spaces; anything else after the object
	 * (newlines, tabs, NULs) is refused, so the last non-space byte must
	 * close it.  jansson checks the rest: JSON, UTF-8, one value only.
	 */
	json_len = (size_t) hlen;
	while (json_len > 0 && buf[8 + json_len - 1] == ' ')
		json_len--;
	if (json_len == 0 || buf[8 + json_len - 1] != '}')
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header does not end with '}' and spaces "
						 "(truncated, or other bytes after the JSON object)");
	root = json_loadb((const char *) buf + 8, json_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header is not valid JSON: %s (byte %d)",
						 jerr.text, jerr.position);
	if (!json_is_object(root))
	{
		json_decref(root);
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header is not a JSON object");
	}
	data = buf + 8 + hlen;
	data_len = len - 8 - (size_t) hlen;

	n = json_object_size(root) - (json_object_get(root, METADATA_KEY) ? 1 : 0);
	f = calloc(1, sizeof(*f));
	if (f)
		f->tensors = calloc(n ? n : 1, sizeof(clad_st_tensor));
	spans = calloc(n ? n : 1, sizeof(span));
	sorted = calloc(n ? n : 1, sizeof(clad_st_tensor));
	if (!f || !f->tensors || !spans || !sorted)
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory reading model");
		goto done;
	}
	json_object_foreach(root, key, val)
	{
		if (strcmp(key, METADATA_KEY) == 0)
		{
			if ((st = parse_metadata(val, f)) != CLAD_OK)
				goto done;
			continue;
		}
		if (key[0] == '\0')
		{
			st = clad_fail(CLAD_ERR_FORMAT, "tensor with an empty name");
			goto done;
		}
		if ((st = parse_tensor(key, val, data_len, &f->tensors[k], &spans[k])) != CLAD_OK)
			goto done;
		if (!(f->tensors[k].name = strdup(key)))
		{
			st = clad_fail(CLAD_ERR_NOMEM, "out of memory reading model");
			goto done;
		}
		spans[k].idx = k;
		f->n_tensors = ++k;
	}

	/* sorted by offset, the tensors must tile the data exactly */
	qsort(spans, n, sizeof(span), compare_spans);
	for (size_t i = 0; i < n; i++)
	{
		if (spans[i].begin != expect)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\" %s: data must be contiguous from 0",
						   f->tensors[spans[i].idx].name,
						   spans[i].begin < expect ? "overlaps another" : "leaves a gap");
			goto done;
		}
		sorted[i] = f->tensors[spans[i].idx];
		sorted[i].data = data + spans[i].begin;
		expect = spans[i].end;
	}
	if (expect != data_len)
	{
		st = clad_fail(CLAD_ERR_FORMAT, "%zu trailing bytes after the last tensor",
					   data_len - expect);
		goto done;
	}
	free(f->tensors);
	f->tensors = sorted;
	sorted = NULL;

done:
	json_decref(root);
	free(spans);
	free(sorted);				/* only shares name pointers with f->tensors */
	if (st != CLAD_OK)
	{
		clad_st_free(f);
		return st;
	}
	*out = f;
	return CLAD_OK;
}

void
clad_st_free(clad_st_file *f)
{
	if (!f)
		return;
	if (f->tensors)
		for (size_t i = 0; i < f->n_tensors; i++)
			free(f->tensors[i].name);
	for (size_t i = 0; i < f->n_meta; i++)
	{
		free(f->meta_keys[i]);
		free(f->meta_values[i]);
	}
	free(f->tensors);
	free(f->meta_keys);
	free(f->meta_values);
	free(f);
}

const clad_st_tensor *
clad_st_find(const clad_st_file *f, const char *name)
{
	if (!f || !name)
		return NULL;
	for (size_t i = 0; i < f->n_tensors; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}

const char *
clad_st_meta(const clad_st_file *f, const char *key)
{
	if (!f || !key)
		return NULL;
	for (size_t i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta_keys[i], key) == 0)
			return f->meta_values[i];
	return NULL;
}

clad_status
clad_st_read_f32(const clad_st_file *f, const char *name, int ndim, const int64_t *shape,
				 float *dst)
{
	const clad_st_tensor *t;

	if (!f || !name || ndim < 0 || ndim > CLAD_ST_MAX_DIMS || (ndim > 0 && !shape))
		return clad_fail(CLAD_ERR_INVALID, "clad_st_read_f32: bad arguments");
	if (!(t = clad_st_find(f, name)))
		return clad_fail(CLAD_ERR_FORMAT, "model lacks tensor \"%s\"", name);
	if (t->dtype != CLAD_DTYPE_F32)
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\" is %s, not F32", name,
						 clad_dtype_name(t->dtype));
	if (t->ndim != ndim)
		return clad_fail(CLAD_ERR_SHAPE, "tensor \"%s\" has %d dims, expected %d", name, t->ndim, ndim);
	for (int i = 0; i < ndim; i++)
		if (t->shape[i] != shape[i])
			return clad_fail(CLAD_ERR_SHAPE, "tensor \"%s\" dim %d is %lld, expected %lld", name, i,
							 (long long) t->shape[i], (long long) shape[i]);
	if (t->nbytes == 0)
		return CLAD_OK;
	if (!dst)
		return clad_fail(CLAD_ERR_INVALID, "clad_st_read_f32: no destination");
	/* check before copying so that dst is untouched on error; data may be unaligned */
	for (size_t i = 0; i < t->numel; i++)
	{
		float		v;

		memcpy(&v, t->data + i * sizeof(float), sizeof(float));
		if (!isfinite(v))
			return clad_fail(CLAD_ERR_NUMERIC, "tensor \"%s\" holds NaN or infinity at element %zu",
							 name, i);
	}
	memcpy(dst, t->data, t->nbytes);
	return CLAD_OK;
}

/* ------------------------------------------------------------------ write */

typedef struct st_entry
{
	char	   *name;
	clad_dtype	dtype;
	int			ndim;
	int64_t		shape[CLAD_ST_MAX_DIMS];
	uint8_t    *data;
	size_t		nbytes;
} st_entry;

struct clad_st_writer
{
	st_entry   *entries;
	size_t		n,
				cap;
	json_t	   *meta;			/* string values, in insertion order */
};

/*
 * A new empty JSON object.  Not json_object(): inside a PostgreSQL backend
 * that name resolves to the server's own SQL function json_object (the
 * executable exports it and its symbols come first), which crashes on the
 * call.  json_pack builds the object inside libjansson, which calls its own
 * json_object directly.
 */
static json_t *
new_object(void)
{
	return json_pack("{}");
}

clad_st_writer *
clad_st_writer_new(void)
{
	clad_st_writer *w = calloc(1, sizeof(*w));

	if (w && !(w->meta = new_object()))
	{
		free(w);
		return NULL;
	}
	return w;
}

void
clad_st_writer_free(clad_st_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++)
	{
		free(w->entries[i].name);
		free(w->entries[i].data);
	}
	free(w->entries);
	json_decref(w->meta);
	free(w);
}

clad_status
clad_st_writer_add(clad_st_writer *w, const char *name, clad_dtype dtype,
				   int ndim, const int64_t *shape, const void *data)
{
	st_entry	e = {0};
	size_t		numel;
	int			r;

	if (!w)
		return clad_fail(CLAD_ERR_INVALID, "clad_st_writer_add: no writer");
	if (!name || !name[0] || strcmp(name, METADATA_KEY) == 0 || !valid_utf8(name))
		return clad_fail(CLAD_ERR_INVALID, "bad tensor name (empty, reserved or not UTF-8)");
	if (clad_dtype_size(dtype) == 0)
		return clad_fail(CLAD_ERR_INVALID, "tensor \"%s\": unknown dtype", name);
	if (ndim < 0 || ndim > CLAD_ST_MAX_DIMS || (ndim > 0 && !shape))
		return clad_fail(CLAD_ERR_INVALID, "tensor \"%s\": rank %d not in [0, %d]", name, ndim,
						 CLAD_ST_MAX_DIMS);
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->entries[i].name, name) == 0)
			return clad_fail(CLAD_ERR_INVALID, "tensor \"%s\" added twice", name);
	r = shape_size(ndim, shape, clad_dtype_size(dtype), &numel, &e.nbytes);
	if (r < 0)
		return clad_fail(CLAD_ERR_INVALID, "tensor \"%s\": negative dim", name);
	if (r > 0 || e.nbytes > INT64_MAX)
		return clad_fail(CLAD_ERR_OVERFLOW, "tensor \"%s\": too large", name);
	if (e.nbytes > 0 && !data)
		return clad_fail(CLAD_ERR_INVALID, "tensor \"%s\": no data", name);
	if (w->n == w->cap)
	{
		size_t		cap = w->cap ? w->cap * 2 : 64,
					sz;
		st_entry   *ne;

		if (clad_mul_size(cap, sizeof(st_entry), &sz))
			return clad_fail(CLAD_ERR_OVERFLOW, "too many tensors");
		if (!(ne = realloc(w->entries, sz)))
			return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
		w->entries = ne;
		w->cap = cap;
	}
	e.name = strdup(name);
	e.data = malloc(e.nbytes ? e.nbytes : 1);
	if (!e.name || !e.data)
	{
		free(e.name);
		free(e.data);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
	}
	if (e.nbytes)
		memcpy(e.data, data, e.nbytes);
	for (int i = 0; i < ndim; i++)
		e.shape[i] = shape[i];
	e.dtype = dtype;
	e.ndim = ndim;
	w->entries[w->n++] = e;
	return CLAD_OK;
}

clad_status
clad_st_writer_meta(clad_st_writer *w, const char *key, const char *value)
{
	json_t	   *v;

	if (!w || !key || !value)
		return clad_fail(CLAD_ERR_INVALID, "clad_st_writer_meta: bad arguments");
	if (!valid_utf8(key) || !valid_utf8(value))
		return clad_fail(CLAD_ERR_INVALID, "metadata \"%s\" is not valid UTF-8", key);
	if (!(v = json_string_nocheck(value)) || json_object_set_new_nocheck(w->meta, key, v) != 0)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
	return CLAD_OK;
}

/* The JSON header of w: tensors at consecutive offsets, *data_len bytes in all. */
static clad_status
writer_header(clad_st_writer *w, char **header, size_t *data_len)
{
	json_t	   *root = new_object();
	size_t		off = 0;

	*header = NULL;
	if (!root)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
	/* __metadata__ first, then the tensors in the order they were added */
	if (json_object_size(w->meta) > 0 && json_object_set_nocheck(root, METADATA_KEY, w->meta) != 0)
		goto nomem;
	for (size_t i = 0; i < w->n; i++)
	{
		st_entry   *e = &w->entries[i];
		json_t	   *shape = json_array(),
				   *spec = NULL;
		size_t		end;
		int			ok = shape != NULL;

		if (clad_add_size(off, e->nbytes, &end) || end > INT64_MAX)
		{
			json_decref(shape);
			json_decref(root);
			return clad_fail(CLAD_ERR_OVERFLOW, "model too large");
		}
		for (int d = 0; ok && d < e->ndim; d++)
			ok = json_array_append_new(shape, json_integer(e->shape[d])) == 0;
		if (ok)
			spec = json_pack("{s:s, s:O, s:[I,I]}", "dtype", clad_dtype_name(e->dtype),
							 "shape", shape, "data_offsets", (json_int_t) off, (json_int_t) end);
		json_decref(shape);
		if (!spec || json_object_set_new_nocheck(root, e->name, spec) != 0)
			goto nomem;
		off = end;
	}
	*header = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!*header)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
	*data_len = off;
	return CLAD_OK;

nomem:
	json_decref(root);
	return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
}

clad_status
clad_st_writer_finish(clad_st_writer *w, uint8_t **buf, size_t *len)
{
	char	   *header;
	size_t		hlen,
				padded,
				data_len = 0,
				total,
				off;
	uint8_t    *out;
	clad_status st;

	if (buf)
		*buf = NULL;
	if (len)
		*len = 0;
	if (!w || !buf || !len)
		return clad_fail(CLAD_ERR_INVALID, "clad_st_writer_finish: bad arguments");
	if ((st = writer_header(w, &header, &data_len)) != CLAD_OK)
		return st;
	hlen = strlen(header);
	padded = hlen + (8 - hlen % 8) % 8;	/* 8 + padded is a multiple of 8 */
	if (padded > CLAD_ST_MAX_HEADER || clad_add_size(8 + padded, data_len, &total))
	{
		free(header);
		return clad_fail(CLAD_ERR_OVERFLOW, "safetensors header of %zu bytes over the cap", hlen);
	}
	if (!(out = malloc(total)))
	{
		free(header);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
	}
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t) ((uint64_t) padded >> (8 * i));
	memcpy(out + 8, header, hlen);
	memset(out + 8 + hlen, ' ', padded - hlen);
	free(header);
	off = 8 + padded;
	for (size_t i = 0; i < w->n; i++)
	{
		if (w->entries[i].nbytes)
			memcpy(out + off, w->entries[i].data, w->entries[i].nbytes);
		off += w->entries[i].nbytes;
	}
	*buf = out;
	*len = total;
	return CLAD_OK;
}

/* ------------------------------------------------------------------ files */

clad_status
clad_read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE	   *fp;
	struct stat sb;
	size_t		size;
	uint8_t    *b;

	if (buf)
		*buf = NULL;
	if (len)
		*len = 0;
	if (!path || !buf || !len)
		return clad_fail(CLAD_ERR_INVALID, "clad_read_file: bad arguments");
	if (!(fp = fopen(path, "rb")))
		return clad_fail(CLAD_ERR_IO, "cannot open \"%s\": %s", path, strerror(errno));
	if (fstat(fileno(fp), &sb) != 0)
	{
		int			e = errno;

		fclose(fp);
		return clad_fail(CLAD_ERR_IO, "cannot stat \"%s\": %s", path, strerror(e));
	}
	/* a directory or a pipe has no useful size */
	if (!S_ISREG(sb.st_mode))
	{
		fclose(fp);
		return clad_fail(CLAD_ERR_IO, "\"%s\" is not a regular file", path);
	}
	if (sb.st_size < 0 || (uint64_t) sb.st_size > SIZE_MAX)
	{
		fclose(fp);
		return clad_fail(CLAD_ERR_OVERFLOW, "\"%s\" is too large", path);
	}
	size = (size_t) sb.st_size;
	if (!(b = malloc(size ? size : 1)))
	{
		fclose(fp);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory reading \"%s\" (%zu bytes)", path, size);
	}
	if (fread(b, 1, size, fp) != size || getc(fp) != EOF)
	{
		int			err = ferror(fp) ? errno : 0;

		free(b);
		fclose(fp);
		if (err)
			return clad_fail(CLAD_ERR_IO, "cannot read \"%s\": %s", path, strerror(err));
		return clad_fail(CLAD_ERR_IO, "\"%s\" changed size while being read", path);
	}
	fclose(fp);
	*buf = b;
	*len = size;
	return CLAD_OK;
}

clad_status
clad_write_file(const char *path, const uint8_t *buf, size_t len)
{
	static atomic_uint counter;
	char	   *tmp;
	size_t		tmp_size;
	FILE	   *fp;
	int			e;

	if (!path || !path[0] || (!buf && len > 0))
		return clad_fail(CLAD_ERR_INVALID, "clad_write_file: bad arguments");

	/*
	 * Write beside the target, then rename: a crash leaves the old file or
	 * the new one, never half a model.  "x" refuses to reuse an existing
	 * name; pid and counter keep concurrent writers apart.
	 */
	tmp_size = strlen(path) + 64;
	if (!(tmp = malloc(tmp_size)))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing \"%s\"", path);
	snprintf(tmp, tmp_size, "%s.tmp.%ld.%u", path, (long) getpid(),
			 atomic_fetch_add(&counter, 1u));
	if (!(fp = fopen(tmp, "wbx")))
	{
		e = errno;
		clad_fail(CLAD_ERR_IO, "cannot create \"%s\": %s", tmp, strerror(e));
		free(tmp);
		return CLAD_ERR_IO;
	}
	if ((len > 0 && fwrite(buf, 1, len, fp) != len) || fflush(fp) != 0 || fsync(fileno(fp)) != 0)
	{
		e = errno;
		fclose(fp);
		unlink(tmp);
		clad_fail(CLAD_ERR_IO, "cannot write \"%s\": %s", tmp, strerror(e));
		free(tmp);
		return CLAD_ERR_IO;
	}
	if (fclose(fp) != 0 || rename(tmp, path) != 0)
	{
		e = errno;
		unlink(tmp);
		free(tmp);
		return clad_fail(CLAD_ERR_IO, "cannot write \"%s\": %s", path, strerror(e));
	}
	free(tmp);
	return CLAD_OK;
}
