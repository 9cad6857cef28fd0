/* core/pool.c: max pooling (any square window, stride, padding) and global average pooling. */
#include "layers.h"
#include "parallel.h"
#include "vectorize.h"

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

/* v at cell `at` takes the window when larger; the first maximum wins; a NaN wins and stays, as PyTorch */
static inline void
pool_pick(float v, int at, float *best, int *where)
{
	int			take = (v > *best) | ((v != v) & (*best == *best));

	/* selects, not a branch: which cell wins is data, unpredictable */
	*best = take ? v : *best;
	*where = take ? at : *where;
}

typedef uint32_t __attribute__((may_alias)) pool_bits;

/* Whether any of x[0..n) is a NaN (on the bits: a float compare would stop the vectoriser). */
CLAD_VECTOR_LOOP
static int
any_nan(const float *x, int n)
{
	const pool_bits *u = (const pool_bits *) x;
	int			any = 0;

	for (int i = 0; i < n; i++)
		any |= (u[i] & 0x7fffffffu) > 0x7f800000u;
	return any;
}

/*
 * One output row of 2x2 windows from input rows r0 and r1 (cells at0 + ...
 * and at1 + ...) holding no NaN: the cells in the generic loop's order (row
 * by row, left to right), the first maximum winning, as pool_pick, in a
 * form the vectoriser takes (the scalar loop was an eighth of DEC's time).
 */
CLAD_VECTOR_LOOP
static void
maxpool2_row(float *restrict y, int32_t *restrict am, const float *restrict r0, const float *restrict r1,
			 int at0, int at1, int OW)
{
	for (int ow = 0; ow < OW; ow++)
	{
		float		best = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
		int			where = at0 + 2 * ow;

		if (b > best)
		{
			best = b;
			where = at0 + 2 * ow + 1;
		}
		if (c > best)
		{
			best = c;
			where = at1 + 2 * ow;
		}
		if (d > best)
		{
			best = d;
			where = at1 + 2 * ow + 1;
		}
		y[ow] = best;
		am[ow] = where;
	}
}

/* 2x2 windows, stride 2, no padding (the autoencoders' pools): every window is whole. */
static void
maxpool2_forward(float *out, int32_t *argmax, const float *in, const clad_pool_geom *g)
{
	size_t		planes = (size_t) g->B * g->C;

	for (size_t p = 0; p < planes; p++)
	{
		const float *x = in + p * g->H * g->W;
		float	   *y = out + p * g->OH * g->OW;
		int32_t    *am = argmax ? argmax + p * g->OH * g->OW : NULL;

		for (int oh = 0; oh < g->OH; oh++)
		{
			const float *r0 = x + 2 * oh * g->W, *r1 = r0 + g->W;
			int			at0 = 2 * oh * g->W, at1 = at0 + g->W;

			if (am && !any_nan(r0, 2 * g->OW) && !any_nan(r1, 2 * g->OW))
			{
				maxpool2_row(y + oh * g->OW, am + oh * g->OW, r0, r1, at0, at1, g->OW);
				continue;
			}
			for (int ow = 0; ow < g->OW; ow++)
			{
				int			c = 2 * ow, where = at0 + c;
				float		best = r0[c];

				/* the generic loop's order: row by row, left to right */
				pool_pick(r0[c + 1], at0 + c + 1, &best, &where);
				pool_pick(r1[c], at1 + c, &best, &where);
				pool_pick(r1[c + 1], at1 + c + 1, &best, &where);
				y[oh * g->OW + ow] = best;
				if (am)
					am[oh * g->OW + ow] = where;
			}
		}
	}
}

/*
 * The window of output (oh, ow) clipped to the input, scanned row by row, left
 * to right from its first real cell (padding never wins).
 */
static inline void
pool_window(const float *x, const clad_pool_geom *g, int oh, int ow, float *y, int32_t *am)
{
	int			h0 = oh * g->stride - g->pad, h1 = h0 + g->k;
	int			w0 = ow * g->stride - g->pad, w1 = w0 + g->k;
	int			where;
	float		best;

	if (h0 < 0)
		h0 = 0;
	if (h1 > g->H)
		h1 = g->H;
	if (w0 < 0)
		w0 = 0;
	if (w1 > g->W)
		w1 = g->W;
	where = h0 * g->W + w0;
	best = x[where];
	for (int ih = h0; ih < h1; ih++)
		for (int iw = w0; iw < w1; iw++)
			pool_pick(x[ih * g->W + iw], ih * g->W + iw, &best, &where);
	*y = best;
	if (am)
		*am = where;
}

/*
 * n outputs of one row of 3x3 stride-2 windows that lie in the map, the
 * i-th over columns 2*i .. 2*i+2 of input rows r0, r1, r2 (cells
 * at0 + ..., at1 + ..., at2 + ...), none holding a NaN: the nine cells in
 * the generic loop's order (row by row, left to right), the first maximum
 * winning, as pool_pick, in a form the vectoriser takes (the scalar picks
 * were 7% of ODIN's work at batch 64).  A window with only two rows in the
 * map passes its last row twice: a strict ">" never takes a cell again.
 */
CLAD_VECTOR_LOOP
static void
maxpool3s2_row(float *restrict y, int32_t *restrict am, const float *restrict r0,
			   const float *restrict r1, const float *restrict r2, int at0, int at1, int at2,
			   int n)
{
	for (int i = 0; i < n; i++)
	{
		int			c = 2 * i;
		float		best = r0[c];
		int			where = at0 + c;

#define MAXPOOL3_TAKE(row, at, dc) \
		if (row[c + (dc)] > best) \
		{ \
			best = row[c + (dc)]; \
			where = (at) + c + (dc); \
		}
		MAXPOOL3_TAKE(r0, at0, 1);
		MAXPOOL3_TAKE(r0, at0, 2);
		MAXPOOL3_TAKE(r1, at1, 0);
		MAXPOOL3_TAKE(r1, at1, 1);
		MAXPOOL3_TAKE(r1, at1, 2);
		MAXPOOL3_TAKE(r2, at2, 0);
		MAXPOOL3_TAKE(r2, at2, 1);
		MAXPOOL3_TAKE(r2, at2, 2);
#undef MAXPOOL3_TAKE
		y[i] = best;
		am[i] = where;
	}
}

/*
 * 3x3 windows, stride 2, padding 1 (ResNet's stem).  In a plane without a
 * NaN, each row's windows whose columns lie in the map go through
 * maxpool3s2_row (32 at a time, their argmax kept in a buffer when the
 * caller wants none); the others (the first column, the last when the width
 * is even) and every window of a plane holding a NaN go through pool_window.
 */
static void
maxpool3s2p1_forward(float *out, int32_t *argmax, const float *in, const clad_pool_geom *g)
{
	size_t		planes = (size_t) g->B * g->C;
	int			H = g->H, W = g->W;
	/* the outputs whose three columns are real: 1 <= ow and 2*ow+1 < W */
	int			ow_end = (W - 2) / 2 + 1;

	if (ow_end > g->OW)
		ow_end = g->OW;
	for (size_t p = 0; p < planes; p++)
	{
		const float *x = in + p * H * W;
		float	   *y = out + p * g->OH * g->OW;
		int32_t    *am = argmax ? argmax + p * g->OH * g->OW : NULL;
		int			clean = !any_nan(x, H * W);

		for (int oh = 0; oh < g->OH; oh++)
		{
			int			h0 = oh == 0 ? 0 : 2 * oh - 1, h2 = 2 * oh + 1 < H ? 2 * oh + 1 : 2 * oh;
			int			h1 = oh == 0 ? 1 : 2 * oh;
			int			o = oh * g->OW, ow = 0;

			if (H == 1)
				h1 = h2 = 0;	/* a single-row map: its row three times */
			if (clean)
			{
				pool_window(x, g, oh, 0, y + o, am ? am + o : NULL);
				for (int lo = 1; lo < ow_end; lo += 32)
				{
					int			n = ow_end - lo < 32 ? ow_end - lo : 32, c = 2 * lo - 1;
					int32_t		spare[32];

					maxpool3s2_row(y + o + lo, am ? am + o + lo : spare, x + h0 * W + c, x + h1 * W + c,
								   x + h2 * W + c, h0 * W + c, h1 * W + c, h2 * W + c, n);
				}
				ow = ow_end > 1 ? ow_end : 1;	/* the first column, then the windows done above */
			}
			for (; ow < g->OW; ow++)
				pool_window(x, g, oh, ow, y + o + ow, am ? am + o + ow : NULL);
		}
	}
}

/* Max pool over every (image, channel) plane, argmax recorded when asked. */
static void
maxpool_forward_planes(float *out, int32_t *argmax, const float *in, const clad_pool_geom *g)
{
	size_t		planes = (size_t) g->B * g->C;

	if (g->k == 2 && g->stride == 2 && g->pad == 0)
	{
		maxpool2_forward(out, argmax, in, g);
		return;
	}
	if (g->k == 3 && g->stride == 2 && g->pad == 1)
	{
		maxpool3s2p1_forward(out, argmax, in, g);
		return;
	}

	for (size_t p = 0; p < planes; p++)
	{
		const float *x = in + p * g->H * g->W;
		float	   *y = out + p * g->OH * g->OW;
		int32_t    *am = argmax ? argmax + p * g->OH * g->OW : NULL;

		for (int oh = 0; oh < g->OH; oh++)
			for (int ow = 0; ow < g->OW; ow++)
				pool_window(x, g, oh, ow, y + oh * g->OW + ow, am ? am + oh * g->OW + ow : NULL);
	}
}

/* din += dout at each window's argmax, plane by plane. */
static void
maxpool_backward_planes(float *din, const float *dout, const int32_t *argmax,
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

/*
 * Max pooling over the (image, channel) planes, which are independent: the
 * threads each take a run of planes, seen as one image of that many
 * channels.
 */
typedef struct maxpool_job
{
	float	   *y;				/* forward: out; backward: din */
	int32_t    *argmax;
	const float *x;				/* forward: in; backward: dout */
	const clad_pool_geom *g;
	int			backward;
} maxpool_job;

/* One thread's planes of a max pool pass. */
static void
maxpool_range(size_t lo, size_t hi, void *p)
{
	const maxpool_job *j = p;
	clad_pool_geom sub = *j->g;
	size_t		in_n = (size_t) sub.H * sub.W, out_n = (size_t) sub.OH * sub.OW;

	sub.B = 1;
	sub.C = (int) (hi - lo);
	if (j->backward)
		maxpool_backward_planes(j->y + lo * in_n, j->x + lo * out_n, j->argmax + lo * out_n, &sub);
	else
		maxpool_forward_planes(j->y + lo * out_n, j->argmax ? j->argmax + lo * out_n : NULL,
							   j->x + lo * in_n, &sub);
}

void
clad_maxpool_forward(float *out, int32_t *argmax, const float *in, const clad_pool_geom *g)
{
	maxpool_job j = {out, argmax, in, g, 0};

	clad_parallel_for((size_t) g->B * g->C, clad_parallel_items_each((size_t) g->H * g->W, 16384),
					  maxpool_range, &j);
}

void
clad_maxpool_backward(float *din, const float *dout, const int32_t *argmax,
					  const clad_pool_geom *g)
{
	maxpool_job j = {din, (int32_t *) argmax, dout, g, 1};

	clad_parallel_for((size_t) g->B * g->C, clad_parallel_items_each((size_t) g->H * g->W, 16384),
					  maxpool_range, &j);
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
