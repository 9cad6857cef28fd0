/* core/orientation.c: quarter turns of images and the orientation confidence. */
#include "orientation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
clad_rotate90(float *dst, const float *src, int B, int C, int H, int W, int r)
{
	size_t		plane = (size_t) H * W;

	r &= 3;
	for (size_t p = 0; p < (size_t) B * C; p++)
	{
		const float *s = src + p * plane;
		float	   *d = dst + p * plane;

		/* out[i][j] reads: r = 1: s[j][W-1-i]; 2: s[H-1-i][W-1-j]; 3: s[H-1-j][i] */
		switch (r)
		{
			case 0:
				memcpy(d, s, sizeof(float) * plane);
				break;
			case 1:
				for (int i = 0; i < H; i++)
					for (int j = 0; j < W; j++)
						d[(size_t) i * W + j] = s[(size_t) j * W + (W - 1 - i)];
				break;
			case 2:
				for (size_t i = 0; i < plane; i++)
					d[i] = s[plane - 1 - i];
				break;
			default:
				for (int i = 0; i < H; i++)
					for (int j = 0; j < W; j++)
						d[(size_t) i * W + j] = s[(size_t) (H - 1 - j) * W + i];
				break;
		}
	}
}

void
clad_orientation_work_free(clad_orientation_work *w)
{
	free(w->x);
	free(w->sum);
	memset(w, 0, sizeof(*w));
}

static clad_status
ensure_work(clad_orientation_work *w, int rows, size_t img)
{
	if (rows <= w->cap_rows && w->x)
		return CLAD_OK;
	clad_orientation_work_free(w);
	w->x = malloc(sizeof(float) * rows * img);
	w->sum = malloc(sizeof(double) * rows);
	if (!w->x || !w->sum)
	{
		clad_orientation_work_free(w);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for %d turned images", rows);
	}
	w->cap_rows = rows;
	return CLAD_OK;
}

/* log sum_k softmax(l)[k * R + r] for one row of K * R logits */
static double
log_prob_of_turn(const float *l, int K, int R, int r)
{
	float		m = l[0];
	double		all = 0.0, turn = 0.0;

	for (int i = 1; i < K * R; i++)
		if (l[i] > m)
			m = l[i];
	for (int i = 0; i < K * R; i++)
	{
		double		e = exp((double) l[i] - m);

		all += e;
		if (i % R == r)
			turn += e;
	}
	return log(turn) - log(all);
}

int
clad_orientation_group(int B, int R, int max_rows)
{
	int			group = max_rows / R;

	if (group < 1)
		group = 1;
	return group > B ? B : group;
}

clad_status
clad_orientation_forward(clad_net *clf, const float *x, int G, int R, clad_orientation_work *w)
{
	int			C, H, W;
	size_t		img;
	clad_status st;

	clad_net_in_shape(clf, &C, &H, &W);
	img = (size_t) C * H * W;
	if ((st = ensure_work(w, G * R, img)) != CLAD_OK)
		return st;
	for (int r = 0; r < R; r++)
		clad_rotate90(w->x + (size_t) r * G * img, x, G, C, H, W, r * 4 / R);
	return clad_net_forward(clf, w->x, G * R, CLAD_EVAL);
}

clad_status
clad_orientation_confidence(clad_net *clf, const float *x, int B, int K, int R,
							int max_rows, float *conf, float *log_prob,
							clad_orientation_work *w)
{
	int			C, H, W, group;
	size_t		img;
	clad_status st;

	clad_net_in_shape(clf, &C, &H, &W);
	img = (size_t) C * H * W;
	if ((R != 2 && R != 4) || K < 1 || (H != W && R == 4))
		return clad_fail(CLAD_ERR_INVALID, "orientation confidence needs 2 half turns or 4 quarter turns "
						 "(of square images), not %d", R);
	if (clad_net_out_numel(clf) != (size_t) K * R)
		return clad_fail(CLAD_ERR_INVALID, "classifier has %zu outputs, not %d clusters x %d turns",
						 clad_net_out_numel(clf), K, R);
	if (B < 1)
		return clad_fail(CLAD_ERR_INVALID, "batch size must be positive");
	/* images per forward pass: every turn of an image in the same pass */
	group = clad_orientation_group(B, R, max_rows);
	for (int s = 0; s < B; s += group)
	{
		int			G = B - s < group ? B - s : group;
		const float *out;

		if ((st = clad_orientation_forward(clf, x + (size_t) s * img, G, R, w)) != CLAD_OK)
			return st;
		out = clad_net_output(clf);
		for (int g = 0; g < G; g++)
			w->sum[g] = 0.0;
		for (int r = 0; r < R; r++)
			for (int g = 0; g < G; g++)
			{
				double		lp = log_prob_of_turn(out + ((size_t) r * G + g) * K * R, K, R, r);

				w->sum[g] += lp;
				if (log_prob)
					log_prob[(size_t) (s + g) * R + r] = (float) lp;
			}
		if (conf)
			for (int g = 0; g < G; g++)
				conf[s + g] = (float) exp(w->sum[g] / R);
	}
	return CLAD_OK;
}
