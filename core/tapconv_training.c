/* core/tapconv_training.c: the passes of training plans (tapconv.h). */
#include "tapconv_internal.h"
#include "parallel.h"
#include "vectorize.h"
#include "gemm.h"

#include <string.h>

/*
 * The forward and input-gradient passes of training run the panel kernels
 * of tapconv_kernels.c on weights packed at every call, over blocks of
 * TRAIN_GROUP images shared by the trainer's threads.  The kernels take a row through a path
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
	panel_gemm_fn panel_gemm = tapconv_kernels()->gemm;
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

			tapconv_tap_rows(tap, j->forward, b0, nb, j->src_S, j->dst_S, xrow, yrow);
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
	const panel_kernels *kern = tapconv_kernels();
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

	tapconv_to_channels_last(x_cl, in, B, C, S);
	if (clad_tapconv_supported(g))
	{
		tapconv_pack_panels(wt, (size_t) OC * C, weight, g, idx, taps_in_use(tc, idx), 0);
		tap_sum_training(tc, y_cl, P, x_cl, S, wt, B, C, OC, 1, group_indices_of(tc, B, scratch));
		tapconv_from_channels_last(out, y_cl, bias, B, OC, P, 0);
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
	tapconv_from_channels_last(out, y_cl, bias, B, OC, P, 0);
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
	tapconv_to_channels_last(dy_cl, dout, B, OC, P);
	if (dweight)
		tapconv_to_channels_last(x_cl, in, B, C, S);
	if (din)
	{
		if (panels)
		{
			tapconv_pack_panels(wt, (size_t) OC * C, weight, g, idx, ntaps, 1);
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
			tapconv_from_channels_last(din, dx_cl, NULL, B, C, S, 1);
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
		tapconv_from_channels_last(din, dx_cl, NULL, B, C, S, 1);
}
