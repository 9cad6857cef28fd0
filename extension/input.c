/* extension/input.c: SQL image values to a model's input pixels. */
#include "clad_ext.h"

#include "catalog/pg_type.h"

#include "image.h"

/* "C x H x W" of a model, for messages */
#define SHAPE_FMT "%dx%dx%d"
#define SHAPE_ARGS(m) (m)->C, (m)->H, (m)->W

/* Refuse an image larger than clad.max_image_pixels (before any pixel memory is taken). */
void
clad_check_pixel_count(uint64 w, uint64 h)
{
	if (w * h > (uint64) clad_setting_max_image_pixels)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("image of %llux%llu pixels is larger than clad.max_image_pixels (%d)",
						(unsigned long long) w, (unsigned long long) h,
						clad_setting_max_image_pixels)));
}

void
clad_pixels_from_bytea(const bytea *img, const clad_model *m, float *out, int *wp, int *hp)
{
	const uint8_t *b = (const uint8_t *) VARDATA_ANY(img);
	size_t		len = VARSIZE_ANY_EXHDR(img);
	size_t		raw = (size_t) m->C * m->H * m->W;
	int			w, h, nc;
	clad_status st;

	if (clad_image_format_of(b, len) == CLAD_IMAGE_UNKNOWN)
	{
		if (len == raw)
		{
			clad_check_pixel_count((uint64) m->W, (uint64) m->H);
			*wp = m->W;
			*hp = m->H;
			if ((st = clad_image_from_raw(b, len, m->C, m->H, m->W, out)) != CLAD_OK)
				clad_raise(st, ERRCODE_INVALID_BINARY_REPRESENTATION, "invalid raw image");
			return;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("image is not a PNG, JPEG or PGM/PPM file, nor raw pixels of the model's size"),
				 errdetail("Got %zu bytes%s; raw 8-bit pixels for this model are exactly " SHAPE_FMT
						   " = %zu bytes.", len, len ? " in an unknown format" : "",
						   SHAPE_ARGS(m), raw)));
	}
	if ((st = clad_image_probe(b, len, &w, &h, &nc)) != CLAD_OK)
		clad_raise(st, ERRCODE_INVALID_BINARY_REPRESENTATION, "invalid image");
	clad_check_pixel_count((uint64) w, (uint64) h);
	*wp = w;
	*hp = h;
	if ((st = clad_image_decode(b, len, m->C, m->H, m->W,
								(size_t) clad_setting_max_image_pixels, out)) != CLAD_OK)
		clad_raise(st, ERRCODE_INVALID_BINARY_REPRESENTATION, "invalid image");
}

void
clad_pixels_from_array(ArrayType *img, const clad_model *m, float *out, int *wp, int *hp)
{
	int			ndim = ARR_NDIM(img);
	int		   *dims = ARR_DIMS(img);
	int			c, h, w;
	int64		n;
	clad_status st;

	if (ARR_ELEMTYPE(img) != FLOAT4OID)
		elog(ERROR, "clad: pixel arrays must be real[]");
	if (array_contains_nulls(img))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pixel array contains NULL")));
	n = ndim == 0 ? 0 : ArrayGetNItems(ndim, dims);
	switch (ndim)
	{
		case 1:
			if (n != (int64) m->C * m->H * m->W)
				ereport(ERROR,
						(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						 errmsg("pixel array has %lld values; the model takes " SHAPE_FMT " = %lld",
								(long long) n, SHAPE_ARGS(m), (long long) m->C * m->H * m->W),
						 errhint("Pass a 2-D (height, width) or 3-D (channels, height, width) array to have it resized.")));
			c = m->C;
			h = m->H;
			w = m->W;
			break;
		case 2:
			c = 1;
			h = dims[0];
			w = dims[1];
			break;
		case 3:
			c = dims[0];
			h = dims[1];
			w = dims[2];
			if (c < 1 || c > 4)
				ereport(ERROR,
						(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						 errmsg("pixel array has %d channels; 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA) are accepted", c)));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("pixel array has %d dimensions; 1 (C*H*W values), 2 (H, W) or 3 (C, H, W) are accepted",
							ndim)));
	}
	clad_check_pixel_count((uint64) w, (uint64) h);
	*wp = w;
	*hp = h;
	if ((st = clad_image_convert((const float *) ARR_DATA_PTR(img), c, h, w, m->C, m->H, m->W, out)) != CLAD_OK)
		clad_raise(st, ERRCODE_INVALID_PARAMETER_VALUE, "invalid pixel array");
}
