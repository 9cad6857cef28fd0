/* core/tapconv.c: small-map convolution as a sum over the taps that meet real pixels. */
#include "tapconv.h"
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

clad_status
clad_tapconv_build(clad_tapconv *tc, const clad_conv_geom *g, const float *weight)
{
	int			ntap_all = g->KH * g->KW;
	int			P = g->OH * g->OW;

	memset(tc, 0, sizeof(*tc));
	tc->g = *g;
	tc->taps = calloc(ntap_all, sizeof(clad_tap));
	if (!tc->taps)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory planning a convolution");
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
			t->w_in_out = malloc(sizeof(float) * g->C * g->OC);
			if (!t->w_in_out)
				goto nomem;
			for (int oc = 0; oc < g->OC; oc++)
				for (int c = 0; c < g->C; c++)
				{
					float		w = weight[(((size_t) oc * g->C + c) * g->KH + kh) * g->KW + kw];

					t->w_in_out[(size_t) c * g->OC + oc] = w;
				}
			tc->ntaps++;
		}
	return CLAD_OK;
nomem:
	tc->ntaps++;				/* free the partly built tap too */
	clad_tapconv_free(tc);
	return clad_fail(CLAD_ERR_NOMEM, "out of memory planning a convolution");
}

void
clad_tapconv_free(clad_tapconv *tc)
{
	if (tc->taps)
		for (int i = 0; i < tc->g.KH * tc->g.KW; i++)
		{
			free(tc->taps[i].out_pos);
			free(tc->taps[i].in_pos);
			free(tc->taps[i].w_in_out);
		}
	free(tc->taps);
	memset(tc, 0, sizeof(*tc));
}

size_t
clad_tapconv_scratch_floats(const clad_tapconv *tc, int B)
{
	const clad_conv_geom *g = &tc->g;
	size_t		maxc = g->C > g->OC ? g->C : g->OC;
	size_t		in_pos = (size_t) g->H * g->W, out_pos = (size_t) g->OH * g->OW;
	size_t		pos = in_pos > out_pos ? in_pos : out_pos;

	/* channel-last copies of the source and the accumulated result, plus one gathered block */
	return (size_t) B * pos * maxc * 2 + (size_t) B * out_pos * maxc * 2 + (size_t) B * pos * maxc;
}

/*
 * Y (N, M) += X (N, K) @ Wp (K, M), all row-major and small N: each row of
 * Wp is read once for up to four rows of Y.  The body is compiled three
 * times (AVX-512, AVX2+FMA, baseline) and chosen by CPU features at run
 * time, so one build is fast on new CPUs and still runs on old ones.
 */
#define SMALL_GEMM_BODY \
	for (int n0 = 0; n0 < N; n0 += 4) \
	{ \
		int			nn = N - n0 < 4 ? N - n0 : 4; \
		for (int k = 0; k < K; k++) \
		{ \
			const float *restrict w = Wp + (size_t) k * M; \
			for (int j = 0; j < nn; j++) \
			{ \
				float		x = X[(size_t) (n0 + j) * K + k]; \
				float	   *restrict y = Y + (size_t) (n0 + j) * M; \
				if (x == 0.0f) \
					continue;	/* ReLU outputs are often zero */ \
				for (int m = 0; m < M; m++) \
					y[m] += x * w[m]; \
			} \
		} \
	}

typedef void (*small_gemm_fn) (float *restrict, const float *restrict, const float *restrict,
							   int, int, int);

#if defined(__x86_64__) && defined(__GNUC__)
typedef float v16f __attribute__((vector_size(64), aligned(4)));

/*
 * AVX-512: for each row of Y, 64 columns stay in four registers while the
 * rows of Wp stream past (a column block of Wp is K x 256 bytes, which
 * stays in L2 for the next row); zero inputs (ReLU outputs) are skipped.
 * The remaining M % 64 columns take the plain loop.
 */
/* One row of Y, 64 columns in registers; zero inputs skipped. */
__attribute__((target("avx512f,avx512vl,fma"), optimize("O3", "fp-contract=fast")))
static inline void
gemm_row64_avx512(float *restrict y, const float *restrict x, const float *restrict w,
				  int K, int M)
{
	v16f		a0 = *(const v16f *) y, a1 = *(const v16f *) (y + 16),
				a2 = *(const v16f *) (y + 32), a3 = *(const v16f *) (y + 48);

	for (int k = 0; k < K; k++, w += M)
	{
		float		xk = x[k];

		if (xk == 0.0f)
			continue;
		a0 += xk * *(const v16f *) w;
		a1 += xk * *(const v16f *) (w + 16);
		a2 += xk * *(const v16f *) (w + 32);
		a3 += xk * *(const v16f *) (w + 48);
	}
	*(v16f *) y = a0;
	*(v16f *) (y + 16) = a1;
	*(v16f *) (y + 32) = a2;
	*(v16f *) (y + 48) = a3;
}

/*
 * AVX-512: 64 columns of up to four rows of Y stay in registers while the
 * K rows of Wp stream past once, so on 2x2 maps each weight is read once
 * for four positions.  A lone row (1x1 maps) skips zero inputs instead.
 * The remaining M % 64 columns take the plain loop.
 */
__attribute__((target("avx512f,avx512vl,fma"), optimize("O3", "fp-contract=fast")))
static void
small_gemm_avx512(float *restrict Y, const float *restrict X, const float *restrict Wp,
				  int N, int K, int M)
{
	int			mv = M - M % 64;
	int			n = 0;

	for (; n + 4 <= N; n += 4)
	{
		const float *x0 = X + (size_t) n * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
		float	   *y0 = Y + (size_t) n * M, *y1 = y0 + M, *y2 = y1 + M, *y3 = y2 + M;

		for (int m0 = 0; m0 < mv; m0 += 16)
		{
			v16f		a0 = *(const v16f *) (y0 + m0), a1 = *(const v16f *) (y1 + m0),
						a2 = *(const v16f *) (y2 + m0), a3 = *(const v16f *) (y3 + m0);
			const float *w = Wp + m0;

			for (int k = 0; k < K; k++, w += M)
			{
				v16f		wv = *(const v16f *) w;

				a0 += x0[k] * wv;
				a1 += x1[k] * wv;
				a2 += x2[k] * wv;
				a3 += x3[k] * wv;
			}
			*(v16f *) (y0 + m0) = a0;
			*(v16f *) (y1 + m0) = a1;
			*(v16f *) (y2 + m0) = a2;
			*(v16f *) (y3 + m0) = a3;
		}
	}
	for (; n < N; n++)
		for (int m0 = 0; m0 < mv; m0 += 64)
			gemm_row64_avx512(Y + (size_t) n * M + m0, X + (size_t) n * K, Wp + m0, K, M);
	for (int r = 0; r < N && mv < M; r++)
		for (int k = 0; k < K; k++)
			for (int m = mv; m < M; m++)
				Y[(size_t) r * M + m] += X[(size_t) r * K + k] * Wp[(size_t) k * M + m];
}

__attribute__((target("avx2,fma"), optimize("O3", "fp-contract=fast")))
static void
small_gemm_avx2(float *restrict Y, const float *restrict X, const float *restrict Wp,
				int N, int K, int M)
{
SMALL_GEMM_BODY
}
#endif

static void
small_gemm_plain(float *restrict Y, const float *restrict X, const float *restrict Wp,
				 int N, int K, int M)
{
SMALL_GEMM_BODY
}

static small_gemm_fn
pick_small_gemm(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
		return small_gemm_avx512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return small_gemm_avx2;
#endif
	return small_gemm_plain;
}

static void
small_gemm_acc(float *restrict Y, const float *restrict X, const float *restrict Wp,
			   int N, int K, int M)
{
	static small_gemm_fn fn = NULL;

	if (!fn)
		fn = pick_small_gemm();
	fn(Y, X, Wp, N, K, M);
}

/*
 * Y (N, M) += X (N, K) @ W^T for W (M, K) row-major: one dot product per
 * output, so the input gradient reads the same packed weights as the
 * forward pass (one copy of the weights stays in cache, not two).
 */
#define SMALL_DOT_BODY \
	for (int m = 0; m < M; m++) \
	{ \
		const float *restrict w = W + (size_t) m * K; \
		for (int n = 0; n < N; n++) \
		{ \
			const float *restrict x = X + (size_t) n * K; \
			float		s = 0.0f; \
			for (int k = 0; k < K; k++) \
				s += x[k] * w[k]; \
			Y[(size_t) n * M + m] += s; \
		} \
	}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,avx512vl,fma"), optimize("O3", "fp-contract=fast")))
static void
small_dot_avx512(float *restrict Y, const float *restrict X, const float *restrict W,
				 int N, int K, int M)
{
	int			kv = K - K % 32;

	for (int m = 0; m < M; m++)
	{
		const float *w = W + (size_t) m * K;

		for (int n = 0; n < N; n++)
		{
			const float *x = X + (size_t) n * K;
			v16f		a0 = {0}, a1 = {0};
			float		s = 0.0f;

			for (int k = 0; k < kv; k += 32)
			{
				a0 += *(const v16f *) (x + k) * *(const v16f *) (w + k);
				a1 += *(const v16f *) (x + k + 16) * *(const v16f *) (w + k + 16);
			}
			a0 += a1;
			for (int i = 0; i < 16; i++)
				s += a0[i];
			for (int k = kv; k < K; k++)
				s += x[k] * w[k];
			Y[(size_t) n * M + m] += s;
		}
	}
}
#endif

static void
small_dot_plain(float *restrict Y, const float *restrict X, const float *restrict W,
				int N, int K, int M)
{
SMALL_DOT_BODY
}

static void
small_dot_acc(float *restrict Y, const float *restrict X, const float *restrict W,
			  int N, int K, int M)
{
#if defined(__x86_64__) && defined(__GNUC__)
	static int	have_avx512 = -1;

	if (have_avx512 < 0)
	{
		__builtin_cpu_init();
		have_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
	}
	if (have_avx512)
	{
		small_dot_avx512(Y, X, W, N, K, M);
		return;
	}
#endif
	small_dot_plain(Y, X, W, N, K, M);
}

/* (B, C, S) -> (B*S, C): each position's channels contiguous */
static void
to_channels_last(float *dst, const float *src, int B, int C, int S)
{
	for (int b = 0; b < B; b++)
		for (int c = 0; c < C; c++)
		{
			const float *s = src + ((size_t) b * C + c) * S;

			for (int i = 0; i < S; i++)
				dst[((size_t) b * S + i) * C + c] = s[i];
		}
}

/*
 * One direction of the tap sum on channel-last data: for every tap and pair,
 * dst_cl[b, to] += src_cl[b, from] @ Wp (K -> M channels).
 */
static void
tap_sum(const clad_tapconv *tc, float *dst_cl, int dst_S, const float *src_cl, int src_S,
		int B, int K, int M, int forward, float *gather, float *partial)
{
	for (int t = 0; t < tc->ntaps; t++)
	{
		const clad_tap *tap = &tc->taps[t];
		const int32_t *from = forward ? tap->in_pos : tap->out_pos;
		const int32_t *to = forward ? tap->out_pos : tap->in_pos;
		const float *Wp = tap->w_in_out;	/* (C, OC) */
		int			N = B * tap->npairs;

		for (int b = 0; b < B; b++)
			for (int i = 0; i < tap->npairs; i++)
				memcpy(gather + ((size_t) b * tap->npairs + i) * K,
					   src_cl + ((size_t) b * src_S + from[i]) * K, sizeof(float) * K);
		memset(partial, 0, sizeof(float) * N * M);
		if (N >= 16)
			/* forward: (N, C) @ (C, OC); backward: (N, OC) @ (C, OC)^T */
			clad_sgemm(0, !forward, N, M, K, 1.0f, gather, K, Wp, forward ? M : K, 0.0f, partial, M);
		else if (forward)
			small_gemm_acc(partial, gather, Wp, N, K, M);
		else
			small_dot_acc(partial, gather, Wp, N, K, M);
		for (int b = 0; b < B; b++)
			for (int i = 0; i < tap->npairs; i++)
			{
				float	   *d = dst_cl + ((size_t) b * dst_S + to[i]) * M;
				const float *p = partial + ((size_t) b * tap->npairs + i) * M;

				for (int m = 0; m < M; m++)
					d[m] += p[m];
			}
	}
}

void
clad_tapconv_forward(const clad_tapconv *tc, float *out, const float *in,
					 const float *bias, int B, float *scratch)
{
	const clad_conv_geom *g = &tc->g;
	int			S = g->H * g->W, P = g->OH * g->OW;
	size_t		maxc = g->C > g->OC ? g->C : g->OC;
	size_t		pos = S > P ? S : P;
	float	   *src_cl = scratch;
	float	   *dst_cl = src_cl + (size_t) B * pos * maxc;
	float	   *gather = dst_cl + (size_t) B * pos * maxc;
	float	   *partial = gather + (size_t) B * pos * maxc;

	to_channels_last(src_cl, in, B, g->C, S);
	memset(dst_cl, 0, sizeof(float) * B * P * g->OC);
	tap_sum(tc, dst_cl, P, src_cl, S, B, g->C, g->OC, 1, gather, partial);
	for (int b = 0; b < B; b++)
		for (int oc = 0; oc < g->OC; oc++)
		{
			float	   *o = out + ((size_t) b * g->OC + oc) * P;
			float		bv = bias ? bias[oc] : 0.0f;

			for (int p = 0; p < P; p++)
				o[p] = dst_cl[((size_t) b * P + p) * g->OC + oc] + bv;
		}
}

void
clad_tapconv_backward_input(const clad_tapconv *tc, float *din, const float *dout,
							int B, float *scratch)
{
	const clad_conv_geom *g = &tc->g;
	int			S = g->H * g->W, P = g->OH * g->OW;
	size_t		maxc = g->C > g->OC ? g->C : g->OC;
	size_t		pos = S > P ? S : P;
	float	   *src_cl = scratch;
	float	   *dst_cl = src_cl + (size_t) B * pos * maxc;
	float	   *gather = dst_cl + (size_t) B * pos * maxc;
	float	   *partial = gather + (size_t) B * pos * maxc;

	to_channels_last(src_cl, dout, B, g->OC, P);
	memset(dst_cl, 0, sizeof(float) * B * S * g->C);
	tap_sum(tc, dst_cl, S, src_cl, P, B, g->OC, g->C, 0, gather, partial);
	for (int b = 0; b < B; b++)
		for (int c = 0; c < g->C; c++)
		{
			float	   *d = din + ((size_t) b * g->C + c) * S;

			for (int s = 0; s < S; s++)
				d[s] += dst_cl[((size_t) b * S + s) * g->C + c];
		}
}
