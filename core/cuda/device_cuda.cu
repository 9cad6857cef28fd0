/* core/cuda/device_cuda.cu: the CUDA backend of core/device_impl.h, built as
 * the module core/cuda/clad_cuda.so that core/device.c loads with dlopen.
 *
 * Device memory comes from plain cudaMalloc (never managed memory), GEMMs
 * from cuBLAS in full FP32 (no TF32: results must match the CPU's), and every
 * other kernel is a grid-stride loop around a body of core/device_kernels.h.  All
 * work goes to one stream; launches are asynchronous and their first failure
 * is kept and reported by the next download or sync, mapped to
 * CLAD_ERR_DEVICE (CLAD_ERR_NOMEM when memory runs out), with the number of
 * operations queued since the last wait and the last of them.  With
 * CLAD_CUDA_DEBUG=1 in the environment every launch, GEMM and copy is
 * followed by a wait, so a failure names the kernel that faulted (slow: for
 * finding a fault, not for training).
 *
 * The module exports clad_cuda_module_open alone (everything else is
 * hidden) and calls into core only through the host table it is given, so
 * it has no undefined symbols of clad's: programs need not export theirs.
 * Linked with cuBLAS and the CUDA runtime; only this module is.
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
	char		msg[320];
	int			blocks_max;		/* grid size cap: enough blocks to fill every SM */
	int			debug;			/* CLAD_CUDA_DEBUG: wait after every operation */
	unsigned long queued;		/* operations queued since the last wait */
	char		last[96];		/* the last of them */
} cuda_state;

#define STATE(dev) ((cuda_state *) (dev)->impl)

/* core's clad_fail, from the host table (the module links nothing of clad's) */
static clad_status (*host_fail) (clad_status s, const char *fmt, ...);

/* ---- the kernels: one grid-stride wrapper per body of device_kernels.h ---- */

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

/* Keep the first failure until the next report. */
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

/* clad's status for a CUDA error. */
static clad_status
status_of(cudaError_t e)
{
	return e == cudaErrorMemoryAllocation ? CLAD_ERR_NOMEM : CLAD_ERR_DEVICE;
}

/* Whether e is success; else the failure is recorded. */
static int
cuda_ok(clad_device *dev, cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 1;
	record(dev, status_of(e), what, cudaGetErrorString(e));
	return 0;
}

/*
 * An operation was queued (what names it): in debug mode wait for it at
 * once, so that a fault is charged to it; otherwise count it for the
 * message of a failure the next wait finds.
 */
static void
queued(clad_device *dev, const char *what)
{
	cuda_state *s = STATE(dev);

	if (s->debug)
	{
		cudaError_t e = cudaStreamSynchronize(s->stream);

		if (e == cudaSuccess)
			e = cudaGetLastError();
		if (e != cudaSuccess)
		{
			char		where[160];

			snprintf(where, sizeof(where), "%s (CLAD_CUDA_DEBUG: failed in this operation)", what);
			record(dev, status_of(e), where, cudaGetErrorString(e));
		}
		return;
	}
	s->queued++;
	snprintf(s->last, sizeof(s->last), "%s", what);
}

/* Wait for the stream; a failure found is charged to the operations queued since the last wait. */
static void
wait_stream(clad_device *dev, const char *why)
{
	cuda_state *s = STATE(dev);
	cudaError_t e;

	dev->waits++;
	e = cudaStreamSynchronize(s->stream);
	if (e != cudaSuccess)
	{
		char		what[240];

		if (s->queued)
			snprintf(what, sizeof(what), "%s: one of the %lu operations queued since the last wait failed "
					 "(the last: %s; CLAD_CUDA_DEBUG=1 names the one)", why, s->queued, s->last);
		else
			snprintf(what, sizeof(what), "%s", why);
		record(dev, status_of(e), what, cudaGetErrorString(e));
	}
	s->queued = 0;
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
	return host_fail(st, "%s", s->msg);
}

/* ---- the operations ---- */

/* The device operations of device_impl.h. */
static clad_status
cu_alloc(clad_device *dev, size_t bytes, void **out)
{
	cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);

	if (e != cudaSuccess)
	{
		*out = NULL;
		(void) cudaGetLastError();	/* an allocation failure is not sticky: clear it */
		return host_fail(status_of(e), "cuda:%d: cannot allocate %zu bytes of device memory: %s",
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
	/*
	 * From pageable memory: returns once src has been staged, so the caller
	 * may reuse it (the driver may wait for the stream's earlier work to do
	 * so; not counted as a wait of ours).
	 */
	if (bytes && cuda_ok(dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, STATE(dev)->stream),
						 "upload"))
		queued(dev, "upload");
	return report(dev);
}

static clad_status
cu_download(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	cuda_state *s = STATE(dev);

	if (bytes)
		cuda_ok(dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream), "download");
	wait_stream(dev, "download");
	return report(dev);
}

static void
cu_zero(clad_device *dev, void *p, size_t bytes)
{
	if (cuda_ok(dev, cudaMemsetAsync(p, 0, bytes, STATE(dev)->stream), "memset"))
		queued(dev, "memset");
}

static void
cu_copy(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	if (cuda_ok(dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, STATE(dev)->stream), "copy"))
		queued(dev, "device copy");
}

/* Row-major C = alpha op(A) op(B) + beta C through column-major cuBLAS (device_impl.h). */
static void
cu_gemm(clad_device *dev, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
		const float *B, int ldb, float beta, float *C, int ldc)
{
	clad_colmajor_gemm g = clad_rowmajor_as_colmajor(ta, tb, M, N, K, A, lda, B, ldb);
	cublasStatus_t st;
	char		what[96];

	if (M == 0 || N == 0)
		return;
	snprintf(what, sizeof(what), "cublasSgemm %c%c M=%d N=%d K=%d", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K);
	st = cublasSgemm(STATE(dev)->blas, g.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N,
					 g.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &alpha,
					 g.first, g.ld_first, g.second, g.ld_second, &beta, C, ldc);
	if (st != CUBLAS_STATUS_SUCCESS)
	{
		char		why[64];

		snprintf(why, sizeof(why), "cuBLAS status %d", (int) st);
		record(dev, CLAD_ERR_DEVICE, what, why);
		return;
	}
	queued(dev, what);
}

static void
cu_launch(clad_device *dev, clad_kernel k, size_t n, const clad_kargs *a)
{
	cuda_state *s = STATE(dev);
	const int	threads = 256;
	size_t		want = (n + threads - 1) / threads;
	int			blocks = want < (size_t) s->blocks_max ? (int) want : s->blocks_max;
	char		what[96];

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
	snprintf(what, sizeof(what), "kernel %s (n=%zu, %d blocks of %d)", clad_kernel_name(k), n, blocks, threads);
	if (cuda_ok(dev, cudaGetLastError(), what))
		queued(dev, what);
}

static clad_status
cu_sync(clad_device *dev)
{
	wait_stream(dev, "synchronize");
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

/* The module's one export (device_impl.h): open CUDA GPU number ordinal. */
extern "C" __attribute__((visibility("default"))) clad_status
clad_cuda_module_open(const clad_cuda_host *host, int ordinal, clad_device **out)
{
	int			count = 0, version = 0, runtime = 0, driver = 0;
	cudaError_t e;
	cudaDeviceProp prop;
	clad_device *dev;
	cuda_state *s;
	const char *debug = getenv("CLAD_CUDA_DEBUG");

	*out = NULL;
	host_fail = host->fail;		/* the first two fields are the same in every version */
	if (host->abi != CLAD_DEVICE_ABI)
		return host_fail(CLAD_ERR_UNSUPPORTED, "the CUDA backend module was built from another version of "
						 "clad (interface %u, this program's %u): rebuild it with this clad (make CUDA=1); "
						 "use --device cpu", (unsigned) CLAD_DEVICE_ABI, host->abi);
	e = cudaGetDeviceCount(&count);
	if (e != cudaSuccess)
	{
		(void) cudaGetLastError();
		cudaRuntimeGetVersion(&runtime);
		cudaDriverGetVersion(&driver);
		return host_fail(CLAD_ERR_UNSUPPORTED, "no usable CUDA GPU on this machine (%s; CUDA runtime %d.%d, "
						 "driver %s); use --device cpu", cudaGetErrorString(e), runtime / 1000,
						 runtime % 1000 / 10, driver ? "present" : "none found");
	}
	if (count == 0)
		return host_fail(CLAD_ERR_UNSUPPORTED, "no CUDA GPU on this machine; use --device cpu");
	if (ordinal >= count)
		return host_fail(CLAD_ERR_UNSUPPORTED, "cuda:%d: this machine has %d CUDA GPU%s (cuda:0%s)",
						 ordinal, count, count == 1 ? "" : "s", count == 1 ? "" : " ...");
	dev = (clad_device *) calloc(1, sizeof(clad_device));
	s = (cuda_state *) calloc(1, sizeof(cuda_state));
	if (!dev || !s)
	{
		free(dev);
		free(s);
		return host_fail(CLAD_ERR_NOMEM, "out of memory");
	}
	dev->ops = &cuda_ops;
	dev->impl = s;
	s->ordinal = ordinal;
	s->debug = debug && *debug && strcmp(debug, "0") != 0;
	if ((e = cudaSetDevice(ordinal)) != cudaSuccess ||
		(e = cudaGetDeviceProperties(&prop, ordinal)) != cudaSuccess ||
		(e = cudaStreamCreate(&s->stream)) != cudaSuccess)
	{
		cu_close(dev);
		return host_fail(CLAD_ERR_UNSUPPORTED, "cuda:%d: cannot start: %s", ordinal, cudaGetErrorString(e));
	}
	if (cublasCreate(&s->blas) != CUBLAS_STATUS_SUCCESS ||
		cublasSetStream(s->blas, s->stream) != CUBLAS_STATUS_SUCCESS ||
		cublasSetMathMode(s->blas, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS)
	{
		cu_close(dev);
		return host_fail(CLAD_ERR_UNSUPPORTED, "cuda:%d: cannot start cuBLAS", ordinal);
	}
	cublasGetVersion(s->blas, &version);
	s->blocks_max = prop.multiProcessorCount * 32;
	snprintf(dev->desc, sizeof(dev->desc), "cuda:%d %.100s, %.1f GiB, compute %d.%d, cuBLAS %d.%d%s", ordinal,
			 prop.name, prop.totalGlobalMem / 1073741824.0, prop.major, prop.minor,
			 version / 10000, version / 100 % 100, s->debug ? ", CLAD_CUDA_DEBUG" : "");
	*out = dev;
	return CLAD_OK;
}
