/* core/image.h: decoding PNG, JPEG and PGM/PPM bytes to (C,H,W) floats, and bilinear resizing.
 *
 * The decoder reads untrusted bytes: it finds the format from the magic
 * bytes, reads the header, and refuses an image whose declared width *
 * height exceeds the caller's max_pixels before it allocates anything for
 * the pixels.  Truncated or corrupt data is an error (libjpeg's warnings,
 * such as "premature end of data", are treated as errors too); progressive
 * JPEGs with more than CLAD_IMAGE_MAX_JPEG_SCANS scans are refused.  Nothing
 * is printed.
 *
 * Pixels come out in [0,1] (8-bit: v / 255; 16-bit PNG: v / 65535; PGM/PPM:
 * v / maxval), converted to C channels:
 *   C = 1: gray as is; colour to luminance 0.299 R + 0.587 G + 0.114 B
 *          (ITU-R 601, computed in float, no rounding to 8 bits);
 *   C = 3: RGB as is; gray replicated to the three channels.
 * Alpha is dropped (not composited); palette images are expanded; CMYK JPEGs
 * (Adobe's inverted convention) are converted with R = (1-C)(1-K) etc.
 * Colour profiles and gamma are ignored, as torchvision/PIL do.  When the
 * image's size is not H x W it is resized with clad_image_resize_bilinear.
 */
#ifndef CLAD_IMAGE_H
#define CLAD_IMAGE_H

#include "status.h"

/* Progressive JPEGs with more scans than this are refused (decompression bombs). */
#define CLAD_IMAGE_MAX_JPEG_SCANS 1000

typedef enum clad_image_format
{
	CLAD_IMAGE_UNKNOWN = 0,
	CLAD_IMAGE_PNG,
	CLAD_IMAGE_JPEG,
	CLAD_IMAGE_PNM				/* PGM/PPM, P2 P3 P5 P6 */
} clad_image_format;

/* The format that bytes' magic announces (CLAD_IMAGE_UNKNOWN when none). */
clad_image_format clad_image_format_of(const uint8_t *bytes, size_t len);

/*
 * Read only the header: the image's width and height, and its channel count
 * before conversion (1 gray, 3 colour; alpha not counted).  Nothing of the
 * pixel data is checked.
 */
clad_status clad_image_probe(const uint8_t *bytes, size_t len,
							 int *width, int *height, int *channels);

/*
 * Decode an image file's bytes to out (C, H, W) in [0,1], C = 1 or 3,
 * resizing (bilinear) when its size is not H x W.  Images with width *
 * height > max_pixels are refused with CLAD_ERR_UNSUPPORTED before any
 * pixel memory is allocated.  On failure out may hold partial data.
 */
clad_status clad_image_decode(const uint8_t *bytes, size_t len, int C, int H, int W,
							  size_t max_pixels, float *out);

/*
 * Raw 8-bit pixels, exactly C*H*W bytes in (C, H, W) order (planar, as in a
 * CIFAR-10 record; for C = 1 simply row-major), to out (C, H, W) as v / 255.
 * Only for callers that explicitly ask for raw pixels: any other length is
 * refused.
 */
clad_status clad_image_from_raw(const uint8_t *bytes, size_t len, int C, int H, int W,
								float *out);

/*
 * Float pixels in [0,1] of any layout (inC, inH, inW) to out (C, H, W):
 * inC 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (alpha dropped), converted to C
 * (1 or 3) as the decoders do and resized with clad_image_resize_bilinear.
 * Every input value must be finite and in [0,1] (CLAD_ERR_NUMERIC otherwise).
 */
clad_status clad_image_convert(const float *in, int inC, int inH, int inW,
							   int C, int H, int W, float *out);

/*
 * Bilinear resize of in (C, H, W) to out (C, OH, OW) with PyTorch's
 * F.interpolate(mode='bilinear', align_corners=False, antialias=False)
 * semantics: source coordinate (d + 0.5) * in/out - 0.5, clamped at 0,
 * neighbours clamped at the last row/column.  in and out must not overlap;
 * all sizes >= 1.
 */
void		clad_image_resize_bilinear(const float *in, int C, int H, int W,
									   float *out, int OH, int OW);

#endif
