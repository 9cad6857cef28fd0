/* tests/unit/test_image.c: PNG, JPEG and PGM/PPM decoding, conversion, resizing and refusals. */
#include "image.h"
#include "safetensors.h"	/* clad_write_file */
#include "testimage.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#define MAXPIX ((size_t) 1 << 26)

static float *
fbuf(size_t n)
{
	float	   *f = malloc(n * sizeof(float));

	if (!f)
		abort();
	for (size_t i = 0; i < n; i++)
		f[i] = -1.0f;
	return f;
}

/* libjpeg's own decode (gray or RGB, interleaved 8-bit): the exact reference. */
static uint8_t *
ref_jpeg(const uint8_t *b, size_t len, int gray)
{
	struct jpeg_decompress_struct d;
	struct jpeg_error_mgr e;
	uint8_t    *out;

	d.err = jpeg_std_error(&e);
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, b, (unsigned long) len);
	jpeg_read_header(&d, TRUE);
	d.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_start_decompress(&d);
	out = malloc((size_t) d.output_width * d.output_height * d.output_components);
	while (d.output_scanline < d.output_height)
	{
		JSAMPROW	r = out + (size_t) d.output_scanline * d.output_width * d.output_components;

		jpeg_read_scanlines(&d, &r, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return out;
}

/* ----------------------------------------------------------------- checks */

/* Decode b to (C,h,w) and compare with want (C,h,w) within tol (0: exact). */
static void
expect_decode(const char *what, const uint8_t *b, size_t len, int C, int h, int w,
			  const float *want, float tol)
{
	size_t		n = (size_t) C * h * w;
	float	   *got = fbuf(n);
	clad_status st = clad_image_decode(b, len, C, h, w, MAXPIX, got);
	float		worst = 0;
	size_t		at = 0;

	CHECK_MSG(st == CLAD_OK, "%s: %s (%s)", what, clad_status_name(st), clad_last_error());
	if (st == CLAD_OK)
	{
		for (size_t i = 0; i < n; i++)
		{
			float		d = fabsf(got[i] - want[i]);

			if (!(d <= worst))
			{
				worst = d;
				at = i;
			}
		}
		CHECK_MSG(worst <= tol, "%s: |got - want| = %g at %zu (got %.9g want %.9g), tol %g",
				  what, worst, at, got[at], want[at], tol);
	}
	free(got);
}

static void
expect_refused(const char *what, const uint8_t *b, size_t len, int C, int h, int w,
			   size_t max_pixels, clad_status want)
{
	float	   *got = fbuf((size_t) C * h * w);
	clad_status st = clad_image_decode(b, len, C, h, w, max_pixels, got);

	if (want == CLAD_OK)
		CHECK_MSG(st != CLAD_OK && clad_last_error()[0], "%s: accepted", what);
	else
		CHECK_MSG(st == want, "%s: got %s (%s), want %s", what, clad_status_name(st),
				  clad_last_error(), clad_status_name(want));
	free(got);
}

/* Every proper prefix of a file must be refused (and must not crash). */
static void
truncations(const char *what, const uint8_t *b, size_t len, size_t upto, int C, int h, int w)
{
	float	   *got = fbuf((size_t) C * h * w);
	int			accepted = 0;
	size_t		first = 0;

	for (size_t l = 0; l < upto; l++)
	{
		uint8_t    *cp = malloc(l ? l : 1);	/* own allocation: ASan sees overreads */

		memcpy(cp, b, l);
		if (clad_image_decode(cp, l, C, h, w, MAXPIX, got) == CLAD_OK && !accepted++)
			first = l;
		free(cp);
	}
	CHECK_MSG(accepted == 0, "%s: %d truncated prefixes accepted (first of %zu bytes, file %zu)",
			  what, accepted, first, len);
	free(got);
}

/* Random byte changes must never crash (decoding may succeed or fail). */
static void
mutations(const uint8_t *b, size_t len, int C, int h, int w, int rounds, uint64_t seed)
{
	float	   *got = fbuf((size_t) C * (h + 1) * (w + 2));
	uint8_t    *cp = malloc(len);

	for (int r = 0; r < rounds; r++)
	{
		int			k = 1 + (int) (test_rand(&seed) % 4);

		memcpy(cp, b, len);
		for (int i = 0; i < k; i++)
			cp[test_rand(&seed) % len] = (uint8_t) test_rand(&seed);
		(void) clad_image_decode(cp, len, C, h, w, MAXPIX, got);
		(void) clad_image_decode(cp, len, C, h + 1, w + 2, MAXPIX, got);
	}
	test_checks++;
	free(cp);
	free(got);
}

/* (C, h, w) planes of samples s (nc per pixel, interleaved) / maxv, alpha dropped. */
static float *
planes_of(const unsigned *s, int nc, int h, int w, int C, float maxv)
{
	float	   *f = fbuf((size_t) C * h * w);
	size_t		plane = (size_t) h * w;
	int			ncol = nc >= 3 ? 3 : 1;

	for (size_t p = 0; p < plane; p++)
	{
		float		v[3];

		for (int k = 0; k < ncol; k++)
			v[k] = (float) s[p * nc + k] / maxv;
		for (int c = 0; c < C; c++)
			f[c * plane + p] = C == 1 && ncol == 3 ? 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2]
				: v[ncol == 1 ? 0 : c];
	}
	return f;
}

static unsigned *
samples(int n, unsigned maxv, uint64_t seed)
{
	unsigned   *s = malloc(sizeof(unsigned) * n);

	for (int i = 0; i < n; i++)
		s[i] = (unsigned) (test_rand(&seed) % ((uint64_t) maxv + 1));
	return s;
}

/* ------------------------------------------------------------------- PNG */

static void
png_case(const char *what, int w, int h, int ctype, int depth, int interlace)
{
	int			nc = ctype == PNG_COLOR_TYPE_GRAY ? 1 : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 :
		ctype == PNG_COLOR_TYPE_RGB ? 3 : 4;
	unsigned	maxv = (1u << depth) - 1;
	unsigned   *s = samples(w * h * nc, maxv, (uint64_t) (w * 131 + h * 7 + ctype * 3 + depth));
	size_t		len;
	uint8_t    *b = make_png(w, h, ctype, depth, interlace, s, NULL, 0, NULL, 0, &len);
	float	   *want1 = planes_of(s, nc, h, w, 1, (float) maxv);
	float	   *want3 = planes_of(s, nc, h, w, 3, (float) maxv);
	char		msg[128];
	int			pw = 0,
				ph = 0,
				pc = 0;

	snprintf(msg, sizeof(msg), "%s C=1", what);
	/* luminance sums three products: allow float reassociation, nothing more */
	expect_decode(msg, b, len, 1, h, w, want1, nc >= 3 ? 1e-6f : 0.0f);
	snprintf(msg, sizeof(msg), "%s C=3", what);
	expect_decode(msg, b, len, 3, h, w, want3, 0.0f);
	CHECK(clad_image_probe(b, len, &pw, &ph, &pc) == CLAD_OK);
	CHECK_MSG(pw == w && ph == h && pc == (nc >= 3 ? 3 : 1), "%s: probe %dx%d c%d", what, pw, ph, pc);
	truncations(what, b, len, len, 3, h, w);
	mutations(b, len, 3, h, w, 300, len);
	free(s);
	free(b);
	free(want1);
	free(want3);
}

static void
test_png(void)
{
	png_case("PNG gray 8", 5, 4, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE);
	png_case("PNG gray 16", 7, 3, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE);
	png_case("PNG gray 1", 11, 3, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE);
	png_case("PNG gray 2", 9, 2, PNG_COLOR_TYPE_GRAY, 2, PNG_INTERLACE_NONE);
	png_case("PNG gray 4", 3, 5, PNG_COLOR_TYPE_GRAY, 4, PNG_INTERLACE_NONE);
	png_case("PNG gray+alpha 8", 6, 5, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE);
	png_case("PNG gray+alpha 16", 4, 4, PNG_COLOR_TYPE_GRAY_ALPHA, 16, PNG_INTERLACE_NONE);
	png_case("PNG RGB 8", 8, 6, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE);
	png_case("PNG RGB 16", 3, 7, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE);
	png_case("PNG RGBA 8", 5, 5, PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_NONE);
	png_case("PNG RGBA 16", 2, 9, PNG_COLOR_TYPE_RGBA, 16, PNG_INTERLACE_NONE);
	png_case("PNG interlaced RGB 8", 13, 11, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7);
	png_case("PNG interlaced gray 16", 10, 9, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_ADAM7);
	png_case("PNG interlaced gray 1", 17, 5, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_ADAM7);
	png_case("PNG interlaced RGBA 8 1x1", 1, 1, PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_ADAM7);

	/* palettes: 8-bit with tRNS (expands to RGBA, alpha dropped), 2-bit, interlaced 4-bit */
	for (int k = 0; k < 3; k++)
	{
		static const int depths[3] = {8, 2, 4};
		int			depth = depths[k],
					w = 7,
					h = 6,
					npal = k == 0 ? 200 : 1 << depth;
		png_color	pal[256];
		png_byte	trns[3] = {0, 128, 255};
		unsigned   *idx = samples(w * h, (unsigned) npal - 1, 77 + k);
		unsigned   *rgb = malloc(sizeof(unsigned) * w * h * 3);
		uint64_t	seed = 99;
		size_t		len;
		uint8_t    *b;
		float	   *want;
		char		msg[64];

		for (int i = 0; i < npal; i++)
		{
			pal[i].red = (png_byte) test_rand(&seed);
			pal[i].green = (png_byte) test_rand(&seed);
			pal[i].blue = (png_byte) test_rand(&seed);
		}
		for (int i = 0; i < w * h; i++)
		{
			rgb[3 * i] = pal[idx[i]].red;
			rgb[3 * i + 1] = pal[idx[i]].green;
			rgb[3 * i + 2] = pal[idx[i]].blue;
		}
		b = make_png(w, h, PNG_COLOR_TYPE_PALETTE, depth, k == 2 ? PNG_INTERLACE_ADAM7 : 0, idx,
					 pal, npal, k == 0 ? trns : NULL, 3, &len);
		snprintf(msg, sizeof(msg), "PNG palette %d", depth);
		want = planes_of(rgb, 3, h, w, 3, 255.0f);
		expect_decode(msg, b, len, 3, h, w, want, 0.0f);
		free(want);
		want = planes_of(rgb, 3, h, w, 1, 255.0f);
		expect_decode(msg, b, len, 1, h, w, want, 1e-6f);
		truncations(msg, b, len, len, 3, h, w);
		mutations(b, len, 3, h, w, 300, 5 + k);
		free(want);
		free(b);
		free(idx);
		free(rgb);
	}
}

/* Ancillary chunks (text, compressed text, time, gamma) are skipped; pixels as usual. */
static void
test_png_ancillary(void)
{
	unsigned	s[4 * 3 * 3];
	membuf		b = {0};
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop	info = png_create_info_struct(png);
	png_text	text[3];
	png_time	tm = {2024, 1, 2, 3, 4, 5};
	uint8_t		pix[3][12];
	float	   *want;

	for (int i = 0; i < 36; i++)
		s[i] = (unsigned) (i * 7);
	for (int y = 0; y < 3; y++)
		for (int i = 0; i < 12; i++)
			pix[y][i] = (uint8_t) s[y * 12 + i];
	memset(text, 0, sizeof(text));
	text[0].compression = PNG_TEXT_COMPRESSION_NONE;
	text[0].key = "Title";
	text[0].text = "plain";
	text[1].compression = PNG_TEXT_COMPRESSION_zTXt;
	text[1].key = "Comment";
	text[1].text = "compressed compressed compressed compressed";
	text[2].compression = PNG_ITXT_COMPRESSION_zTXt;
	text[2].key = "Description";
	text[2].lang = "en";
	text[2].text = "international";
	if (setjmp(png_jmpbuf(png)))
		exit(2);
	png_set_write_fn(png, &b, png_wr, png_fl);
	png_set_IHDR(png, info, 4, 3, 8, PNG_COLOR_TYPE_RGB, 0, 0, 0);
	png_set_text(png, info, text, 3);
	png_set_tIME(png, info, &tm);
	png_set_gAMA(png, info, 0.45455);
	png_write_info(png, info);
	for (int y = 0; y < 3; y++)
		png_write_row(png, pix[y]);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	want = planes_of(s, 3, 3, 4, 3, 255.0f);
	expect_decode("PNG with text chunks", b.p, b.n, 3, 3, 4, want, 0.0f);
	truncations("PNG with text chunks", b.p, b.n, b.n, 3, 3, 4);
	free(want);
	free(b.p);
}

/* A PNG of just the signature, an IHDR (valid CRC) declaring w x h RGB, and an IDAT's header. */
static uint8_t *
png_header_only(uint32_t w, uint32_t h, size_t *len)
{
	uint8_t    *b = calloc(1, 64);
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	uint8_t    *c = b + 8;
	uLong		crc;

	memcpy(b, sig, 8);
	c[3] = 13;
	memcpy(c + 4, "IHDR", 4);
	for (int i = 0; i < 4; i++)
	{
		c[8 + i] = (uint8_t) (w >> (24 - 8 * i));
		c[12 + i] = (uint8_t) (h >> (24 - 8 * i));
	}
	c[16] = 8;					/* depth */
	c[17] = 2;					/* RGB */
	crc = crc32(0, c + 4, 17);
	for (int i = 0; i < 4; i++)
		c[21 + i] = (uint8_t) (crc >> (24 - 8 * i));
	/* the header of an IDAT chunk: where png_read_info stops */
	memcpy(c + 25, "\0\0\x10\0IDAT", 8);
	*len = 8 + 25 + 8;
	return b;
}

static void
test_png_limits(void)
{
	size_t		len;
	uint8_t    *b = png_header_only(65535, 65535, &len);
	unsigned	s[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	float		f[12];
	int			w,
				h,
				c;

	/* declared 65535x65535: refused by max_pixels after the header, before any allocation */
	expect_refused("PNG 65535x65535", b, len, 3, 4, 4, MAXPIX, CLAD_ERR_UNSUPPORTED);
	CHECK(strstr(clad_last_error(), "pixels") != NULL);
	/* probing reads only the header */
	CHECK(clad_image_probe(b, len, &w, &h, &c) == CLAD_OK && w == 65535 && h == 65535 && c == 3);
	free(b);
	/* 2x2 RGB: max_pixels 4 decodes, 3 refuses */
	b = make_png(2, 2, PNG_COLOR_TYPE_RGB, 8, 0, s, NULL, 0, NULL, 0, &len);
	CHECK(clad_image_decode(b, len, 3, 2, 2, 4, f) == CLAD_OK);
	CHECK(clad_image_decode(b, len, 3, 2, 2, 3, f) == CLAD_ERR_UNSUPPORTED);
	free(b);
}

/* ------------------------------------------------------------------ JPEG */

/* A smooth test picture (JPEG-friendly), nc channels interleaved. */
static uint8_t *
smooth(int w, int h, int nc)
{
	uint8_t    *p = malloc((size_t) w * h * nc);

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int k = 0; k < nc; k++)
				p[((size_t) y * w + x) * nc + k] =
					(uint8_t) (20 + (100 * x) / (w - 1) * (k != 1) + (100 * y) / (h - 1) * (k != 0)
							   + 10 * k);
	return p;
}

static float *
planes8(const uint8_t *p, int nc, int h, int w, int C)
{
	unsigned   *s = malloc(sizeof(unsigned) * (size_t) w * h * nc);
	float	   *f;

	for (size_t i = 0; i < (size_t) w * h * nc; i++)
		s[i] = p[i];
	f = planes_of(s, nc, h, w, C, 255.0f);
	free(s);
	return f;
}

static void
jpeg_case(const char *what, int w, int h, int nc, int mode)
{
	uint8_t    *src = smooth(w, h, nc);
	size_t		len,
				blen;
	uint8_t    *b = make_jpeg(w, h, nc, src, 98, mode, NULL, 0, &len);
	uint8_t    *base = make_jpeg(w, h, nc, src, 98, 0, NULL, 0, &blen);
	uint8_t    *ref = ref_jpeg(b, len, nc == 1);
	uint8_t    *bref = ref_jpeg(base, blen, nc == 1);
	float	   *want = planes8(ref, nc, h, w, nc);
	float	   *approx = planes8(src, nc, h, w, nc);
	float	   *want1 = planes8(ref, nc, h, w, 1);
	char		msg[128];

	snprintf(msg, sizeof(msg), "%s exact against libjpeg", what);
	expect_decode(msg, b, len, nc, h, w, want, 0.0f);
	snprintf(msg, sizeof(msg), "%s close to the source", what);
	expect_decode(msg, b, len, nc, h, w, approx, 6.0f / 255.0f);
	snprintf(msg, sizeof(msg), "%s C=1", what);
	expect_decode(msg, b, len, 1, h, w, want1, 1e-6f);
	/* progressive transmits the same quantised coefficients: the same pixels as baseline */
	CHECK_MSG(memcmp(ref, bref, (size_t) w * h * nc) == 0, "%s: differs from baseline", what);
	truncations(what, b, len, len, nc, h, w);
	mutations(b, len, 3, h, w, 300, len);
	free(src);
	free(b);
	free(base);
	free(ref);
	free(bref);
	free(want);
	free(approx);
	free(want1);
}

/*
 * The scan script of a progressive JPEG with very many scans: one DC scan,
 * then for every AC coefficient of every component a first scan at Al = 10
 * and ten successive-approximation refinements down to Al = 0 (all valid,
 * every bit of every coefficient sent once): 1 + nc * 63 * 11 scans, 694
 * for gray (under the limit) and 2080 for colour (over it).
 */
static jpeg_scan_info *
many_scans(int nc, int *nscans)
{
	jpeg_scan_info *s = calloc(1 + (size_t) nc * 63 * 11, sizeof(jpeg_scan_info));
	int			n = 0;

	s[n].comps_in_scan = nc;
	for (int c = 0; c < nc; c++)
		s[n].component_index[c] = c;
	n++;						/* DC: Ss = Se = Ah = Al = 0 */
	for (int c = 0; c < nc; c++)
		for (int k = 1; k < 64; k++)
			for (int a = -1; a < 10; a++)
			{
				s[n].comps_in_scan = 1;
				s[n].component_index[0] = c;
				s[n].Ss = s[n].Se = k;
				s[n].Ah = a < 0 ? 0 : 10 - a;
				s[n].Al = a < 0 ? 10 : 9 - a;
				n++;
			}
	*nscans = n;
	return s;
}

static void
test_jpeg(void)
{
	jpeg_case("JPEG baseline gray", 16, 16, 1, 0);
	jpeg_case("JPEG baseline RGB", 24, 16, 3, 0);
	jpeg_case("JPEG baseline RGB odd size", 13, 7, 3, 0);
	jpeg_case("JPEG progressive gray", 16, 24, 1, 1);
	jpeg_case("JPEG progressive RGB", 17, 9, 3, 1);

	/* default 4:2:0 subsampled colour: decodes like libjpeg */
	{
		struct jpeg_compress_struct c;
		struct jpeg_error_mgr e;
		unsigned char *mem = NULL;
		unsigned long mlen = 0;
		uint8_t    *src = smooth(20, 12, 3),
				   *ref;
		float	   *want;

		c.err = jpeg_std_error(&e);
		jpeg_create_compress(&c);
		jpeg_mem_dest(&c, &mem, &mlen);
		c.image_width = 20;
		c.image_height = 12;
		c.input_components = 3;
		c.in_color_space = JCS_RGB;
		jpeg_set_defaults(&c);
		jpeg_start_compress(&c, TRUE);
		while (c.next_scanline < c.image_height)
		{
			JSAMPROW	r = src + (size_t) c.next_scanline * 20 * 3;

			jpeg_write_scanlines(&c, &r, 1);
		}
		jpeg_finish_compress(&c);
		jpeg_destroy_compress(&c);
		ref = ref_jpeg(mem, mlen, 0);
		want = planes8(ref, 3, 12, 20, 3);
		expect_decode("JPEG 4:2:0", mem, mlen, 3, 12, 20, want, 0.0f);
		free(want);
		free(ref);
		free(src);
		free(mem);
	}

	/* CMYK (libjpeg writes an Adobe marker; the inks are read as inverted) */
	{
		int			w = 8,
					h = 8;
		uint8_t    *src = malloc((size_t) w * h * 4);
		unsigned   *rgb = malloc(sizeof(unsigned) * w * h * 3);
		size_t		len;
		uint8_t    *b;
		float	   *want;

		for (int i = 0; i < w * h; i++)
		{
			src[4 * i] = 200;
			src[4 * i + 1] = 100;
			src[4 * i + 2] = 50;
			src[4 * i + 3] = 230;
			rgb[3 * i] = (200 * 230 + 127) / 255;
			rgb[3 * i + 1] = (100 * 230 + 127) / 255;
			rgb[3 * i + 2] = (50 * 230 + 127) / 255;
		}
		b = make_jpeg(w, h, 4, src, 100, 0, NULL, 0, &len);
		want = planes_of(rgb, 3, h, w, 3, 255.0f);
		expect_decode("JPEG CMYK", b, len, 3, h, w, want, 3.0f / 255.0f);
		free(want);
		free(b);
		free(src);
		free(rgb);
	}

	/* many scans: 694 (gray) decode, and equal the baseline; 2080 (RGB) are stopped */
	for (int nc = 1; nc <= 3; nc += 2)
	{
		int			nscans;
		jpeg_scan_info *script = many_scans(nc, &nscans);
		uint8_t    *src = smooth(16, 8, nc);
		size_t		len,
					blen;
		uint8_t    *b = make_jpeg(16, 8, nc, src, 90, 0, script, nscans, &len);
		uint8_t    *base = make_jpeg(16, 8, nc, src, 90, 0, NULL, 0, &blen);
		uint8_t    *ref = ref_jpeg(base, blen, nc == 1);
		float	   *want = planes8(ref, nc, 8, 16, nc);

		CHECK(nscans == 1 + nc * 63 * 11);
		/* the colour file is the fixture tests/ext/jpeg_2080_scans.jpg of the SQL tests */
		if (nc == 3 && getenv("CLAD_TEST_WRITE_MANY_SCANS"))
			CHECK(clad_write_file(getenv("CLAD_TEST_WRITE_MANY_SCANS"), b, len) == CLAD_OK);
		if (nscans <= CLAD_IMAGE_MAX_JPEG_SCANS)
			expect_decode("JPEG 694 scans", b, len, nc, 8, 16, want, 0.0f);
		else
		{
			expect_refused("JPEG 2080 scans", b, len, nc, 8, 16, MAXPIX, CLAD_ERR_UNSUPPORTED);
			CHECK_MSG(strstr(clad_last_error(), "scans") != NULL, "%s", clad_last_error());
		}
		free(want);
		free(ref);
		free(base);
		free(b);
		free(src);
		free(script);
	}
}

/* Patch the size in a JPEG's SOF0 marker. */
static void
jpeg_set_size(uint8_t *b, size_t len, unsigned w, unsigned h)
{
	for (size_t i = 2; i + 9 < len; i++)
		if (b[i] == 0xff && b[i + 1] == 0xc0)
		{
			b[i + 5] = (uint8_t) (h >> 8);
			b[i + 6] = (uint8_t) h;
			b[i + 7] = (uint8_t) (w >> 8);
			b[i + 8] = (uint8_t) w;
			return;
		}
	CHECK_MSG(0, "no SOF0 in the JPEG");
}

static void
test_jpeg_limits(void)
{
	uint8_t    *src = smooth(8, 8, 3);
	size_t		len;
	uint8_t    *b = make_jpeg(8, 8, 3, src, 90, 0, NULL, 0, &len);
	int			w,
				h,
				c;

	/* 65535 is past libjpeg's own 65500 limit: refused either way */
	jpeg_set_size(b, len, 65535, 65535);
	expect_refused("JPEG 65535x65535", b, len, 3, 8, 8, MAXPIX, CLAD_OK);
	/* 65500x65500: within libjpeg's limit, refused by max_pixels after the header */
	jpeg_set_size(b, len, 65500, 65500);
	expect_refused("JPEG 65500x65500", b, len, 3, 8, 8, MAXPIX, CLAD_ERR_UNSUPPORTED);
	CHECK(strstr(clad_last_error(), "pixels") != NULL);
	CHECK(clad_image_probe(b, len, &w, &h, &c) == CLAD_OK && w == 65500 && h == 65500 && c == 3);
	/* a progressive file too: the check comes before jpeg_start_decompress's buffers */
	free(b);
	b = make_jpeg(8, 8, 3, src, 90, 1, NULL, 0, &len);
	for (size_t i = 2; i + 9 < len; i++)
		if (b[i] == 0xff && b[i + 1] == 0xc2)
		{
			b[i + 5] = b[i + 6] = b[i + 7] = b[i + 8] = 0x40;	/* 16448 x 16448 */
			break;
		}
	expect_refused("progressive JPEG 16448x16448", b, len, 3, 8, 8, MAXPIX / 16,
				   CLAD_ERR_UNSUPPORTED);
	free(b);
	free(src);
}

/* ----------------------------------------------------------------- PGM/PPM */

static void
test_pnm(void)
{
	/* P5 3x2 8-bit with comments */
	{
		static const char f[] = "P5\n# a comment\n3 # another\n2\n255\n\x00\x10\xff\x80\x01\x7f";
		float		want[6] = {0, 16 / 255.0f, 1, 128 / 255.0f, 1 / 255.0f, 127 / 255.0f};
		float		want3[18];

		expect_decode("P5", (const uint8_t *) f, sizeof(f) - 1, 1, 2, 3, want, 0);
		for (int c = 0; c < 3; c++)
			memcpy(want3 + 6 * c, want, sizeof(want));
		expect_decode("P5 as RGB", (const uint8_t *) f, sizeof(f) - 1, 3, 2, 3, want3, 0);
		truncations("P5", (const uint8_t *) f, sizeof(f) - 1, sizeof(f) - 1, 1, 2, 3);
	}
	/* P6 2x2 16-bit big-endian, maxval 1000 */
	{
		unsigned	s[12] = {0, 1000, 500, 999, 1, 2, 3, 4, 5, 250, 750, 100};
		membuf		b = {0};
		const char *hdr = "P6 2 2 1000\n";
		float	   *want,
				   *want1;

		mb_put(&b, hdr, strlen(hdr));
		for (int i = 0; i < 12; i++)
		{
			uint8_t		be[2] = {(uint8_t) (s[i] >> 8), (uint8_t) s[i]};

			mb_put(&b, be, 2);
		}
		want = planes_of(s, 3, 2, 2, 3, 1000.0f);
		want1 = planes_of(s, 3, 2, 2, 1, 1000.0f);
		expect_decode("P6 16-bit", b.p, b.n, 3, 2, 2, want, 0);
		expect_decode("P6 16-bit C=1", b.p, b.n, 1, 2, 2, want1, 1e-6f);
		truncations("P6 16-bit", b.p, b.n, b.n, 3, 2, 2);
		mutations(b.p, b.n, 3, 2, 2, 500, 3);
		/* a sample above maxval */
		b.p[b.n - 2] = 0x03;
		b.p[b.n - 1] = 0xe9;	/* 1001 */
		expect_refused("P6 sample > maxval", b.p, b.n, 3, 2, 2, MAXPIX, CLAD_ERR_FORMAT);
		free(want);
		free(want1);
		free(b.p);
	}
	/* P6 8-bit, 65535 maxval P5 */
	{
		static const char f6[] = "P6\n1 2\n255\n\x01\x02\x03\xfd\xfe\xff";
		float		want[6] = {1 / 255.0f, 253 / 255.0f, 2 / 255.0f, 254 / 255.0f, 3 / 255.0f, 1};
		static const char f5[] = "P5 2 1 65535\n\xff\xff\x80\x00";
		float		want5[2] = {1, 32768 / 65535.0f};

		expect_decode("P6", (const uint8_t *) f6, sizeof(f6) - 1, 3, 2, 1, want, 0);
		truncations("P6", (const uint8_t *) f6, sizeof(f6) - 1, sizeof(f6) - 1, 3, 2, 1);
		expect_decode("P5 65535", (const uint8_t *) f5, sizeof(f5) - 1, 1, 1, 2, want5, 0);
	}
	/* P2 / P3 ASCII with comments, 16-bit maxval, odd whitespace */
	{
		static const char f2[] = "P2\n# gray\n3 2\n# max\n65535\n0 65535 1\n\t32768\r\n7   9\n";
		float		want2[6] = {0, 1, 1 / 65535.0f, 32768 / 65535.0f, 7 / 65535.0f, 9 / 65535.0f};
		static const char f3[] = "P3 2 1 15 15 0 7\n1 2 3";
		float		want3[6] = {1, 1 / 15.0f, 0, 2 / 15.0f, 7 / 15.0f, 3 / 15.0f};
		/* the last sample of f2 starts at: */
		size_t		last2 = strlen(f2) - 2,
					last3 = strlen(f3) - 1;

		expect_decode("P2", (const uint8_t *) f2, strlen(f2), 1, 2, 3, want2, 0);
		expect_decode("P3", (const uint8_t *) f3, strlen(f3), 3, 1, 2, want3, 0);
		/*
		 * An ASCII prefix that ends inside or after the last sample can still
		 * be a complete file ("9\n" -> "9"); every shorter one must fail.
		 */
		truncations("P2", (const uint8_t *) f2, strlen(f2), last2, 1, 2, 3);
		truncations("P3", (const uint8_t *) f3, strlen(f3), last3, 3, 1, 2);
		mutations((const uint8_t *) f2, strlen(f2), 1, 2, 3, 2000, 11);
		mutations((const uint8_t *) f3, strlen(f3), 3, 1, 2, 2000, 12);
	}
	/* refusals */
	{
		static const struct
		{
			const char *f;
			clad_status st;
		}			bad[] = {
			{"P5 2 1 255\n\x01\x02\x03", CLAD_ERR_FORMAT},	/* trailing data */
			{"P5 2 1 255\n\x01", CLAD_ERR_FORMAT},	/* short */
			{"P5 2 1 255 \x01", CLAD_ERR_FORMAT},	/* short: ' ' is the separator */
			{"P5 2 1 0\n\x01\x01", CLAD_ERR_FORMAT},	/* maxval 0 */
			{"P5 2 1 65536\n\x01\x01\x01\x01", CLAD_ERR_FORMAT},
			{"P5 0 1 255\n", CLAD_ERR_FORMAT},
			{"P5 -2 1 255\n\x01\x01", CLAD_ERR_FORMAT},
			{"P5 2x 1 255\n\x01\x01", CLAD_ERR_FORMAT},
			{"P52 1 255\n\x01\x01", CLAD_ERR_FORMAT},
			{"P5 2 1 255", CLAD_ERR_FORMAT},
			{"P5 2 1 200\n\x01\xc9", CLAD_ERR_FORMAT},	/* 201 > maxval */
			{"P5 99999999999 1 255\n\x01", CLAD_ERR_FORMAT},
			{"P2 2 1 255\n1 256", CLAD_ERR_FORMAT},
			{"P2 2 1 255\n1 2 3", CLAD_ERR_FORMAT},
			{"P2 2 1 255\n1", CLAD_ERR_FORMAT},
			{"P2 2 1 255\n1 # c\n 2", CLAD_ERR_FORMAT},	/* no comments in the raster */
			{"P2 2 1 255\n1 -2", CLAD_ERR_FORMAT},
			{"P2 2 1 255\n1 2x", CLAD_ERR_FORMAT},
			{"P3 1 1 255\n1 2", CLAD_ERR_FORMAT},
			{"P1 1 1\n1", CLAD_ERR_UNSUPPORTED},
			{"P4 1 1\n\x80", CLAD_ERR_UNSUPPORTED},
			{"P7\nWIDTH 1\n", CLAD_ERR_UNSUPPORTED},
			{"P8 1 1 255\n\x00", CLAD_ERR_FORMAT},
		};

		/* (strlen: none of these holds a NUL) */
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			expect_refused(bad[i].f, (const uint8_t *) bad[i].f, strlen(bad[i].f), 1, 1, 2, MAXPIX,
						   bad[i].st);
		/* strings above with embedded NULs, spelled with their lengths */
		expect_refused("P5 NUL samples short", (const uint8_t *) "P5 2 1 255\n\x00", 12, 1, 1, 2,
					   MAXPIX, CLAD_ERR_FORMAT);
		expect_refused("P5 NUL samples long", (const uint8_t *) "P5 2 1 255\n\x00\x00\x00", 14, 1,
					   1, 2, MAXPIX, CLAD_ERR_FORMAT);
		{
			float		ok[2];

			CHECK(clad_image_decode((const uint8_t *) "P5 2 1 255\n\x00\x00", 13, 1, 1, 2, MAXPIX,
									ok) == CLAD_OK && ok[0] == 0 && ok[1] == 0);
		}
	}
	/* a P5 declaring 65535x65535 with a short raster, and a full-size claim over max_pixels */
	{
		static const char big[] = "P5 65535 65535 255\n\x01\x02";
		static const char big2[] = "P2 65535 65535 255\n1 2 3";

		expect_refused("P5 65535x65535", (const uint8_t *) big, sizeof(big) - 1, 1, 2, 2, MAXPIX,
					   CLAD_ERR_FORMAT);
		expect_refused("P2 65535x65535", (const uint8_t *) big2, sizeof(big2) - 1, 1, 2, 2,
					   MAXPIX, CLAD_ERR_FORMAT);
	}
	{
		/* exactly w*h bytes present, but more pixels than allowed */
		size_t		n = 15 + 300 * 300;
		uint8_t    *b = calloc(1, n);

		memcpy(b, "P5 300 300 255\n", 15);
		expect_refused("P5 over max_pixels", b, n, 1, 2, 2, 300 * 300 - 1, CLAD_ERR_UNSUPPORTED);
		{
			float	   *f = fbuf(4);

			CHECK(clad_image_decode(b, n, 1, 2, 2, 300 * 300, f) == CLAD_OK);
			free(f);
		}
		free(b);
	}
}

/* ------------------------------------------------------------ garbage etc */

static void
test_garbage(void)
{
	uint64_t	seed = 2024;
	float	   *f = fbuf(3 * 8 * 8);
	static const uint8_t prefixes[4][8] = {
		{0}, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, {0xff, 0xd8, 0xff}, {'P', '6'}
	};
	static const int plen[4] = {0, 8, 3, 2};
	int			accepted = 0;

	for (int r = 0; r < 4000; r++)
	{
		int			k = r % 4;
		size_t		n = plen[k] + (size_t) (test_rand(&seed) % 300);
		uint8_t    *b = malloc(n + 1);

		memcpy(b, prefixes[k], plen[k]);
		for (size_t i = plen[k]; i < n; i++)
			b[i] = (uint8_t) test_rand(&seed);
		if (k == 0 && n > 0 && (b[0] == 0x89 || b[0] == 0xff || b[0] == 'P'))
			b[0] = 0;
		if (clad_image_decode(b, n, 3, 8, 8, MAXPIX, f) == CLAD_OK)
			accepted++;
		free(b);
	}
	CHECK_MSG(accepted == 0, "%d garbage inputs decoded", accepted);
	CHECK(clad_image_decode((const uint8_t *) "GIF89a", 6, 3, 8, 8, MAXPIX, f) == CLAD_ERR_FORMAT);
	CHECK(strstr(clad_last_error(), "not a PNG") != NULL);
	CHECK(clad_image_decode(NULL, 0, 3, 8, 8, MAXPIX, f) == CLAD_ERR_FORMAT);
	CHECK(clad_image_decode((const uint8_t *) "P5 1 1 255\n\x01", 12, 2, 8, 8, MAXPIX, f)
		  == CLAD_ERR_INVALID);
	CHECK(clad_image_decode((const uint8_t *) "P5 1 1 255\n\x01", 12, 3, 0, 8, MAXPIX, f)
		  == CLAD_ERR_INVALID);
	CHECK(clad_image_decode((const uint8_t *) "P5 1 1 255\n\x01", 12, 3, 8, 8, MAXPIX, NULL)
		  == CLAD_ERR_INVALID);
	CHECK(clad_image_decode((const uint8_t *) "P5 1 1 255\n\x01", 12, 3, 8, 8, 0, f)
		  == CLAD_ERR_INVALID);
	free(f);
}

/* --------------------------------------------------------------- raw, resize */

static void
test_raw(void)
{
	uint8_t		b[12];
	float		f[12];

	for (int i = 0; i < 12; i++)
		b[i] = (uint8_t) (i * 23);
	CHECK(clad_image_from_raw(b, 12, 3, 2, 2, f) == CLAD_OK);
	for (int i = 0; i < 12; i++)
		CHECK(f[i] == (float) b[i] / 255.0f);
	CHECK(clad_image_from_raw(b, 12, 1, 3, 4, f) == CLAD_OK);
	CHECK(clad_image_from_raw(b, 11, 3, 2, 2, f) == CLAD_ERR_FORMAT);
	CHECK(clad_image_from_raw(b, 13, 3, 2, 2, f) == CLAD_ERR_FORMAT);
	CHECK(clad_image_from_raw(b, 12, 2, 2, 3, f) == CLAD_ERR_INVALID);
}

/*
 * Expected outputs from PyTorch 1.13 (Debian's python3-torch), generated with
 *
 *   import torch, torch.nn.functional as F
 *   for (C,H,W,OH,OW) in cases:
 *       x = torch.tensor([((i*37) % 101 + 3) / 104.0 for i in range(C*H*W)],
 *                        dtype=torch.float32).reshape(1,C,H,W)
 *       y = F.interpolate(x, size=(OH,OW), mode='bilinear', align_corners=False)
 *       print(", ".join("%.9g" % v for v in y.flatten().tolist()))
 */
static const int resize_cases[7][5] = {
	{1, 4, 5, 7, 3}, {1, 5, 5, 2, 3}, {2, 3, 4, 8, 8}, {1, 6, 6, 3, 3}, {1, 1, 1, 2, 2},
	{1, 2, 3, 1, 1}, {1, 7, 3, 3, 7}
};
static const float resize_want0[] = {0.147435889f, 0.740384638f, 0.362179428f, 0.32028389f, 0.682005465f, 0.419413894f, 0.59684068f, 0.588598847f, 0.51098907f, 0.549679458f, 0.49519226f, 0.44070515f, 0.479395658f, 0.401785672f, 0.393544078f, 0.570970714f, 0.308379114f, 0.670100808f, 0.628205121f, 0.25000003f, 0.842948735f};
static const float resize_want1[] = {0.510416627f, 0.617788434f, 0.482371807f, 0.587339699f, 0.209134653f, 0.802083313f};
static const float resize_want2[] = {0.028846154f, 0.117788464f, 0.295673072f, 0.473557711f, 0.651442349f, 0.586538494f, 0.278846145f, 0.125f, 0.0570913441f, 0.14603366f, 0.323918253f, 0.486628622f, 0.634164691f, 0.569260836f, 0.291917056f, 0.153245196f, 0.2265625f, 0.315504789f, 0.493389398f, 0.565054059f, 0.530498803f, 0.465594947f, 0.370342523f, 0.322716355f, 0.396033645f, 0.484975934f, 0.662860572f, 0.643479586f, 0.426832944f, 0.361929089f, 0.44876802f, 0.4921875f, 0.565504789f, 0.60892427f, 0.69576323f, 0.630859375f, 0.414212763f, 0.349308878f, 0.436147839f, 0.479567289f, 0.734975934f, 0.687349737f, 0.592097342f, 0.527193487f, 0.49263823f, 0.427734375f, 0.332481951f, 0.284855783f, 0.904447079f, 0.765775263f, 0.488431484f, 0.423527658f, 0.571063697f, 0.506159842f, 0.228816107f, 0.0901442319f, 0.932692289f, 0.778846145f, 0.471153826f, 0.40625f, 0.584134638f, 0.519230783f, 0.211538464f, 0.057692308f, 0.413461536f, 0.502403855f, 0.680288434f, 0.615384638f, 0.307692319f, 0.242788464f, 0.420673043f, 0.509615362f, 0.441706717f, 0.515474796f, 0.663010776f, 0.59810698f, 0.32076323f, 0.271033645f, 0.448918223f, 0.537860572f, 0.611177921f, 0.593900263f, 0.559344947f, 0.494441122f, 0.399188727f, 0.440504789f, 0.618389368f, 0.707331717f, 0.780649066f, 0.67232573f, 0.455679089f, 0.390775234f, 0.477614194f, 0.609975934f, 0.787860572f, 0.876802862f, 0.768028855f, 0.659705579f, 0.443058878f, 0.378155053f, 0.464993984f, 0.597355723f, 0.775240362f, 0.864182651f, 0.573317289f, 0.556039691f, 0.521484375f, 0.45658052f, 0.361328125f, 0.402644217f, 0.580528855f, 0.669471145f, 0.378605783f, 0.452373773f, 0.599909782f, 0.535006046f, 0.257662266f, 0.207932681f, 0.385817289f, 0.474759609f, 0.346153855f, 0.435096145f, 0.612980723f, 0.548076928f, 0.240384609f, 0.175480768f, 0.353365362f, 0.442307681f};
static const float resize_want3[] = {0.302884609f, 0.528846145f, 0.512019217f, 0.6875f, 0.427884609f, 0.411057711f, 0.586538494f, 0.569711566f, 0.552884579f};
static const float resize_want4[] = {0.028846154f, 0.028846154f, 0.028846154f, 0.028846154f};
static const float resize_want5[] = {0.432692289f};
static const float resize_want6[] = {0.0929487124f, 0.1437729f, 0.296245426f, 0.448717952f, 0.601190448f, 0.753663003f, 0.804487169f, 0.317307681f, 0.368131846f, 0.520604372f, 0.673076928f, 0.40934068f, 0.145604476f, 0.0576924123f, 0.541666627f, 0.592490852f, 0.744963348f, 0.897435904f, 0.633699596f, 0.369963348f, 0.282051265f};
static const float *const resize_want[7] = {
	resize_want0, resize_want1, resize_want2, resize_want3, resize_want4, resize_want5, resize_want6
};

static void
test_resize(void)
{
	for (int k = 0; k < 7; k++)
	{
		int			C = resize_cases[k][0],
					H = resize_cases[k][1],
					W = resize_cases[k][2],
					OH = resize_cases[k][3],
					OW = resize_cases[k][4];
		float	   *in = fbuf((size_t) C * H * W),
				   *out = fbuf((size_t) C * OH * OW);
		float		worst = 0;

		for (int i = 0; i < C * H * W; i++)
			in[i] = (float) ((i * 37) % 101 + 3) / 104.0f;
		clad_image_resize_bilinear(in, C, H, W, out, OH, OW);
		for (int i = 0; i < C * OH * OW; i++)
			worst = fmaxf(worst, fabsf(out[i] - resize_want[k][i]));
		CHECK_MSG(worst <= 1e-6f, "resize %dx%dx%d -> %dx%d: max error %g against torch",
				  C, H, W, OH, OW, worst);
		free(in);
		free(out);
	}
	/* same size: a copy */
	{
		float		in[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f},
					out[6];

		clad_image_resize_bilinear(in, 1, 2, 3, out, 2, 3);
		CHECK(memcmp(in, out, sizeof(in)) == 0);
	}
	/* decoding to another size = decoding, then resizing */
	{
		unsigned   *s = samples(9 * 7 * 3, 255, 4);
		size_t		len;
		uint8_t    *b = make_png(9, 7, PNG_COLOR_TYPE_RGB, 8, 0, s, NULL, 0, NULL, 0, &len);
		float	   *native = planes_of(s, 3, 7, 9, 3, 255.0f),
				   *want = fbuf(3 * 4 * 12);

		clad_image_resize_bilinear(native, 3, 7, 9, want, 4, 12);
		expect_decode("PNG 9x7 -> 12x4", b, len, 3, 4, 12, want, 0.0f);
		free(s);
		free(b);
		free(native);
		free(want);
	}
}

/* ------------------------------------------------------------ float conversion */

/* Random (nc, h, w) planes in [0,1], including the end points 0 and 1. */
static float *
float_planes(int nc, int h, int w, uint64_t seed)
{
	size_t		n = (size_t) nc * h * w;
	float	   *f = fbuf(n);

	for (size_t i = 0; i < n; i++)
		f[i] = (float) (test_rand(&seed) % 1001) / 1000.0f;
	f[0] = 0.0f;
	f[n - 1] = 1.0f;
	return f;
}

/* Sample planes (nc per pixel, interleaved) / maxv as (nc, h, w) planes, alpha kept. */
static float *
all_planes_of(const unsigned *s, int nc, int h, int w, float maxv)
{
	float	   *f = fbuf((size_t) nc * h * w);
	size_t		plane = (size_t) h * w;

	for (size_t p = 0; p < plane; p++)
		for (int k = 0; k < nc; k++)
			f[k * plane + p] = (float) s[p * nc + k] / maxv;
	return f;
}

static void
expect_convert_refused(const char *what, const float *in, int inC, int inH, int inW, int C, int H,
					   int W, float *out, clad_status want)
{
	clad_status st = clad_image_convert(in, inC, inH, inW, C, H, W, out);

	CHECK_MSG(st == want && clad_last_error()[0], "%s: got %s (%s), want %s", what,
			  clad_status_name(st), clad_last_error(), clad_status_name(want));
}

static void
test_convert(void)
{
	const int	h = 5,
				w = 7;
	size_t		plane = (size_t) h * w;
	float	   *out = fbuf(3 * plane);

	/* identity when the layout matches: gray to gray, RGB to RGB */
	for (int C = 1; C <= 3; C += 2)
	{
		float	   *in = float_planes(C, h, w, 10 + C);

		CHECK(clad_image_convert(in, C, h, w, C, h, w, out) == CLAD_OK);
		CHECK_MSG(memcmp(in, out, sizeof(float) * C * plane) == 0, "convert C=%d to itself", C);
		free(in);
	}
	/* gray (and gray + alpha, alpha dropped) to RGB: replicated; gray + alpha to gray */
	for (int inC = 1; inC <= 2; inC++)
	{
		float	   *in = float_planes(inC, h, w, 20 + inC);
		int			same = 1;

		CHECK(clad_image_convert(in, inC, h, w, 3, h, w, out) == CLAD_OK);
		for (int c = 0; c < 3; c++)
			for (size_t i = 0; i < plane; i++)
				same &= out[c * plane + i] == in[i];
		CHECK_MSG(same, "convert %d channels to RGB: gray not replicated", inC);
		CHECK(clad_image_convert(in, inC, h, w, 1, h, w, out) == CLAD_OK);
		CHECK_MSG(memcmp(in, out, sizeof(float) * plane) == 0, "convert %d channels to gray", inC);
		free(in);
	}
	/* RGB and RGBA to gray: 0.299 R + 0.587 G + 0.114 B; RGBA to RGB: alpha dropped */
	for (int inC = 3; inC <= 4; inC++)
	{
		float	   *in = float_planes(inC, h, w, 30 + inC);
		float		worst = 0;

		CHECK(clad_image_convert(in, inC, h, w, 1, h, w, out) == CLAD_OK);
		for (size_t i = 0; i < plane; i++)
		{
			float		y = 0.299f * in[i] + 0.587f * in[plane + i] + 0.114f * in[2 * plane + i];

			worst = fmaxf(worst, fabsf(out[i] - fminf(y, 1.0f)));
			CHECK(out[i] >= 0.0f && out[i] <= 1.0f);
		}
		CHECK_MSG(worst <= 1e-6f, "convert %d channels to gray: off by %g", inC, worst);
		CHECK(clad_image_convert(in, inC, h, w, 3, h, w, out) == CLAD_OK);
		CHECK_MSG(memcmp(in, out, sizeof(float) * 3 * plane) == 0, "convert %d channels to RGB",
				  inC);
		free(in);
	}
	/* white stays white (within rounding) and never exceeds 1; the alpha value does not matter */
	{
		float		in[4] = {1.0f, 1.0f, 1.0f, 0.0f},
					in2[4] = {0.2f, 0.4f, 0.6f, 1.0f},
					g[1],
					g2[1];

		CHECK(clad_image_convert(in, 3, 1, 1, 1, 1, 1, g) == CLAD_OK);
		CHECK_MSG(g[0] <= 1.0f && g[0] >= 1.0f - 1e-6f, "white to gray: %.9g", g[0]);
		CHECK(clad_image_convert(in, 4, 1, 1, 1, 1, 1, g2) == CLAD_OK && g2[0] == g[0]);
		CHECK(clad_image_convert(in2, 4, 1, 1, 1, 1, 1, g) == CLAD_OK);
		in2[3] = 0.0f;
		CHECK(clad_image_convert(in2, 4, 1, 1, 1, 1, 1, g2) == CLAD_OK && g2[0] == g[0]);
	}
	/* another size: the channel conversion, then clad_image_resize_bilinear */
	{
		static const int sizes[4][2] = {{3, 4}, {9, 12}, {1, 1}, {5, 2}};

		for (int inC = 1; inC <= 4; inC++)
			for (int C = 1; C <= 3; C += 2)
				for (int k = 0; k < 4; k++)
				{
					int			H = sizes[k][0],
								W = sizes[k][1];
					float	   *in = float_planes(inC, h, w, 40 + inC * 4 + C),
							   *native = fbuf((size_t) C * plane),
							   *want = fbuf((size_t) C * H * W),
							   *got = fbuf((size_t) C * H * W);

					CHECK(clad_image_convert(in, inC, h, w, C, h, w, native) == CLAD_OK);
					clad_image_resize_bilinear(native, C, h, w, want, H, W);
					CHECK(clad_image_convert(in, inC, h, w, C, H, W, got) == CLAD_OK);
					CHECK_MSG(memcmp(got, want, sizeof(float) * C * H * W) == 0,
							  "convert %dx%dx%d to %dx%dx%d differs from convert + resize", inC, h,
							  w, C, H, W);
					free(in);
					free(native);
					free(want);
					free(got);
				}
	}
	/* values outside [0,1], in any channel (alpha too): CLAD_ERR_NUMERIC */
	{
		static const float bad[4] = {NAN, -0.1f, 1.5f, INFINITY};
		char		msg[64];

		for (int inC = 1; inC <= 4; inC++)
			for (int k = 0; k < 4; k++)
			{
				float	   *in = float_planes(inC, h, w, 50 + inC);
				size_t		at[2] = {3, (size_t) inC * plane - 1};

				for (int j = 0; j < 2; j++)
				{
					float		keep = in[at[j]];

					in[at[j]] = bad[k];
					snprintf(msg, sizeof(msg), "convert %d channels with %g at %zu", inC,
							 (double) bad[k], at[j]);
					expect_convert_refused(msg, in, inC, h, w, 3, h, w, out, CLAD_ERR_NUMERIC);
					expect_convert_refused(msg, in, inC, h, w, 1, 2, 3, out, CLAD_ERR_NUMERIC);
					in[at[j]] = keep;
				}
				CHECK(clad_image_convert(in, inC, h, w, 3, h, w, out) == CLAD_OK);
				free(in);
			}
	}
	/* bad layouts and sizes: CLAD_ERR_INVALID */
	{
		float	   *in = float_planes(4, h, w, 60);

		expect_convert_refused("inC 0", in, 0, h, w, 3, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("inC 5", in, 5, h, w, 3, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("inC -1", in, -1, h, w, 3, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("inH 0", in, 3, 0, w, 3, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("inW 0", in, 3, h, 0, 3, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("inH -2", in, 3, -2, w, 3, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("C 0", in, 3, h, w, 0, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("C 2", in, 3, h, w, 2, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("C 4", in, 4, h, w, 4, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("H 0", in, 3, h, w, 3, 0, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("W 0", in, 3, h, w, 3, h, 0, out, CLAD_ERR_INVALID);
		expect_convert_refused("W -3", in, 3, h, w, 3, h, -3, out, CLAD_ERR_INVALID);
		expect_convert_refused("no input", NULL, 3, h, w, 3, h, w, out, CLAD_ERR_INVALID);
		expect_convert_refused("no output", in, 3, h, w, 3, h, w, NULL, CLAD_ERR_INVALID);
		free(in);
	}
	/* the same picture as clad_image_decode gives from a PNG, at its size and resized */
	{
		static const struct { int ctype, nc, depth; } pngs[] = {
			{PNG_COLOR_TYPE_GRAY, 1, 8}, {PNG_COLOR_TYPE_GRAY_ALPHA, 2, 8},
			{PNG_COLOR_TYPE_RGB, 3, 8}, {PNG_COLOR_TYPE_RGBA, 4, 8}, {PNG_COLOR_TYPE_RGB, 3, 16},
		};
		static const int sizes[2][2] = {{5, 7}, {4, 12}};

		for (size_t i = 0; i < sizeof(pngs) / sizeof(pngs[0]); i++)
		{
			unsigned	maxv = (1u << pngs[i].depth) - 1;
			unsigned   *s = samples(w * h * pngs[i].nc, maxv, 70 + i);
			size_t		len;
			uint8_t    *b = make_png(w, h, pngs[i].ctype, pngs[i].depth, 0, s, NULL, 0, NULL, 0,
									 &len);
			float	   *in = all_planes_of(s, pngs[i].nc, h, w, (float) maxv);
			char		msg[96];

			for (int C = 1; C <= 3; C += 2)
				for (int k = 0; k < 2; k++)
				{
					int			H = sizes[k][0],
								W = sizes[k][1];
					float	   *want = fbuf((size_t) C * H * W);

					CHECK(clad_image_convert(in, pngs[i].nc, h, w, C, H, W, want) == CLAD_OK);
					snprintf(msg, sizeof(msg), "PNG %d channels %d-bit as convert to %dx%dx%d",
							 pngs[i].nc, pngs[i].depth, C, H, W);
					expect_decode(msg, b, len, C, H, W, want, 0.0f);
					free(want);
				}
			free(s);
			free(b);
			free(in);
		}
	}
	free(out);
}

int
main(void)
{
	test_png();
	test_png_ancillary();
	test_png_limits();
	test_jpeg();
	test_jpeg_limits();
	test_pnm();
	test_garbage();
	test_raw();
	test_resize();
	test_convert();
	return test_summary("test_image");
}
