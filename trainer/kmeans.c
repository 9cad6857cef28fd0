/* trainer/kmeans.c: k-means++ and Lloyd's algorithm with restarts. */
#include "kmeans.h"
#include "rng.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static double
sqdist(const float *a, const float *b, int D)
{
	double		s = 0.0;

	for (int d = 0; d < D; d++)
		s += ((double) a[d] - b[d]) * ((double) a[d] - b[d]);
	return s;
}

/* k-means++: each next centre drawn with probability proportional to D(x)^2 */
static void
seed_plus_plus(const float *x, int n, int D, int K, clad_rng *r, float *c, double *d2)
{
	int			first = (int) clad_rng_below(r, (uint64_t) n);

	memcpy(c, x + (size_t) first * D, sizeof(float) * D);
	for (int i = 0; i < n; i++)
		d2[i] = sqdist(x + (size_t) i * D, c, D);
	for (int k = 1; k < K; k++)
	{
		double		total = 0.0, u, acc = 0.0;
		int			pick = n - 1;

		for (int i = 0; i < n; i++)
			total += d2[i];
		u = (double) clad_rng_uniform(r) * total;
		for (int i = 0; i < n; i++)
		{
			acc += d2[i];
			if (acc > u)
			{
				pick = i;
				break;
			}
		}
		if (total <= 0.0)
			pick = (int) clad_rng_below(r, (uint64_t) n);
		memcpy(c + (size_t) k * D, x + (size_t) pick * D, sizeof(float) * D);
		for (int i = 0; i < n; i++)
		{
			double		d = sqdist(x + (size_t) i * D, c + (size_t) k * D, D);

			if (d < d2[i])
				d2[i] = d;
		}
	}
}

/* Lloyd iterations; returns the inertia */
static double
lloyd(const float *x, int n, int D, int K, int max_iter, float *c, int32_t *lab, double *sum,
	  int *count, clad_rng *r)
{
	double		inertia = 0.0;

	for (int i = 0; i < n; i++)
		lab[i] = -1;
	/*
	 * At most max_iter centre updates, each followed by an assignment: a run
	 * stopped by max_iter still returns labels (each point's nearest centre)
	 * and an inertia that are those of the centres it returns.
	 */
	for (int it = 0;; it++)
	{
		int			changed = 0;

		inertia = 0.0;
		for (int i = 0; i < n; i++)
		{
			double		best = DBL_MAX;
			int			bk = 0;

			for (int k = 0; k < K; k++)
			{
				double		d = sqdist(x + (size_t) i * D, c + (size_t) k * D, D);

				if (d < best)
				{
					best = d;
					bk = k;
				}
			}
			inertia += best;
			if (lab[i] != bk)
			{
				lab[i] = bk;
				changed++;
			}
		}
		if (changed == 0 || it == max_iter)
			break;
		memset(sum, 0, sizeof(double) * K * D);
		memset(count, 0, sizeof(int) * K);
		for (int i = 0; i < n; i++)
		{
			count[lab[i]]++;
			for (int d = 0; d < D; d++)
				sum[(size_t) lab[i] * D + d] += x[(size_t) i * D + d];
		}
		for (int k = 0; k < K; k++)
		{
			if (count[k] == 0)
			{
				/* an empty cluster takes a random point */
				int			i = (int) clad_rng_below(r, (uint64_t) n);

				memcpy(c + (size_t) k * D, x + (size_t) i * D, sizeof(float) * D);
				continue;
			}
			for (int d = 0; d < D; d++)
				c[(size_t) k * D + d] = (float) (sum[(size_t) k * D + d] / count[k]);
		}
	}
	return inertia;
}

clad_status
clad_kmeans(const float *x, int n, int D, int K, int restarts, int max_iter,
			uint64_t seed, float *centers, int32_t *labels, double *inertia)
{
	float	   *c = malloc(sizeof(float) * K * D);
	int32_t    *lab = malloc(sizeof(int32_t) * n);
	double	   *d2 = malloc(sizeof(double) * n);
	double	   *sum = malloc(sizeof(double) * K * D);
	int		   *count = malloc(sizeof(int) * K);
	double		best = DBL_MAX;
	clad_status st = CLAD_OK;

	if (n < K || K < 1 || D < 1 || restarts < 1 || max_iter < 1)
		st = clad_fail(CLAD_ERR_INVALID, "k-means needs at least K = %d points (have %d)", K, n);
	else if (!c || !lab || !d2 || !sum || !count)
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory in k-means");
	for (int run = 0; st == CLAD_OK && run < restarts; run++)
	{
		clad_rng	r;
		double		in;

		clad_rng_seed(&r, seed + (uint64_t) run * 7919u);
		seed_plus_plus(x, n, D, K, &r, c, d2);
		in = lloyd(x, n, D, K, max_iter, c, lab, sum, count, &r);
		if (in < best)
		{
			best = in;
			memcpy(centers, c, sizeof(float) * K * D);
			if (labels)
				memcpy(labels, lab, sizeof(int32_t) * n);
		}
	}
	if (st == CLAD_OK && inertia)
		*inertia = best;
	free(c);
	free(lab);
	free(d2);
	free(sum);
	free(count);
	return st;
}
