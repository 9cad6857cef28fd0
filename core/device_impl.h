/* core/device_impl.h: what a device backend provides (private to core).
 *
 * A backend gives memory, copies, a row-major GEMM and "run kernel k over n
 * indices" (core/kernels.h).  Everything above that, the layers as
 * sequences of kernels and GEMMs (core/device_layers.c) and the nets
 * (core/net_device.c), is shared by every backend.
 *
 * Launches may be asynchronous.  A backend records its first failure (a
 * launch or cuBLAS error) and reports it from sync(); memory calls report
 * their own failures at once.
 */
#ifndef CLAD_DEVICE_IMPL_H
#define CLAD_DEVICE_IMPL_H

#include "device.h"
#include "kernels.h"

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct clad_device_ops
{
	clad_status (*alloc) (clad_device *dev, size_t bytes, void **out);
	void		(*release) (clad_device *dev, void *p);
	clad_status (*upload) (clad_device *dev, void *dst, const void *src, size_t bytes);
	/* waits for the work before it; reports any recorded failure */
	clad_status (*download) (clad_device *dev, void *dst, const void *src, size_t bytes);
	void		(*zero) (clad_device *dev, void *p, size_t bytes);
	void		(*copy) (clad_device *dev, void *dst, const void *src, size_t bytes);
	/* row-major C (M,N) = alpha op(A) op(B) + beta C, as clad_sgemm */
	void		(*gemm) (clad_device *dev, int trans_a, int trans_b, int M, int N, int K,
						 float alpha, const float *A, int lda, const float *B, int ldb,
						 float beta, float *C, int ldc);
	void		(*launch) (clad_device *dev, clad_kernel k, size_t n, const clad_kargs *a);
	/* waits for all work; returns and clears the first recorded failure */
	clad_status (*sync) (clad_device *dev);
	void		(*close) (clad_device *dev);
} clad_device_ops;

/*
 * A row-major product C (M,N) = op(A) op(B) as the column-major BLAS call
 * (cuBLAS's convention) that computes it: a row-major matrix is its
 * transpose in column-major, so the call computes C^T = op(B)^T op(A)^T,
 * with B first.  The CUDA backend passes these to cublasSgemm; the device
 * test checks them against a column-major reference GEMM.
 */
typedef struct clad_colmajor_gemm
{
	int			trans_first, trans_second;	/* 0: N, 1: T */
	int			m, n, k;
	const float *first, *second;
	int			ld_first, ld_second;
} clad_colmajor_gemm;

static inline clad_colmajor_gemm
clad_rowmajor_as_colmajor(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
						  const float *B, int ldb)
{
	clad_colmajor_gemm g;

	g.trans_first = trans_b;
	g.trans_second = trans_a;
	g.m = N;
	g.n = M;
	g.k = K;
	g.first = B;
	g.ld_first = ldb;
	g.second = A;
	g.ld_second = lda;
	return g;
}

struct clad_device
{
	const clad_device_ops *ops;
	void	   *impl;			/* the backend's own state */
	char		desc[200];
};

/*
 * The CUDA backend (core/cuda/device_cuda.cu), linked only into programs
 * built with it: a weak reference, NULL otherwise, so that core and the
 * database extension never depend on the CUDA libraries.
 */
clad_status clad_cuda_device_open(int ordinal, clad_device **out) __attribute__((weak));

#ifdef __cplusplus
}
#endif

#endif
