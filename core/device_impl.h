/* core/device_impl.h: what a device backend provides (private to core).
 *
 * A backend gives memory, copies, a row-major GEMM and "run kernel k over n
 * indices" (core/device_kernels.h).  Everything above that, the layers as
 * sequences of kernels and GEMMs (core/device_layers.c) and the nets
 * (core/net_device.c), is shared by every backend.
 *
 * Launches, GEMMs, zeroing and device copies may be asynchronous.  A
 * backend records its first failure (a launch, a kernel, cuBLAS) and
 * reports it from the next download or sync(), naming what failed;
 * allocations report their own failures at once.  The host waits only where
 * it needs a value: the net code makes one wait per training step (the
 * loss's download) and lets the layers, backward pass and optimiser steps
 * queue up behind it; a failure in them comes out of the next wait.
 */
#ifndef CLAD_DEVICE_IMPL_H
#define CLAD_DEVICE_IMPL_H

#include "device.h"
#include "device_kernels.h"

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
	/* host waits so far: each download and sync counts one (tests count them per step) */
	unsigned long waits;
};

/*
 * The CUDA backend is a shared module, clad_cuda.so (core/cuda/device_cuda.cu,
 * linked with cuBLAS and the CUDA runtime), that clad_device_open loads with
 * dlopen when a CUDA device is asked for, so that no program of clad, and
 * neither core's library nor the extension, depends on the CUDA libraries:
 * without the module, the runtime or a GPU, "cuda" fails with a message
 * saying which.  Where it is looked for: $CLAD_CUDA_MODULE alone when set;
 * otherwise, beside the running program, ../core/cuda/clad_cuda.so (the
 * build tree: trainer/clad-train; the unit tests in tests/build/unit/ are
 * told it by name) and then ../lib/clad/clad_cuda.so (installed: PREFIX/bin
 * and PREFIX/lib/clad).
 *
 * The module exports one function, CLAD_CUDA_OPEN_SYMBOL, of type
 * clad_cuda_open_fn, and reaches core only through the table of host
 * functions it is given (it has no undefined symbols of clad's).  The table
 * begins with abi and fail in every version, so a module built from another
 * clad can still refuse with a message.
 */
#define CLAD_CUDA_MODULE_FILE "clad_cuda.so"
#define CLAD_CUDA_MODULE_ENV "CLAD_CUDA_MODULE"
#define CLAD_CUDA_OPEN_SYMBOL "clad_cuda_module_open"

/* Raise when the meaning of an operation or kernel changes without the sizes below changing. */
#define CLAD_DEVICE_ABI_VERSION 1u
#define CLAD_DEVICE_ABI \
	(CLAD_DEVICE_ABI_VERSION * 1000003u ^ (unsigned) sizeof(clad_kargs) * 7919u ^ \
	 (unsigned) CLAD_NUM_KERNELS * 131u ^ (unsigned) sizeof(clad_device_ops) * 31u ^ \
	 (unsigned) sizeof(struct clad_device))

typedef struct clad_cuda_host
{
	unsigned	abi;			/* CLAD_DEVICE_ABI of the program */
	clad_status (*fail) (clad_status s, const char *fmt, ...);	/* clad_fail */
} clad_cuda_host;

typedef clad_status (*clad_cuda_open_fn) (const clad_cuda_host *host, int ordinal, clad_device **out);

/*
 * For tests, the emulated device only: make the nth launch (1: the next)
 * of kernel k fail as a GPU kernel can, asynchronously: the launch records
 * the failure and the next download or sync reports it, naming the kernel.
 */
void		clad_emulated_fail_launch(clad_device *dev, clad_kernel k, unsigned long nth);

#ifdef __cplusplus
}
#endif

#endif
