/* tests/unit/test_bf16.c: bfloat16 rounding and clad_bf16_gemv, every kernel, against double.
 *
 * Rounding: exact values stay, halfway cases go to the even neighbour, the
 * largest floats overflow to infinity as IEEE round-to-nearest does, NaN
 * stays NaN, and every value is within half an ulp (2^-8 relative).
 * The product: each kernel the CPU runs (AVX-512, AVX2, plain C) against a
 * double-precision sum of the same widened elements, on lengths with every
 * tail, rows of a padded matrix (the padding, NaN, must never be read), and
 * the same floats for a row wherever it lies in A.
 * Bound: |got - want| <= 2^-22 N sum_k |a_k x_k| (float sums of N terms).
 */
#include "bf16.h"
#include "cpu_isa.h"
#include "testutil.h"

#include <string.h>

static float
from_bits(uint32_t u)
{
	float		x;

	memcpy(&x, &u, sizeof(x));
	return x;
}

static void
check_rounding(void)
{
	uint64_t	s = 7;
	double		worst = 0;

	CHECK(clad_bf16_round(1.0f) == 0x3f80 && clad_bf16_float(0x3f80) == 1.0f);
	CHECK(clad_bf16_round(-2.0f) == 0xc000 && clad_bf16_round(0.0f) == 0 && clad_bf16_round(-0.0f) == 0x8000);
	/* 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: to the even one, 1 */
	CHECK(clad_bf16_round(from_bits(0x3f808000u)) == 0x3f80);
	/* 1 + 3 x 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up */
	CHECK(clad_bf16_round(from_bits(0x3f818000u)) == 0x3f82);
	CHECK(clad_bf16_round(from_bits(0x3f808001u)) == 0x3f81);	/* just above halfway */
	CHECK(clad_bf16_round(from_bits(0x3f807fffu)) == 0x3f80);	/* just below */
	CHECK(clad_bf16_round(INFINITY) == 0x7f80 && clad_bf16_round(-INFINITY) == 0xff80);
	CHECK(clad_bf16_round(from_bits(0x7f7fffffu)) == 0x7f80);	/* FLT_MAX rounds to infinity */
	CHECK(isnan(clad_bf16_float(clad_bf16_round(NAN))));
	CHECK(isnan(clad_bf16_float(clad_bf16_round(from_bits(0x7f800001u)))));	/* a NaN whose payload is low bits only */
	CHECK(clad_bf16_round(from_bits(0x00000001u)) == 0);	/* the smallest subnormal rounds to zero */
	for (int i = 0; i < 100000; i++)
	{
		float		x = from_bits((uint32_t) (test_rand(&s) % 0x7f000000u)) * (i & 1 ? -1.0f : 1.0f);
		double		e;

		if (fabsf(x) < 1e-30f)
			continue;
		e = fabs((double) clad_bf16_float(clad_bf16_round(x)) - x) / fabs(x);
		worst = e > worst ? e : worst;
	}
	CHECK_MSG(worst <= 1.0 / 256, "relative rounding error %g > 2^-8", worst);
	{
		float		src[5] = {1.0f, -3.5f, 0.1f, 1e20f, -1e-20f};
		clad_bf16	dst[5];

		clad_bf16_round_array(dst, src, 5);
		for (int i = 0; i < 5; i++)
			CHECK(dst[i] == clad_bf16_round(src[i]));
	}
	{
		/* widening an array: every element as clad_bf16_float gives it, bit for bit (lengths */
		/* around the vector widths; NaN, infinities, signed zeros and subnormals among them) */
		static const clad_bf16 specials[] = {0x7fc1, 0xff80, 0x7f80, 0x8000, 0x0000, 0x0001, 0x807f, 0x3f80};

		for (size_t n = 0; n <= 70; n += n < 20 ? 1 : 17)
		{
			clad_bf16  *h = malloc(sizeof(clad_bf16) * (n + 1));
			float	   *f = malloc(sizeof(float) * (n + 1));
			int			same = 1;

			for (size_t i = 0; i < n; i++)
				h[i] = i < 8 ? specials[i] : (clad_bf16) test_rand(&s);
			f[n] = 42.0f;		/* past the end: untouched */
			clad_bf16_float_array(f, h, n);
			for (size_t i = 0; i < n; i++)
			{
				float		want = clad_bf16_float(h[i]);

				same &= memcmp(&f[i], &want, sizeof(float)) == 0;
			}
			CHECK_MSG(same && f[n] == 42.0f, "clad_bf16_float_array of %zu elements", n);
			free(h);
			free(f);
		}
	}
}

static void
check_gemv(int isa)
{
	static const int lengths[] = {1, 7, 15, 16, 17, 31, 32, 33, 64, 100, 512, 1027};
	uint64_t	s = 11 + isa;
	const char *name = isa == CLAD_ISA_AVX512 ? "avx512" : isa == CLAD_ISA_AVX2 ? "avx2" : "plain";

	for (size_t li = 0; li < sizeof(lengths) / sizeof(lengths[0]); li++)
	{
		int			N = lengths[li], M = 9, lda = N + 5;
		clad_bf16  *A = malloc(sizeof(clad_bf16) * M * lda);
		float	   *x = malloc(sizeof(float) * N), y[9], y1[1];
		double		worst = 0;

		for (int i = 0; i < M * lda; i++)
			A[i] = i % lda < N ? clad_bf16_round((float) ((int64_t) (test_rand(&s) % 2001) - 1000) / 700.0f)
				: clad_bf16_round(NAN);
		for (int k = 0; k < N; k++)
			x[k] = (float) ((int64_t) (test_rand(&s) % 2001) - 1000) / 900.0f;
		clad_bf16_gemv(M, N, A, lda, x, y);
		for (int i = 0; i < M; i++)
		{
			double		want = 0, mag = 0, e;

			for (int k = 0; k < N; k++)
			{
				double		p = (double) clad_bf16_float(A[i * lda + k]) * x[k];

				want += p;
				mag += fabs(p);
			}
			e = fabs(y[i] - want) / (ldexp(1.0, -22) * N * mag + 1e-30);
			worst = e > worst || isnan(y[i]) ? (isnan(y[i]) ? INFINITY : e) : worst;
			/* the same row alone gives the same floats */
			clad_bf16_gemv(1, N, A + i * lda, lda, x, y1);
			CHECK_MSG(memcmp(y1, y + i, sizeof(float)) == 0, "%s N %d: row %d alone differs", name, N, i);
		}
		CHECK_MSG(worst <= 1.0, "%s N %d: error %g of the bound", name, N, worst);
		free(A);
		free(x);
	}
}

int
main(void)
{
	int			best = clad_cpu_best_isa(), ran = 0;

	check_rounding();
	for (int isa = CLAD_ISA_BASELINE; isa <= best; isa++)
	{
		CHECK(clad_bf16_limit_isa(isa) == isa);
		check_gemv(isa);
		ran++;
	}
	CHECK(clad_bf16_limit_isa(-1) == best);
	printf("test_bf16: kernels checked: %d (best on this CPU: %s)\n", ran,
		   best == CLAD_ISA_AVX512 ? "avx512" : best == CLAD_ISA_AVX2 ? "avx2" : "plain C");
	return test_summary("test_bf16");
}
