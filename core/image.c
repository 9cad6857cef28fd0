/* core/image.c: PNG (libpng), JPEG (libjpeg-turbo) and PGM/PPM decoding, bilinear resizing.
 *
 * libpng and libjpeg report errors by calling a handler that must not
 * return; ours longjmp.  All of that stays in this file: each format has a
 * state struct that lives in the frame of its decode_* function and owns
 * every allocation (the library's handle, our pixel buffers); a separate
 * *_run function calls setjmp on the struct's jmp_buf and does the work
 * through a pointer to it, so after a longjmp nothing of value is held in
 * the run function's locals (no volatile needed); decode_* then frees
 * everything the state holds, on success and failure alike.
 */
#include "image.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>				/* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* ------------------------------------------------------------ the target */

/* What the caller wants and where the decoded pixels go. */
typedef struct target
{
	int			C, H, W;		/* wanted channels and size */
	size_t		max_pixels;
	float	   *out;			/* (C, H, W); NULL: probe the header only */
	int			w, h, nc;		/* found: size, channels (1 gray, 3 colour) */
	float	   *planes;			/* (C, h, w): out itself, or a temporary */
} target;

/*
 * The header is read: record the size, refuse too many pixels, and choose
 * where the pixels go: straight to out when no resize is needed, else a
 * temporary (C, h, w) that the caller's state owns through *tmp.
 */
static clad_status
target_begin(target *t, const char *fmt, uint64_t w, uint64_t h, int nc, float **tmp)
{
	size_t		n;

	if (w < 1 || h < 1 || w > INT_MAX || h > INT_MAX)
		return clad_fail(CLAD_ERR_FORMAT, "%s: bad image size %llux%llu", fmt,
						 (unsigned long long) w, (unsigned long long) h);
	t->w = (int) w;
	t->h = (int) h;
	t->nc = nc;
	if (!t->out)
		return CLAD_OK;
	if (w * h > (uint64_t) t->max_pixels)	/* both < 2^31: no overflow */
		return clad_fail(CLAD_ERR_UNSUPPORTED, "%s: %llux%llu image has more than %zu pixels",
						 fmt, (unsigned long long) w, (unsigned long long) h, t->max_pixels);
	if (t->w == t->W && t->h == t->H)
	{
		t->planes = t->out;
		return CLAD_OK;
	}
	if (clad_mul_size((size_t) t->C, (size_t) w * (size_t) h, &n) ||
		clad_mul_size(n, sizeof(float), &n))
		return clad_fail(CLAD_ERR_OVERFLOW, "%s: image size overflows", fmt);
	*tmp = malloc(n);
	if (!*tmp)
		return clad_fail(CLAD_ERR_NOMEM, "%s: cannot allocate %zu bytes for a %dx%d image",
						 fmt, n, t->w, t->h);
	t->planes = *tmp;
	return CLAD_OK;
}

/* All rows are in: resize into out when needed. */
static void
target_finish(target *t)
{
	if (t->planes != t->out)
		clad_image_resize_bilinear(t->planes, t->C, t->h, t->w, t->out, t->H, t->W);
}

/* Grey level of an RGB pixel (ITU-R BT.601 weights). */
static inline float
luminance(float r, float g, float b)
{
	float		y = 0.299f * r + 0.587f * g + 0.114f * b;

	return y > 1.0f ? 1.0f : y;
}

/*
 * Row y of the image: w pixels of nc samples (1 gray, 2 gray+alpha, 3 RGB,
 * 4 RGBA; alpha is dropped), each bps bytes (1, or 2 big-endian), with
 * samples in [0, maxval], converted to the target's C planes.
 */
static void
put_row(const target *t, int y, const uint8_t *row, int nc, int bps, float maxval)
{
	size_t		plane = (size_t) t->h * (size_t) t->w;
	float	   *d = t->planes + (size_t) y * (size_t) t->w;
	int			ncol = nc >= 3 ? 3 : 1;

	for (int x = 0; x < t->w; x++)
	{
		const uint8_t *p = row + (size_t) x * (size_t) (nc * bps);
		float		v[3];

		for (int k = 0; k < ncol; k++)
			v[k] = (float) (bps == 1 ? p[k] : (unsigned) (p[2 * k] << 8 | p[2 * k + 1])) / maxval;
		if (t->C == 1)
			d[x] = ncol == 1 ? v[0] : luminance(v[0], v[1], v[2]);
		else if (ncol == 1)
			d[x] = d[x + plane] = d[x + 2 * plane] = v[0];
		else
		{
			d[x] = v[0];
			d[x + plane] = v[1];
			d[x + 2 * plane] = v[2];
		}
	}
}

/* ------------------------------------------------------------------ PNG */

typedef struct png_dec
{
	jmp_buf		jb;
	clad_status status;			/* set by the error handler before it jumps */
	const uint8_t *bytes;
	size_t		len,
				pos;
	png_structp png;
	png_infop	info;
	uint8_t    *pix;			/* one row, or the whole image when interlaced */
	float	   *tmp;			/* planes before resizing */
} png_dec;

/* libpng's error callback: keep the message and jump out of png_run. */
static void
png_error_fn(png_structp png, png_const_charp msg)
{
	png_dec    *d = png_get_error_ptr(png);

	d->status = strstr(msg, "memory") ? CLAD_ERR_NOMEM : CLAD_ERR_FORMAT;
	clad_fail(d->status, "PNG: %s", msg);
	longjmp(d->jb, 1);
}

/* libpng's warning callback. */
static void
png_warning_fn(png_structp png, png_const_charp msg)
{
	/* silent: benign problems (a bad ancillary chunk, ...) are skipped by libpng */
}

/* libpng's read callback over the bytes in memory. */
static void
png_read_fn(png_structp png, png_bytep data, size_t n)
{
	png_dec    *d = png_get_io_ptr(png);

	if (n > d->len - d->pos)
		png_error(png, "truncated file");
	memcpy(data, d->bytes + d->pos, n);
	d->pos += n;
}

/* Ancillary chunks we have no use for: never decompressed nor stored. */
static const png_byte png_ignored_chunks[] =
	"iCCP\0iTXt\0tEXt\0zTXt\0sPLT\0eXIf\0tIME\0hIST\0pCAL\0sCAL\0";

/* Decode the PNG set up in d into t (libpng errors jump out). */
static clad_status
png_run(png_dec *d, target *t)
{
	png_uint_32 w,
				h;
	int			depth,
				ctype,
				interlace,
				npass,
				nc;
	size_t		rowbytes,
				need;
	clad_status st;

	if (setjmp(d->jb) != 0)
		return d->status;
	png_set_keep_unknown_chunks(d->png, PNG_HANDLE_CHUNK_NEVER, png_ignored_chunks,
								(int) (sizeof(png_ignored_chunks) / 5));
	png_set_read_fn(d->png, d, png_read_fn);
	png_read_info(d->png, d->info);
	png_get_IHDR(d->png, d->info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
	st = target_begin(t, "PNG", w, h, (ctype & PNG_COLOR_MASK_COLOR) ? 3 : 1, &d->tmp);
	if (st != CLAD_OK || !t->out)
		return st;

	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(d->png);
	if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(d->png);
	npass = png_set_interlace_handling(d->png);
	png_read_update_info(d->png, d->info);
	nc = png_get_channels(d->png, d->info);
	depth = png_get_bit_depth(d->png, d->info);
	rowbytes = png_get_rowbytes(d->png, d->info);
	if (nc < 1 || nc > 4 || (depth != 8 && depth != 16) ||
		rowbytes != (size_t) w * (size_t) nc * (size_t) (depth / 8))
		return clad_fail(CLAD_ERR_FORMAT, "PNG: unexpected layout after expansion "
						 "(%d channels of %d bits)", nc, depth);

	if (npass == 1)
	{
		d->pix = malloc(rowbytes);
		if (!d->pix)
			return clad_fail(CLAD_ERR_NOMEM, "PNG: cannot allocate a row of %zu bytes", rowbytes);
		for (png_uint_32 y = 0; y < h; y++)
		{
			png_read_row(d->png, d->pix, NULL);
			put_row(t, (int) y, d->pix, nc, depth / 8, depth == 8 ? 255.0f : 65535.0f);
		}
	}
	else
	{
		/* Adam7: libpng merges each pass into rows that hold the earlier passes */
		if (clad_mul_size(rowbytes, (size_t) h, &need))
			return clad_fail(CLAD_ERR_OVERFLOW, "PNG: image size overflows");
		d->pix = malloc(need);
		if (!d->pix)
			return clad_fail(CLAD_ERR_NOMEM, "PNG: cannot allocate %zu bytes", need);
		memset(d->pix, 0, need);
		for (int pass = 0; pass < npass; pass++)
			for (png_uint_32 y = 0; y < h; y++)
				png_read_row(d->png, d->pix + (size_t) y * rowbytes, NULL);
		for (png_uint_32 y = 0; y < h; y++)
			put_row(t, (int) y, d->pix + (size_t) y * rowbytes, nc, depth / 8,
					depth == 8 ? 255.0f : 65535.0f);
	}
	png_read_end(d->png, NULL);		/* the rest of the file, up to IEND, CRCs checked */
	target_finish(t);
	return CLAD_OK;
}

/* A PNG into t. */
static clad_status
decode_png(const uint8_t *bytes, size_t len, target *t)
{
	png_dec		d;
	clad_status st;

	memset(&d, 0, sizeof(d));
	d.bytes = bytes;
	d.len = len;
	d.status = CLAD_ERR_FORMAT;
	d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, png_error_fn, png_warning_fn);
	if (!d.png)
		return clad_fail(CLAD_ERR_NOMEM, "PNG: cannot create a decoder");
	d.info = png_create_info_struct(d.png);
	if (!d.info)
		st = clad_fail(CLAD_ERR_NOMEM, "PNG: cannot create a decoder");
	else
		st = png_run(&d, t);
	png_destroy_read_struct(&d.png, d.info ? &d.info : NULL, NULL);
	free(d.pix);
	free(d.tmp);
	return st;
}

/* ----------------------------------------------------------------- JPEG */

typedef struct jpeg_dec
{
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr err;
	struct jpeg_progress_mgr progress;
	jmp_buf		jb;
	clad_status status;			/* set by the error handler before it jumps */
	float	   *tmp;			/* planes before resizing */
} jpeg_dec;

/* Keep libjpeg's message as status s and jump out of jpeg_run. */
static void
jpeg_fail(j_common_ptr cinfo, clad_status s)
{
	jpeg_dec   *d = cinfo->client_data;
	char		buf[JMSG_LENGTH_MAX];

	(*cinfo->err->format_message) (cinfo, buf);
	d->status = s;
	clad_fail(s, "JPEG: %s", buf);
	longjmp(d->jb, 1);
}

/* libjpeg's fatal-error callback. */
static void
jpeg_error_exit_fn(j_common_ptr cinfo)
{
	jpeg_fail(cinfo, cinfo->err->msg_code == JERR_OUT_OF_MEMORY ? CLAD_ERR_NOMEM : CLAD_ERR_FORMAT);
}

/*
 * libjpeg's warnings mostly mean corrupt or truncated data that it would
 * paper over (a fake EOI at the end of a truncated file, grey blocks after a
 * bad Huffman code): those are errors here.  Harmless ones are ignored;
 * trace messages (level >= 0) too.  Nothing is printed.
 */
static void
jpeg_emit_message_fn(j_common_ptr cinfo, int level)
{
	int			code = cinfo->err->msg_code;

	if (level >= 0 || code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR || code == JWRN_BOGUS_ICC)
		return;
	jpeg_fail(cinfo, CLAD_ERR_FORMAT);
}

/* libjpeg's message callback: silent. */
static void
jpeg_output_message_fn(j_common_ptr cinfo)
{
}

/*
 * Called by libjpeg before each unit of input (marker or iMCU row) while
 * jpeg_start_decompress absorbs a progressive file, so a file with a huge
 * number of (tiny) scans is stopped at the first scan past the limit.
 */
static void
jpeg_progress_fn(j_common_ptr cinfo)
{
	jpeg_dec   *d = cinfo->client_data;

	if (cinfo->is_decompressor &&
		((j_decompress_ptr) cinfo)->input_scan_number > CLAD_IMAGE_MAX_JPEG_SCANS)
	{
		d->status = CLAD_ERR_UNSUPPORTED;
		clad_fail(d->status, "JPEG: more than %d scans", CLAD_IMAGE_MAX_JPEG_SCANS);
		longjmp(d->jb, 1);
	}
}

/* Decode the JPEG in bytes into t (libjpeg errors jump out). */
static clad_status
jpeg_run(jpeg_dec *d, const uint8_t *bytes, size_t len, target *t)
{
	j_decompress_ptr ci = &d->cinfo;
	JSAMPARRAY	row;
	int			nc,
				in_nc;
	clad_status st;

	if (setjmp(d->jb) != 0)
		return d->status;
	jpeg_create_decompress(ci);
	ci->client_data = d;		/* create keeps err and client_data; set again for clarity */
	d->progress.progress_monitor = jpeg_progress_fn;
	ci->progress = &d->progress;
	if (len > ULONG_MAX)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "JPEG: file too large");
	jpeg_mem_src(ci, bytes, (unsigned long) len);
	if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK)
		return clad_fail(CLAD_ERR_FORMAT, "JPEG: no image in the data stream");

	switch (ci->jpeg_color_space)
	{
		case JCS_GRAYSCALE:
			ci->out_color_space = JCS_GRAYSCALE;
			in_nc = 1;
			break;
		case JCS_YCbCr:
		case JCS_RGB:
			ci->out_color_space = JCS_RGB;
			in_nc = 3;
			break;
		case JCS_CMYK:
		case JCS_YCCK:
			ci->out_color_space = JCS_CMYK;
			in_nc = 3;
			break;
		default:
			return clad_fail(CLAD_ERR_UNSUPPORTED, "JPEG: unsupported colour space (%d components)",
							 ci->num_components);
	}
	st = target_begin(t, "JPEG", ci->image_width, ci->image_height, in_nc, &d->tmp);
	if (st != CLAD_OK || !t->out)
		return st;

	/* reads every scan of a progressive file into libjpeg's coefficient buffer */
	jpeg_start_decompress(ci);
	nc = ci->output_components;
	if ((int) ci->output_width != t->w || (int) ci->output_height != t->h ||
		nc != (ci->out_color_space == JCS_GRAYSCALE ? 1 : ci->out_color_space == JCS_RGB ? 3 : 4))
		return clad_fail(CLAD_ERR_FORMAT, "JPEG: unexpected output layout");
	/* from libjpeg's image pool: freed by jpeg_destroy_decompress */
	row = (*ci->mem->alloc_sarray) ((j_common_ptr) ci, JPOOL_IMAGE,
									ci->output_width * (JDIMENSION) nc, 1);
	while (ci->output_scanline < ci->output_height)
	{
		int			y = (int) ci->output_scanline;
		uint8_t    *p = row[0];

		if (jpeg_read_scanlines(ci, row, 1) != 1)
			return clad_fail(CLAD_ERR_FORMAT, "JPEG: truncated data");
		if (nc == 4)
		{
			/* CMYK to RGB in place; Adobe files store inverted inks */
			int			inv = ci->saw_Adobe_marker;

			for (int x = 0; x < t->w; x++)
			{
				unsigned	k = p[4 * x + 3],
							c0 = p[4 * x],
							c1 = p[4 * x + 1],
							c2 = p[4 * x + 2];

				if (!inv)
					k = 255 - k, c0 = 255 - c0, c1 = 255 - c1, c2 = 255 - c2;
				p[3 * x] = (uint8_t) ((c0 * k + 127) / 255);
				p[3 * x + 1] = (uint8_t) ((c1 * k + 127) / 255);
				p[3 * x + 2] = (uint8_t) ((c2 * k + 127) / 255);
			}
		}
		put_row(t, y, p, nc == 4 ? 3 : nc, 1, 255.0f);
	}
	jpeg_finish_decompress(ci);	/* reads up to EOI: truncation shows here */
	target_finish(t);
	return CLAD_OK;
}

/* A JPEG into t. */
static clad_status
decode_jpeg(const uint8_t *bytes, size_t len, target *t)
{
	jpeg_dec	d;
	clad_status st;

	memset(&d, 0, sizeof(d));
	d.status = CLAD_ERR_FORMAT;
	d.cinfo.err = jpeg_std_error(&d.err);
	d.err.error_exit = jpeg_error_exit_fn;
	d.err.emit_message = jpeg_emit_message_fn;
	d.err.output_message = jpeg_output_message_fn;
	d.cinfo.client_data = &d;
	st = jpeg_run(&d, bytes, len, t);
	jpeg_destroy_decompress(&d.cinfo);	/* a no-op when create never ran (mem NULL) */
	free(d.tmp);
	return st;
}

/* -------------------------------------------------------------- PGM/PPM */

typedef struct pnm_header
{
	int			ascii;			/* P2/P3 */
	int			nc;				/* 1 (P2, P5) or 3 (P3, P6) */
	uint64_t	w,
				h;
	unsigned	maxval;
	size_t		data;			/* offset of the raster (past the single whitespace) */
} pnm_header;

/* Whitespace as the PNM formats define it. */
static inline int
pnm_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skip whitespace and comments ('#' to the end of the line); how many bytes. */
static size_t
pnm_skip(const uint8_t *b, size_t len, size_t *pos)
{
	size_t		start = *pos;

	while (*pos < len)
	{
		if (pnm_space(b[*pos]))
			(*pos)++;
		else if (b[*pos] == '#')
		{
			while (*pos < len && b[*pos] != '\n' && b[*pos] != '\r')
				(*pos)++;
		}
		else
			break;
	}
	return *pos - start;
}

/* A header number: separator(s) then decimal digits, 1 <= value <= limit. */
static clad_status
pnm_number(const uint8_t *b, size_t len, size_t *pos, uint64_t limit, const char *what,
		   uint64_t *out)
{
	uint64_t	v = 0;
	size_t		start;

	if (pnm_skip(b, len, pos) == 0 && *pos < len)
		return clad_fail(CLAD_ERR_FORMAT, "PNM: no separator before the %s", what);
	start = *pos;
	while (*pos < len && b[*pos] >= '0' && b[*pos] <= '9')
	{
		v = v * 10 + (uint64_t) (b[*pos] - '0');
		if (v > limit)
			return clad_fail(CLAD_ERR_FORMAT, "PNM: %s larger than %llu", what,
							 (unsigned long long) limit);
		(*pos)++;
	}
	if (*pos == len)
		return clad_fail(CLAD_ERR_FORMAT, "PNM: truncated header");
	if (*pos == start)
		return clad_fail(CLAD_ERR_FORMAT, "PNM: %s is not a decimal number", what);
	if (!pnm_space(b[*pos]) && b[*pos] != '#')
		return clad_fail(CLAD_ERR_FORMAT, "PNM: junk after the %s", what);
	if (v < 1)
		return clad_fail(CLAD_ERR_FORMAT, "PNM: %s must be at least 1", what);
	*out = v;
	return CLAD_OK;
}

/* Parse and check a PNM header. */
static clad_status
pnm_read_header(const uint8_t *b, size_t len, pnm_header *h)
{
	uint64_t	maxval;
	size_t		pos = 2;
	clad_status st;

	if (len < 2 || b[0] != 'P')
		return clad_fail(CLAD_ERR_FORMAT, "PNM: bad magic");
	switch (b[1])
	{
		case '2':
		case '5':
			h->nc = 1;
			break;
		case '3':
		case '6':
			h->nc = 3;
			break;
		case '1':
		case '4':
		case '7':
			return clad_fail(CLAD_ERR_UNSUPPORTED, "PNM: P%c (PBM/PAM) is not supported", b[1]);
		default:
			return clad_fail(CLAD_ERR_FORMAT, "PNM: bad magic");
	}
	h->ascii = b[1] == '2' || b[1] == '3';
	if (len == 2)
		return clad_fail(CLAD_ERR_FORMAT, "PNM: truncated header");
	if ((st = pnm_number(b, len, &pos, INT_MAX, "width", &h->w)) != CLAD_OK ||
		(st = pnm_number(b, len, &pos, INT_MAX, "height", &h->h)) != CLAD_OK ||
		(st = pnm_number(b, len, &pos, 65535, "maxval", &maxval)) != CLAD_OK)
		return st;
	h->maxval = (unsigned) maxval;
	/* exactly one whitespace character ends the header; a comment may come before it */
	if (b[pos] == '#')
		while (pos < len && b[pos] != '\n' && b[pos] != '\r')
			pos++;
	if (pos == len)
		return clad_fail(CLAD_ERR_FORMAT, "PNM: truncated header");
	if (!pnm_space(b[pos]))
		return clad_fail(CLAD_ERR_FORMAT, "PNM: no whitespace after the maxval");
	h->data = pos + 1;
	return CLAD_OK;
}

/* The next ASCII sample: whitespace (required unless first) then digits, <= maxval. */
static clad_status
pnm_ascii_sample(const uint8_t *b, size_t len, size_t *pos, unsigned maxval, unsigned *out)
{
	unsigned	v = 0;
	size_t		start;

	while (*pos < len && pnm_space(b[*pos]))
		(*pos)++;
	start = *pos;
	while (*pos < len && b[*pos] >= '0' && b[*pos] <= '9')
	{
		v = v * 10 + (unsigned) (b[*pos] - '0');
		if (v > maxval)
			return clad_fail(CLAD_ERR_FORMAT, "PNM: sample larger than maxval %u", maxval);
		(*pos)++;
	}
	if (*pos == start)
		return clad_fail(CLAD_ERR_FORMAT, *pos == len ? "PNM: truncated raster"
						 : "PNM: raster holds something other than decimal samples");
	if (*pos < len && !pnm_space(b[*pos]))
		return clad_fail(CLAD_ERR_FORMAT, "PNM: junk after a sample");
	*out = v;
	return CLAD_OK;
}

/* A PGM or PPM into t. */
static clad_status
decode_pnm(const uint8_t *bytes, size_t len, target *t)
{
	pnm_header	hd;
	clad_status st;
	size_t		nsamp,
				need,
				rowbytes;
	int			bps;
	uint8_t    *row = NULL;
	float	   *tmp = NULL;

	memset(&hd, 0, sizeof(hd));
	if ((st = pnm_read_header(bytes, len, &hd)) != CLAD_OK)
		return st;
	bps = hd.maxval < 256 ? 1 : 2;
	/* w, h <= INT_MAX: the sample count fits in 64 bits */
	nsamp = (size_t) hd.w * (size_t) hd.h * (size_t) hd.nc;
	if (clad_mul_size(nsamp, (size_t) bps, &need))
		return clad_fail(CLAD_ERR_OVERFLOW, "PNM: image size overflows");
	/* the raster must be there before anything is allocated for it */
	if (!hd.ascii && len - hd.data != need)
		return clad_fail(CLAD_ERR_FORMAT, "PNM: raster is %zu bytes, %llux%llu needs %zu",
						 len - hd.data, (unsigned long long) hd.w, (unsigned long long) hd.h, need);
	if (hd.ascii && (len - hd.data) / 2 + 1 < nsamp)
		return clad_fail(CLAD_ERR_FORMAT, "PNM: raster too short for %zu samples", nsamp);
	st = target_begin(t, "PNM", hd.w, hd.h, hd.nc, &tmp);
	if (st != CLAD_OK || !t->out)
		goto done;

	rowbytes = (size_t) t->w * (size_t) hd.nc * 2;
	if (hd.ascii)
	{
		size_t		pos = hd.data;

		row = malloc(rowbytes);
		if (!row)
		{
			st = clad_fail(CLAD_ERR_NOMEM, "PNM: cannot allocate a row");
			goto done;
		}
		for (int y = 0; y < t->h; y++)
		{
			for (size_t i = 0; i < (size_t) t->w * (size_t) hd.nc; i++)
			{
				unsigned	v = 0;

				if ((st = pnm_ascii_sample(bytes, len, &pos, hd.maxval, &v)) != CLAD_OK)
					goto done;
				row[2 * i] = (uint8_t) (v >> 8);
				row[2 * i + 1] = (uint8_t) v;
			}
			put_row(t, y, row, hd.nc, 2, (float) hd.maxval);
		}
		while (pos < len && pnm_space(bytes[pos]))
			pos++;
		if (pos != len)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "PNM: data after the last sample");
			goto done;
		}
	}
	else
	{
		const uint8_t *p = bytes + hd.data;

		rowbytes = (size_t) t->w * (size_t) hd.nc * (size_t) bps;
		if (bps == 2 || hd.maxval < 255)
			for (size_t i = 0; i < nsamp; i++)
			{
				unsigned	v = bps == 1 ? p[i] : (unsigned) (p[2 * i] << 8 | p[2 * i + 1]);

				if (v > hd.maxval)
				{
					st = clad_fail(CLAD_ERR_FORMAT, "PNM: sample %u larger than maxval %u",
								   v, hd.maxval);
					goto done;
				}
			}
		for (int y = 0; y < t->h; y++)
			put_row(t, y, p + (size_t) y * rowbytes, hd.nc, bps, (float) hd.maxval);
	}
	target_finish(t);
	st = CLAD_OK;
done:
	free(row);
	free(tmp);
	return st;
}

/* ------------------------------------------------------------------ API */

clad_image_format
clad_image_format_of(const uint8_t *bytes, size_t len)
{
	static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

	if (!bytes)
		return CLAD_IMAGE_UNKNOWN;
	if (len >= 8 && memcmp(bytes, png_sig, 8) == 0)
		return CLAD_IMAGE_PNG;
	if (len >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
		return CLAD_IMAGE_JPEG;
	if (len >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '7')
		return CLAD_IMAGE_PNM;
	return CLAD_IMAGE_UNKNOWN;
}

/* Decode bytes in the format their signature names into t. */
static clad_status
decode_any(const uint8_t *bytes, size_t len, target *t)
{
	if (!bytes || len == 0)
		return clad_fail(CLAD_ERR_FORMAT, "image: no data");
	switch (clad_image_format_of(bytes, len))
	{
		case CLAD_IMAGE_PNG:
			return decode_png(bytes, len, t);
		case CLAD_IMAGE_JPEG:
			return decode_jpeg(bytes, len, t);
		case CLAD_IMAGE_PNM:
			return decode_pnm(bytes, len, t);
		case CLAD_IMAGE_UNKNOWN:
			break;
	}
	return clad_fail(CLAD_ERR_FORMAT, "image: not a PNG, JPEG or PGM/PPM file");
}

clad_status
clad_image_probe(const uint8_t *bytes, size_t len, int *width, int *height, int *channels)
{
	target		t;
	clad_status st;

	memset(&t, 0, sizeof(t));
	t.max_pixels = SIZE_MAX;
	st = decode_any(bytes, len, &t);
	if (st != CLAD_OK)
		return st;
	if (width)
		*width = t.w;
	if (height)
		*height = t.h;
	if (channels)
		*channels = t.nc;
	return CLAD_OK;
}

/* The refusal of a bad output shape or buffer, else CLAD_OK. */
static clad_status
check_target_args(int C, int H, int W, const float *out)
{
	size_t		n;

	if (C != 1 && C != 3)
		return clad_fail(CLAD_ERR_INVALID, "image: C must be 1 or 3, not %d", C);
	if (H < 1 || W < 1)
		return clad_fail(CLAD_ERR_INVALID, "image: bad output size %dx%d", H, W);
	if (clad_mul_size((size_t) C * (size_t) H, (size_t) W, &n) ||
		clad_mul_size(n, sizeof(float), &n))
		return clad_fail(CLAD_ERR_OVERFLOW, "image: output size overflows");
	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "image: no output buffer");
	return CLAD_OK;
}

clad_status
clad_image_decode(const uint8_t *bytes, size_t len, int C, int H, int W,
				  size_t max_pixels, float *out)
{
	target		t;
	clad_status st;

	if ((st = check_target_args(C, H, W, out)) != CLAD_OK)
		return st;
	if (max_pixels < 1)
		return clad_fail(CLAD_ERR_INVALID, "image: max_pixels must be at least 1");
	memset(&t, 0, sizeof(t));
	t.C = C;
	t.H = H;
	t.W = W;
	t.max_pixels = max_pixels;
	t.out = out;
	return decode_any(bytes, len, &t);
}

clad_status
clad_image_from_raw(const uint8_t *bytes, size_t len, int C, int H, int W, float *out)
{
	size_t		n;
	clad_status st;

	if ((st = check_target_args(C, H, W, out)) != CLAD_OK)
		return st;
	n = (size_t) C * (size_t) H * (size_t) W;
	if (len != n || !bytes)
		return clad_fail(CLAD_ERR_FORMAT, "image: raw pixels must be exactly %dx%dx%d = %zu bytes, "
						 "got %zu", C, H, W, n, len);
	for (size_t i = 0; i < n; i++)
		out[i] = (float) bytes[i] / 255.0f;
	return CLAD_OK;
}

clad_status
clad_image_convert(const float *in, int inC, int inH, int inW, int C, int H, int W, float *out)
{
	size_t		plane, n;
	clad_status st;
	float	   *tmp = NULL;
	const float *src;

	if ((st = check_target_args(C, H, W, out)) != CLAD_OK)
		return st;
	if (inC < 1 || inC > 4 || inH < 1 || inW < 1 || !in)
		return clad_fail(CLAD_ERR_INVALID, "image: bad input layout %dx%dx%d", inC, inH, inW);
	if (clad_mul_size((size_t) inH, (size_t) inW, &plane) ||
		clad_mul_size(plane, (size_t) inC, &n) || clad_mul_size(n, sizeof(float), &n))
		return clad_fail(CLAD_ERR_OVERFLOW, "image: input size overflows");
	for (size_t i = 0; i < plane * (size_t) inC; i++)
		if (!(in[i] >= 0.0f && in[i] <= 1.0f))	/* false for NaN too */
			return clad_fail(CLAD_ERR_NUMERIC, "image: pixel %zu is %.8g, not in [0,1]", i,
							 (double) in[i]);
	src = in;
	if (inC != C)
	{
		int			colour = inC >= 3;

		if (!(tmp = malloc(sizeof(float) * plane * (size_t) C)))
			return clad_fail(CLAD_ERR_NOMEM, "image: cannot allocate a %dx%d image", inH, inW);
		for (size_t i = 0; i < plane; i++)
		{
			if (C == 1)			/* colour to luminance, or gray without its alpha */
				tmp[i] = colour ? luminance(in[i], in[plane + i], in[2 * plane + i]) : in[i];
			else
				for (int c = 0; c < 3; c++)
					tmp[c * plane + i] = colour ? in[c * plane + i] : in[i];
		}
		src = tmp;
	}
	clad_image_resize_bilinear(src, C, inH, inW, out, H, W);
	free(tmp);
	return CLAD_OK;
}

/* Source index and weight of destination index i, as PyTorch's CPU kernel computes them. */
static inline void
bilinear_index(float scale, int i, int in, int *i0, int *i1, float *l1)
{
	float		s = scale * ((float) i + 0.5f) - 0.5f;
	int			k;

	if (s < 0.0f)
		s = 0.0f;
	k = (int) s;				/* floor: s >= 0 */
	if (k > in - 1)
		k = in - 1;
	*l1 = s - (float) k;
	if (*l1 > 1.0f)
		*l1 = 1.0f;
	*i0 = k;
	*i1 = k < in - 1 ? k + 1 : k;
}

void
clad_image_resize_bilinear(const float *in, int C, int H, int W, float *out, int OH, int OW)
{
	float		sh = (float) H / (float) OH,
				sw = (float) W / (float) OW;

	if (H == OH && W == OW)
	{
		memcpy(out, in, (size_t) C * (size_t) H * (size_t) W * sizeof(float));
		return;
	}
	for (int c = 0; c < C; c++)
	{
		const float *src = in + (size_t) c * (size_t) H * (size_t) W;
		float	   *dst = out + (size_t) c * (size_t) OH * (size_t) OW;

		for (int oy = 0; oy < OH; oy++)
		{
			int			y0,
						y1;
			float		ly1,
						ly0;
			const float *r0,
					   *r1;

			bilinear_index(sh, oy, H, &y0, &y1, &ly1);
			ly0 = 1.0f - ly1;
			r0 = src + (size_t) y0 * (size_t) W;
			r1 = src + (size_t) y1 * (size_t) W;
			for (int ox = 0; ox < OW; ox++)
			{
				int			x0,
							x1;
				float		lx1,
							lx0;

				bilinear_index(sw, ox, W, &x0, &x1, &lx1);
				lx0 = 1.0f - lx1;
				dst[(size_t) oy * (size_t) OW + (size_t) ox] =
					(r0[x0] * lx0 + r0[x1] * lx1) * ly0 + (r1[x0] * lx0 + r1[x1] * lx1) * ly1;
			}
		}
	}
}
