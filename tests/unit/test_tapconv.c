/* tests/unit/test_tapconv.c: the small-map tap paths agree with im2col + GEMM.
 *
 * A one-conv net uses the training tap path (weights read in place) when
 * not prepared and the packed path once prepared; both are compared with
 * clad_conv2d_forward / clad_conv2d_backward called directly (im2col). */
#include "gemm.h"
#include "layers.h"
#include "net.h"
#include "tapconv.h"
#include "tapconv_internal.h"
#include "testutil.h"

#include <string.h>

static double
rel_err(const float *got, const float *want, size_t n)
{
	double		worst = 0, scale = 0;

	for (size_t i = 0; i < n; i++)
	{
		worst = fmax(worst, fabs((double) got[i] - want[i]));
		scale = fmax(scale, fabs((double) want[i]));
	}
	return scale > 0 ? worst / scale : worst;
}

/*
 * The bf16 plan of a prepared one-conv net n (fp32 results o32, d32 for
 * input x (nin floats) and upstream gradient g (nout)): its passes give, bit for bit, what the
 * fp32 plan gives on the same weights rounded to bfloat16 (the kernels widen
 * each weight exactly and add in the same order), and stay within the
 * rounding's reach of fp32 without being equal to it.  n is left prepared
 * in fp32 with its own weights.
 */
static void
check_bf16(clad_net *n, const float *x, const float *g, const float *o32, const float *d32, int B,
		   size_t nin, size_t nout)
{
	clad_tensor_info *wt = (clad_tensor_info *) clad_net_find(n, "conv.weight");
	float	   *o = malloc(sizeof(float) * nout), *d = malloc(sizeof(float) * nin);
	float	   *w = malloc(sizeof(float) * wt->numel);

	CHECK(clad_net_prepare_inference_in(n, B, CLAD_PRECISION_BF16) == CLAD_OK);
	CHECK(clad_net_forward(n, x, B, CLAD_EVAL) == CLAD_OK);
	memcpy(o, clad_net_output(n), sizeof(float) * nout);
	CHECK(clad_net_backward(n, g, 0, d) == CLAD_OK);
	if (clad_net_precision(n) != CLAD_PRECISION_BF16)
	{
		/* no plan (channels not multiples of 16): nothing is rounded */
		CHECK(memcmp(o, o32, sizeof(float) * nout) == 0 && memcmp(d, d32, sizeof(float) * nin) == 0);
		CHECK(clad_net_prepare_inference(n, B) == CLAD_OK);
		free(o);
		free(d);
		free(w);
		return;
	}
	CHECK_MSG(rel_err(o, o32, nout) < 1e-2 && memcmp(o, o32, sizeof(float) * nout) != 0,
			  "bf16 forward off fp32 by %.2e", rel_err(o, o32, nout));
	CHECK_MSG(rel_err(d, d32, nin) < 1e-2 && memcmp(d, d32, sizeof(float) * nin) != 0,
			  "bf16 input gradient off fp32 by %.2e", rel_err(d, d32, nin));

	/* fp32 on the rounded weights */
	memcpy(w, wt->data, sizeof(float) * wt->numel);
	for (size_t i = 0; i < wt->numel; i++)
		wt->data[i] = clad_bf16_float(clad_bf16_round(w[i]));
	CHECK(clad_net_prepare_inference(n, B) == CLAD_OK);
	CHECK(clad_net_precision(n) == CLAD_PRECISION_FP32);
	CHECK(clad_net_forward(n, x, B, CLAD_EVAL) == CLAD_OK);
	CHECK_MSG(memcmp(o, clad_net_output(n), sizeof(float) * nout) == 0,
			  "bf16 forward differs from fp32 on rounded weights by %.2e", rel_err(o, clad_net_output(n), nout));
	{
		float	   *d2 = malloc(sizeof(float) * nin);

		CHECK(clad_net_backward(n, g, 0, d2) == CLAD_OK);
		CHECK_MSG(memcmp(d, d2, sizeof(float) * nin) == 0,
				  "bf16 input gradient differs from fp32 on rounded weights by %.2e", rel_err(d, d2, nin));
		free(d2);
	}
	memcpy(wt->data, w, sizeof(float) * wt->numel);
	CHECK(clad_net_prepare_inference(n, B) == CLAD_OK);
	free(o);
	free(d);
	free(w);
}

static void
check(int C, int H, int W, int OC, int k, int s, int p, int bias, int B)
{
	clad_net   *n = clad_net_new(C, H, W);
	clad_rng	r;
	size_t		nin = (size_t) B * C * H * W, nout;
	float	   *x, *g, *o1, *o2, *d1, *d2;

	clad_net_conv(n, 0, "conv", OC, k, s, p, bias);
	CHECK(clad_net_finish(n) == CLAD_OK);
	nout = (size_t) B * clad_net_out_numel(n);
	clad_rng_seed(&r, (uint64_t) (C * 1000 + H * 100 + OC + B));
	for (size_t i = 0; i < clad_net_num_params(n); i++)
		clad_net_params(n)[i] = clad_rng_normal(&r) * 0.1f;
	x = malloc(sizeof(float) * nin);
	g = malloc(sizeof(float) * nout);
	o1 = malloc(sizeof(float) * nout);
	o2 = malloc(sizeof(float) * nout);
	d1 = malloc(sizeof(float) * nin);
	d2 = malloc(sizeof(float) * nin);
	/* half the inputs and upstream gradients zero, as after a ReLU */
	for (size_t i = 0; i < nin; i++)
		x[i] = clad_rng_uniform(&r) < 0.5f ? 0.0f : clad_rng_normal(&r);
	for (size_t i = 0; i < nout; i++)
		g[i] = clad_rng_uniform(&r) < 0.5f ? 0.0f : clad_rng_normal(&r);

	/* reference: im2col + GEMM on the same weights */
	{
		clad_conv_geom geo;
		const clad_tensor_info *wt = clad_net_find(n, "conv.weight");
		const clad_tensor_info *bt = clad_net_find(n, "conv.bias");
		float	   *scr, *dw_ref, *db_ref, *dw, *db;
		size_t		nw = wt->numel;

		CHECK(clad_conv_geom_init(&geo, B, C, H, W, OC, k, k, s, p) == CLAD_OK);
		scr = malloc(sizeof(float) * (clad_conv_scratch_floats(&geo) + 1));
		dw_ref = calloc(nw, sizeof(float));
		db_ref = calloc(OC, sizeof(float));
		dw = malloc(sizeof(float) * nw);
		db = malloc(sizeof(float) * OC);
		clad_conv2d_forward(o1, x, wt->data, bt ? bt->data : NULL, &geo, scr);
		memset(d1, 0, sizeof(float) * nin);
		clad_conv2d_backward(d1, dw_ref, bt ? db_ref : NULL, g, x, wt->data, &geo, scr);

		/* the training tap path, with weight gradients */
		for (int mode = 0; mode < 2; mode++)
		{
			CHECK(clad_net_forward(n, x, B, mode ? CLAD_TRAIN : CLAD_EVAL) == CLAD_OK);
			CHECK_MSG(rel_err(clad_net_output(n), o1, nout) < 1e-5,
					  "%dx%dx%d->%d k%d s%d p%d B%d: training-path forward off by %.2e",
					  C, H, W, OC, k, s, p, B, rel_err(clad_net_output(n), o1, nout));
			clad_net_zero_grad(n);
			CHECK(clad_net_backward(n, g, 1, d2) == CLAD_OK);
			memcpy(dw, wt->grad, sizeof(float) * nw);
			CHECK_MSG(rel_err(d2, d1, nin) < 1e-5, "%dx%dx%d->%d k%d s%d p%d B%d: training-path input gradient off by %.2e",
					  C, H, W, OC, k, s, p, B, rel_err(d2, d1, nin));
			CHECK_MSG(rel_err(dw, dw_ref, nw) < 1e-5, "%dx%dx%d->%d k%d s%d p%d B%d: weight gradient off by %.2e",
					  C, H, W, OC, k, s, p, B, rel_err(dw, dw_ref, nw));
			if (bt)
			{
				memcpy(db, bt->grad, sizeof(float) * OC);
				CHECK(rel_err(db, db_ref, OC) < 1e-5);
			}
		}
		free(scr);
		free(dw_ref);
		free(db_ref);
		free(dw);
		free(db);
	}
	/* the packed inference path */
	CHECK(clad_net_prepare_inference(n, B) == CLAD_OK);
	CHECK(clad_net_forward(n, x, B, CLAD_EVAL) == CLAD_OK);
	memcpy(o2, clad_net_output(n), sizeof(float) * nout);
	CHECK(clad_net_backward(n, g, 0, d2) == CLAD_OK);
	CHECK_MSG(rel_err(o2, o1, nout) < 1e-5, "%dx%dx%d->%d k%d s%d p%d B%d: forward off by %.2e",
			  C, H, W, OC, k, s, p, B, rel_err(o2, o1, nout));
	CHECK_MSG(rel_err(d2, d1, nin) < 1e-5, "%dx%dx%d->%d k%d s%d p%d B%d: input gradient off by %.2e",
			  C, H, W, OC, k, s, p, B, rel_err(d2, d1, nin));
	check_bf16(n, x, g, o2, d2, B, nin, nout);

	/* a training step drops the plan: the next eval pass sees the new weights */
	{
		clad_sgd	opt = {0.1f, 0.0f, 0.0f, 0};

		for (size_t i = 0; i < clad_net_num_params(n); i++)
			clad_net_grads(n)[i] = 1.0f;
		CHECK(clad_net_sgd_step(n, &opt) == CLAD_OK);
		CHECK(clad_net_forward(n, x, B, CLAD_EVAL) == CLAD_OK);
		memcpy(o2, clad_net_output(n), sizeof(float) * nout);
		CHECK(clad_net_prepare_inference(n, B) == CLAD_OK);
		CHECK(clad_net_forward(n, x, B, CLAD_EVAL) == CLAD_OK);
		CHECK(rel_err(clad_net_output(n), o2, nout) < 1e-5);
	}
	free(x);
	free(g);
	free(o1);
	free(o2);
	free(d1);
	free(d2);
	clad_net_free(n);
}

/*
 * The training passes give the same floats, bit for bit, with 1, 2 and 3
 * threads (the trainer's --threads must not change the model): output,
 * input gradient and weight gradient of a one-conv net in training mode.
 */
static void
check_threads(int C, int H, int W, int OC, int k, int s, int p, int B)
{
	clad_net   *n = clad_net_new(C, H, W);
	clad_rng	r;
	size_t		nin = (size_t) B * C * H * W, nout, np;
	float	   *x, *g, *got[3][3];
	int			same = 1;

	clad_net_conv(n, 0, "conv", OC, k, s, p, 1);
	CHECK(clad_net_finish(n) == CLAD_OK);
	nout = (size_t) B * clad_net_out_numel(n);
	np = clad_net_num_params(n);
	clad_rng_seed(&r, (uint64_t) (C * 31 + OC + B));
	for (size_t i = 0; i < np; i++)
		clad_net_params(n)[i] = clad_rng_normal(&r) * 0.1f;
	x = malloc(sizeof(float) * nin);
	g = malloc(sizeof(float) * nout);
	for (size_t i = 0; i < nin; i++)
		x[i] = clad_rng_uniform(&r) < 0.5f ? 0.0f : clad_rng_normal(&r);
	for (size_t i = 0; i < nout; i++)
		g[i] = clad_rng_uniform(&r) < 0.5f ? 0.0f : clad_rng_normal(&r);
	clad_sgemm_thread_independent(1);
	for (int t = 0; t < 3; t++)
	{
		got[t][0] = malloc(sizeof(float) * nout);
		got[t][1] = malloc(sizeof(float) * nin);
		got[t][2] = malloc(sizeof(float) * np);
		CHECK(clad_blas_init(CLAD_BLAS_AUTO, t + 1) == CLAD_OK);
		CHECK(clad_net_forward(n, x, B, CLAD_TRAIN) == CLAD_OK);
		memcpy(got[t][0], clad_net_output(n), sizeof(float) * nout);
		clad_net_zero_grad(n);
		CHECK(clad_net_backward(n, g, 1, got[t][1]) == CLAD_OK);
		memcpy(got[t][2], clad_net_grads(n), sizeof(float) * np);
		if (t > 0)
			same &= memcmp(got[t][0], got[0][0], sizeof(float) * nout) == 0 &&
				memcmp(got[t][1], got[0][1], sizeof(float) * nin) == 0 &&
				memcmp(got[t][2], got[0][2], sizeof(float) * np) == 0;
	}
	clad_sgemm_thread_independent(0);
	CHECK(clad_blas_init(CLAD_BLAS_AUTO, 1) == CLAD_OK);
	CHECK_MSG(same, "%dx%dx%d->%d k%d s%d p%d B%d: the training passes differ between 1, 2 and 3 threads",
			  C, H, W, OC, k, s, p, B);
	for (int t = 0; t < 3; t++)
		for (int i = 0; i < 3; i++)
			free(got[t][i]);
	free(x);
	free(g);
	clad_net_free(n);
}

/*
 * The transposed product over panels laid out by column (a batch's input
 * gradient on shared plans) gives, bit for bit, what the panels read in place
 * give, over float and bfloat16 panels: N rows (VW-row blocks and their
 * tails), rows scattered and half their inputs zero, as tap_sum calls them.
 */
static void
check_columns(int N, int K, int M)
{
	const panel_kernels *kern = tapconv_kernels();
	clad_rng	r;
	size_t		ny = (size_t) (2 * N + 1) * M;
	float	   *X = malloc(sizeof(float) * (2 * N + 1) * K), *W = malloc(sizeof(float) * K * M);
	float	   *Wc = malloc(sizeof(float) * K * M), *y1 = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny);
	clad_bf16  *Wh = malloc(sizeof(clad_bf16) * K * M);
	int32_t    *xrow = malloc(sizeof(int32_t) * N), *yrow = malloc(sizeof(int32_t) * N), *nz = malloc(sizeof(int32_t) * K);

	clad_rng_seed(&r, (uint64_t) (N * 10000 + K * 100 + M));
	for (int i = 0; i < (2 * N + 1) * K; i++)
		X[i] = clad_rng_uniform(&r) < 0.5f ? 0.0f : clad_rng_normal(&r);
	for (int i = 0; i < K * M; i++)
		W[i] = clad_rng_normal(&r);
	clad_bf16_round_array(Wh, W, (size_t) K * M);
	for (int n = 0; n < N; n++)
	{
		xrow[n] = 2 * N - 2 * n;	/* every other row, backwards */
		yrow[n] = 2 * n + 1;
	}
	for (int bf16 = 0; bf16 < 2; bf16++)
	{
		for (size_t i = 0; i < ny; i++)
			y1[i] = y2[i] = clad_rng_normal(&r);	/* the products are added to what is there */
		if (bf16)
			kern->gemm_t_bf16(y1, X, yrow, xrow, Wh, N, K, M, nz);
		else
			kern->gemm_t(y1, X, yrow, xrow, W, N, K, M, nz);
		tapconv_panels_to_columns(Wc, bf16 ? (const void *) Wh : (const void *) W, bf16, K, M);
		kern->gemm_t_columns(y2, X, yrow, xrow, Wc, N, K, M, nz);
		CHECK_MSG(memcmp(y1, y2, sizeof(float) * ny) == 0,
				  "N%d K%d M%d %s: panels by column give other floats than in place", N, K, M, bf16 ? "bf16" : "fp32");
	}
	free(X);
	free(W);
	free(Wc);
	free(Wh);
	free(y1);
	free(y2);
	free(xrow);
	free(yrow);
	free(nz);
}

/* Whether a packed plan for this geometry is shared (its input gradient reads the forward panels). */
static int
plan_is_shared(int C, int H, int W, int OC, int k, int s, int p)
{
	clad_conv_geom g;
	clad_tapconv tc;
	int			shared;

	CHECK(clad_conv_geom_init(&g, 1, C, H, W, OC, k, k, s, p) == CLAD_OK);
	CHECK(clad_tapconv_build(&tc, &g, NULL) == CLAD_OK);
	shared = tc.shared;
	clad_tapconv_free(&tc);
	return shared;
}

int
main(void)
{
	/* which plans share their panels: few positions per tap, enough output channels */
	CHECK(plan_is_shared(256, 2, 2, 256, 3, 1, 1));
	CHECK(plan_is_shared(512, 1, 1, 512, 3, 1, 1));
	CHECK(plan_is_shared(256, 2, 2, 512, 3, 2, 1));
	CHECK(plan_is_shared(128, 4, 4, 256, 3, 2, 1));
	CHECK(!plan_is_shared(128, 4, 4, 128, 3, 1, 1));	/* 9 to 16 positions per tap */
	CHECK(!plan_is_shared(64, 7, 7, 64, 3, 1, 1));
	CHECK(!plan_is_shared(32, 2, 2, 16, 3, 1, 1));		/* too few output channels */

	/* every kernel this CPU runs (the widest last, so the rest of the run uses it) */
	for (int isa = CLAD_TAPCONV_ISA_BASELINE; isa <= CLAD_TAPCONV_ISA_AVX512; isa++)
	{
		if (clad_tapconv_limit_isa(isa) != isa)
			continue;
		printf("  kernels: instruction set %d\n", isa);
		for (int B = 1; B <= 19; B += B < 5 ? 2 : 14)	/* 19: blocks of 8 images and a tail */
		{
			check(64, 2, 2, 64, 3, 1, 1, 1, B);		/* shared: 1, 2 and 4 pairs per tap */
			check(32, 1, 1, 80, 3, 1, 1, 0, B);		/* shared, centre tap, odd count of vectors */
			check(64, 4, 4, 96, 3, 2, 1, 0, B);		/* shared, stride 2 onto 2x2 */
			check(48, 7, 7, 48, 3, 1, 1, 0, B);		/* 8-row blocks over 1.5 pairs of vectors */
		}
		for (int N = 1; N <= 37; N += N < 9 ? 1 : 14)	/* 1-9 rows, then blocks of 4, 8, 16 and tails */
		{
			check_columns(N, 16, 16);
			check_columns(N, 80, 32);
			check_columns(N, 48, 80);
		}
		check_columns(64, 512, 64);
	}
	clad_tapconv_limit_isa(-1);
	/* the trainer's thread counts: ResNet-18's layer1 and layer3 shapes on MNIST, packed and not */
	check_threads(64, 7, 7, 64, 3, 1, 1, 21);
	check_threads(128, 4, 4, 256, 3, 2, 1, 21);
	check_threads(48, 5, 5, 32, 3, 1, 1, 19);
	check_threads(20, 5, 3, 12, 3, 2, 1, 19);
	for (int pass = 0; pass < 2; pass++)
	{
		clad_blas_init(pass ? CLAD_BLAS_AUTO : CLAD_BLAS_REFERENCE, 1);
		for (int B = 1; B <= 5; B += 2)
		{
			check(16, 1, 1, 32, 3, 1, 1, 0, B);		/* centre tap only */
			check(32, 2, 2, 16, 3, 1, 1, 1, B);		/* 1, 2 and 4 pairs per tap */
			check(16, 4, 4, 32, 3, 2, 1, 0, B);		/* stride 2 onto 2x2 */
			check(32, 2, 2, 48, 3, 2, 1, 0, B);		/* 2x2 onto 1x1 */
			check(16, 3, 3, 16, 3, 1, 1, 1, B);		/* odd map */
			check(16, 4, 4, 32, 1, 2, 0, 0, B);		/* 1x1 downsample */
			check(16, 7, 7, 16, 3, 1, 1, 0, B);		/* 49 positions */
			check(48, 3, 5, 32, 3, 1, 0, 1, B);		/* no padding, odd sizes */
			check(20, 5, 3, 12, 3, 2, 1, 1, B);		/* training path only: channels not multiples of 16 */
		}
	}
	return test_summary("test_tapconv");
}
