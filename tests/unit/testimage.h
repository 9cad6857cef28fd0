/* tests/unit/testimage.h: PNG and JPEG files written in memory (libpng, libjpeg), for the
 * C tests that decode images: test_image (every format variant) and test_dataset (image
 * files on disk).  A membuf grows as bytes are appended (mb_put). */
#ifndef CLAD_TESTIMAGE_H
#define CLAD_TESTIMAGE_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

typedef struct membuf
{
	uint8_t    *p;
	size_t		n,
				cap;
} membuf;

static inline void
mb_put(membuf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap)
	{
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static inline void
png_wr(png_structp png, png_bytep d, size_t n)
{
	mb_put(png_get_io_ptr(png), d, n);
}

static inline void
png_fl(png_structp png)
{
}

/*
 * A PNG of w x h samples s (nc per pixel, values < 2^depth), packed as
 * libpng wants them: sub-byte depths MSB first, 16 bits big-endian.
 */
static inline uint8_t *
make_png(int w, int h, int ctype, int depth, int interlace, const unsigned *s,
		 const png_color *pal, int npal, const png_byte *trns, int ntrns, size_t *len)
{
	int			nc = ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_PALETTE ? 1 :
		ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ctype == PNG_COLOR_TYPE_RGB ? 3 : 4;
	size_t		rowbytes = ((size_t) w * nc * depth + 7) / 8;
	uint8_t    *pix = calloc((size_t) h, rowbytes);
	png_bytep  *rows = malloc(sizeof(png_bytep) * h);
	membuf		b = {0};
	png_structp png;
	png_infop	info;

	for (int y = 0; y < h; y++)
	{
		uint8_t    *r = pix + (size_t) y * rowbytes;

		rows[y] = r;
		for (int i = 0; i < w * nc; i++)
		{
			unsigned	v = s[(size_t) y * w * nc + i];

			if (depth == 16)
			{
				r[2 * i] = (uint8_t) (v >> 8);
				r[2 * i + 1] = (uint8_t) v;
			}
			else if (depth == 8)
				r[i] = (uint8_t) v;
			else
				r[i * depth / 8] |= (uint8_t) (v << (8 - depth - (i * depth) % 8));
		}
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png_create_info_struct(png);
	if (setjmp(png_jmpbuf(png)))
	{
		fprintf(stderr, "writing a PNG failed\n");
		exit(2);
	}
	png_set_write_fn(png, &b, png_wr, png_fl);
	png_set_IHDR(png, info, w, h, depth, ctype, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
				 PNG_FILTER_TYPE_DEFAULT);
	if (pal)
		png_set_PLTE(png, info, pal, npal);
	if (trns)
		png_set_tRNS(png, info, trns, ntrns, NULL);
	png_write_info(png, info);
	png_write_image(png, rows);		/* does the Adam7 passes itself */
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	free(rows);
	free(pix);
	*len = b.n;
	return b.p;
}

/* pix interleaved, nc = 1 (gray), 3 (RGB) or 4 (CMYK); 4:4:4; mode 0 baseline, 1 progressive */
static inline uint8_t *
make_jpeg(int w, int h, int nc, const uint8_t *pix, int quality, int mode,
		  const jpeg_scan_info *script, int nscans, size_t *len)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	unsigned char *mem = NULL;
	unsigned long memlen = 0;

	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &mem, &memlen);
	c.image_width = (JDIMENSION) w;
	c.image_height = (JDIMENSION) h;
	c.input_components = nc;
	c.in_color_space = nc == 1 ? JCS_GRAYSCALE : nc == 3 ? JCS_RGB : JCS_CMYK;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, quality, TRUE);
	for (int i = 0; i < c.num_components; i++)
		c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
	if (mode == 1)
		jpeg_simple_progression(&c);
	if (script)
	{
		c.scan_info = script;
		c.num_scans = nscans;
	}
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height)
	{
		JSAMPROW	r = (JSAMPROW) (pix + (size_t) c.next_scanline * w * nc);

		jpeg_write_scanlines(&c, &r, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	*len = memlen;
	return mem;
}

#endif
