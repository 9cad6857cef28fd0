/* core/gemm.c: sgemm dispatch (OpenBLAS via dlopen, or plain C) and kernel choice. */
#include "gemm.h"
#include "parallel.h"

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CBLAS constants, so that no OpenBLAS header is needed at build time. */
enum { CB_ROW_MAJOR = 101, CB_NO_TRANS = 111, CB_TRANS = 112 };

typedef void (*cblas_sgemm_fn) (int, int, int, int, int, int, float,
								const float *, int, const float *, int,
								float, float *, int);
typedef void (*cblas_sgemv_fn) (int, int, int, int, float, const float *, int, const float *, int,
								float, float *, int);
typedef void (*set_threads_fn) (int);
typedef char *(*get_str_fn) (void);

static cblas_sgemm_fn blas_sgemm = NULL;	/* NULL: plain C path */
static cblas_sgemv_fn blas_sgemv = NULL;	/* NULL: plain C path */
static void *blas_handle = NULL;
static set_threads_fn blas_set_threads = NULL;
static get_str_fn blas_corename = NULL;
static get_str_fn blas_config = NULL;
static int	blas_threads = 1;
static char blas_coretype_note[96] = "";
static int	blas_loaded = 0;	/* dlopen attempted */
static char describe_buf[256];

/*
 * The OpenBLAS core type that suits this CPU, from CPUID feature bits, or
 * NULL to let OpenBLAS decide.  Only the sgemm kernels matter to clad:
 * SkylakeX's need AVX-512 F/BW/DQ/VL, Haswell's AVX2 and FMA.
 */
static const char *
suitable_coretype(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		__builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
		return "SKYLAKEX";
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return "HASWELL";
#endif
	return NULL;
}

/*
 * Compare OpenBLAS with the C path on a few awkward shapes: full and partial
 * kernel tiles in M and N, K with a tail, each transpose.  Small, because
 * every backend runs it before its first score.
 */
/* the agreement checks' values: a seeded LCG, uniform in [-1, 1) */
static float
check_value(unsigned *r)
{
	*r = *r * 1103515245u + 12345u;
	return (*r >> 9) * (1.0f / 4194304.0f) - 1.0f;
}

static int
openblas_agrees(void)
{
	static const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {40, 33, 96}, {3, 70, 200}};
	int			ok = 1;

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]) && ok; s++)
	{
		int			M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];

		for (int t = 0; t < 4 && ok; t++)
		{
			int			ta = t & 1, tb = t >> 1;
			float	   *A = malloc(sizeof(float) * M * K);
			float	   *B = malloc(sizeof(float) * K * N);
			float	   *C1 = malloc(sizeof(float) * M * N);
			float	   *C2 = malloc(sizeof(float) * M * N);
			unsigned	x = 12345u + (unsigned) s * 77u + (unsigned) t;

			if (!A || !B || !C1 || !C2)
				ok = 0;
			else
			{
				for (int i = 0; i < M * K; i++)
					A[i] = check_value(&x);
				for (int i = 0; i < K * N; i++)
					B[i] = check_value(&x);
				for (int i = 0; i < M * N; i++)
					C1[i] = C2[i] = (float) (i % 7) - 3.0f;
				blas_sgemm(CB_ROW_MAJOR, ta ? CB_TRANS : CB_NO_TRANS, tb ? CB_TRANS : CB_NO_TRANS,
						   M, N, K, 0.75f, A, ta ? M : K, B, tb ? K : N, 0.5f, C1, N);
				clad_sgemm_ref(ta, tb, M, N, K, 0.75f, A, ta ? M : K, B, tb ? K : N, 0.5f, C2, N);
				for (int i = 0; i < M * N; i++)
					if (!(fabsf(C1[i] - C2[i]) <= 1e-4f * (float) K + 1e-4f * fabsf(C2[i])))
						ok = 0;
			}
			free(A);
			free(B);
			free(C1);
			free(C2);
		}
	}
	return ok;
}

/*
 * OpenBLAS binds some 16,000 references when it loads, most to its own
 * symbols.  In a process with a big global scope (a PostgreSQL backend: the
 * server's thousands of exported symbols come first) searching it for each
 * is a noticeable part of a session's first score (docs/benchmarks.md);
 * RTLD_DEEPBIND looks in the library itself first.  Not under
 * AddressSanitizer, which refuses it.
 */
#if defined(RTLD_DEEPBIND) && !defined(__SANITIZE_ADDRESS__)
#define BLAS_DLOPEN_DEEPBIND RTLD_DEEPBIND
#else
#define BLAS_DLOPEN_DEEPBIND 0
#endif

/* dlopen OpenBLAS and check it against the C path; why not when it cannot be used. */
static clad_status
load_openblas(void)
{
	const char *coretype = getenv("OPENBLAS_CORETYPE");
	const char *chosen = NULL;
	const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
	int			single;

	blas_loaded = 1;
	if (coretype == NULL || coretype[0] == '\0')
	{
		chosen = suitable_coretype();
		if (chosen)
			setenv("OPENBLAS_CORETYPE", chosen, 1);
		snprintf(blas_coretype_note, sizeof(blas_coretype_note), "%s",
				 chosen ? "set by clad" : "detected by OpenBLAS");
	}
	else
		snprintf(blas_coretype_note, sizeof(blas_coretype_note),
				 "OPENBLAS_CORETYPE=%.32s from the environment", coretype);

	/* OpenBLAS starts its thread pool when it loads: clad never uses it (one
	 * thread per call; core/parallel.c splits products among its own). */
	single = getenv("OPENBLAS_NUM_THREADS") == NULL;
	if (single)
		setenv("OPENBLAS_NUM_THREADS", "1", 1);
	for (size_t i = 0; i < 2 && blas_handle == NULL; i++)
		blas_handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | BLAS_DLOPEN_DEEPBIND);
	/* OpenBLAS reads the variables once, when it loads: take them back out of
	 * our environment so child processes are unaffected. */
	if (chosen)
		unsetenv("OPENBLAS_CORETYPE");
	if (single)
		unsetenv("OPENBLAS_NUM_THREADS");
	if (blas_handle == NULL)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "OpenBLAS not found: %s", dlerror());

	*(void **) &blas_sgemm = dlsym(blas_handle, "cblas_sgemm");
	*(void **) &blas_set_threads = dlsym(blas_handle, "openblas_set_num_threads");
	*(void **) &blas_corename = dlsym(blas_handle, "openblas_get_corename");
	*(void **) &blas_config = dlsym(blas_handle, "openblas_get_config");
	if (blas_sgemm == NULL)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "OpenBLAS has no cblas_sgemm");
	if (blas_set_threads)
		blas_set_threads(1);
	if (!openblas_agrees())
	{
		blas_sgemm = NULL;
		return clad_fail(CLAD_ERR_NUMERIC,
						 "OpenBLAS sgemm disagrees with the plain C path on this CPU; set OPENBLAS_CORETYPE to a kernel that works");
	}
	return CLAD_OK;
}

/* OpenBLAS's sgemv against the plain C path on a few shapes (a mismatch keeps the C path) */
static int
sgemv_agrees(void)
{
	static const int shapes[][2] = {{1, 1}, {7, 3}, {65, 130}, {300, 512}};
	int			ok = 1;

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]) && ok; s++)
	{
		int			M = shapes[s][0], N = shapes[s][1];
		float	   *A = malloc(sizeof(float) * M * N), *x = malloc(sizeof(float) * N);
		float	   *y1 = malloc(sizeof(float) * M), *y2 = malloc(sizeof(float) * M);
		unsigned	r = 777u + (unsigned) s;

		if (!A || !x || !y1 || !y2)
			ok = 0;
		else
		{
			for (int i = 0; i < M * N; i++)
				A[i] = check_value(&r);
			for (int i = 0; i < N; i++)
				x[i] = check_value(&r);
			blas_sgemv(CB_ROW_MAJOR, CB_NO_TRANS, M, N, 1.0f, A, N, x, 1, 0.0f, y1, 1);
			clad_sgemm_ref(0, 0, M, 1, N, 1.0f, A, N, x, 1, 0.0f, y2, 1);
			for (int i = 0; i < M; i++)
				if (!(fabsf(y1[i] - y2[i]) <= 1e-4f * (float) N + 1e-4f * fabsf(y2[i])))
					ok = 0;
		}
		free(A);
		free(x);
		free(y1);
		free(y2);
	}
	return ok;
}

clad_status
clad_blas_init(clad_blas_backend backend, int threads)
{
	static cblas_sgemm_fn verified = NULL;
	static cblas_sgemv_fn verified_gemv = NULL;

	if (threads < 1)
		return clad_fail(CLAD_ERR_INVALID, "BLAS threads must be at least 1, not %d", threads);
	blas_threads = threads;
	clad_parallel_set_threads(threads);
	if (backend == CLAD_BLAS_REFERENCE)
	{
		blas_sgemm = NULL;
		blas_sgemv = NULL;
		return CLAD_OK;
	}
	if (!blas_loaded)
	{
		clad_status st = load_openblas();

		if (st == CLAD_OK && blas_handle)
		{
			*(void **) &blas_sgemv = dlsym(blas_handle, "cblas_sgemv");
			if (blas_sgemv && !sgemv_agrees())
				blas_sgemv = NULL;
			verified_gemv = blas_sgemv;
		}
		verified = blas_sgemm;
		if (st != CLAD_OK && backend == CLAD_BLAS_OPENBLAS)
			return st;
	}
	blas_sgemm = verified;
	blas_sgemv = verified_gemv;
	if (blas_sgemm == NULL && backend == CLAD_BLAS_OPENBLAS)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "OpenBLAS is not usable in this process");
	return CLAD_OK;
}

int
clad_blas_is_openblas(void)
{
	return blas_sgemm != NULL;
}

const char *
clad_blas_describe(void)
{
	if (blas_sgemm == NULL)
		snprintf(describe_buf, sizeof(describe_buf), "plain C sgemm, 1 thread");
	else
		snprintf(describe_buf, sizeof(describe_buf), "openblas %s, core %s (%s), %d thread%s",
				 blas_config ? blas_config() : "?", blas_corename ? blas_corename() : "?",
				 blas_coretype_note, blas_threads, blas_threads == 1 ? "" : "s");
	return describe_buf;
}

/* One call of OpenBLAS, or the C path without it. */
static void
sgemm_one_thread(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
				 const float *B, int ldb, float beta, float *C, int ldc)
{
	if (blas_sgemm && K > 0)
		blas_sgemm(CB_ROW_MAJOR, trans_a ? CB_TRANS : CB_NO_TRANS, trans_b ? CB_TRANS : CB_NO_TRANS,
				   M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
	else
		clad_sgemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/*
 * With threads (or when thread_independent asks it of one thread), a big
 * product is computed as fixed blocks of rows or of columns of C, one
 * one-thread BLAS call each, and the pool's threads share out the blocks.
 * The blocks depend on the product's shape only, never on the thread count:
 * OpenBLAS's kernels round an element differently depending on the size of
 * the call it is in (seen with the Haswell, Zen and SkylakeX kernels: rows
 * 0-15 of a 300-row product differ in the last bit from the same rows
 * computed as a 16-row product), so a split that followed the threads would
 * make --threads 2 train a different model from --threads 1.  A scorer on
 * one thread keeps each product whole (gemm.h says why).
 */
static int	thread_independent = 0;

void
clad_sgemm_thread_independent(int on)
{
	thread_independent = on != 0;
}

#define SGEMM_BLOCKS 8			/* at most; enough to share among 8 threads */
#define SGEMM_BLOCK_MIN 128		/* rows or columns per block beyond the first two */

typedef struct sgemm_job
{
	int			trans_a, trans_b, M, N, K, lda, ldb, ldc, by_rows, blocks;
	float		alpha, beta;
	const float *A, *B;
	float	   *C;
} sgemm_job;

/* First row (or column) of block b of n split into blocks, on multiples of 16. */
static int
block_start(int b, int blocks, int n)
{
	return b >= blocks ? n : (int) ((int64_t) n * b / blocks / 16 * 16);
}

/* One thread's blocks of a split product. */
static void
sgemm_blocks(size_t lo, size_t hi, void *p)
{
	const sgemm_job *j = p;

	for (int b = (int) lo; b < (int) hi; b++)
	{
		int			n = j->by_rows ? j->M : j->N;
		int			at = block_start(b, j->blocks, n), len = block_start(b + 1, j->blocks, n) - at;

		if (j->by_rows)			/* rows of op(A) and of C */
			sgemm_one_thread(j->trans_a, j->trans_b, len, j->N, j->K, j->alpha,
							 j->A + (j->trans_a ? (size_t) at : (size_t) at * j->lda), j->lda, j->B, j->ldb,
							 j->beta, j->C + (size_t) at * j->ldc, j->ldc);
		else					/* columns of op(B) and of C */
			sgemm_one_thread(j->trans_a, j->trans_b, j->M, len, j->K, j->alpha, j->A, j->lda,
							 j->B + (j->trans_b ? (size_t) at * j->ldb : (size_t) at), j->ldb,
							 j->beta, j->C + at, j->ldc);
	}
}

/* Below this many multiply-adds a product is one call (not worth sharing). */
#define SGEMM_PARALLEL_MIN ((double) (1 << 21))

void
clad_sgemm(int trans_a, int trans_b, int M, int N, int K,
		   float alpha, const float *A, int lda,
		   const float *B, int ldb,
		   float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if ((thread_independent || clad_parallel_threads() > 1) &&
		(double) M * N * (K > 0 ? K : 1) >= SGEMM_PARALLEL_MIN)
	{
		sgemm_job	j = {trans_a, trans_b, M, N, K, lda, ldb, ldc, M > N, 0, alpha, beta, A, B, C};
		int			n = j.by_rows ? M : N;

		/*
		 * A power of two of blocks, so that 2, 4 or 8 threads get equal
		 * shares (a third block would leave one of two threads idle for
		 * a third of the product); more blocks only for big products,
		 * as each block repacks the other operand.
		 */
		j.blocks = n >= 32 ? 2 : 1;
		while (j.blocks * 2 <= SGEMM_BLOCKS && n >= j.blocks * 2 * SGEMM_BLOCK_MIN)
			j.blocks *= 2;
		if (j.blocks >= 2)
		{
			clad_parallel_for((size_t) j.blocks, 1, sgemm_blocks, &j);
			return;
		}
	}
	sgemm_one_thread(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void
clad_sgemv(int M, int N, const float *A, int lda, const float *x, float *y)
{
	if (M <= 0)
		return;
	if (blas_sgemv && N > 0)
	{
		blas_sgemv(CB_ROW_MAJOR, CB_NO_TRANS, M, N, 1.0f, A, lda, x, 1, 0.0f, y, 1);
		return;
	}
	for (int i = 0; i < M; i++)
	{
		const float *a = A + (size_t) i * lda;
		float		s = 0.0f;

		for (int k = 0; k < N; k++)
			s += a[k] * x[k];
		y[i] = s;
	}
}

void
clad_sgemm_ref(int trans_a, int trans_b, int M, int N, int K,
			   float alpha, const float *A, int lda,
			   const float *B, int ldb,
			   float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++)
	{
		float	   *c = C + (size_t) i * ldc;

		if (beta == 0.0f)
			memset(c, 0, sizeof(float) * N);
		else if (beta != 1.0f)
			for (int j = 0; j < N; j++)
				c[j] *= beta;
		for (int k = 0; k < K; k++)
		{
			float		a = alpha * (trans_a ? A[(size_t) k * lda + i] : A[(size_t) i * lda + k]);

			if (!trans_b)
			{
				const float *b = B + (size_t) k * ldb;

				for (int j = 0; j < N; j++)
					c[j] += a * b[j];
			}
			else
				for (int j = 0; j < N; j++)
					c[j] += a * B[(size_t) j * ldb + k];
		}
	}
}
