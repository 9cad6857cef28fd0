/* bench/bench_core.c: clad's side of `make bench`, one thread.
 *
 * usage: bench_core MODEL.safetensors
 * The file holds a ResNet-18 (1x28x28, K = 10) under "model." and "input"
 * (64 images).  Prints "key value" lines: milliseconds per image for forward
 * and ODIN's work at batch 1 and 64 (in fp32, then with the small-map
 * convolutions' weights in bf16), the conv layers' useful GFLOP/s, and the
 * sgemm peak measured in the same run, and one core's FMA peak (a loop of
 * independent fused multiply-adds in registers, the widest vectors the CPU
 * has): the sgemm peak is that of the OpenBLAS kernels in use, which may be
 * narrower than the CPU's widest (OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU).
 */
#include "gemm.h"
#include "architectures.h"
#include "odin.h"
#include "safetensors.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int
die(const char *what)
{
	fprintf(stderr, "bench_core: %s: %s\n", what, clad_last_error());
	return 1;
}

/* Best-of-reps time of fn, each rep running for at least min_s. */
typedef struct bench_case
{
	clad_net   *net;
	const float *x;
	int			B;
	int			odin;
	clad_odin_work *w;
	float	   *conf;
} bench_case;

static void
run_case(bench_case *c)
{
	if (c->odin)
		clad_odin_confidence(c->net, c->x, c->B, 1000.0f, 0.0161f, c->conf, NULL, NULL, c->w);
	else
		clad_net_forward(c->net, c->x, c->B, CLAD_EVAL);
}

static double
ms_per_image(bench_case *c, double min_s)
{
	double		best = 1e30;

	run_case(c);				/* warm-up: buffers allocated, caches filled */
	for (int rep = 0; rep < 3; rep++)
	{
		int			iters = 0;
		double		t0 = now(), t;

		do
		{
			run_case(c);
			iters++;
		} while ((t = now() - t0) < min_s);
		if (t / iters < best)
			best = t / iters;
	}
	return best * 1e3 / c->B;
}


/* ResNet-18 at 1x28x28 is built from these (C, H, W, OC, k, stride, pad) convs */
static const int convs[][7] = {
	{1, 28, 28, 64, 7, 2, 3},
	{64, 7, 7, 64, 3, 1, 1}, {64, 7, 7, 64, 3, 1, 1}, {64, 7, 7, 64, 3, 1, 1}, {64, 7, 7, 64, 3, 1, 1},
	{64, 7, 7, 128, 3, 2, 1}, {128, 4, 4, 128, 3, 1, 1}, {64, 7, 7, 128, 1, 2, 0},
	{128, 4, 4, 128, 3, 1, 1}, {128, 4, 4, 128, 3, 1, 1},
	{128, 4, 4, 256, 3, 2, 1}, {256, 2, 2, 256, 3, 1, 1}, {128, 4, 4, 256, 1, 2, 0},
	{256, 2, 2, 256, 3, 1, 1}, {256, 2, 2, 256, 3, 1, 1},
	{256, 2, 2, 512, 3, 2, 1}, {512, 1, 1, 512, 3, 1, 1}, {256, 2, 2, 512, 1, 2, 0},
	{512, 1, 1, 512, 3, 1, 1}, {512, 1, 1, 512, 3, 1, 1},
};
#define N_CONVS (sizeof(convs) / sizeof(convs[0]))

/* 2 FLOPs per multiply-add of one conv whose input is a real pixel. */
static double
conv_useful_flops(const int *cv)
{
	int			C = cv[0], H = cv[1], W = cv[2], OC = cv[3], k = cv[4], s = cv[5], p = cv[6];
	int			OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
	long		taps = 0;

	for (int oh = 0; oh < OH; oh++)
		for (int ow = 0; ow < OW; ow++)
			for (int kh = 0; kh < k; kh++)
				for (int kw = 0; kw < k; kw++)
				{
					int			ih = oh * s - p + kh, iw = ow * s - p + kw;

					taps += ih >= 0 && ih < H && iw >= 0 && iw < W;
				}
	return 2.0 * taps * C * OC;
}

/*
 * Each distinct conv of the model alone, eval forward at batch B, weights
 * of the loaded model's scale: achieved useful GFLOP/s.
 */
static void
conv_layer_rates(int B, double peak)
{
	for (size_t i = 0; i < N_CONVS; i++)
	{
		const int  *cv = convs[i];
		clad_net   *n;
		float	   *x;
		clad_rng	r;
		size_t		nin = (size_t) B * cv[0] * cv[1] * cv[2];
		int			dup = 0;

		for (size_t j = 0; j < i; j++)
			dup |= memcmp(convs[j], cv, sizeof(convs[0])) == 0;
		if (dup)
			continue;
		n = clad_net_new(cv[0], cv[1], cv[2]);
		clad_net_conv(n, 0, "conv", cv[3], cv[4], cv[5], cv[6], 0);
		if (clad_net_finish(n) != CLAD_OK)
			continue;
		clad_rng_seed(&r, i);
		clad_init_normal(clad_net_params(n), clad_net_num_params(n), 0.05f, &r);
		clad_net_prepare_inference(n, B);
		x = malloc(sizeof(float) * nin);
		for (size_t j = 0; j < nin; j++)
			x[j] = clad_rng_uniform(&r) < 0.5f ? 0.0f : clad_rng_uniform(&r);	/* ReLU-like */
		{
			bench_case	c = {n, x, B, 0, NULL, NULL};
			double		ms = ms_per_image(&c, 0.2) * B;
			double		gf = conv_useful_flops(cv) * B / (ms * 1e-3) / 1e9;

			printf("conv_b%d %dx%dx%d->%d k%d s%d %.4f %.2f %.0f\n", B, cv[0], cv[1], cv[2], cv[3],
				   cv[4], cv[5], ms, gf, 100.0 * gf / peak);
		}
		free(x);
		clad_net_free(n);
	}
}

/* Useful FLOPs of the convolutions and linear layers of one forward pass:
 * 2 per multiply-add whose input is a real pixel (zero padding skipped). */
static double
useful_forward_flops(void)
{
	double		total = 2.0 * 512 * 10;	/* fc */

	for (size_t i = 0; i < N_CONVS; i++)
		total += conv_useful_flops(convs[i]);
	return total;
}

static double
sgemm_peak_gflops(void)
{
	int			n = 1024;
	float	   *A = malloc(sizeof(float) * n * n), *B = malloc(sizeof(float) * n * n),
			   *C = malloc(sizeof(float) * n * n);
	double		best = 0;

	for (int i = 0; i < n * n; i++)
	{
		A[i] = (float) (i % 13) / 13.0f;
		B[i] = (float) (i % 7) / 7.0f;
	}
	clad_sgemm(0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
	for (int rep = 0; rep < 5; rep++)
	{
		double		t = now();

		clad_sgemm(0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
		t = now() - t;
		if (2.0 * n * n * n / t / 1e9 > best)
			best = 2.0 * n * n * n / t / 1e9;
	}
	free(A);
	free(B);
	free(C);
	return best;
}

/*
 * n rounds of 12 independent fused multiply-adds on vectors of V floats:
 * enough chains to cover the FMA units' latency on current x86 cores.
 */
#define FMA_ROUNDS(type, fma, set1, V) \
	do { \
		type		a0 = set1(0.1f), a1 = set1(0.2f), a2 = set1(0.3f), a3 = set1(0.4f), \
					a4 = set1(0.5f), a5 = set1(0.6f), a6 = set1(0.7f), a7 = set1(0.8f), \
					a8 = set1(0.9f), a9 = set1(1.0f), a10 = set1(1.1f), a11 = set1(1.2f); \
		float		out[V]; \
		double		t = now(); \
		/* (c depends on the clock, so the loop cannot start before it) */ \
		type		m = set1(0.999f), c = set1(t > 0 ? 0.001f : 0.002f); \
		for (long k = 0; k < n; k++) \
		{ \
			a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c); \
			a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c); \
			a8 = fma(a8, m, c); a9 = fma(a9, m, c); a10 = fma(a10, m, c); a11 = fma(a11, m, c); \
		} \
		/* every chain's result leaves before the clock is read again */ \
		a0 += a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11; \
		memcpy(out, &a0, sizeof(out)); \
		sink += out[0]; \
		t = now() - t; \
		return 2.0 * 12 * V * n / t / 1e9; \
	} while (0)

static volatile float sink;		/* keeps the loops' results alive */

__attribute__((target("avx512f"))) static double
fma_rate_avx512(long n)
{
	FMA_ROUNDS(__m512, _mm512_fmadd_ps, _mm512_set1_ps, 16);
}

__attribute__((target("avx2,fma"))) static double
fma_rate_avx2(long n)
{
	FMA_ROUNDS(__m256, _mm256_fmadd_ps, _mm256_set1_ps, 8);
}

/* One core's FP32 FMA peak (GFLOP/s) and the vectors it used; 0 without FMA. */
static double
fma_peak_gflops(const char **isa)
{
	double		best = 0;
	double		(*rate) (long) = NULL;

	*isa = "none";
	if (__builtin_cpu_supports("avx512f"))
		rate = fma_rate_avx512, *isa = "AVX-512";
	else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		rate = fma_rate_avx2, *isa = "AVX2";
	if (rate == NULL)
		return 0;
	for (int rep = 0; rep < 5; rep++)
	{
		double		r = rate(20000000);

		if (r > best)
			best = r;
	}
	return best;
}

int
main(int argc, char **argv)
{
	uint8_t    *buf;
	size_t		len;
	clad_st_file *f;
	clad_net   *net;
	const clad_st_tensor *in;
	float	   *x, conf[64];
	clad_odin_work w = {0};
	double		fwd_flops = useful_forward_flops();

	if (argc != 2)
	{
		fprintf(stderr, "usage: bench_core MODEL.safetensors\n");
		return 2;
	}
	if (clad_blas_init(CLAD_BLAS_AUTO, 1) != CLAD_OK)
		fprintf(stderr, "bench_core: %s\n", clad_last_error());
	if (clad_read_file(argv[1], &buf, &len) != CLAD_OK)
		return die("read");
	if (clad_st_parse(buf, len, &f) != CLAD_OK)
		return die("parse");
	if (clad_classifier_build("resnet18", 1, 28, 28, 10, &net) != CLAD_OK)
		return die("build");
	if (clad_net_load(net, f, "model.") != CLAD_OK)
		return die("load");
	if (!(in = clad_st_find(f, "input")) || in->numel != 64 * 784)
	{
		fprintf(stderr, "bench_core: no input (64 x 784)\n");
		return 1;
	}
	x = malloc(in->nbytes);
	memcpy(x, in->data, in->nbytes);

	printf("blas %s\n", clad_blas_describe());
	double		peak = sgemm_peak_gflops();

	printf("sgemm_peak_gflops %.2f\n", peak);
	{
		const char *isa;
		double		fma_peak = fma_peak_gflops(&isa);

		printf("fma_peak_gflops %.2f\n", fma_peak);
		printf("fma_peak_isa %s\n", isa);
	}
	printf("useful_forward_mflop %.2f\n", fwd_flops / 1e6);
	/* fp32, then the planned convolutions' weights in bfloat16 (clad.precision = bf16), keys "bf16_..." */
	for (int p = CLAD_PRECISION_FP32; p <= CLAD_PRECISION_BF16; p++)
	{
		const char *key = p == CLAD_PRECISION_BF16 ? "bf16_" : "";

		if (clad_net_prepare_inference_in(net, 64, (clad_precision) p) != CLAD_OK)
			return die("prepare");
		for (int b = 1; b <= 64; b *= 64)
			for (int odin = 0; odin < 2; odin++)
			{
				bench_case	c = {net, x, b, odin, &w, conf};
				double		ms = ms_per_image(&c, b == 1 ? 0.5 : 1.0);

				printf("%s%s_b%d_ms %.4f\n", key, odin ? "odin" : "forward", b, ms);
				/* ODIN's work: two forwards and one input-gradient pass of about a forward's FLOPs */
				printf("%s%s_b%d_useful_gflops %.2f\n", key, odin ? "odin" : "forward", b,
					   (odin ? 3.0 : 1.0) * fwd_flops / (ms * 1e-3) / 1e9);
			}
	}
	if (clad_net_prepare_inference(net, 64) != CLAD_OK)
		return die("prepare");
	conv_layer_rates(1, peak);
	conv_layer_rates(64, peak);
	clad_odin_work_free(&w);
	clad_net_free(net);
	clad_st_free(f);
	free(buf);
	free(x);
	return 0;
}
