/* core/safetensors.h: strict reader and writer of the safetensors format.
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then
 * the tensor bytes.  The JSON maps each tensor name to
 * {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets
 * relative to the first byte after the header) and may hold "__metadata__",
 * a map of string to string.
 *
 * The reader refuses anything the safetensors reference refuses and a bit
 * more: header length 0 or over CLAD_ST_MAX_HEADER or beyond the buffer,
 * header not starting with '{', invalid UTF-8 or JSON, duplicate keys,
 * unknown dtypes, non-integer or negative shapes or offsets, shape products
 * that overflow, byte lengths that differ from shape x dtype size, offsets
 * that are not contiguous from 0 (gaps, overlaps, reversed), and trailing
 * bytes after the last tensor.  It never reads outside the buffer.
 */
#ifndef CLAD_SAFETENSORS_H
#define CLAD_SAFETENSORS_H

#include "status.h"

#define CLAD_ST_MAX_HEADER (100u * 1000u * 1000u)	/* as the reference: 100 MB */
#define CLAD_ST_MAX_DIMS 8

typedef enum clad_dtype
{
	CLAD_DTYPE_F32,
	CLAD_DTYPE_F64,
	CLAD_DTYPE_F16,
	CLAD_DTYPE_BF16,
	CLAD_DTYPE_I64,
	CLAD_DTYPE_I32,
	CLAD_DTYPE_I16,
	CLAD_DTYPE_I8,
	CLAD_DTYPE_U8,
	CLAD_DTYPE_BOOL
} clad_dtype;

/* Bytes per element of a dtype. */
size_t		clad_dtype_size(clad_dtype dt);

/* "F32" etc. */
const char *clad_dtype_name(clad_dtype dt);

typedef struct clad_st_tensor
{
	char	   *name;			/* NUL-terminated, owned by the file */
	clad_dtype	dtype;
	int			ndim;			/* 0 .. CLAD_ST_MAX_DIMS */
	int64_t		shape[CLAD_ST_MAX_DIMS];
	size_t		numel;			/* product of shape (1 for ndim 0) */
	size_t		nbytes;			/* numel * dtype size */
	const uint8_t *data;		/* points into the parsed buffer; may be unaligned */
} clad_st_tensor;

typedef struct clad_st_file
{
	clad_st_tensor *tensors;	/* sorted by data offset */
	size_t		n_tensors;
	char	  **meta_keys;		/* __metadata__ entries */
	char	  **meta_values;
	size_t		n_meta;
} clad_st_file;

/*
 * Parse buf[0..len).  On success *out holds the file (free with
 * clad_st_free); tensor data point into buf, which must outlive *out.
 * On failure *out is NULL and clad_last_error() says why.
 */
clad_status clad_st_parse(const uint8_t *buf, size_t len, clad_st_file **out);

void		clad_st_free(clad_st_file *f);

/* The tensor called name, or NULL. */
const clad_st_tensor *clad_st_find(const clad_st_file *f, const char *name);

/* The metadata value for key, or NULL. */
const char *clad_st_meta(const clad_st_file *f, const char *key);

/*
 * Copy a F32 tensor into dst (numel floats), checking that it exists, is
 * F32 and has exactly the expected shape (ndim dims).
 */
clad_status clad_st_read_f32(const clad_st_file *f, const char *name,
							 int ndim, const int64_t *shape, float *dst);

/* Writer: collects tensors and metadata, then serialises them. */
typedef struct clad_st_writer clad_st_writer;

clad_st_writer *clad_st_writer_new(void);
void		clad_st_writer_free(clad_st_writer *w);

/* Add a tensor; data (numel * dtype size bytes) is copied.  Names must be unique. */
clad_status clad_st_writer_add(clad_st_writer *w, const char *name, clad_dtype dtype,
							   int ndim, const int64_t *shape, const void *data);

/* Add or replace a metadata entry. */
clad_status clad_st_writer_meta(clad_st_writer *w, const char *key, const char *value);

/*
 * Serialise to a malloc'd buffer (*buf, *len); the header is padded with
 * spaces so the data start at a multiple of 8.  Tensors are written in the
 * order they were added.  The writer stays usable and must still be freed.
 */
clad_status clad_st_writer_finish(clad_st_writer *w, uint8_t **buf, size_t *len);

/* Read a whole file into a malloc'd buffer / write a buffer to a file. */
clad_status clad_read_file(const char *path, uint8_t **buf, size_t *len);
clad_status clad_write_file(const char *path, const uint8_t *buf, size_t len);

#endif
