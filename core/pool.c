/* core/pool.c: max pooling (any square window, stride, padding) and global average pooling. */
#include "layers.h"

#include <math.h>

clad_status
clad_pool_geom_init(clad_pool_geom *g, int B, int C, int H, int W, int k, int stride, int pad)
{
	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || k <= 0 || stride <= 0 || pad < 0 || 2 * pad > k)
		return clad_fail(CLAD_ERR_INVALID, "bad max-pool geometry");
	if (H + 2 * pad < k || W + 2 * pad < k)
		return clad_fail(CLAD_ERR_SHAPE, "max-pool window %d larger than input %dx%d", k, H, W);
	*g = (clad_pool_geom) {B, C, H, W, k, stride, pad,
		(H + 2 * pad - k) / stride + 1, (W + 2 * pad - k) / stride + 1};
	return CLAD_OK;
}

void
clad_maxpool_forward(float *out, int32_t *argmax, const float *in, const clad_pool_geom *g)
{
	size_t		planes = (size_t) g->B * g->C;

	for (size_t p = 0; p < planes; p++)
	{
		const float *x = in + p * g->H * g->W;
		float	   *y = out + p * g->OH * g->OW;
		int32_t    *am = argmax ? argmax + p * g->OH * g->OW : NULL;

		for (int oh = 0; oh < g->OH; oh++)
			for (int ow = 0; ow < g->OW; ow++)
			{
				float		best = -INFINITY;
				int32_t		where = -1;

				for (int kh = 0; kh < g->k; kh++)
				{
					int			ih = oh * g->stride - g->pad + kh;

					if (ih < 0 || ih >= g->H)
						continue;
					for (int kw = 0; kw < g->k; kw++)
					{
						int			iw = ow * g->stride - g->pad + kw;
						float		v;

						if (iw < 0 || iw >= g->W)
							continue;
						v = x[ih * g->W + iw];
						/* first maximum wins, NaN propagates, as PyTorch */
						if (v > best || isnan(v) || where < 0)
						{
							best = v;
							where = ih * g->W + iw;
							if (isnan(v))
								goto found;
						}
					}
				}
		found:
				y[oh * g->OW + ow] = best;
				if (am)
					am[oh * g->OW + ow] = where;
			}
	}
}

void
clad_maxpool_backward(float *din, const float *dout, const int32_t *argmax,
					  const clad_pool_geom *g)
{
	size_t		planes = (size_t) g->B * g->C;
	size_t		on = (size_t) g->OH * g->OW;

	for (size_t p = 0; p < planes; p++)
	{
		float	   *dx = din + p * g->H * g->W;

		for (size_t i = 0; i < on; i++)
			dx[argmax[p * on + i]] += dout[p * on + i];
	}
}

void
clad_avgpool_forward(float *out, const float *in, int B, int C, int S)
{
	for (size_t p = 0; p < (size_t) B * C; p++)
	{
		float		s = 0.0f;

		for (int i = 0; i < S; i++)
			s += in[p * S + i];
		out[p] = s / (float) S;
	}
}

void
clad_avgpool_backward(float *din, const float *dout, int B, int C, int S)
{
	for (size_t p = 0; p < (size_t) B * C; p++)
	{
		float		d = dout[p] / (float) S;

		for (int i = 0; i < S; i++)
			din[p * S + i] += d;
	}
}
