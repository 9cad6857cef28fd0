/* core/safetensors.c: strict safetensors parsing (jansson) and writing. */
#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ------------------------------------------------------------------ parse */

typedef struct parsed_offsets
{
	size_t		begin, end;
} parsed_offsets;

static int
compare_by_offset(const void *a, const void *b, void *arg)
{
	const parsed_offsets *o = arg;
	size_t		ia = *(const size_t *) a, ib = *(const size_t *) b;

	if (o[ia].begin != o[ib].begin)
		return o[ia].begin < o[ib].begin ? -1 : 1;
	if (o[ia].end != o[ib].end)
		return o[ia].end < o[ib].end ? -1 : 1;
	return 0;
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

static clad_status
parse_tensor(const char *name, json_t *spec, size_t data_len, clad_st_tensor *t,
			 parsed_offsets *off)
{
	json_t	   *jd, *js, *jo;
	int			ok = 1;
	size_t		numel = 1, nbytes;

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
		uint64_t	d = json_uint(json_array_get(js, i), INT64_MAX, &ok);

		if (!ok)
			return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": shape entries must be non-negative integers",
							 name);
		t->shape[i] = (int64_t) d;
		if (clad_mul_size(numel, (size_t) d, &numel))
			return clad_fail(CLAD_ERR_OVERFLOW, "tensor \"%s\": shape overflows", name);
	}
	if (clad_mul_size(numel, clad_dtype_size(t->dtype), &nbytes))
		return clad_fail(CLAD_ERR_OVERFLOW, "tensor \"%s\": byte size overflows", name);
	if (!json_is_array(jo) || json_array_size(jo) != 2)
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": data_offsets must be [begin, end]", name);
	off->begin = (size_t) json_uint(json_array_get(jo, 0), data_len, &ok);
	off->end = (size_t) json_uint(json_array_get(jo, 1), data_len, &ok);
	if (!ok)
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": data_offsets out of range", name);
	if (off->end < off->begin)
		return clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\": data_offsets reversed", name);
	if (off->end - off->begin != nbytes)
		return clad_fail(CLAD_ERR_FORMAT,
						 "tensor \"%s\": %zu bytes for a %s tensor of %zu elements",
						 name, off->end - off->begin, clad_dtype_name(t->dtype), numel);
	t->numel = numel;
	t->nbytes = nbytes;
	return CLAD_OK;
}

static clad_status
parse_metadata(json_t *meta, clad_st_file *f)
{
	const char *key;
	json_t	   *val;
	size_t		n = json_object_size(meta), i = 0;

	if (!json_is_object(meta))
		return clad_fail(CLAD_ERR_FORMAT, "__metadata__ must be an object");
	f->meta_keys = calloc(n ? n : 1, sizeof(char *));
	f->meta_values = calloc(n ? n : 1, sizeof(char *));
	if (!f->meta_keys || !f->meta_values)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory reading metadata");
	json_object_foreach(meta, key, val)
	{
		if (!json_is_string(val))
			return clad_fail(CLAD_ERR_FORMAT, "__metadata__ value of \"%s\" is not a string", key);
		f->meta_keys[i] = strdup(key);
		f->meta_values[i] = strdup(json_string_value(val));
		f->n_meta = ++i;
		if (!f->meta_keys[i - 1] || !f->meta_values[i - 1])
			return clad_fail(CLAD_ERR_NOMEM, "out of memory reading metadata");
	}
	return CLAD_OK;
}

clad_status
clad_st_parse(const uint8_t *buf, size_t len, clad_st_file **out)
{
	uint64_t	hlen = 0;
	size_t		data_len, end_of_json, n = 0, k = 0;
	const uint8_t *data;
	json_t	   *root = NULL, *val;
	json_error_t jerr;
	const char *key;
	clad_st_file *f = NULL;
	parsed_offsets *offs = NULL;
	size_t	   *order = NULL;
	clad_status st = CLAD_OK;

	*out = NULL;
	if (buf == NULL || len < 8)
		return clad_fail(CLAD_ERR_FORMAT, "model file too short: %zu bytes", len);
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
	/* trailing spaces pad the header; the JSON must end at the last '}' */
	end_of_json = (size_t) hlen;
	while (end_of_json > 0 && buf[8 + end_of_json - 1] == ' ')
		end_of_json--;
	root = json_loadb((const char *) buf + 8, end_of_json, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header is not valid JSON: %s", jerr.text);
	if (!json_is_object(root))
	{
		json_decref(root);
		return clad_fail(CLAD_ERR_FORMAT, "safetensors header is not a JSON object");
	}
	data = buf + 8 + hlen;
	data_len = len - 8 - (size_t) hlen;

	if (!(f = calloc(1, sizeof(*f))))
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory reading model");
		goto done;
	}
	n = json_object_size(root) - (json_object_get(root, "__metadata__") ? 1 : 0);
	f->tensors = calloc(n ? n : 1, sizeof(clad_st_tensor));
	offs = calloc(n ? n : 1, sizeof(parsed_offsets));
	order = calloc(n ? n : 1, sizeof(size_t));
	if (!f->tensors || !offs || !order)
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory reading model");
		goto done;
	}
	json_object_foreach(root, key, val)
	{
		if (strcmp(key, "__metadata__") == 0)
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
		if ((st = parse_tensor(key, val, data_len, &f->tensors[k], &offs[k])) != CLAD_OK)
			goto done;
		if (!(f->tensors[k].name = strdup(key)))
		{
			st = clad_fail(CLAD_ERR_NOMEM, "out of memory reading model");
			goto done;
		}
		order[k] = k;
		f->n_tensors = ++k;
	}
	/* sorted by offset, the tensors must tile the data exactly */
	qsort_r(order, n, sizeof(size_t), compare_by_offset, offs);
	{
		size_t		expect = 0;
		clad_st_tensor *sorted;

		for (size_t i = 0; i < n; i++)
		{
			parsed_offsets o = offs[order[i]];

			if (o.begin != expect)
			{
				st = clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\" %s: data must be contiguous from 0",
							   f->tensors[order[i]].name,
							   o.begin < expect ? "overlaps another" : "leaves a gap");
				goto done;
			}
			f->tensors[order[i]].data = data + o.begin;
			expect = o.end;
		}
		if (expect != data_len)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%zu trailing bytes after the last tensor",
						   data_len - expect);
			goto done;
		}
		if (!(sorted = malloc(sizeof(clad_st_tensor) * (n ? n : 1))))
		{
			st = clad_fail(CLAD_ERR_NOMEM, "out of memory reading model");
			goto done;
		}
		for (size_t i = 0; i < n; i++)
			sorted[i] = f->tensors[order[i]];
		free(f->tensors);
		f->tensors = sorted;
	}
done:
	json_decref(root);
	free(offs);
	free(order);
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
	for (size_t i = 0; i < f->n_tensors; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}

const char *
clad_st_meta(const clad_st_file *f, const char *key)
{
	for (size_t i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta_keys[i], key) == 0)
			return f->meta_values[i];
	return NULL;
}

clad_status
clad_st_read_f32(const clad_st_file *f, const char *name, int ndim, const int64_t *shape,
				 float *dst)
{
	const clad_st_tensor *t = clad_st_find(f, name);

	if (!t)
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
	memcpy(dst, t->data, t->nbytes);
	for (size_t i = 0; i < t->numel; i++)
		if (!isfinite(dst[i]))
			return clad_fail(CLAD_ERR_NUMERIC, "tensor \"%s\" holds NaN or infinity", name);
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
	size_t		n, cap;
	json_t	   *meta;
};

clad_st_writer *
clad_st_writer_new(void)
{
	clad_st_writer *w = calloc(1, sizeof(*w));

	if (w && !(w->meta = json_object()))
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
	size_t		numel = 1;

	if (!name || !name[0] || strcmp(name, "__metadata__") == 0)
		return clad_fail(CLAD_ERR_INVALID, "bad tensor name");
	if (ndim < 0 || ndim > CLAD_ST_MAX_DIMS || clad_dtype_size(dtype) == 0)
		return clad_fail(CLAD_ERR_INVALID, "tensor \"%s\": bad dtype or rank", name);
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->entries[i].name, name) == 0)
			return clad_fail(CLAD_ERR_INVALID, "tensor \"%s\" added twice", name);
	for (int i = 0; i < ndim; i++)
	{
		if (shape[i] < 0 || clad_mul_size(numel, (size_t) shape[i], &numel))
			return clad_fail(CLAD_ERR_OVERFLOW, "tensor \"%s\": bad shape", name);
		e.shape[i] = shape[i];
	}
	if (clad_mul_size(numel, clad_dtype_size(dtype), &e.nbytes))
		return clad_fail(CLAD_ERR_OVERFLOW, "tensor \"%s\": too large", name);
	if (w->n == w->cap)
	{
		size_t		cap = w->cap ? w->cap * 2 : 64;
		st_entry   *ne = realloc(w->entries, sizeof(st_entry) * cap);

		if (!ne)
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
	e.dtype = dtype;
	e.ndim = ndim;
	w->entries[w->n++] = e;
	return CLAD_OK;
}

clad_status
clad_st_writer_meta(clad_st_writer *w, const char *key, const char *value)
{
	json_t	   *v = json_string(value);

	if (!v || json_object_set_new(w->meta, key, v) != 0)
		return clad_fail(CLAD_ERR_INVALID, "metadata \"%s\" is not valid UTF-8", key);
	return CLAD_OK;
}

clad_status
clad_st_writer_finish(clad_st_writer *w, uint8_t **buf, size_t *len)
{
	json_t	   *root = json_object();
	char	   *header = NULL;
	size_t		off = 0, hlen, padded, total;
	uint8_t    *out;

	*buf = NULL;
	*len = 0;
	if (!root)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
	if (json_object_size(w->meta) > 0)
		json_object_set(root, "__metadata__", w->meta);
	for (size_t i = 0; i < w->n; i++)
	{
		st_entry   *e = &w->entries[i];
		json_t	   *shape = json_array(), *spec;

		for (int d = 0; d < e->ndim; d++)
			json_array_append_new(shape, json_integer(e->shape[d]));
		spec = json_pack("{s:s, s:o, s:[I,I]}", "dtype", clad_dtype_name(e->dtype), "shape", shape,
						 "data_offsets", (json_int_t) off, (json_int_t) (off + e->nbytes));
		if (!spec || json_object_set_new(root, e->name, spec) != 0)
		{
			json_decref(root);
			return clad_fail(CLAD_ERR_INVALID, "tensor name \"%s\" is not valid UTF-8", e->name);
		}
		off += e->nbytes;
	}
	header = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!header)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
	hlen = strlen(header);
	padded = (hlen + 7) / 8 * 8;	/* 8 + padded is a multiple of 8 */
	total = 8 + padded + off;
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

clad_status
clad_read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE	   *fp = fopen(path, "rb");
	long		size;
	uint8_t    *b;

	*buf = NULL;
	*len = 0;
	if (!fp)
		return clad_fail(CLAD_ERR_IO, "cannot open \"%s\": %s", path, strerror(errno));
	if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
	{
		fclose(fp);
		return clad_fail(CLAD_ERR_IO, "cannot size \"%s\": %s", path, strerror(errno));
	}
	if (!(b = malloc(size ? (size_t) size : 1)))
	{
		fclose(fp);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory reading \"%s\"", path);
	}
	if (fread(b, 1, (size_t) size, fp) != (size_t) size)
	{
		free(b);
		fclose(fp);
		return clad_fail(CLAD_ERR_IO, "short read of \"%s\"", path);
	}
	fclose(fp);
	*buf = b;
	*len = (size_t) size;
	return CLAD_OK;
}

clad_status
clad_write_file(const char *path, const uint8_t *buf, size_t len)
{
	char		tmp[4096];
	FILE	   *fp;

	/* write beside the target, then rename: a crash never leaves half a model */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long) getpid()) >= (int) sizeof(tmp))
		return clad_fail(CLAD_ERR_INVALID, "path too long");
	if (!(fp = fopen(tmp, "wb")))
		return clad_fail(CLAD_ERR_IO, "cannot create \"%s\": %s", tmp, strerror(errno));
	if (fwrite(buf, 1, len, fp) != len || fflush(fp) != 0 || fsync(fileno(fp)) != 0)
	{
		int			e = errno;

		fclose(fp);
		unlink(tmp);
		return clad_fail(CLAD_ERR_IO, "cannot write \"%s\": %s", tmp, strerror(e));
	}
	if (fclose(fp) != 0 || rename(tmp, path) != 0)
	{
		int			e = errno;

		unlink(tmp);
		return clad_fail(CLAD_ERR_IO, "cannot write \"%s\": %s", path, strerror(e));
	}
	return CLAD_OK;
}
