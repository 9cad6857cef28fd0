/* core/bf16.c: bfloat16 rounding and the bfloat16 x float matrix-vector product (bf16.h). */
#include "bf16.h"
#include "cpu_isa.h"
#include "vectorize.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

clad_bf16
clad_bf16_round(float x)
{
	uint32_t	u;

	memcpy(&u, &x, sizeof(u));
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (clad_bf16) ((u >> 16) | 0x0040u);	/* NaN: keep it one, quiet */
	/* add half an ulp of the result, one less when the kept last bit is even (ties to even) */
	u += 0x7fffu + ((u >> 16) & 1u);
	return (clad_bf16) (u >> 16);
}

float
clad_bf16_float(clad_bf16 h)
{
	uint32_t	u = (uint32_t) h << 16;
	float		x;

	memcpy(&x, &u, sizeof(x));
	return x;
}

void
clad_bf16_round_array(clad_bf16 *dst, const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = clad_bf16_round(src[i]);
}

CLAD_VECTOR_LOOP
void
clad_bf16_float_array(float *restrict dst, const clad_bf16 *restrict src, size_t n)
{
	uint32_t   *d = (uint32_t *) dst;	/* the float's bits: its upper half is the bfloat16 */

	for (size_t i = 0; i < n; i++)
		d[i] = (uint32_t) src[i] << 16;
}

const char *
clad_precision_name(clad_precision p)
{
	return p == CLAD_PRECISION_BF16 ? "bf16" : "fp32";
}

int
clad_precision_parse(const char *s, clad_precision *p)
{
	if (strcmp(s, "fp32") == 0)
		*p = CLAD_PRECISION_FP32;
	else if (strcmp(s, "bf16") == 0)
		*p = CLAD_PRECISION_BF16;
	else
		return 0;
	return 1;
}

/*
 * One row's dot product, plain C: 16 running sums (element k goes to sum
 * k mod 16), added pairwise at the end.
 */
static float
dot_plain(const clad_bf16 *a, const float *x, int N)
{
	float		s[16] = {0};

	for (int k = 0; k < N; k++)
		s[k & 15] += clad_bf16_float(a[k]) * x[k];
	for (int w = 8; w >= 1; w /= 2)
		for (int i = 0; i < w; i++)
			s[i] += s[i + w];
	return s[0];
}

static void
gemv_plain(int M, int N, const clad_bf16 *A, int lda, const float *x, float *y)
{
	for (int i = 0; i < M; i++)
		y[i] = dot_plain(A + (size_t) i * lda, x, N);
}

#if defined(__x86_64__) && defined(__GNUC__)

/* the tail (N mod 16 or 32) of a row's dot product, in order */
static inline float
dot_tail(const clad_bf16 *a, const float *x, int k0, int N)
{
	float		s = 0.0f;

	for (int k = k0; k < N; k++)
		s += clad_bf16_float(a[k]) * x[k];
	return s;
}

__attribute__((target("avx512f,avx512vl,fma")))
static void
gemv_avx512(int M, int N, const clad_bf16 *A, int lda, const float *x, float *y)
{
	int			N32 = N & ~31;

	for (int i = 0; i < M; i++)
	{
		const clad_bf16 *a = A + (size_t) i * lda;
		__m512		s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();

		for (int k = 0; k < N32; k += 32)
		{
			/* widen: the 16 bits become a float's upper half */
			__m512i		w0 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *) (a + k))), 16);
			__m512i		w1 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *) (a + k + 16))), 16);

			s0 = _mm512_fmadd_ps(_mm512_castsi512_ps(w0), _mm512_loadu_ps(x + k), s0);
			s1 = _mm512_fmadd_ps(_mm512_castsi512_ps(w1), _mm512_loadu_ps(x + k + 16), s1);
		}
		y[i] = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) + dot_tail(a, x, N32, N);
	}
}

__attribute__((target("avx2,fma")))
static void
gemv_avx2(int M, int N, const clad_bf16 *A, int lda, const float *x, float *y)
{
	int			N16 = N & ~15;

	for (int i = 0; i < M; i++)
	{
		const clad_bf16 *a = A + (size_t) i * lda;
		__m256		s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
		__m128		h;

		for (int k = 0; k < N16; k += 16)
		{
			__m256i		w0 = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *) (a + k))), 16);
			__m256i		w1 = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *) (a + k + 8))), 16);

			s0 = _mm256_fmadd_ps(_mm256_castsi256_ps(w0), _mm256_loadu_ps(x + k), s0);
			s1 = _mm256_fmadd_ps(_mm256_castsi256_ps(w1), _mm256_loadu_ps(x + k + 8), s1);
		}
		s0 = _mm256_add_ps(s0, s1);
		h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
		h = _mm_add_ps(h, _mm_movehl_ps(h, h));
		h = _mm_add_ss(h, _mm_movehdup_ps(h));
		y[i] = _mm_cvtss_f32(h) + dot_tail(a, x, N16, N);
	}
}
#endif

typedef void (*gemv_fn) (int, int, const clad_bf16 *, int, const float *, float *);

static const gemv_fn gemv_by_isa[] = {
	[CLAD_ISA_BASELINE] = gemv_plain,
#if defined(__x86_64__) && defined(__GNUC__)
	[CLAD_ISA_AVX2] = gemv_avx2,
	[CLAD_ISA_AVX512] = gemv_avx512,
#endif
};

/* the kernels' instruction set, chosen at first use (cpu_isa.h); -1 until then */
static int	isa_chosen = -1;

int
clad_bf16_limit_isa(int isa)
{
	return clad_cpu_isa_limit(&isa_chosen, isa);
}

void
clad_bf16_gemv(int M, int N, const clad_bf16 *A, int lda, const float *x, float *y)
{
	gemv_by_isa[clad_cpu_isa_chosen(&isa_chosen)] (M, N, A, lda, x, y);
}
