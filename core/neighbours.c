/* core/neighbours.c: the neighbour confidence (neighbours.h). */
#include "neighbours.h"

#include "gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* bank rows per block of the scan: 256 x 512 floats = 512 kB (half as bfloat16), within a core's L2 */
#define NEIGHBOUR_BLOCK 256

clad_status
clad_neighbours_init(clad_neighbours *nb, const clad_net *clf, int R, const int *pool, int n, int bf16)
{
	memset(nb, 0, sizeof(*nb));
	nb->R = R;
	nb->n = n;
	nb->bf16 = bf16 != 0;
	nb->ntaps = clad_net_num_features(clf);
	if (R != 1 && R != 2 && R != 4)
		return clad_fail(CLAD_ERR_INVALID, "neighbour banks need 1, 2 or 4 turns, not %d", R);
	if (nb->ntaps < 1)
		return clad_fail(CLAD_ERR_INVALID, "the classifier marks no feature taps");
	if (n < 1 || n > (1 << 24))
		return clad_fail(CLAD_ERR_INVALID, "a neighbour bank needs 1 to %d images, not %d", 1 << 24, n);
	for (int t = 0; t < nb->ntaps; t++)
	{
		int			C, H, W;

		clad_net_feature_shape(clf, t, &C, &H, &W);
		if (pool[t] < 1 || pool[t] > H || pool[t] > W)
			return clad_fail(CLAD_ERR_INVALID, "feature tap %d (%dx%d) cannot be pooled to %dx%d cells",
							 t, H, W, pool[t], pool[t]);
		nb->pool[t] = pool[t];
		nb->dim[t] = C * pool[t] * pool[t];
		nb->mean[t] = 0.0f;
		nb->std[t] = 1.0f;
		if (!(nb->bank[t] = nb->owned[t] = calloc((size_t) R * n * nb->dim[t], clad_neighbours_elem_size(nb))))
		{
			clad_neighbours_free(nb);
			return clad_fail(CLAD_ERR_NOMEM, "out of memory for a bank of %d images", n);
		}
	}
	return CLAD_OK;
}

static void
free_scratch(clad_neighbours *nb)
{
	for (int t = 0; t < CLAD_NEIGHBOUR_MAX_TAPS; t++)
	{
		free(nb->feat[t]);
		nb->feat[t] = NULL;
	}
	free(nb->sim);
	free(nb->best);
	free(nb->dist);
	nb->sim = NULL;
	nb->best = NULL;
	nb->dist = NULL;
	nb->cap_rows = 0;
}

void
clad_neighbours_free(clad_neighbours *nb)
{
	free_scratch(nb);
	for (int t = 0; t < CLAD_NEIGHBOUR_MAX_TAPS; t++)
		free(nb->owned[t]);
	memset(nb, 0, sizeof(*nb));
}

size_t
clad_neighbours_elem_size(const clad_neighbours *nb)
{
	return nb->bf16 ? sizeof(clad_bf16) : sizeof(float);
}

float
clad_neighbours_bank_value(const clad_neighbours *nb, int t, size_t k)
{
	return nb->bf16 ? clad_bf16_float(((const clad_bf16 *) nb->bank[t])[k]) : ((const float *) nb->bank[t])[k];
}

void
clad_neighbours_borrow(clad_neighbours *nb, int t, const void *data)
{
	free(nb->owned[t]);
	nb->owned[t] = NULL;
	nb->bank[t] = data;
}

static clad_status
ensure_scratch(clad_neighbours *nb, int rows)
{
	int			groups = rows / nb->R + 1;

	if (rows <= nb->cap_rows)
		return CLAD_OK;
	free_scratch(nb);
	for (int t = 0; t < nb->ntaps; t++)
		if (!(nb->feat[t] = malloc(sizeof(float) * rows * nb->dim[t])))
			goto nomem;
	if (!(nb->sim = malloc(sizeof(float) * NEIGHBOUR_BLOCK)) ||
		!(nb->best = malloc(sizeof(float) * groups)) ||
		!(nb->dist = malloc(sizeof(double) * groups * nb->ntaps)))
		goto nomem;
	nb->cap_rows = rows;
	return CLAD_OK;
nomem:
	free_scratch(nb);
	return clad_fail(CLAD_ERR_NOMEM, "out of memory for the features of %d images", rows);
}

/*
 * out (dim = C * P * P): the map a (C, H, W) average-pooled to P x P cells
 * (PyTorch's adaptive pooling: cell i spans rows floor(i H / P) to
 * ceil((i + 1) H / P)), scaled to unit length (left zero if it is zero).
 */
static void
pool_unit(float *out, const float *a, int C, int H, int W, int P)
{
	double		norm = 0.0;
	float		scale;

	for (int c = 0; c < C; c++)
		for (int i = 0; i < P; i++)
			for (int j = 0; j < P; j++)
			{
				int			h0 = i * H / P, h1 = ((i + 1) * H + P - 1) / P;
				int			w0 = j * W / P, w1 = ((j + 1) * W + P - 1) / P;
				float		s = 0.0f;

				for (int h = h0; h < h1; h++)
					for (int w = w0; w < w1; w++)
						s += a[((size_t) c * H + h) * W + w];
				s /= (float) ((h1 - h0) * (w1 - w0));
				out[((size_t) c * P + i) * P + j] = s;
				norm += (double) s * s;
			}
	if (norm == 0.0)
		return;
	scale = (float) (1.0 / sqrt(norm));
	for (int k = 0; k < C * P * P; k++)
		out[k] *= scale;
}

/* nb->feat[t] (G * R, dim): the pooled unit features of one pass over G images in R turns */
static clad_status
features_of_group(clad_neighbours *nb, clad_net *clf, const float *x, int G, clad_orientation_work *w)
{
	clad_status st;

	if ((st = ensure_scratch(nb, G * nb->R)) != CLAD_OK ||
		(st = clad_orientation_forward(clf, x, G, nb->R, w)) != CLAD_OK)
		return st;
	for (int t = 0; t < nb->ntaps; t++)
	{
		const float *a = clad_net_feature(clf, t);
		int			C, H, W;

		if (!a)
			return clad_fail(CLAD_ERR_INVALID, "the classifier's features are not on the host");
		clad_net_feature_shape(clf, t, &C, &H, &W);
		for (int row = 0; row < G * nb->R; row++)
			pool_unit(nb->feat[t] + (size_t) row * nb->dim[t], a + (size_t) row * C * H * W, C, H, W,
					  nb->pool[t]);
	}
	return CLAD_OK;
}

static clad_status
check_input(const clad_neighbours *nb, const clad_net *clf, int B)
{
	if (B < 1)
		return clad_fail(CLAD_ERR_INVALID, "batch size must be positive");
	if (clad_net_num_features(clf) != nb->ntaps)
		return clad_fail(CLAD_ERR_INVALID, "the classifier has %d feature taps, the bank %d",
						 clad_net_num_features(clf), nb->ntaps);
	return CLAD_OK;
}

clad_status
clad_neighbours_fill(clad_neighbours *nb, clad_net *clf, const float *x, int max_rows,
					 clad_orientation_work *w)
{
	int			C, H, W, group = clad_orientation_group(nb->n, nb->R, max_rows);
	size_t		img;
	clad_status st;

	if ((st = check_input(nb, clf, nb->n)) != CLAD_OK)
		return st;
	for (int t = 0; t < nb->ntaps; t++)
		if (!nb->owned[t])
			return clad_fail(CLAD_ERR_INVALID, "a borrowed neighbour bank cannot be filled");
	clad_net_in_shape(clf, &C, &H, &W);
	img = (size_t) C * H * W;
	for (int s = 0; s < nb->n; s += group)
	{
		int			G = nb->n - s < group ? nb->n - s : group;

		if ((st = features_of_group(nb, clf, x + (size_t) s * img, G, w)) != CLAD_OK)
			return st;
		for (int t = 0; t < nb->ntaps; t++)
			for (int r = 0; r < nb->R; r++)
			{
				size_t		at = ((size_t) r * nb->n + s) * nb->dim[t], len = (size_t) G * nb->dim[t];
				const float *src = nb->feat[t] + (size_t) r * G * nb->dim[t];

				if (nb->bf16)
					clad_bf16_round_array((clad_bf16 *) nb->owned[t] + at, src, len);
				else
					memcpy((float *) nb->owned[t] + at, src, sizeof(float) * len);
			}
	}
	return CLAD_OK;
}

clad_status
clad_neighbour_distances(clad_neighbours *nb, clad_net *clf, const float *x, int B, int max_rows,
						 float *dist, clad_orientation_work *w)
{
	int			C, H, W, group = clad_orientation_group(B, nb->R, max_rows);
	size_t		img;
	clad_status st;

	if ((st = check_input(nb, clf, B)) != CLAD_OK)
		return st;
	clad_net_in_shape(clf, &C, &H, &W);
	img = (size_t) C * H * W;
	for (int s = 0; s < B; s += group)
	{
		int			G = B - s < group ? B - s : group;

		if ((st = features_of_group(nb, clf, x + (size_t) s * img, G, w)) != CLAD_OK)
			return st;
		for (int t = 0; t < nb->ntaps; t++)
		{
			int			D = nb->dim[t];

			for (int g = 0; g < G; g++)
				nb->dist[(size_t) g * nb->ntaps + t] = 0.0;
			/*
			 * The cosines with the bank of turn r, a block of bank rows at a
			 * time for every image of the pass (the block stays in cache
			 * while the images use it), one image at a time: the same calls,
			 * and so the same floats, wherever an image sits in a batch (a
			 * product over the whole batch can round an image by its place).
			 */
			for (int r = 0; r < nb->R; r++)
			{
				for (int g = 0; g < G; g++)
					nb->best[g] = -2.0f;
				for (int b0 = 0; b0 < nb->n; b0 += NEIGHBOUR_BLOCK)
				{
					int			len = nb->n - b0 < NEIGHBOUR_BLOCK ? nb->n - b0 : NEIGHBOUR_BLOCK;
					size_t		at = ((size_t) r * nb->n + b0) * D;

					for (int g = 0; g < G; g++)
					{
						const float *f = nb->feat[t] + ((size_t) r * G + g) * D;

						if (nb->bf16)
							clad_bf16_gemv(len, D, (const clad_bf16 *) nb->bank[t] + at, D, f, nb->sim);
						else
							clad_sgemv(len, D, (const float *) nb->bank[t] + at, D, f, nb->sim);
						for (int i = 0; i < len; i++)
							if (nb->sim[i] > nb->best[g])
								nb->best[g] = nb->sim[i];
					}
				}
				for (int g = 0; g < G; g++)
					nb->dist[(size_t) g * nb->ntaps + t] += (1.0 - (double) nb->best[g]) / nb->R;
			}
		}
		for (size_t i = 0; i < (size_t) G * nb->ntaps; i++)
			dist[(size_t) s * nb->ntaps + i] = (float) nb->dist[i];
	}
	return CLAD_OK;
}

clad_status
clad_neighbour_confidence(clad_neighbours *nb, clad_net *clf, const float *x, int B, int max_rows,
						  float *conf, clad_orientation_work *w)
{
	float		one[CLAD_NEIGHBOUR_MAX_TAPS], *dist = B == 1 ? one : malloc(sizeof(float) * B * nb->ntaps);
	clad_status st;

	if (!dist)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory scoring %d images", B);
	st = clad_neighbour_distances(nb, clf, x, B, max_rows, dist, w);
	for (int b = 0; st == CLAD_OK && b < B; b++)
	{
		double		c = 0.0;

		for (int t = 0; t < nb->ntaps; t++)
			c -= ((double) dist[(size_t) b * nb->ntaps + t] - nb->mean[t]) / nb->std[t];
		conf[b] = (float) c;
	}
	if (dist != one)
		free(dist);
	return st;
}

void
clad_neighbours_set_stats(clad_neighbours *nb, const float *dist, int n)
{
	for (int t = 0; t < nb->ntaps; t++)
	{
		double		s = 0.0, ss = 0.0, mean, var;

		for (int i = 0; i < n; i++)
			s += dist[(size_t) i * nb->ntaps + t];
		mean = n > 0 ? s / n : 0.0;
		for (int i = 0; i < n; i++)
		{
			double		d = dist[(size_t) i * nb->ntaps + t] - mean;

			ss += d * d;
		}
		var = n > 1 ? ss / (n - 1) : 0.0;
		nb->mean[t] = (float) mean;
		/* a floor keeps the sum finite when every held-out image is as near */
		nb->std[t] = (float) (sqrt(var) > 1e-6 ? sqrt(var) : 1e-6);
	}
}
