/* tests/unit/test_gemm.c: clad_sgemm_ref and clad_sgemm against a naive double-precision product.
 *
 * All four transpose combinations, odd sizes, alpha/beta other than 0/1 (and
 * the 0 and 1 special cases), leading dimensions larger than the minimum
 * (the padding of C must be left alone), then the same through whatever
 * CLAD_BLAS_AUTO chooses (OpenBLAS when present).  The test never sets
 * OPENBLAS_CORETYPE: clad's own kernel choice is what is under test.
 *
 * Tolerance: |got - want| <= 1e-5 * K * (|alpha| * sum_k |a_ik b_kj| + |beta c_ij|),
 * a bound relative to the magnitudes summed (float rounding gives ~6e-8 * K).
 */
#include "gemm.h"
#include "rng.h"
#include "testutil.h"

#include <string.h>

#define PAD_SENTINEL 12345.0f

typedef void (*sgemm_fn) (int, int, int, int, int, float, const float *, int,
						  const float *, int, float, float *, int);

/* Worst |got - want| / bound seen over every product, per implementation. */
static double worst_ratio[2];

/*
 * One product C = alpha op(A) op(B) + beta C with the given extra leading
 * dimension padding; returns the worst error ratio (error / allowed error).
 */
static double
check_one(sgemm_fn fn, const char *fname, int ta, int tb, int M, int N, int K,
		  float alpha, float beta, int extra, clad_rng *r)
{
	int			arows = ta ? K : M, acols = ta ? M : K;
	int			brows = tb ? N : K, bcols = tb ? K : N;
	int			lda = acols + extra, ldb = bcols + extra, ldc = N + extra;
	float	   *A = malloc(sizeof(float) * (size_t) arows * lda);
	float	   *B = malloc(sizeof(float) * (size_t) brows * ldb);
	float	   *C = malloc(sizeof(float) * (size_t) M * ldc);
	float	   *C0 = malloc(sizeof(float) * (size_t) M * ldc);
	double		worst = 0.0;
	int			pad_ok = 1, finite = 1;

	for (size_t i = 0; i < (size_t) arows * lda; i++)
		A[i] = (int) (i % lda) < acols ? clad_rng_normal(r) : NAN;	/* padding must never be read */
	for (size_t i = 0; i < (size_t) brows * ldb; i++)
		B[i] = (int) (i % ldb) < bcols ? clad_rng_normal(r) : NAN;
	for (size_t i = 0; i < (size_t) M * ldc; i++)
	{
		if ((int) (i % ldc) >= N)
			C0[i] = PAD_SENTINEL;
		else if (beta == 0.0f)
			C0[i] = NAN;		/* beta = 0: C is not read (BLAS convention) */
		else
			C0[i] = clad_rng_normal(r);
	}
	memcpy(C, C0, sizeof(float) * (size_t) M * ldc);

	fn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);

	for (int i = 0; i < M; i++)
	{
		for (int j = 0; j < N; j++)
		{
			double		s = 0.0, mag = 0.0, want, bound, err;

			for (int k = 0; k < K; k++)
			{
				double		a = ta ? A[(size_t) k * lda + i] : A[(size_t) i * lda + k];
				double		b = tb ? B[(size_t) j * ldb + k] : B[(size_t) k * ldb + j];

				s += a * b;
				mag += fabs(a * b);
			}
			want = (double) alpha * s;
			bound = fabs((double) alpha) * mag;
			if (beta != 0.0f)
			{
				want += (double) beta * C0[(size_t) i * ldc + j];
				bound += fabs((double) beta * C0[(size_t) i * ldc + j]);
			}
			bound = 1e-5 * (K > 0 ? K : 1) * bound + 1e-30;
			err = fabs((double) C[(size_t) i * ldc + j] - want);
			if (!isfinite(C[(size_t) i * ldc + j]))
				finite = 0;
			if (!(err / bound <= worst))
				worst = isnan(err) ? INFINITY : err / bound;
		}
		for (int j = N; j < ldc; j++)
			if (C[(size_t) i * ldc + j] != PAD_SENTINEL)
				pad_ok = 0;
	}
	CHECK_MSG(worst <= 1.0 && finite,
			  "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g extra=%d: error %.2f x tolerance%s",
			  fname, ta, tb, M, N, K, alpha, beta, extra, worst, finite ? "" : " (non-finite result)");
	CHECK_MSG(pad_ok, "%s ta=%d tb=%d M=%d N=%d K=%d ldc=%d: padding of C was written",
			  fname, ta, tb, M, N, K, ldc);
	free(A);
	free(B);
	free(C);
	free(C0);
	return worst;
}

static void
check_all(sgemm_fn fn, const char *fname, int which, int big)
{
	static const int sizes[][3] = {
		{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {5, 7, 3}, {1, 9, 4}, {6, 1, 11}, {17, 33, 1},
	};
	/* shapes large enough for OpenBLAS's packed kernels and edge handling */
	static const int big_sizes[][3] = {{64, 129, 96}, {3, 200, 576}, {131, 67, 257}};
	static const float ab[][2] = {{0.75f, -0.5f}, {-1.25f, 1.5f}, {1.5f, 0.0f}, {1.0f, 1.0f}, {0.5f, 1.0f}};
	clad_rng	r;
	double		worst = 0.0;
	int			nsizes = (int) (sizeof(sizes) / sizeof(sizes[0]));
	int			nbig = big ? (int) (sizeof(big_sizes) / sizeof(big_sizes[0])) : 0;

	clad_rng_seed(&r, 2024);
	for (int s = 0; s < nsizes + nbig; s++)
	{
		const int  *mnk = s < nsizes ? sizes[s] : big_sizes[s - nsizes];

		for (int t = 0; t < 4; t++)
			for (size_t a = 0; a < sizeof(ab) / sizeof(ab[0]); a++)
				for (int extra = 0; extra <= 3; extra += 3)
				{
					double		e = check_one(fn, fname, t & 1, t >> 1, mnk[0], mnk[1], mnk[2],
											  ab[a][0], ab[a][1], extra, &r);

					if (e > worst)
						worst = e;
				}
	}
	/* K = 0: C = beta * C */
	{
		float		A[1] = {NAN}, B[1] = {NAN}, C[6] = {1, 2, 3, 4, 5, 6};

		fn(0, 0, 2, 3, 0, 2.0f, A, 1, B, 3, 0.5f, C, 3);
		CHECK_MSG(C[0] == 0.5f && C[5] == 3.0f, "%s K=0: C = beta*C, got %g %g", fname, C[0], C[5]);
	}
	if (worst > worst_ratio[which])
		worst_ratio[which] = worst;
	printf("  %-16s worst error %.3f of tolerance (1e-5*K relative)\n", fname, worst);
}

/*
 * clad_sgemm computes big products as blocks of rows (M > N) or columns of
 * C that the threads share out: with clad_sgemm_thread_independent on (the
 * trainer's setting) each element must come out bit for bit the same with
 * 1, 2 and 3 threads, for every transpose, padded leading dimensions and
 * beta != 0.
 */
static void
check_split_products(void)
{
	static const int shapes[][3] = {{300, 97, 80}, {45, 700, 91}, {129, 129, 129}};
	clad_rng	r;
	int			ok = 1;

	clad_rng_seed(&r, 77);
	clad_sgemm_thread_independent(1);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (int ta = 0; ta < 2; ta++)
			for (int tb = 0; tb < 2; tb++)
			{
				int			M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
				int			lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
				size_t		na = (size_t) (ta ? K : M) * lda, nb = (size_t) (tb ? N : K) * ldb,
							nc = (size_t) M * ldc;
				float	   *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
				float	   *C1 = malloc(sizeof(float) * nc), *C2 = malloc(sizeof(float) * nc),
						   *C3 = malloc(sizeof(float) * nc);

				for (size_t i = 0; i < na; i++)
					A[i] = clad_rng_uniform(&r) - 0.5f;
				for (size_t i = 0; i < nb; i++)
					B[i] = clad_rng_uniform(&r) - 0.5f;
				for (size_t i = 0; i < nc; i++)
					C1[i] = C2[i] = C3[i] = clad_rng_uniform(&r);
				CHECK(clad_blas_init(CLAD_BLAS_AUTO, 1) == CLAD_OK);
				clad_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.75f, C1, ldc);
				CHECK(clad_blas_init(CLAD_BLAS_AUTO, 2) == CLAD_OK);
				clad_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.75f, C2, ldc);
				CHECK(clad_blas_init(CLAD_BLAS_AUTO, 3) == CLAD_OK);
				clad_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.75f, C3, ldc);
				if (memcmp(C1, C2, sizeof(float) * nc) != 0 || memcmp(C1, C3, sizeof(float) * nc) != 0)
				{
					printf("  split product %dx%dx%d ta=%d tb=%d differs from one thread\n", M, N, K, ta, tb);
					ok = 0;
				}
				free(A);
				free(B);
				free(C1);
				free(C2);
				free(C3);
			}
	clad_sgemm_thread_independent(0);
	CHECK_MSG(ok, "products split among threads differ from one thread's");
}

/* clad_sgemv against the plain C product in double, on shapes with a row stride */
static void
check_sgemv(const char *what)
{
	static const int shapes[][2] = {{1, 1}, {5, 3}, {256, 512}, {300, 17}, {1000, 128}};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
	{
		int			M = shapes[s][0], N = shapes[s][1], lda = N + 3;
		float	   *A = malloc(sizeof(float) * M * lda), *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * M);
		unsigned	r = 99u + (unsigned) s;
		double		worst = 0;

		for (int i = 0; i < M * lda; i++)
			A[i] = ((r = r * 1103515245u + 12345u) >> 9) * (1.0f / 4194304.0f) - 1.0f;
		for (int i = 0; i < N; i++)
			x[i] = ((r = r * 1103515245u + 12345u) >> 9) * (1.0f / 4194304.0f) - 1.0f;
		clad_sgemv(M, N, A, lda, x, y);
		for (int i = 0; i < M; i++)
		{
			double		want = 0;

			for (int k = 0; k < N; k++)
				want += (double) A[(size_t) i * lda + k] * x[k];
			worst = fmax(worst, fabs(y[i] - want) / (1e-6 * N + 1e-6 * fabs(want)));
		}
		CHECK_MSG(worst <= 1.0, "%s: sgemv %dx%d off by %.3g of the tolerance", what, M, N, worst);
		free(A);
		free(x);
		free(y);
	}
}

int
main(void)
{
	const char *coretype_before = getenv("OPENBLAS_CORETYPE");
	char		coretype_copy[64] = "";
	int			have_openblas;

	if (coretype_before)
		snprintf(coretype_copy, sizeof(coretype_copy), "%s", coretype_before);

	/* without clad_blas_init the plain C path is used */
	CHECK(clad_blas_is_openblas() == 0);

	check_all(clad_sgemm_ref, "clad_sgemm_ref", 0, 1);
	check_sgemv("sgemv/C");

	CHECK(clad_blas_init(CLAD_BLAS_AUTO, 0) != CLAD_OK);	/* threads < 1 */
	CHECK(clad_blas_init(CLAD_BLAS_AUTO, 1) == CLAD_OK);
	have_openblas = clad_blas_is_openblas();
	printf("sgemm (auto): %s\n", clad_blas_describe());
	/* clad puts OPENBLAS_CORETYPE back as it found it */
	{
		const char *after = getenv("OPENBLAS_CORETYPE");

		CHECK_MSG(coretype_before ? (after && strcmp(after, coretype_copy) == 0) : after == NULL,
				  "OPENBLAS_CORETYPE changed by clad_blas_init: %s -> %s",
				  coretype_before ? coretype_copy : "(unset)", after ? after : "(unset)");
	}
	check_all(clad_sgemm, have_openblas ? "clad_sgemm/blas" : "clad_sgemm/C", 1, 1);
	check_sgemv(have_openblas ? "sgemv/blas" : "sgemv/C");

	/* two threads (the trainer's case) give the same answers */
	CHECK(clad_blas_init(CLAD_BLAS_AUTO, 2) == CLAD_OK);
	CHECK(clad_blas_is_openblas() == have_openblas);
	printf("sgemm (auto, 2 threads): %s\n", clad_blas_describe());
	check_all(clad_sgemm, "clad_sgemm/2thr", 1, 1);
	check_split_products();

	/* the reference backend switches OpenBLAS off, and AUTO switches it back on */
	CHECK(clad_blas_init(CLAD_BLAS_REFERENCE, 1) == CLAD_OK);
	CHECK_MSG(clad_blas_is_openblas() == 0, "CLAD_BLAS_REFERENCE still reports OpenBLAS");
	printf("sgemm (reference): %s\n", clad_blas_describe());
	check_all(clad_sgemm, "clad_sgemm/ref", 1, 0);
	CHECK(clad_blas_init(CLAD_BLAS_AUTO, 1) == CLAD_OK);
	CHECK(clad_blas_is_openblas() == have_openblas);

	/* CLAD_BLAS_OPENBLAS succeeds exactly when AUTO found a usable OpenBLAS */
	CHECK((clad_blas_init(CLAD_BLAS_OPENBLAS, 1) == CLAD_OK) == (have_openblas != 0));
	CHECK(clad_blas_init(CLAD_BLAS_REFERENCE, 1) == CLAD_OK && clad_blas_is_openblas() == 0);

	printf("worst error / tolerance: reference %.3f, clad_sgemm %.3f\n",
		   worst_ratio[0], worst_ratio[1]);
	if (!have_openblas)
		printf("note: OpenBLAS not used (missing or failed clad's check); only the C path was tested\n");
	return test_summary("test_gemm");
}
