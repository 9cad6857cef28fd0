/* core/cuda/device_cuda.cu: the CUDA backend of core/device_impl.h.
 *
 * Device memory comes from plain cudaMalloc (never managed memory), GEMMs
 * from cuBLAS in full FP32 (no TF32: results must match the CPU's), and every
 * other kernel is a grid-stride loop around a body of core/kernels.h.  All
 * work goes to one stream; launches are asynchronous and their first failure
 * is kept and reported by the next download or sync, mapped to
 * CLAD_ERR_DEVICE (CLAD_ERR_NOMEM when memory runs out).
 *
 * Built only with make CUDA=1 (or when nvcc is found) and linked only into
 * the trainer and the device test: core and the database extension never
 * depend on the CUDA libraries.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_impl.h"

typedef struct cuda_state
{
	int			ordinal;
	cudaStream_t stream;
	cublasHandle_t blas;
	clad_status err;			/* first failure since the last report */
	char		msg[256];
	int			blocks_max;		/* grid size cap: enough blocks to fill every SM */
} cuda_state;

#define STATE(dev) ((cuda_state *) (dev)->impl)

/* ---- the kernels: one grid-stride wrapper per body of kernels.h ---- */

#define CLAD_CUDA_WRAPPER(name, fn) \
	__global__ void g_##fn(size_t n, clad_kargs a) \
	{ \
		for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; \
			 i += (size_t) blockDim.x * gridDim.x) \
			fn(i, &a); \
	}
CLAD_KERNEL_LIST(CLAD_CUDA_WRAPPER)
#undef CLAD_CUDA_WRAPPER

/* ---- errors ---- */

static void
record(clad_device *dev, clad_status st, const char *what, const char *why)
{
	cuda_state *s = STATE(dev);

	if (s->err == CLAD_OK)
	{
		s->err = st;
		snprintf(s->msg, sizeof(s->msg), "cuda:%d: %s: %s", s->ordinal, what, why);
	}
}

static int
cuda_ok(clad_device *dev, cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 1;
	record(dev, e == cudaErrorMemoryAllocation ? CLAD_ERR_NOMEM : CLAD_ERR_DEVICE, what, cudaGetErrorString(e));
	return 0;
}

/* Report (and clear) the first failure recorded since the last report. */
static clad_status
report(clad_device *dev)
{
	cuda_state *s = STATE(dev);
	clad_status st = s->err;

	if (st == CLAD_OK)
		return CLAD_OK;
	s->err = CLAD_OK;
	return clad_fail(st, "%s", s->msg);
}

/* ---- the operations ---- */

static clad_status
cu_alloc(clad_device *dev, size_t bytes, void **out)
{
	cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);

	if (e != cudaSuccess)
	{
		*out = NULL;
		(void) cudaGetLastError();	/* an allocation failure is not sticky: clear it */
		return clad_fail(e == cudaErrorMemoryAllocation ? CLAD_ERR_NOMEM : CLAD_ERR_DEVICE,
						 "cuda:%d: cannot allocate %zu bytes of device memory: %s",
						 STATE(dev)->ordinal, bytes, cudaGetErrorString(e));
	}
	return CLAD_OK;
}

static void
cu_release(clad_device *dev, void *p)
{
	if (p)
		cuda_ok(dev, cudaFree(p), "cudaFree");
}

static clad_status
cu_upload(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	/* from pageable memory: returns once src has been staged, so the caller may reuse it */
	if (bytes)
		cuda_ok(dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, STATE(dev)->stream), "upload");
	return report(dev);
}

static clad_status
cu_download(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	cuda_state *s = STATE(dev);

	if (bytes)
		cuda_ok(dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream), "download");
	cuda_ok(dev, cudaStreamSynchronize(s->stream), "synchronize");
	return report(dev);
}

static void
cu_zero(clad_device *dev, void *p, size_t bytes)
{
	cuda_ok(dev, cudaMemsetAsync(p, 0, bytes, STATE(dev)->stream), "memset");
}

static void
cu_copy(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	cuda_ok(dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, STATE(dev)->stream), "copy");
}

/* Row-major C = alpha op(A) op(B) + beta C through column-major cuBLAS (device_impl.h). */
static void
cu_gemm(clad_device *dev, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
		const float *B, int ldb, float beta, float *C, int ldc)
{
	clad_colmajor_gemm g = clad_rowmajor_as_colmajor(ta, tb, M, N, K, A, lda, B, ldb);
	cublasStatus_t st;

	if (M == 0 || N == 0)
		return;
	st = cublasSgemm(STATE(dev)->blas, g.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N,
					 g.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &alpha,
					 g.first, g.ld_first, g.second, g.ld_second, &beta, C, ldc);
	if (st != CUBLAS_STATUS_SUCCESS)
	{
		char		why[64];

		snprintf(why, sizeof(why), "cuBLAS status %d", (int) st);
		record(dev, CLAD_ERR_DEVICE, "sgemm", why);
	}
}

static void
cu_launch(clad_device *dev, clad_kernel k, size_t n, const clad_kargs *a)
{
	cuda_state *s = STATE(dev);
	const int	threads = 256;
	size_t		want = (n + threads - 1) / threads;
	int			blocks = want < (size_t) s->blocks_max ? (int) want : s->blocks_max;

	if (n == 0)
		return;
	switch (k)
	{
#define CLAD_CUDA_CASE(name, fn) \
		case name: g_##fn<<<blocks, threads, 0, s->stream>>>(n, *a); break;
			CLAD_KERNEL_LIST(CLAD_CUDA_CASE)
#undef CLAD_CUDA_CASE
		case CLAD_NUM_KERNELS:
			return;
	}
	cuda_ok(dev, cudaGetLastError(), "kernel launch");
}

static clad_status
cu_sync(clad_device *dev)
{
	cuda_ok(dev, cudaStreamSynchronize(STATE(dev)->stream), "synchronize");
	return report(dev);
}

static void
cu_close(clad_device *dev)
{
	cuda_state *s = STATE(dev);

	if (s)
	{
		if (s->blas)
			cublasDestroy(s->blas);
		if (s->stream)
			cudaStreamDestroy(s->stream);
		free(s);
	}
	free(dev);
}

static const clad_device_ops cuda_ops = {
	cu_alloc, cu_release, cu_upload, cu_download, cu_zero, cu_copy, cu_gemm, cu_launch, cu_sync, cu_close
};

extern "C" clad_status
clad_cuda_device_open(int ordinal, clad_device **out)
{
	int			count = 0, version = 0;
	cudaError_t e = cudaGetDeviceCount(&count);
	cudaDeviceProp prop;
	clad_device *dev;
	cuda_state *s;

	*out = NULL;
	if (e != cudaSuccess)
	{
		(void) cudaGetLastError();
		return clad_fail(CLAD_ERR_UNSUPPORTED, "no usable CUDA GPU on this machine (%s); use --device cpu",
						 cudaGetErrorString(e));
	}
	if (count == 0)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "no CUDA GPU on this machine; use --device cpu");
	if (ordinal >= count)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "cuda:%d: this machine has %d CUDA GPU%s (cuda:0%s)",
						 ordinal, count, count == 1 ? "" : "s", count == 1 ? "" : " ...");
	dev = (clad_device *) calloc(1, sizeof(clad_device));
	s = (cuda_state *) calloc(1, sizeof(cuda_state));
	if (!dev || !s)
	{
		free(dev);
		free(s);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory");
	}
	dev->ops = &cuda_ops;
	dev->impl = s;
	s->ordinal = ordinal;
	if ((e = cudaSetDevice(ordinal)) != cudaSuccess ||
		(e = cudaGetDeviceProperties(&prop, ordinal)) != cudaSuccess ||
		(e = cudaStreamCreate(&s->stream)) != cudaSuccess)
	{
		cu_close(dev);
		return clad_fail(CLAD_ERR_UNSUPPORTED, "cuda:%d: cannot start: %s", ordinal, cudaGetErrorString(e));
	}
	if (cublasCreate(&s->blas) != CUBLAS_STATUS_SUCCESS ||
		cublasSetStream(s->blas, s->stream) != CUBLAS_STATUS_SUCCESS ||
		cublasSetMathMode(s->blas, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS)
	{
		cu_close(dev);
		return clad_fail(CLAD_ERR_UNSUPPORTED, "cuda:%d: cannot start cuBLAS", ordinal);
	}
	cublasGetVersion(s->blas, &version);
	s->blocks_max = prop.multiProcessorCount * 32;
	snprintf(dev->desc, sizeof(dev->desc), "cuda:%d %.100s, %.1f GiB, compute %d.%d, cuBLAS %d.%d", ordinal,
			 prop.name, prop.totalGlobalMem / 1073741824.0, prop.major, prop.minor,
			 version / 10000, version / 100 % 100);
	*out = dev;
	return CLAD_OK;
}
