/* core/gemm.h: single-precision matrix multiply, through OpenBLAS or plain C.
 *
 * All matrices are row-major.  clad_sgemm computes
 *     C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C
 * where op(X) is X or its transpose (trans_a / trans_b non-zero).
 *
 * The OpenBLAS backend is loaded at run time (dlopen) by clad_blas_init so
 * that clad can choose its CPU kernels before OpenBLAS initialises: OpenBLAS
 * 0.3.21 does not recognise recent Xeons and falls back to its slowest
 * kernels.  When OPENBLAS_CORETYPE is already set it is respected.  Whatever
 * is chosen is checked against the plain C path on a few products; on a
 * mismatch, or when OpenBLAS is missing, clad uses the plain C path.
 */
#ifndef CLAD_GEMM_H
#define CLAD_GEMM_H

#include "status.h"

typedef enum clad_blas_backend
{
	CLAD_BLAS_AUTO,			/* OpenBLAS when present and verified, else C */
	CLAD_BLAS_OPENBLAS,		/* OpenBLAS or an error */
	CLAD_BLAS_REFERENCE		/* the plain C path */
} clad_blas_backend;

/*
 * Choose the backend and the number of BLAS threads (1 inside a database
 * backend).  Safe to call more than once; the kernel choice happens at the
 * first call that loads OpenBLAS.  Without a call, clad_sgemm uses the plain
 * C path.
 */
clad_status clad_blas_init(clad_blas_backend backend, int threads);

/* A one-line description of the active backend, e.g. "openblas 0.3.21 SkylakeX (set by clad), 1 thread". */
const char *clad_blas_describe(void);

/*
 * How big products are cut.  With several threads, clad_sgemm computes a
 * big product as fixed blocks of rows or columns (by its shape alone), one
 * OpenBLAS call each, that the threads share out.  OpenBLAS can round an
 * element differently with the size of the call it is in, so:
 *   on (the trainer): one thread cuts the same blocks, and a model does not
 *     depend on the thread count;
 *   off (the default, a scorer on one thread): each product is one call
 *     (no repacking per block, and with kernels that round every column
 *     alike, such as OpenBLAS's AVX-512 ones and the plain C path, an image
 *     scores the same wherever it sits in a batch; the AVX2 kernels round a
 *     column by its place in the call).
 */
void		clad_sgemm_thread_independent(int on);

/* Non-zero when clad_sgemm goes to OpenBLAS. */
int			clad_blas_is_openblas(void);

void		clad_sgemm(int trans_a, int trans_b, int M, int N, int K,
					   float alpha, const float *A, int lda,
					   const float *B, int ldb,
					   float beta, float *C, int ldc);

/*
 * y (M) = A (M x N, row-major, leading dimension lda) . x (N): one
 * matrix-vector product, OpenBLAS's sgemv when it is in use and agreed with
 * the plain C path on a few shapes, else the plain C loop.  The same call
 * gives the same floats whatever else a process scores.
 */
void		clad_sgemv(int M, int N, const float *A, int lda, const float *x, float *y);

/* The plain C path, also the test oracle. */
void		clad_sgemm_ref(int trans_a, int trans_b, int M, int N, int K,
						   float alpha, const float *A, int lda,
						   const float *B, int ldb,
						   float beta, float *C, int ldc);

#endif
