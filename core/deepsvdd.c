/* core/deepsvdd.c: the Deep SVDD confidence (deepsvdd.h). */
#include "deepsvdd.h"

#include <stddef.h>

void
clad_svdd_confidence(const float *z, const float *c, int B, int latent, float *conf)
{
	for (int b = 0; b < B; b++)
	{
		double		d2 = 0.0;

		for (int j = 0; j < latent; j++)
		{
			double		d = (double) z[(size_t) b * latent + j] - c[j];

			d2 += d * d;
		}
		conf[b] = (float) -d2;
	}
}
