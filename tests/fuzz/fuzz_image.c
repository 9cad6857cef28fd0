/*
 * tests/fuzz/fuzz_image.c: libFuzzer harness for the image decoders
 * (PNG through libpng, JPEG through libjpeg-turbo, PGM/PPM by hand), as the
 * extension calls them on a bytea: probe the header, then decode to the model's
 * shape.  The first byte picks the target shape (gray 28x28, which keeps most
 * digit-sized inputs unresized, or colour 32x32, which converts and resizes);
 * the rest is the file.  A limit of 4M pixels stands in for
 * clad.max_image_pixels, so a declared size beyond it is refused, not allocated.
 */
#include "image.h"
#include "status.h"

#include <stdint.h>
#include <stdlib.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static float out[3 * 32 * 32];
	int			w, h, c;
	int			colour;

	if (size < 1)
		return 0;
	colour = data[0] & 1;
	data++;
	size--;
	(void) clad_image_format_of(data, size);
	(void) clad_image_probe(data, size, &w, &h, &c);
	if (colour)
		(void) clad_image_decode(data, size, 3, 32, 32, (size_t) 1 << 22, out);
	else
		(void) clad_image_decode(data, size, 1, 28, 28, (size_t) 1 << 22, out);
	return 0;
}
