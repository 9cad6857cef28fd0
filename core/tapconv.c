/* core/tapconv.c: small-map convolution as a sum over the taps that meet real
 * pixels (tapconv.h): building plans, packing weights, the channel-last
 * layouts and the inference passes; the panel kernels are tapconv_kernels.c's,
 * the training passes tapconv_training.c's.
 *
 * Weights are packed per tap in panels of 16 output channels: panel p is a
 * contiguous (K, 16) block holding W[k, 16p .. 16p+15].  A pass over a panel
 * reads its K x 64 bytes in order, which the hardware prefetchers stream at
 * full speed; a row-major (K, M) matrix read 16 columns at a time would
 * instead jump M * 4 bytes per row and run several times slower at batch 1,
 * where every weight is used once and the pass is bound by memory reads.
 */
#include "tapconv_internal.h"
#include "parallel.h"
#include "vectorize.h"
#include "bigalloc.h"

#include <stdlib.h>
#include <string.h>

int
clad_tapconv_supported(const clad_conv_geom *g)
{
	return g->C % PANEL == 0 && g->OC % PANEL == 0;
}

/*
 * Pack the weights (OC, C, KH, KW) of the taps at kernel positions idx[0..ntaps)
 * for one direction, tap t's panels at panels + t * stride:
 *   forward:        OC/16 panels of (C, 16), [(oc/16 * C + c) * 16 + oc%16] = w[oc, c, tap];
 *   input gradient: C/16 panels of (OC, 16), [(c/16 * OC + oc) * 16 + c%16] = w[oc, c, tap].
 * At load time once, in training at every call (the weights change every
 * step); split among the threads by 16-row blocks of output channels, the
 * loops ordered so that each panel row of 16 is written in one go.
 */
typedef struct pack_job
{
	float	   *panels;
	const float *weight;
	const int  *idx;
	size_t		stride;
	int			ntaps, OC, C, kk, backward;
} pack_job;

/* One thread's 16-row blocks of a weight packing. */
static void
pack_range(size_t lo, size_t hi, void *p)
{
	const pack_job *j = p;

	for (size_t ob = lo; ob < hi; ob++)
		if (j->backward)
			for (size_t oc = ob * PANEL; oc < (ob + 1) * PANEL; oc++)
				for (int c = 0; c < j->C; c++)
				{
					const float *src = j->weight + (oc * j->C + c) * j->kk;
					size_t		at = ((size_t) (c / PANEL) * j->OC + oc) * PANEL + c % PANEL;

					for (int t = 0; t < j->ntaps; t++)
						j->panels[t * j->stride + at] = src[j->idx[t]];
				}
		else
			for (int c = 0; c < j->C; c++)
				for (int o = 0; o < PANEL; o++)
				{
					const float *src = j->weight + ((ob * PANEL + o) * j->C + c) * j->kk;
					size_t		at = (ob * j->C + c) * PANEL + o;

					for (int t = 0; t < j->ntaps; t++)
						j->panels[t * j->stride + at] = src[j->idx[t]];
				}
}

/* Pack the taps' weights for one direction (above), split among the threads. */
void
tapconv_pack_panels(float *panels, size_t stride, const float *weight, const clad_conv_geom *g,
					const int *idx, int ntaps, int backward)
{
	pack_job	j = {panels, weight, idx, stride, ntaps, g->OC, g->C, g->KH * g->KW, backward};

	clad_parallel_for((size_t) g->OC / PANEL,
					  clad_parallel_items_each((size_t) PANEL * g->C * ntaps, 16384), pack_range, &j);
}

/* Bytes of one panel element. */
static size_t
element_bytes(clad_precision p)
{
	return p == CLAD_PRECISION_BF16 ? sizeof(clad_bf16) : sizeof(float);
}

/*
 * Point every tap at its fwd and bwd panels inside tc->panels (built plans
 * and borrowed alike): per tap its fwd panels, then its bwd panels unless
 * the plan is shared.
 */
static void
point_taps(clad_tapconv *tc)
{
	/* bytes of one tap's fwd (or bwd) panels */
	size_t		per = element_bytes(tc->precision) * tc->g.C * tc->g.OC;
	int			copies = tc->shared ? 1 : 2;
	char	   *base = tc->panels;

	for (int i = 0; i < tc->ntaps; i++)
	{
		tc->taps[i].fwd = base + per * copies * i;
		tc->taps[i].bwd = tc->shared ? NULL : base + per * (copies * i + 1);
	}
}

/* Bytes of the panels of a plan with ntaps taps. */
static size_t
panels_bytes_of(const clad_conv_geom *g, int ntaps, int shared, clad_precision p)
{
	return element_bytes(p) * g->C * g->OC * (shared ? 1 : 2) * (ntaps ? ntaps : 1);
}

clad_status
clad_tapconv_build(clad_tapconv *tc, const clad_conv_geom *g, const float *weight)
{
	return clad_tapconv_build_inference(tc, g, weight, CLAD_PRECISION_FP32);
}

/*
 * Pack the panels of a plan whose taps are known (tc->ntaps, tc->shared,
 * idx: their kernel positions) into tc->panels: per tap its forward panels,
 * then (unless shared) its input-gradient panels, as point_taps lays them.
 * bf16 panels are packed as floats first, then rounded.
 */
static clad_status
pack_plan(clad_tapconv *tc, const float *weight, const int *idx)
{
	const clad_conv_geom *g = &tc->g;
	size_t		per = (size_t) g->C * g->OC, step = per * (tc->shared ? 1 : 2);
	size_t		n = step * tc->ntaps;
	float	   *f = tc->precision == CLAD_PRECISION_FP32 ? tc->panels : clad_big_alloc(sizeof(float) * n);

	if (!f)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory packing a convolution's weights");
	tapconv_pack_panels(f, step, weight, g, idx, tc->ntaps, 0);
	if (!tc->shared)
		tapconv_pack_panels(f + per, step, weight, g, idx, tc->ntaps, 1);
	if (f != tc->panels)
	{
		clad_bf16_round_array(tc->panels, f, n);
		clad_big_free(f, sizeof(float) * n);
	}
	return CLAD_OK;
}

clad_status
clad_tapconv_build_inference(clad_tapconv *tc, const clad_conv_geom *g, const float *weight,
							 clad_precision p)
{
	int			ntap_all = g->KH * g->KW;
	int			P = g->OH * g->OW;
	int			maxpairs = 0;
	int		   *idx;			/* kernel position (kh * KW + kw) of each kept tap */

	memset(tc, 0, sizeof(*tc));
	if (weight && !clad_tapconv_supported(g))
		return clad_fail(CLAD_ERR_UNSUPPORTED, "inference plans need channels in multiples of %d", PANEL);
	tc->g = *g;
	tc->taps = calloc(ntap_all, sizeof(clad_tap));
	idx = calloc(ntap_all, sizeof(int));
	if (!tc->taps || !idx)
	{
		free(tc->taps);
		free(idx);
		tc->taps = NULL;
		return clad_fail(CLAD_ERR_NOMEM, "out of memory planning a convolution");
	}
	for (int kh = 0; kh < g->KH; kh++)
		for (int kw = 0; kw < g->KW; kw++)
		{
			clad_tap   *t = &tc->taps[tc->ntaps];
			int			n = 0;

			t->out_pos = malloc(sizeof(int32_t) * P);
			t->in_pos = malloc(sizeof(int32_t) * P);
			if (!t->out_pos || !t->in_pos)
				goto nomem;
			for (int oh = 0; oh < g->OH; oh++)
				for (int ow = 0; ow < g->OW; ow++)
				{
					int			ih = oh * g->stride - g->pad + kh;
					int			iw = ow * g->stride - g->pad + kw;

					if (ih >= 0 && ih < g->H && iw >= 0 && iw < g->W)
					{
						t->out_pos[n] = oh * g->OW + ow;
						t->in_pos[n] = ih * g->W + iw;
						n++;
					}
				}
			if (n == 0)
			{
				/* this tap only ever sees padding: drop it */
				free(t->out_pos);
				free(t->in_pos);
				t->out_pos = t->in_pos = NULL;
				continue;
			}
			t->npairs = n;
			idx[tc->ntaps++] = kh * g->KW + kw;
		}
	for (int i = 0; i < tc->ntaps; i++)
		maxpairs = tc->taps[i].npairs > maxpairs ? tc->taps[i].npairs : maxpairs;
	tc->shared = maxpairs <= CLAD_TAPCONV_SHARED_MAX_PAIRS && g->OC >= CLAD_TAPCONV_SHARED_MIN_OC;
	if (weight)
	{
		tc->precision = p;
		tc->panels_bytes = panels_bytes_of(g, tc->ntaps, tc->shared, p);
		if (!(tc->panels = clad_big_alloc(tc->panels_bytes)))
		{
			tc->panels_bytes = 0;
			goto nomem_all;
		}
		point_taps(tc);
		if (pack_plan(tc, weight, idx) != CLAD_OK)
			goto nomem_all;
	}
	free(idx);
	return CLAD_OK;
nomem:
	tc->ntaps++;				/* free the partly built tap too */
nomem_all:
	free(idx);
	clad_tapconv_free(tc);
	return clad_fail(CLAD_ERR_NOMEM, "out of memory planning a convolution");
}

clad_status
clad_tapconv_build_packed(clad_tapconv *tc, const clad_conv_geom *g, const void *panels,
						  size_t avail_bytes, clad_precision p, size_t *used_bytes)
{
	clad_status st;

	*used_bytes = 0;
	if (!clad_tapconv_supported(g))
		return clad_fail(CLAD_ERR_UNSUPPORTED, "inference plans need channels in multiples of %d", PANEL);
	if ((st = clad_tapconv_build(tc, g, NULL)) != CLAD_OK)
		return st;
	if (panels_bytes_of(g, tc->ntaps, tc->shared, p) > avail_bytes)
	{
		size_t		need = panels_bytes_of(g, tc->ntaps, tc->shared, p);

		clad_tapconv_free(tc);
		return clad_fail(CLAD_ERR_FORMAT, "packed convolution weights: %zu bytes left, the plan needs %zu",
						 avail_bytes, need);
	}
	/* read only through the taps; the cast keeps one struct for both kinds of plan */
	tc->panels = (void *) panels;
	tc->precision = p;
	tc->panels_bytes = panels_bytes_of(g, tc->ntaps, tc->shared, p);
	tc->borrowed = 1;
	point_taps(tc);
	*used_bytes = tc->panels_bytes;
	return CLAD_OK;
}

void
clad_tapconv_free(clad_tapconv *tc)
{
	if (tc->taps)
		for (int i = 0; i < tc->g.KH * tc->g.KW; i++)
		{
			free(tc->taps[i].out_pos);
			free(tc->taps[i].in_pos);
		}
	if (!tc->borrowed)
		clad_big_free(tc->panels, tc->panels_bytes);
	free(tc->taps);
	memset(tc, 0, sizeof(*tc));
}

/*
 * A shared plan's input gradient with at least this many rows in a tap (a
 * batch) lays the tap's panels out by column first (gemm_t_columns): read
 * in place, a column's panels lie M * PANEL floats apart, on the same few
 * L1 sets, and each is read once per four rows.  Measured on an AVX2 CPU,
 * the layout change included: 512 x 512 taps 1.5x faster at 8 rows, 1.9x
 * at 16, 2.4x at 64; 256 x 256 ones break even at 8 and gain 1.25x at 16;
 * at 1-4 rows (ODIN at batch 1) the layout change costs more than it saves.
 */
#define TAPCONV_T_COLUMNS_ROWS 16

size_t
clad_tapconv_inference_scratch_floats(const clad_tapconv *tc, int B)
{
	const clad_conv_geom *g = &tc->g;
	size_t		maxc = g->C > g->OC ? g->C : g->OC;
	size_t		in_pos = (size_t) g->H * g->W, out_pos = (size_t) g->OH * g->OW;
	size_t		pos = in_pos > out_pos ? in_pos : out_pos;

	/*
	 * channel-last source and result, source and destination row indices, nonzero indices (4 bytes
	 * each); in bf16, or where a shared plan's tap may reach TAPCONV_T_COLUMNS_ROWS rows, one tap's
	 * panels as floats, on a cache line (tap_sum)
	 */
	int			whole_tap = tc->precision == CLAD_PRECISION_BF16 ||
		(tc->shared && (size_t) B * (in_pos < out_pos ? in_pos : out_pos) >= TAPCONV_T_COLUMNS_ROWS);

	return (size_t) B * pos * maxc * 2 + (size_t) B * pos * 2 + maxc + (whole_tap ? 16 + (size_t) g->C * g->OC : 0);
}

/* A layout change of B images, split by images among the trainer's threads. */
typedef struct layout_args
{
	float	   *dst;
	const float *src, *bias;
	int			C, S, accumulate;
} layout_args;

/* One thread's images of to_channels_last. */
static void
to_channels_last_images(size_t lo, size_t hi, void *p)
{
	const layout_args *a = p;
	size_t		n = (size_t) a->C * a->S;
	const panel_kernels *kern = tapconv_kernels();

	for (size_t b = lo; b < hi; b++)
	{
		if (a->S == 1)
			memcpy(a->dst + b * n, a->src + b * n, sizeof(float) * n);	/* the same layout */
		else
			kern->to_channels_last(a->dst + b * n, a->src + b * n, a->C, a->S);
	}
}

/* (B, C, S) -> (B*S, C): each position's channels contiguous */
void
tapconv_to_channels_last(float *dst, const float *src, int B, int C, int S)
{
	layout_args a = {dst, src, NULL, C, S, 0};

	clad_parallel_for((size_t) B, clad_parallel_items_each((size_t) C * S, 32768), to_channels_last_images, &a);
}

/* One thread's images of from_channels_last. */
static void
from_channels_last_images(size_t lo, size_t hi, void *p)
{
	const layout_args *a = p;
	size_t		n = (size_t) a->C * a->S;
	const panel_kernels *kern = tapconv_kernels();

	for (size_t b = lo; b < hi; b++)
		kern->from_channels_last(a->dst + b * n, a->src + b * n, a->bias, a->accumulate, a->C, a->S);
}

/*
 * (B*S, C) channel-last -> (B, C, S): out = src (+ bias[c]) when accumulate is
 * 0, out += src when it is 1.
 */
void
tapconv_from_channels_last(float *dst, const float *src, const float *bias, int B, int C, int S,
						   int accumulate)
{
	layout_args a = {dst, src, bias, C, S, accumulate};

	clad_parallel_for((size_t) B, clad_parallel_items_each((size_t) C * S, 32768), from_channels_last_images, &a);
}

/*
 * The rows one tap reads and writes for images b0 .. b0+nb-1 of channel-last
 * data: source rows (src_S positions an image) into xrow, destination rows
 * (dst_S an image) into yrow; forward reads input positions and writes
 * output positions, the input gradient the other way.
 */
void
tapconv_tap_rows(const clad_tap *tap, int forward, int b0, int nb, int src_S, int dst_S, int32_t *xrow,
				 int32_t *yrow)
{
	const int32_t *from = forward ? tap->in_pos : tap->out_pos;
	const int32_t *to = forward ? tap->out_pos : tap->in_pos;

	for (int b = 0; b < nb; b++)
		for (int i = 0; i < tap->npairs; i++)
		{
			xrow[b * tap->npairs + i] = (b0 + b) * src_S + from[i];
			yrow[b * tap->npairs + i] = (b0 + b) * dst_S + to[i];
		}
}

/*
 * The panels of W^T (K, M) as K / PANEL panels of (M, PANEL), bfloat16 when
 * bf16, laid out by column as floats: columns[m * K + k] = W^T[k, m] (the
 * same weights, widened; each panel row of PANEL values moves as one piece).
 */
void
tapconv_panels_to_columns(float *columns, const void *panels, int bf16, int K, int M)
{
	for (int pk = 0; pk < K / PANEL; pk++)
		for (int m = 0; m < M; m++)
		{
			size_t		from = ((size_t) pk * M + m) * PANEL;
			float	   *to = columns + (size_t) m * K + pk * PANEL;

			if (bf16)
				clad_bf16_float_array(to, (const clad_bf16 *) panels + from, PANEL);
			else
				memcpy(to, (const float *) panels + from, sizeof(float) * PANEL);
		}
}

/*
 * In bf16, a tap whose product has at least this many rows (64 images of a
 * 1x1 map, 2 of a 7x7 one) widens its panels to floats first (tap_sum).
 * Measured on an AVX2 CPU: ODIN at batch 64 in bf16 went from 0.8x fp32's
 * speed to fp32's; at batch 1 (no tap reaches 64 rows) widening every tap
 * made ODIN slower (7.7 against 6.0 ms) and 24 rows changed nothing measurable.
 */
#define TAPCONV_BF16_WIDEN_ROWS 64

/*
 * One direction of the tap sum on channel-last data: for every tap and pair,
 * dst_cl[b, to] += src_cl[b, from] @ W_tap (K -> M channels).  The kernels
 * read and accumulate the rows where they are, through row indices: no
 * gathered copy, no partial result to add back.  Within a tap no two pairs share a source or a
 * destination position, so the rows of one call never alias.
 */
static void
tap_sum(const clad_tapconv *tc, float *dst_cl, int dst_S, const float *src_cl, int src_S,
		int B, int K, int M, int forward, int32_t *xrow, int32_t *yrow, int32_t *nz, float *wide)
{
	const panel_kernels *kern = tapconv_kernels();
	/* a shared plan's input gradient reads the forward panels transposed */
	int			straight = forward || !tc->shared;

	for (int t = 0; t < tc->ntaps; t++)
	{
		const clad_tap *tap = &tc->taps[t];
		const void *Wp = forward || tc->shared ? tap->fwd : tap->bwd;
		int			rows = B * tap->npairs;
		int			bf16 = tc->precision == CLAD_PRECISION_BF16;

		tapconv_tap_rows(tap, forward, 0, B, src_S, dst_S, xrow, yrow);
		if (!straight && rows >= TAPCONV_T_COLUMNS_ROWS)
		{
			tapconv_panels_to_columns(wide, Wp, bf16, K, M);
			kern->gemm_t_columns(dst_cl, src_cl, yrow, xrow, wide, rows, K, M, nz);
			continue;
		}
		if (bf16 && rows >= TAPCONV_BF16_WIDEN_ROWS)
		{
			/*
			 * Many rows read each weight (a batch): widening it in the kernel's inner
			 * loop costs more than it saves in bytes (the products are bound by the
			 * multiply-adds, not by reading weights), so the tap's panels are widened
			 * once and the float kernel reads them: the same floats in the same order
			 * as the bfloat16 kernel (test_tapconv), in less time.
			 */
			clad_bf16_float_array(wide, Wp, (size_t) K * M);
			Wp = wide;
			bf16 = 0;
		}
		if (bf16)
			(straight ? kern->gemm_bf16 : kern->gemm_t_bf16) (dst_cl, src_cl, yrow, xrow, Wp, rows, K, M, nz);
		else
			(straight ? kern->gemm : kern->gemm_t) (dst_cl, src_cl, yrow, xrow, Wp, rows, K, M, nz);
	}
}

/* Carve the scratch into its blocks: channel-last source and result, row indices, nonzero indices. */
static void
split_scratch(const clad_tapconv *tc, int B, float *scratch, float **src_cl, float **dst_cl,
			  int32_t **xrow, int32_t **yrow, int32_t **nz, float **wide)
{
	const clad_conv_geom *g = &tc->g;
	size_t		maxc = g->C > g->OC ? g->C : g->OC;
	size_t		pos = (size_t) B * (g->H * g->W > g->OH * g->OW ? g->H * g->W : g->OH * g->OW);

	*src_cl = scratch;
	*dst_cl = scratch + pos * maxc;
	*xrow = (int32_t *) (scratch + 2 * pos * maxc);
	*yrow = *xrow + pos;
	*nz = *yrow + pos;
	*wide = (float *) (*nz + maxc);
	*wide += (16 - ((uintptr_t) *wide / sizeof(float)) % 16) % 16;	/* on a cache line, if the scratch is */
}

void
clad_tapconv_inference_forward(const clad_tapconv *tc, float *out, const float *in,
							   const float *bias, int B, float *scratch)
{
	const clad_conv_geom *g = &tc->g;
	int			S = g->H * g->W, P = g->OH * g->OW;
	float	   *src_cl, *dst_cl, *wide;
	int32_t    *xrow, *yrow, *nz;

	split_scratch(tc, B, scratch, &src_cl, &dst_cl, &xrow, &yrow, &nz, &wide);
	tapconv_to_channels_last(src_cl, in, B, g->C, S);
	memset(dst_cl, 0, sizeof(float) * B * P * g->OC);
	tap_sum(tc, dst_cl, P, src_cl, S, B, g->C, g->OC, 1, xrow, yrow, nz, wide);
	tapconv_from_channels_last(out, dst_cl, bias, B, g->OC, P, 0);
}

void
clad_tapconv_inference_backward_input(const clad_tapconv *tc, float *din, const float *dout,
									  int B, float *scratch)
{
	const clad_conv_geom *g = &tc->g;
	int			S = g->H * g->W, P = g->OH * g->OW;
	float	   *src_cl, *dst_cl, *wide;
	int32_t    *xrow, *yrow, *nz;

	split_scratch(tc, B, scratch, &src_cl, &dst_cl, &xrow, &yrow, &nz, &wide);
	tapconv_to_channels_last(src_cl, dout, B, g->OC, P);
	memset(dst_cl, 0, sizeof(float) * B * S * g->C);
	tap_sum(tc, dst_cl, S, src_cl, P, B, g->OC, g->C, 0, xrow, yrow, nz, wide);
	tapconv_from_channels_last(din, dst_cl, NULL, B, g->C, S, 1);
}
