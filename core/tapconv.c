/* core/tapconv.c: small-map convolution as a sum over the taps that meet real pixels.
 *
 * Weights are packed per tap in panels of 16 output channels: panel p is a
 * contiguous (K, 16) block holding W[k, 16p .. 16p+15].  A pass over a panel
 * reads its K x 64 bytes in order, which the hardware prefetchers stream at
 * full speed; a row-major (K, M) matrix read 16 columns at a time would
 * instead jump M * 4 bytes per row and run several times slower at batch 1,
 * where every weight is used once and the pass is bound by memory reads.
 */
#include "tapconv.h"
#include "parallel.h"
#include "vectorize.h"
#include "gemm.h"
#include "bigalloc.h"

#include <stdlib.h>
#include <string.h>

/* The panel width is part of the prepared file layout (core/prepared.h): changing it
 * means bumping CLAD_PREPARED_LAYOUT, or mapped files would be read with the wrong layout;
 * so does changing which plans are shared (tapconv.h). */
#define PANEL 16

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
static void
pack_panels(float *panels, size_t stride, const float *weight, const clad_conv_geom *g, const int *idx,
			int ntaps, int backward)
{
	pack_job	j = {panels, weight, idx, stride, ntaps, g->OC, g->C, g->KH * g->KW, backward};

	clad_parallel_for((size_t) g->OC / PANEL,
					  clad_parallel_items_each((size_t) PANEL * g->C * ntaps, 16384), pack_range, &j);
}

/*
 * Point every tap at its fwd and bwd panels inside tc->panels (built plans
 * and borrowed alike): per tap its fwd panels, then its bwd panels unless
 * the plan is shared.
 */
static void
point_taps(clad_tapconv *tc)
{
	size_t		per = (size_t) tc->g.C * tc->g.OC;	/* floats in one tap's fwd (or bwd) panels */
	int			copies = tc->shared ? 1 : 2;

	for (int i = 0; i < tc->ntaps; i++)
	{
		tc->taps[i].fwd = tc->panels + per * copies * i;
		tc->taps[i].bwd = tc->shared ? NULL : tc->panels + per * (copies * i + 1);
	}
}

/* Bytes of the panels of a plan with ntaps taps. */
static size_t
panels_bytes_of(const clad_conv_geom *g, int ntaps, int shared)
{
	return sizeof(float) * (size_t) g->C * g->OC * (shared ? 1 : 2) * (ntaps ? ntaps : 1);
}

clad_status
clad_tapconv_build(clad_tapconv *tc, const clad_conv_geom *g, const float *weight)
{
	int			ntap_all = g->KH * g->KW;
	int			P = g->OH * g->OW;
	int			maxpairs = 0;
	int		   *idx;			/* kernel position (kh * KW + kw) of each kept tap */

	memset(tc, 0, sizeof(*tc));
	if (weight && !clad_tapconv_supported(g))
		return clad_fail(CLAD_ERR_UNSUPPORTED, "packed tap plans need channels in multiples of %d", PANEL);
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
		tc->panels_bytes = panels_bytes_of(g, tc->ntaps, tc->shared);
		if (!(tc->panels = clad_big_alloc(tc->panels_bytes)))
		{
			tc->panels_bytes = 0;
			goto nomem_all;
		}
		point_taps(tc);
		/* per tap its forward panels, then (unless shared) its input-gradient panels: point_taps */
		size_t		per = (size_t) g->C * g->OC, step = per * (tc->shared ? 1 : 2);

		pack_panels(tc->panels, step, weight, g, idx, tc->ntaps, 0);
		if (!tc->shared)
			pack_panels(tc->panels + per, step, weight, g, idx, tc->ntaps, 1);
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
clad_tapconv_build_packed(clad_tapconv *tc, const clad_conv_geom *g, const float *panels,
						  size_t avail_bytes, size_t *used_bytes)
{
	clad_status st;

	*used_bytes = 0;
	if (!clad_tapconv_supported(g))
		return clad_fail(CLAD_ERR_UNSUPPORTED, "packed tap plans need channels in multiples of %d", PANEL);
	if ((st = clad_tapconv_build(tc, g, NULL)) != CLAD_OK)
		return st;
	if (panels_bytes_of(g, tc->ntaps, tc->shared) > avail_bytes)
	{
		size_t		need = panels_bytes_of(g, tc->ntaps, tc->shared);

		clad_tapconv_free(tc);
		return clad_fail(CLAD_ERR_FORMAT, "packed convolution weights: %zu bytes left, the plan needs %zu",
						 avail_bytes, need);
	}
	/* read only through the taps; the cast keeps one struct for both kinds of plan */
	tc->panels = (float *) panels;
	tc->panels_bytes = panels_bytes_of(g, tc->ntaps, tc->shared);
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

size_t
clad_tapconv_inference_scratch_floats(const clad_tapconv *tc, int B)
{
	const clad_conv_geom *g = &tc->g;
	size_t		maxc = g->C > g->OC ? g->C : g->OC;
	size_t		in_pos = (size_t) g->H * g->W, out_pos = (size_t) g->OH * g->OW;
	size_t		pos = in_pos > out_pos ? in_pos : out_pos;

	/* channel-last source and result, source and destination row indices, nonzero indices (4 bytes each) */
	return (size_t) B * pos * maxc * 2 + (size_t) B * pos * 2 + maxc;
}

/*
 * Y (N, M) += X (N, K) @ W, W given as M/16 panels of (K, 16), where row n
 * of Y is Y + yrow[n] * M and row n of X is X + xrow[n] * K (rows where the
 * caller keeps them; no two rows of Y the same).  Rows of Y go
 * eight, then four at a time, over two vectors of columns: sixteen (eight)
 * independent accumulators keep both FMA units busy through the FMA latency
 * (four accumulators left half of them idle), and each weight read serves
 * eight (four) positions.  Column c of W lies in panel c/16 at lane c%16,
 * so a pair of vectors is two panels for 16-wide vectors and two halves of
 * one panel for 8-wide ones.  The last one to three rows go by twos and
 * ones, skipping the inputs that are zero (ReLU outputs, often half of
 * them) through a list of their indices, so only the weights they need are
 * read.
 * The body is compiled for AVX-512, AVX2+FMA and baseline x86-64, chosen by
 * CPU features at run time.
 */
#define COL_W(Wp, c, K) ((Wp) + (size_t) ((c) / PANEL) * (K) * PANEL + (c) % PANEL)
#define PANEL_GEMM_ROWS(VEC, VW, R) \
	for (; n + R <= N; n += R) \
	{ \
		const float *x[R]; \
		float	   *y[R]; \
		int			c = 0; \
		for (int r = 0; r < R; r++) \
		{ \
			x[r] = X + (size_t) xrow[n + r] * K; \
			y[r] = Y + (size_t) yrow[n + r] * M; \
		} \
		for (; c + 2 * VW <= M; c += 2 * VW) \
		{ \
			const float *w0 = COL_W(Wp, c, K), *w1 = COL_W(Wp, c + VW, K); \
			VEC			a[R][2]; \
			for (int r = 0; r < R; r++) \
			{ \
				a[r][0] = *(const VEC *) (y[r] + c); \
				a[r][1] = *(const VEC *) (y[r] + c + VW); \
			} \
			for (int k = 0; k < K; k++, w0 += PANEL, w1 += PANEL) \
			{ \
				VEC			v0 = *(const VEC *) w0, v1 = *(const VEC *) w1; \
				for (int r = 0; r < R; r++) \
				{ \
					a[r][0] += x[r][k] * v0; \
					a[r][1] += x[r][k] * v1; \
				} \
			} \
			for (int r = 0; r < R; r++) \
			{ \
				*(VEC *) (y[r] + c) = a[r][0]; \
				*(VEC *) (y[r] + c + VW) = a[r][1]; \
			} \
		} \
		for (; c < M; c += VW) \
		{ \
			const float *w0 = COL_W(Wp, c, K); \
			VEC			a[R]; \
			for (int r = 0; r < R; r++) \
				a[r] = *(const VEC *) (y[r] + c); \
			for (int k = 0; k < K; k++, w0 += PANEL) \
			{ \
				VEC			v0 = *(const VEC *) w0; \
				for (int r = 0; r < R; r++) \
					a[r] += x[r][k] * v0; \
			} \
			for (int r = 0; r < R; r++) \
				*(VEC *) (y[r] + c) = a[r]; \
		} \
	}

#define PANEL_GEMM_BODY(VEC, VW) \
	int			n = 0; \
	PANEL_GEMM_ROWS(VEC, VW, 8) \
	PANEL_GEMM_ROWS(VEC, VW, 4) \
	for (; n + 2 <= N; n += 2) \
	{ \
		/* two rows: the inputs nonzero in either, listed once */ \
		const float *x0 = X + (size_t) xrow[n] * K, *x1 = X + (size_t) xrow[n + 1] * K; \
		float	   *y0 = Y + (size_t) yrow[n] * M, *y1 = Y + (size_t) yrow[n + 1] * M; \
		int			nnz = 0; \
		for (int k = 0; k < K; k++) \
			if (x0[k] != 0.0f || x1[k] != 0.0f) \
				nz[nnz++] = k; \
		for (int p = 0; p < M / PANEL; p++) \
			for (int h = 0; h < PANEL; h += VW) \
			{ \
				const float *w = Wp + (size_t) p * K * PANEL + h; \
				VEC			a0 = *(const VEC *) (y0 + p * PANEL + h), a1 = *(const VEC *) (y1 + p * PANEL + h); \
				for (int t = 0; t < nnz; t++) \
				{ \
					VEC			wv = *(const VEC *) (w + (size_t) nz[t] * PANEL); \
					a0 += x0[nz[t]] * wv; \
					a1 += x1[nz[t]] * wv; \
				} \
				*(VEC *) (y0 + p * PANEL + h) = a0; \
				*(VEC *) (y1 + p * PANEL + h) = a1; \
			} \
	} \
	for (; n < N; n++) \
	{ \
		const float *x = X + (size_t) xrow[n] * K; \
		int			nnz = 0; \
		for (int k = 0; k < K; k++) \
			if (x[k] != 0.0f) \
				nz[nnz++] = k; \
		for (int p = 0; p < M / PANEL; p++) \
			for (int h = 0; h < PANEL; h += VW) \
			{ \
				float	   *y = Y + (size_t) yrow[n] * M + p * PANEL + h; \
				const float *w = Wp + (size_t) p * K * PANEL + h; \
				VEC			a0 = *(const VEC *) y, a1 = {0}; \
				int			t = 0; \
				for (; t + 2 <= nnz; t += 2) \
				{ \
					a0 += x[nz[t]] * *(const VEC *) (w + (size_t) nz[t] * PANEL); \
					a1 += x[nz[t + 1]] * *(const VEC *) (w + (size_t) nz[t + 1] * PANEL); \
				} \
				if (t < nnz) \
					a0 += x[nz[t]] * *(const VEC *) (w + (size_t) nz[t] * PANEL); \
				*(VEC *) y = a0 + a1; \
			} \
	}

/*
 * Y (N, M) += X (N, K) @ W^T, rows through yrow and xrow as above, W^T
 * (K, M) given as K/16 panels of (M, 16):
 * the forward panels of a conv read for its input gradient (K = OC, M = C),
 * so that a shared plan keeps one copy of its weights.  Each output is a
 * dot product over K: rows go R at a time over VW/R columns, each (row,
 * column) accumulating in a vector of lanes over k, one pass over the
 * panels; the VW partial vectors of a block are then summed into one
 * vector of VW results by a shuffle tree (REDUCE).  Weights are read in
 * order inside each panel row block, R positions per read.
 */
#define PANEL_GEMM_T_ROWS(VEC, VW, R, REDUCE) \
	for (; n + R <= N; n += R) \
	{ \
		const float *x[R]; \
		float	   *y[R]; \
		for (int r = 0; r < R; r++) \
		{ \
			x[r] = X + (size_t) xrow[n + r] * K; \
			y[r] = Y + (size_t) yrow[n + r] * M; \
		} \
		for (int m = 0; m < M; m += VW / R) \
		{ \
			VEC			a[R][VW / R][PANEL / VW], s[VW], sums; \
			for (int r = 0; r < R; r++) \
				for (int j = 0; j < VW / R; j++) \
					for (int h = 0; h < PANEL / VW; h++) \
						a[r][j][h] = (VEC) {0}; \
			for (int pk = 0; pk < K / PANEL; pk++) \
			{ \
				const float *w = Wp + ((size_t) pk * M + m) * PANEL; \
				VEC			xv[R][PANEL / VW]; \
				for (int r = 0; r < R; r++) \
					for (int h = 0; h < PANEL / VW; h++) \
						xv[r][h] = *(const VEC *) (x[r] + pk * PANEL + h * VW); \
				for (int j = 0; j < VW / R; j++) \
					for (int h = 0; h < PANEL / VW; h++) \
					{ \
						VEC			wv = *(const VEC *) (w + j * PANEL + h * VW); \
						for (int r = 0; r < R; r++) \
							a[r][j][h] += wv * xv[r][h]; \
					} \
			} \
			for (int r = 0; r < R; r++) \
				for (int j = 0; j < VW / R; j++) \
				{ \
					s[r * (VW / R) + j] = a[r][j][0]; \
					for (int h = 1; h < PANEL / VW; h++) \
						s[r * (VW / R) + j] += a[r][j][h]; \
				} \
			REDUCE(s, sums); \
			for (int r = 0; r < R; r++) \
				for (int j = 0; j < VW / R; j++) \
					y[r][m + j] += sums[r * (VW / R) + j]; \
		} \
	}

#define PANEL_GEMM_T_BODY(VEC, VW, REDUCE) \
	int			n = 0; \
	PANEL_GEMM_T_ROWS(VEC, VW, 4, REDUCE) \
	PANEL_GEMM_T_ROWS(VEC, VW, 2, REDUCE) \
	PANEL_GEMM_T_ROWS(VEC, VW, 1, REDUCE)

/*
 * out[i] = the sum of the lanes of s[i], for VW vectors s of VW lanes: each
 * level adds pairs of vectors after interleaving their halves, so lane
 * order follows s's order at the end.
 */
#define SHUF __builtin_shufflevector
#define REDUCE_4(s, out) \
	do { \
		v4f			t_[2]; \
		for (int i_ = 0; i_ < 2; i_++) \
			t_[i_] = SHUF(s[2 * i_], s[2 * i_ + 1], 0, 1, 4, 5) + SHUF(s[2 * i_], s[2 * i_ + 1], 2, 3, 6, 7); \
		(out) = SHUF(t_[0], t_[1], 0, 2, 4, 6) + SHUF(t_[0], t_[1], 1, 3, 5, 7); \
	} while (0)
#define REDUCE_8(s, out) \
	do { \
		v8f			t_[4], u_[2]; \
		for (int i_ = 0; i_ < 4; i_++) \
			t_[i_] = SHUF(s[2 * i_], s[2 * i_ + 1], 0, 1, 2, 3, 8, 9, 10, 11) + \
				SHUF(s[2 * i_], s[2 * i_ + 1], 4, 5, 6, 7, 12, 13, 14, 15); \
		for (int i_ = 0; i_ < 2; i_++) \
			u_[i_] = SHUF(t_[2 * i_], t_[2 * i_ + 1], 0, 1, 4, 5, 8, 9, 12, 13) + \
				SHUF(t_[2 * i_], t_[2 * i_ + 1], 2, 3, 6, 7, 10, 11, 14, 15); \
		(out) = SHUF(u_[0], u_[1], 0, 2, 4, 6, 8, 10, 12, 14) + SHUF(u_[0], u_[1], 1, 3, 5, 7, 9, 11, 13, 15); \
	} while (0)
#define REDUCE_16(s, out) \
	do { \
		v16f		t_[8], u_[4], w_[2]; \
		for (int i_ = 0; i_ < 8; i_++) \
			t_[i_] = SHUF(s[2 * i_], s[2 * i_ + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) + \
				SHUF(s[2 * i_], s[2 * i_ + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
		for (int i_ = 0; i_ < 4; i_++) \
			u_[i_] = SHUF(t_[2 * i_], t_[2 * i_ + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) + \
				SHUF(t_[2 * i_], t_[2 * i_ + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31); \
		for (int i_ = 0; i_ < 2; i_++) \
			w_[i_] = SHUF(u_[2 * i_], u_[2 * i_ + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) + \
				SHUF(u_[2 * i_], u_[2 * i_ + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31); \
		(out) = SHUF(w_[0], w_[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) + \
			SHUF(w_[0], w_[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31); \
	} while (0)

/*
 * The weight gradient of one tap on channel-last data, one tile at a time:
 *     dweight[oc, c, k] += sum over images b and pairs i of
 *                          dy_cl[b, out_pos[i], oc] * x_cl[b, in_pos[i], c]
 * for R output channels from oc0 by NV vectors of input channels from c0,
 * the R x NV accumulators held in registers through every row (each row
 * read where it lies: no gathered copy) and added into the (OC, C, KH, KW)
 * gradient at the end.  Each sum runs over the rows in one order, whoever
 * computes the tile.
 */
#define WGRAD_TILE(VEC, VW, R, NV) \
	do { \
		VEC			acc[R][NV]; \
		for (int r = 0; r < R; r++) \
			for (int v = 0; v < NV; v++) \
				acc[r][v] = (VEC) {0}; \
		for (int b = 0; b < a->B; b++) \
		{ \
			const float *xb = a->x_cl + (size_t) b * a->S * a->C + c0; \
			const float *db = a->dy_cl + (size_t) b * a->P * a->OC + oc0; \
			for (int i = 0; i < tap->npairs; i++) \
			{ \
				const float *x = xb + (size_t) tap->in_pos[i] * a->C; \
				const float *d = db + (size_t) tap->out_pos[i] * a->OC; \
				VEC			xv[NV]; \
				for (int v = 0; v < NV; v++) \
					xv[v] = *(const VEC *) (x + v * VW); \
				for (int r = 0; r < R; r++) \
					for (int v = 0; v < NV; v++) \
						acc[r][v] += d[r] * xv[v]; \
			} \
		} \
		for (int r = 0; r < R; r++) \
			for (int v = 0; v < NV; v++) \
				for (int l = 0; l < VW; l++) \
					a->dweight[((size_t) (oc0 + r) * a->C + c0 + v * VW + l) * a->kk + k] += acc[r][v][l]; \
	} while (0)

/* What a weight-gradient tile reads and writes (see WGRAD_TILE). */
typedef struct wgrad_args
{
	float	   *dweight;		/* (OC, C, KH, KW), accumulated */
	const float *dy_cl, *x_cl;	/* (B, P, OC), (B, S, C) */
	int			B, S, P, C, OC, kk;
} wgrad_args;

typedef void (*wgrad_tile_fn) (const wgrad_args *, const struct clad_tap *, int k, int oc0, int c0);

typedef void (*panel_gemm_fn) (float *restrict, const float *restrict, const int32_t *, const int32_t *,
							   const float *restrict, int, int, int, int32_t *restrict);

typedef float v4f __attribute__((vector_size(16), aligned(4)));

#if defined(__x86_64__) && defined(__GNUC__)
typedef float v16f __attribute__((vector_size(64), aligned(4)));
typedef float v8f __attribute__((vector_size(32), aligned(4)));

/* The panel kernels, per instruction set: Y[yrow] += X[xrow] @ panels (gemm), and the
 * transposed reading of the forward panels (gemm_t). */
__attribute__((target("avx512f,avx512vl,fma"), optimize("O3", "fp-contract=fast")))
static void
panel_gemm_avx512(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow,
			const float *restrict Wp, int N, int K, int M, int32_t *restrict nz)
{
	PANEL_GEMM_BODY(v16f, 16)
}

__attribute__((target("avx512f,avx512vl,fma"), optimize("O3", "fp-contract=fast")))
static void
panel_gemm_t_avx512(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow,
			const float *restrict Wp, int N, int K, int M, int32_t *restrict nz)
{
	PANEL_GEMM_T_BODY(v16f, 16, REDUCE_16)
}

__attribute__((target("avx2,fma"), optimize("O3", "fp-contract=fast")))
static void
panel_gemm_avx2(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow,
			const float *restrict Wp, int N, int K, int M, int32_t *restrict nz)
{
	PANEL_GEMM_BODY(v8f, 8)
}

__attribute__((target("avx2,fma"), optimize("O3", "fp-contract=fast")))
static void
panel_gemm_t_avx2(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow,
			const float *restrict Wp, int N, int K, int M, int32_t *restrict nz)
{
	PANEL_GEMM_T_BODY(v8f, 8, REDUCE_8)
}

/* tiles of 8 output channels x 32 input channels (16 at the edge): 16 of the 32 vector registers */
__attribute__((target("avx512f,avx512vl,fma"), optimize("O3", "fp-contract=fast")))
static void
wgrad_tile_avx512(const wgrad_args *a, const clad_tap *tap, int k, int oc0, int c0)
{
	if (c0 + 32 <= a->C)
		WGRAD_TILE(v16f, 16, 8, 2);
	else
		WGRAD_TILE(v16f, 16, 8, 1);
}

/* tiles of 4 x 16 (8 at the edge): 8 of the 16 vector registers */
__attribute__((target("avx2,fma"), optimize("O3", "fp-contract=fast")))
static void
wgrad_tile_avx2(const wgrad_args *a, const clad_tap *tap, int k, int oc0, int c0)
{
	if (c0 + 16 <= a->C)
		WGRAD_TILE(v8f, 8, 4, 2);
	else
		WGRAD_TILE(v8f, 8, 4, 1);
}
#endif

static void
panel_gemm_plain(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow,
			const float *restrict Wp, int N, int K, int M, int32_t *restrict nz)
{
	PANEL_GEMM_BODY(v4f, 4)
}

static void
panel_gemm_t_plain(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow,
			const float *restrict Wp, int N, int K, int M, int32_t *restrict nz)
{
	PANEL_GEMM_T_BODY(v4f, 4, REDUCE_4)
}

/* One register tile of a tap's weight gradient, without vector extensions. */
static void
wgrad_tile_plain(const wgrad_args *a, const clad_tap *tap, int k, int oc0, int c0)
{
	if (c0 + 8 <= a->C)
		WGRAD_TILE(v4f, 4, 4, 2);
	else
		WGRAD_TILE(v4f, 4, 4, 1);
}

/*
 * The kernels of one instruction set: Y += X @ W and Y += X @ W^T over
 * panels, and the weight gradient's tiles (wgrad_rows output channels by
 * wgrad_cols input channels at most).
 */
typedef struct panel_kernels
{
	panel_gemm_fn gemm, gemm_t;
	wgrad_tile_fn wgrad;
	int			wgrad_rows, wgrad_cols;
} panel_kernels;

static const panel_kernels kernels_by_isa[] = {
	[CLAD_TAPCONV_ISA_BASELINE] = {panel_gemm_plain, panel_gemm_t_plain, wgrad_tile_plain, 4, 8},
#if defined(__x86_64__) && defined(__GNUC__)
	[CLAD_TAPCONV_ISA_AVX2] = {panel_gemm_avx2, panel_gemm_t_avx2, wgrad_tile_avx2, 4, 16},
	[CLAD_TAPCONV_ISA_AVX512] = {panel_gemm_avx512, panel_gemm_t_avx512, wgrad_tile_avx512, 8, 32},
#endif
};

/* The widest instruction set this CPU runs. */
static int
best_isa(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
		return CLAD_TAPCONV_ISA_AVX512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return CLAD_TAPCONV_ISA_AVX2;
#endif
	return CLAD_TAPCONV_ISA_BASELINE;
}

/* Chosen once from the CPU's features (atomically: the trainer may call from threads); -1 until then. */
static int	isa_chosen = -1;

/* The instruction set the kernels use. */
static int
chosen_isa(void)
{
	int			isa = __atomic_load_n(&isa_chosen, __ATOMIC_ACQUIRE);

	if (isa < 0)
	{
		isa = best_isa();
		__atomic_store_n(&isa_chosen, isa, __ATOMIC_RELEASE);
	}
	return isa;
}

int
clad_tapconv_limit_isa(int isa)
{
	int			best = best_isa();

	if (isa < 0 || isa > best)
		isa = best;
	__atomic_store_n(&isa_chosen, isa, __ATOMIC_RELEASE);
	return isa;
}

/* The kernels of the instruction set in use. */
static const panel_kernels *
panel_kernels_get(void)
{
	return &kernels_by_isa[chosen_isa()];
}

/* A layout change of B images, split by images among the trainer's threads. */
typedef struct layout_args
{
	float	   *dst;
	const float *src, *bias;
	int			C, S, accumulate;
} layout_args;

/*
 * One image's (C, S) -> (S, C), 16 channels at a time so that every write is
 * a contiguous run (a plain loop would write one float every C).
 */
CLAD_VECTOR_LOOP
static void
image_to_channels_last(float *restrict d, const float *restrict s, int C, int S)
{
	int			c0 = 0;

	for (; c0 + 16 <= C; c0 += 16)
		for (int i = 0; i < S; i++)
			for (int cc = 0; cc < 16; cc++)
				d[(size_t) i * C + c0 + cc] = s[(size_t) (c0 + cc) * S + i];
	for (; c0 < C; c0++)
		for (int i = 0; i < S; i++)
			d[(size_t) i * C + c0] = s[(size_t) c0 * S + i];
}

/* One thread's images of to_channels_last. */
static void
to_channels_last_images(size_t lo, size_t hi, void *p)
{
	const layout_args *a = p;
	size_t		n = (size_t) a->C * a->S;

	for (size_t b = lo; b < hi; b++)
	{
		if (a->S == 1)
			memcpy(a->dst + b * n, a->src + b * n, sizeof(float) * n);	/* the same layout */
		else
			image_to_channels_last(a->dst + b * n, a->src + b * n, a->C, a->S);
	}
}

/* (B, C, S) -> (B*S, C): each position's channels contiguous */
static void
to_channels_last(float *dst, const float *src, int B, int C, int S)
{
	layout_args a = {dst, src, NULL, C, S, 0};

	clad_parallel_for((size_t) B, clad_parallel_items_each((size_t) C * S, 32768), to_channels_last_images, &a);
}

/*
 * One image's (S, C) -> (C, S): d = s (+ bias[c]), or d += s with accumulate;
 * 16 channels at a time, each read a contiguous run.
 */
CLAD_VECTOR_LOOP
static void
image_from_channels_last(float *restrict d, const float *restrict s, const float *restrict bias,
						 int accumulate, int C, int S)
{
	int			c0 = 0;

	for (; c0 + 16 <= C; c0 += 16)
	{
		float		bv[16];

		for (int cc = 0; cc < 16; cc++)
			bv[cc] = bias ? bias[c0 + cc] : 0.0f;
		if (accumulate)
			for (int i = 0; i < S; i++)
				for (int cc = 0; cc < 16; cc++)
					d[(size_t) (c0 + cc) * S + i] += s[(size_t) i * C + c0 + cc];
		else
			for (int i = 0; i < S; i++)
				for (int cc = 0; cc < 16; cc++)
					d[(size_t) (c0 + cc) * S + i] = s[(size_t) i * C + c0 + cc] + bv[cc];
	}
	for (; c0 < C; c0++)
	{
		float		b0 = bias ? bias[c0] : 0.0f;

		for (int i = 0; i < S; i++)
		{
			float		v = s[(size_t) i * C + c0];

			d[(size_t) c0 * S + i] = accumulate ? d[(size_t) c0 * S + i] + v : v + b0;
		}
	}
}

/* One thread's images of from_channels_last. */
static void
from_channels_last_images(size_t lo, size_t hi, void *p)
{
	const layout_args *a = p;
	size_t		n = (size_t) a->C * a->S;

	for (size_t b = lo; b < hi; b++)
		image_from_channels_last(a->dst + b * n, a->src + b * n, a->bias, a->accumulate, a->C, a->S);
}

/*
 * (B*S, C) channel-last -> (B, C, S): out = src (+ bias[c]) when accumulate is
 * 0, out += src when it is 1.
 */
static void
from_channels_last(float *dst, const float *src, const float *bias, int B, int C, int S,
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
static void
tap_rows_of(const clad_tap *tap, int forward, int b0, int nb, int src_S, int dst_S, int32_t *xrow,
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
 * One direction of the tap sum on channel-last data: for every tap and pair,
 * dst_cl[b, to] += src_cl[b, from] @ W_tap (K -> M channels).  The kernels
 * read and accumulate the rows where they are, through row indices: no
 * gathered copy, no partial result to add back.  Within a tap no two pairs share a source or a
 * destination position, so the rows of one call never alias.
 */
static void
tap_sum(const clad_tapconv *tc, float *dst_cl, int dst_S, const float *src_cl, int src_S,
		int B, int K, int M, int forward, int32_t *xrow, int32_t *yrow, int32_t *nz)
{
	const panel_kernels *kern = panel_kernels_get();
	/* a shared plan's input gradient reads the forward panels transposed */
	panel_gemm_fn panel_gemm = forward || !tc->shared ? kern->gemm : kern->gemm_t;

	for (int t = 0; t < tc->ntaps; t++)
	{
		const clad_tap *tap = &tc->taps[t];
		const float *Wp = forward || tc->shared ? tap->fwd : tap->bwd;

		tap_rows_of(tap, forward, 0, B, src_S, dst_S, xrow, yrow);
		panel_gemm(dst_cl, src_cl, yrow, xrow, Wp, B * tap->npairs, K, M, nz);
	}
}

/* Carve the scratch into its blocks: channel-last source and result, row indices, nonzero indices. */
static void
split_scratch(const clad_tapconv *tc, int B, float *scratch, float **src_cl, float **dst_cl,
			  int32_t **xrow, int32_t **yrow, int32_t **nz)
{
	const clad_conv_geom *g = &tc->g;
	size_t		maxc = g->C > g->OC ? g->C : g->OC;
	size_t		pos = (size_t) B * (g->H * g->W > g->OH * g->OW ? g->H * g->W : g->OH * g->OW);

	*src_cl = scratch;
	*dst_cl = scratch + pos * maxc;
	*xrow = (int32_t *) (scratch + 2 * pos * maxc);
	*yrow = *xrow + pos;
	*nz = *yrow + pos;
}

void
clad_tapconv_inference_forward(const clad_tapconv *tc, float *out, const float *in,
							   const float *bias, int B, float *scratch)
{
	const clad_conv_geom *g = &tc->g;
	int			S = g->H * g->W, P = g->OH * g->OW;
	float	   *src_cl, *dst_cl;
	int32_t    *xrow, *yrow, *nz;

	split_scratch(tc, B, scratch, &src_cl, &dst_cl, &xrow, &yrow, &nz);
	to_channels_last(src_cl, in, B, g->C, S);
	memset(dst_cl, 0, sizeof(float) * B * P * g->OC);
	tap_sum(tc, dst_cl, P, src_cl, S, B, g->C, g->OC, 1, xrow, yrow, nz);
	from_channels_last(out, dst_cl, bias, B, g->OC, P, 0);
}

void
clad_tapconv_inference_backward_input(const clad_tapconv *tc, float *din, const float *dout,
									  int B, float *scratch)
{
	const clad_conv_geom *g = &tc->g;
	int			S = g->H * g->W, P = g->OH * g->OW;
	float	   *src_cl, *dst_cl;
	int32_t    *xrow, *yrow, *nz;

	split_scratch(tc, B, scratch, &src_cl, &dst_cl, &xrow, &yrow, &nz);
	to_channels_last(src_cl, dout, B, g->OC, P);
	memset(dst_cl, 0, sizeof(float) * B * S * g->C);
	tap_sum(tc, dst_cl, S, src_cl, P, B, g->OC, g->C, 0, xrow, yrow, nz);
	from_channels_last(din, dst_cl, NULL, B, g->C, S, 1);
}

/* ------------------------------------------------------------------ training plans */

/*
 * The forward and input-gradient passes of training run the panel kernels
 * above on weights packed at every call, over blocks of TRAIN_GROUP images
 * shared by the trainer's threads.  The kernels take a row through a path
 * chosen by how many rows are left in a call (8, 4, 2 or 1 at a time, the
 * last ones summing in another order), so the blocks are fixed by the batch
 * alone: a row's floats never depend on the thread count.
 */
#define TRAIN_GROUP 8

/* The pairs of all the plan's taps (rows of one image over every tap). */
static size_t
pairs_of(const clad_tapconv *tc)
{
	size_t		n = 0;

	for (int t = 0; t < tc->ntaps; t++)
		n += (size_t) tc->taps[t].npairs;
	return n;
}

/* Blocks of TRAIN_GROUP images in a batch of B. */
static size_t
group_count(int B)
{
	return ((size_t) B + TRAIN_GROUP - 1) / TRAIN_GROUP;
}

/* Per block of images: source and destination row indices of one tap, nonzero indices. */
static size_t
group_index_ints(const clad_conv_geom *g)
{
	size_t		pos = (size_t) (g->H * g->W > g->OH * g->OW ? g->H * g->W : g->OH * g->OW);

	return 2 * TRAIN_GROUP * pos + (size_t) (g->C > g->OC ? g->C : g->OC);
}

/* Scratch floats of every block's row indices. */
static size_t
group_indices_floats(const clad_conv_geom *g, int B)
{
	return group_count(B) * group_index_ints(g);	/* int32 and float are both 4 bytes */
}

/*
 * dst_cl[b, to] = sum over taps and pairs of src_cl[b, from] @ W_tap, as
 * tap_sum but starting from zero, with the panels of tap t at panels +
 * t*K*M and the images in blocks of TRAIN_GROUP, each block's indices in
 * its own part of idx.
 */
typedef struct tap_sum_job
{
	const clad_tapconv *tc;
	float	   *dst_cl;
	const float *src_cl, *panels;
	int32_t    *idx;
	int			dst_S, src_S, B, K, M, forward;
} tap_sum_job;

/* One thread's blocks of a training pass's tap sum. */
static void
tap_sum_groups(size_t lo, size_t hi, void *p)
{
	const tap_sum_job *j = p;
	panel_gemm_fn panel_gemm = panel_kernels_get()->gemm;
	size_t		pos = (size_t) (j->dst_S > j->src_S ? j->dst_S : j->src_S);

	for (size_t grp = lo; grp < hi; grp++)
	{
		int			b0 = (int) grp * TRAIN_GROUP;
		int			nb = j->B - b0 < TRAIN_GROUP ? j->B - b0 : TRAIN_GROUP;
		int32_t    *xrow = j->idx + grp * group_index_ints(&j->tc->g);
		int32_t    *yrow = xrow + TRAIN_GROUP * pos;
		int32_t    *nz = yrow + TRAIN_GROUP * pos;

		/* the block's images start from zero (here, so that the threads share the clearing) */
		memset(j->dst_cl + (size_t) b0 * j->dst_S * j->M, 0, sizeof(float) * nb * j->dst_S * j->M);
		for (int t = 0; t < j->tc->ntaps; t++)
		{
			const clad_tap *tap = &j->tc->taps[t];

			tap_rows_of(tap, j->forward, b0, nb, j->src_S, j->dst_S, xrow, yrow);
			panel_gemm(j->dst_cl, j->src_cl, yrow, xrow, j->panels + (size_t) t * j->K * j->M,
					   nb * tap->npairs, j->K, j->M, nz);
		}
	}
}

/* tap_sum over fixed blocks of images, split among the threads. */
static void
tap_sum_training(const clad_tapconv *tc, float *dst_cl, int dst_S, const float *src_cl, int src_S,
				 const float *panels, int B, int K, int M, int forward, int32_t *idx)
{
	tap_sum_job j = {tc, dst_cl, src_cl, panels, idx, dst_S, src_S, B, K, M, forward};

	clad_parallel_for(group_count(B),
					  clad_parallel_items_each(TRAIN_GROUP * pairs_of(tc) * K * M / PANEL, 16384),
					  tap_sum_groups, &j);
}

size_t
clad_tapconv_training_scratch_floats(const clad_tapconv *tc, int B)
{
	const clad_conv_geom *g = &tc->g;
	size_t		S = (size_t) g->H * g->W, P = (size_t) g->OH * g->OW;
	size_t		xc = (size_t) B * S * g->C, yc = (size_t) B * P * g->OC;
	size_t		N = (size_t) B * P;		/* most pairs a tap can have */

	/* channel-last input (+ its gradient), channel-last output gradient (or output),
	 * gathered X and dY, the product, the weights by tap (or their panels) and their
	 * gradient by tap, then the panel kernels' row and nonzero indices (tap_sum_groups) */
	return 2 * xc + yc + N * g->C + N * g->OC + N * (g->C > g->OC ? g->C : g->OC) +
		2 * (size_t) g->C * g->OC * g->KH * g->KW + group_indices_floats(g, B);
}

/* The blocks' row indices (tap_sum_groups) at the end of a training pass's scratch. */
static int32_t *
group_indices_of(const clad_tapconv *tc, int B, float *scratch)
{
	return (int32_t *) (scratch + clad_tapconv_training_scratch_floats(tc, B) -
						group_indices_floats(&tc->g, B));
}

#define MAX_TAPS CLAD_TAPCONV_TRAINING_MAX_TAPS

/*
 * Weights by tap and back: wt (KH*KW, OC, C) holds W_tap (OC, C) of each tap
 * in use (kernel positions idx[0..ntaps)) contiguous, from weight (OC, C,
 * KH, KW), or dweight += dwt the other way: one pass over the weights
 * instead of a strided pass per tap, its OC x C kernel rows split among the
 * threads.
 */
typedef struct tap_weights_job
{
	float	   *wt;				/* (KH*KW, OC, C) */
	float	   *weight;			/* (OC, C, KH, KW) */
	size_t		kk, n;			/* KH*KW, OC*C */
	const int  *idx;
	int			ntaps, add_back;
} tap_weights_job;

/* One thread's kernel rows of weights_by_tap or add_grads_by_tap. */
static void
tap_weights_range(size_t lo, size_t hi, void *p)
{
	const tap_weights_job *j = p;

	if (!j->add_back)
		for (size_t i = lo; i < hi; i++)
			for (int k = 0; k < j->ntaps; k++)
				j->wt[(size_t) j->idx[k] * j->n + i] = j->weight[i * j->kk + j->idx[k]];
	else
		for (size_t i = lo; i < hi; i++)
			for (int k = 0; k < j->ntaps; k++)
				j->weight[i * j->kk + j->idx[k]] += j->wt[(size_t) j->idx[k] * j->n + i];
}

/* wt (KH*KW, OC, C) <- weight (OC, C, KH, KW) for the taps in use, in one pass */
static void
weights_by_tap(float *wt, const float *weight, const clad_conv_geom *g, const int *idx, int ntaps)
{
	tap_weights_job j = {wt, (float *) weight, (size_t) g->KH * g->KW, (size_t) g->OC * g->C, idx, ntaps, 0};

	clad_parallel_for(j.n, clad_parallel_items_each((size_t) ntaps, 16384), tap_weights_range, &j);
}

/* dweight (OC, C, KH, KW) += dwt (KH*KW, OC, C) for the taps in use, in one pass */
static void
add_grads_by_tap(float *dweight, const float *dwt, const clad_conv_geom *g, const int *idx, int ntaps)
{
	tap_weights_job j = {(float *) dwt, dweight, (size_t) g->KH * g->KW, (size_t) g->OC * g->C, idx, ntaps, 1};

	clad_parallel_for(j.n, clad_parallel_items_each((size_t) ntaps, 16384), tap_weights_range, &j);
}

/* d += s over n floats */
CLAD_VECTOR_LOOP
static void
add_into(float *restrict d, const float *restrict s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] += s[i];
}

/*
 * One tap's rows of a channel-last batch, split among the threads by image:
 * gather rows (B, npairs, n) <- cl (B, S, n) at pos, or scatter-add
 * cl (B, S, n) += rows at pos.  The positions of one image are distinct,
 * so the images' writes never meet.
 */
typedef struct tap_rows_job
{
	float	   *rows;
	float	   *cl;
	const int  *pos;
	int			npairs, S, scatter;
	size_t		n;
} tap_rows_job;

/* One thread's images of a gather or scatter-add. */
static void
tap_rows_range(size_t lo, size_t hi, void *p)
{
	const tap_rows_job *j = p;

	for (size_t b = lo; b < hi; b++)
		for (int i = 0; i < j->npairs; i++)
		{
			float	   *r = j->rows + (b * j->npairs + i) * j->n;
			float	   *c = j->cl + (b * j->S + j->pos[i]) * j->n;

			if (j->scatter)
				add_into(c, r, j->n);
			else
				memcpy(r, c, sizeof(float) * j->n);
		}
}

/* rows (B, npairs, n) <- cl (B, S, n) at pos. */
static void
gather_tap_rows(float *rows, const float *cl, const int *pos, int npairs, int S, size_t n, int B)
{
	tap_rows_job j = {rows, (float *) cl, pos, npairs, S, 0, n};

	clad_parallel_for((size_t) B, clad_parallel_items_each((size_t) npairs * n, 16384), tap_rows_range, &j);
}

/* cl (B, S, n) at pos += rows (B, npairs, n). */
static void
scatter_add_tap_rows(float *cl, const float *rows, const int *pos, int npairs, int S, size_t n, int B)
{
	tap_rows_job j = {(float *) rows, cl, pos, npairs, S, 1, n};

	clad_parallel_for((size_t) B, clad_parallel_items_each((size_t) npairs * n, 16384), tap_rows_range, &j);
}

/*
 * dweight (OC, C, KH, KW) += the weight gradient of every tap in use
 * (kernel positions idx), from channel-last dy_cl and x_cl: the tiles of
 * all taps shared out among the threads, each tile whole on one thread.
 */
typedef struct wgrad_job
{
	wgrad_args	a;
	const clad_tapconv *tc;
	const int  *idx;
	const panel_kernels *kern;
	size_t		row_tiles, col_tiles;
} wgrad_job;

/* One thread's tiles of the weight gradient. */
static void
wgrad_range(size_t lo, size_t hi, void *p)
{
	const wgrad_job *j = p;
	size_t		per_tap = j->row_tiles * j->col_tiles;

	for (size_t it = lo; it < hi; it++)
	{
		size_t		t = it / per_tap, rt = it % per_tap / j->col_tiles, ct = it % j->col_tiles;

		j->kern->wgrad(&j->a, &j->tc->taps[t], j->idx[t], (int) rt * j->kern->wgrad_rows,
					   (int) ct * j->kern->wgrad_cols);
	}
}

/* dweight (OC, C, KH, KW) += every tap's dY^T @ X, by register tiles. */
static void
weight_grad_taps(const clad_tapconv *tc, float *dweight, const float *dy_cl, const float *x_cl, int B,
				 const int *idx)
{
	const clad_conv_geom *g = &tc->g;
	const panel_kernels *kern = panel_kernels_get();
	wgrad_job	j = {{dweight, dy_cl, x_cl, B, g->H * g->W, g->OH * g->OW, g->C, g->OC, g->KH * g->KW},
	tc, idx, kern, (size_t) g->OC / kern->wgrad_rows, ((size_t) g->C + kern->wgrad_cols - 1) / kern->wgrad_cols};

	/* a tile's work: its rows over all images times its rows x columns */
	clad_parallel_for((size_t) tc->ntaps * j.row_tiles * j.col_tiles,
					  clad_parallel_items_each(pairs_of(tc) / tc->ntaps * B * kern->wgrad_rows * kern->wgrad_cols / PANEL,
											   16384),
					  wgrad_range, &j);
}

/* position index (kh * KW + kw) of the t-th kept tap */
static int
tap_kernel_index(const clad_tapconv *tc, const clad_tap *t)
{
	const clad_conv_geom *g = &tc->g;
	int			ih = t->in_pos[0] / g->W, iw = t->in_pos[0] % g->W;
	int			oh = t->out_pos[0] / g->OW, ow = t->out_pos[0] % g->OW;

	return (ih - oh * g->stride + g->pad) * g->KW + (iw - ow * g->stride + g->pad);
}

/* The kernel positions of the plan's taps into idx (at most MAX_TAPS); the count. */
static int
taps_in_use(const clad_tapconv *tc, int *idx)
{
	for (int t = 0; t < tc->ntaps; t++)
		idx[t] = tap_kernel_index(tc, &tc->taps[t]);
	return tc->ntaps;
}

void
clad_tapconv_training_forward(const clad_tapconv *tc, float *out, const float *in,
							  const float *weight, const float *bias, int B, float *scratch)
{
	const clad_conv_geom *g = &tc->g;
	int			S = g->H * g->W, P = g->OH * g->OW, C = g->C, OC = g->OC;
	float	   *x_cl = scratch;
	float	   *y_cl = x_cl + 2 * (size_t) B * S * C;
	float	   *X = y_cl + (size_t) B * P * OC;
	float	   *Y = X + (size_t) B * P * C + (size_t) B * P * OC;
	float	   *wt = Y + (size_t) B * P * (C > OC ? C : OC);
	int			idx[MAX_TAPS];

	to_channels_last(x_cl, in, B, C, S);
	if (clad_tapconv_supported(g))
	{
		pack_panels(wt, (size_t) OC * C, weight, g, idx, taps_in_use(tc, idx), 0);
		tap_sum_training(tc, y_cl, P, x_cl, S, wt, B, C, OC, 1, group_indices_of(tc, B, scratch));
		from_channels_last(out, y_cl, bias, B, OC, P, 0);
		return;
	}
	weights_by_tap(wt, weight, g, idx, taps_in_use(tc, idx));
	memset(y_cl, 0, sizeof(float) * B * P * OC);
	for (int t = 0; t < tc->ntaps; t++)
	{
		const clad_tap *tap = &tc->taps[t];
		int			N = B * tap->npairs;
		const float *w = wt + (size_t) idx[t] * OC * C;

		gather_tap_rows(X, x_cl, tap->in_pos, tap->npairs, S, (size_t) C, B);
		/* Y (N, OC) = X (N, C) @ W_tap^T */
		clad_sgemm(0, 1, N, OC, C, 1.0f, X, C, w, C, 0.0f, Y, OC);
		scatter_add_tap_rows(y_cl, Y, tap->out_pos, tap->npairs, P, (size_t) OC, B);
	}
	from_channels_last(out, y_cl, bias, B, OC, P, 0);
}

void
clad_tapconv_training_backward(const clad_tapconv *tc, float *din, float *dweight, float *dbias,
							   const float *dout, const float *in, const float *weight,
							   int B, float *scratch)
{
	const clad_conv_geom *g = &tc->g;
	int			S = g->H * g->W, P = g->OH * g->OW, C = g->C, OC = g->OC;
	size_t		kk = (size_t) g->KH * g->KW;
	float	   *x_cl = scratch;
	float	   *dx_cl = x_cl + (size_t) B * S * C;
	float	   *dy_cl = dx_cl + (size_t) B * S * C;
	float	   *X = dy_cl + (size_t) B * P * OC;
	float	   *dY = X + (size_t) B * P * C;
	float	   *dX = dY + (size_t) B * P * OC;
	float	   *wt = dX + (size_t) B * P * (C > OC ? C : OC);
	float	   *dwt = wt + (size_t) OC * C * kk;
	int			idx[MAX_TAPS], ntaps = taps_in_use(tc, idx);
	int			panels = clad_tapconv_supported(g);	/* through the panel and weight-gradient kernels */

	if (dbias)
		for (int b = 0; b < B; b++)
			for (int oc = 0; oc < OC; oc++)
			{
				const float *d = dout + ((size_t) b * OC + oc) * P;
				float		sum = 0.0f;

				for (int p = 0; p < P; p++)
					sum += d[p];
				dbias[oc] += sum;
			}
	if (!din && !dweight)
		return;
	to_channels_last(dy_cl, dout, B, OC, P);
	if (dweight)
		to_channels_last(x_cl, in, B, C, S);
	if (din)
	{
		if (panels)
		{
			pack_panels(wt, (size_t) OC * C, weight, g, idx, ntaps, 1);
			tap_sum_training(tc, dx_cl, S, dy_cl, P, wt, B, OC, C, 0, group_indices_of(tc, B, scratch));
		}
		else
		{
			memset(dx_cl, 0, sizeof(float) * B * S * C);
			weights_by_tap(wt, weight, g, idx, ntaps);
		}
	}
	if (panels)
	{
		if (dweight)
			weight_grad_taps(tc, dweight, dy_cl, x_cl, B, idx);
		if (din)
			from_channels_last(din, dx_cl, NULL, B, C, S, 1);
		return;
	}
	for (int t = 0; t < tc->ntaps; t++)
	{
		const clad_tap *tap = &tc->taps[t];
		int			N = B * tap->npairs;
		int			ti = idx[t];

		gather_tap_rows(dY, dy_cl, tap->out_pos, tap->npairs, P, (size_t) OC, B);
		if (dweight)
		{
			gather_tap_rows(X, x_cl, tap->in_pos, tap->npairs, S, (size_t) C, B);
			/* dW_tap (OC, C) = dY^T (OC, N) @ X (N, C), kept by tap until the end */
			clad_sgemm(1, 0, OC, C, N, 1.0f, dY, OC, X, C, 0.0f, dwt + (size_t) ti * OC * C, C);
		}
		if (din)
		{
			/* dX (N, C) = dY (N, OC) @ W_tap (OC, C) */
			clad_sgemm(0, 0, N, C, OC, 1.0f, dY, OC, wt + (size_t) ti * OC * C, C, 0.0f, dX, C);
			scatter_add_tap_rows(dx_cl, dX, tap->in_pos, tap->npairs, S, (size_t) C, B);
		}
	}
	if (dweight)
		add_grads_by_tap(dweight, dwt, g, idx, ntaps);
	if (din)
		from_channels_last(din, dx_cl, NULL, B, C, S, 1);
}
