/* bench/bench_core.c: clad's side of `make bench`, one thread.
 *
 * usage: bench_core MODEL.safetensors
 * The file holds a ResNet-18 (1x28x28, K = 10) under "model." and "input"
 * (64 images).  Prints "key value" lines: milliseconds per image for forward
 * and ODIN's work at batch 1 and 64, the conv layers' useful GFLOP/s, and the
 * sgemm peak measured in the same run.
 */
#include "gemm.h"
#include "models.h"
#include "odin.h"
#include "safetensors.h"

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

/* Useful FLOPs of the convolutions and linear layers of one forward pass:
 * 2 per multiply-add whose input is a real pixel (zero padding skipped). */
static double
useful_forward_flops(void)
{
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
	double		total = 2.0 * 512 * 10;	/* fc */

	for (size_t i = 0; i < sizeof(convs) / sizeof(convs[0]); i++)
	{
		int			C = convs[i][0], H = convs[i][1], W = convs[i][2], OC = convs[i][3];
		int			k = convs[i][4], s = convs[i][5], p = convs[i][6];
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
		total += 2.0 * taps * C * OC;
	}
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
	if (clad_net_prepare_inference(net, 64) != CLAD_OK)
		return die("prepare");
	if (!(in = clad_st_find(f, "input")) || in->numel != 64 * 784)
	{
		fprintf(stderr, "bench_core: no input (64 x 784)\n");
		return 1;
	}
	x = malloc(in->nbytes);
	memcpy(x, in->data, in->nbytes);

	printf("blas %s\n", clad_blas_describe());
	printf("sgemm_peak_gflops %.2f\n", sgemm_peak_gflops());
	printf("useful_forward_mflop %.2f\n", fwd_flops / 1e6);
	for (int b = 1; b <= 64; b *= 64)
		for (int odin = 0; odin < 2; odin++)
		{
			bench_case	c = {net, x, b, odin, &w, conf};
			double		ms = ms_per_image(&c, b == 1 ? 0.5 : 1.0);

			printf("%s_b%d_ms %.4f\n", odin ? "odin" : "forward", b, ms);
			/* ODIN's work: two forwards and one input-gradient pass of about a forward's FLOPs */
			printf("%s_b%d_useful_gflops %.2f\n", odin ? "odin" : "forward", b,
				   (odin ? 3.0 : 1.0) * fwd_flops / (ms * 1e-3) / 1e9);
		}
	clad_odin_work_free(&w);
	clad_net_free(net);
	clad_st_free(f);
	free(buf);
	free(x);
	return 0;
}
