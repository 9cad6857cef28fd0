/* core/device.c: opening devices by name, the emulated device, and loading
 * the CUDA backend's module (device_impl.h says where it is looked for). */
#include "device_impl.h"
#include "gemm.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The emulated device keeps its memory on the host but hands out addresses
 * with bit 62 flipped: not canonical on x86-64 or AArch64, so a host access
 * to "device" memory faults at once, as it would with a GPU.  Its own calls
 * flip the bit back.
 *
 * Built with CLAD_EMU_GPU_LIKE (tests/build/fma/test_device: this file
 * compiled with -mfma -ffp-contract=fast, as nvcc contracts a*b + c by
 * default), its kernels round as a GPU's do, and its GEMM sums as cuBLAS
 * does, in float with fused multiply-adds, in another order than the CPU's.
 */
#define EMU_TAG ((uintptr_t) 1 << 62)
#define EMU(p) ((void *) ((uintptr_t) (p) ^ EMU_TAG))

typedef struct emu_state
{
	clad_status err;			/* first failure since the last report */
	char		msg[160];
	clad_kernel fail_kernel;	/* clad_emulated_fail_launch: which launch fails */
	unsigned long fail_countdown;
} emu_state;

#define EMU_STATE(dev) ((emu_state *) (dev)->impl)

/* The first failure since the last report (and clears it), else CLAD_OK. */
static clad_status
emu_report(clad_device *dev)
{
	emu_state  *s = EMU_STATE(dev);
	clad_status st = s->err;

	if (st == CLAD_OK)
		return CLAD_OK;
	s->err = CLAD_OK;
	return clad_fail(st, "%s", s->msg);
}

/* ---- the emulated device's operations (device_impl.h) ---- */

/* Zeroed host memory, the pointer tagged as device memory. */
static clad_status
emu_alloc(clad_device *dev, size_t bytes, void **out)
{
	void	   *p = calloc(1, bytes ? bytes : 1);

	if (!p)
		return clad_fail(CLAD_ERR_NOMEM, "emulated device: out of memory for %zu bytes", bytes);
	*out = EMU(p);
	return CLAD_OK;
}

static void
emu_release(clad_device *dev, void *p)
{
	if (p)
		free(EMU(p));
}

/* as the CUDA backend's: a failure recorded earlier comes out here too */
static clad_status
emu_upload(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	memcpy(EMU(dst), src, bytes);
	return emu_report(dev);
}

static clad_status
emu_download(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	dev->waits++;
	memcpy(dst, EMU(src), bytes);
	return emu_report(dev);
}

static void
emu_zero(clad_device *dev, void *p, size_t bytes)
{
	memset(EMU(p), 0, bytes);
}

static void
emu_copy(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	memmove(EMU(dst), EMU(src), bytes);
}

#ifdef CLAD_EMU_GPU_LIKE
/*
 * Row-major C = alpha op(A) op(B) + beta C the way a GPU BLAS sums: each
 * element a float dot product in fused multiply-adds, split into 4
 * interleaved partial sums (a thread block's slices of K) added pairwise,
 * then alpha and beta applied with one more FMA.  The CPU sums in another
 * order (OpenBLAS's kernels, or clad_sgemm_ref's row updates), so the device
 * test sees a GEMM that differs from the CPU's as cuBLAS's does.
 */
static void
gpu_like_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
			   const float *B, int ldb, float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++)
		{
			float		part[4] = {0.0f, 0.0f, 0.0f, 0.0f}, s;
			float	   *c = C + (size_t) i * ldc + j;

			for (int k = 0; k < K; k++)
			{
				float		a = ta ? A[(size_t) k * lda + i] : A[(size_t) i * lda + k];
				float		b = tb ? B[(size_t) j * ldb + k] : B[(size_t) k * ldb + j];

				part[k & 3] = fmaf(a, b, part[k & 3]);
			}
			s = (part[0] + part[2]) + (part[1] + part[3]);
			/* BLAS: beta == 0 never reads C (it may hold NaN) */
			*c = beta == 0.0f ? alpha * s : fmaf(alpha, s, beta * *c);
		}
}
#endif

static void
emu_gemm(clad_device *dev, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
		 const float *B, int ldb, float beta, float *C, int ldc)
{
#ifdef CLAD_EMU_GPU_LIKE
	gpu_like_sgemm(ta, tb, M, N, K, alpha, EMU(A), lda, EMU(B), ldb, beta, EMU(C), ldc);
#else
	clad_sgemm_ref(ta, tb, M, N, K, alpha, EMU(A), lda, EMU(B), ldb, beta, EMU(C), ldc);
#endif
}

/* untag every pointer of a kernel's arguments (NULL stays NULL) */
#define UNTAG(f) (a.f = a.f ? EMU(a.f) : NULL)

static void
emu_launch(clad_device *dev, clad_kernel k, size_t n, const clad_kargs *args)
{
	emu_state  *s = EMU_STATE(dev);
	clad_kargs	a = *args;

	if (s->fail_countdown && k == s->fail_kernel && --s->fail_countdown == 0)
	{
		/* as a GPU kernel that faults: nothing said now, the next wait reports it */
		if (s->err == CLAD_OK)
		{
			s->err = CLAD_ERR_DEVICE;
			snprintf(s->msg, sizeof(s->msg), "emulated: kernel %s (n=%zu) failed (injected by the test)",
					 clad_kernel_name(k), n);
		}
		return;
	}
	UNTAG(out);
	UNTAG(out2);
	UNTAG(out3);
	UNTAG(out4);
	UNTAG(x);
	UNTAG(y);
	UNTAG(w);
	UNTAG(mf);
	UNTAG(sf);
	UNTAG(gamma);
	UNTAG(beta);
	UNTAG(md);
	UNTAG(dsrc);
	UNTAG(dsrc2);
	UNTAG(dres);
	UNTAG(dres2);
	UNTAG(idx);
	UNTAG(idx_out);
	switch (k)
	{
#define EMU_CASE(name, fn) case name: for (size_t i = 0; i < n; i++) fn(i, &a); break;
			CLAD_KERNEL_LIST(EMU_CASE)
#undef EMU_CASE
		case CLAD_NUM_KERNELS:
			break;
	}
}

static clad_status
emu_sync(clad_device *dev)
{
	dev->waits++;
	return emu_report(dev);
}

static void
emu_close(clad_device *dev)
{
	free(dev->impl);
	free(dev);
}

static const clad_device_ops emulated_ops = {
	emu_alloc, emu_release, emu_upload, emu_download, emu_zero, emu_copy, emu_gemm, emu_launch,
	emu_sync, emu_close
};

void
clad_emulated_fail_launch(clad_device *dev, clad_kernel k, unsigned long nth)
{
	if (dev && dev->ops == &emulated_ops)
	{
		EMU_STATE(dev)->fail_kernel = k;
		EMU_STATE(dev)->fail_countdown = nth;
	}
}

/* A new emulated device. */
static clad_status
emulated_open(clad_device **out)
{
	clad_device *dev = calloc(1, sizeof(clad_device));
	emu_state  *s = calloc(1, sizeof(emu_state));

	if (!dev || !s)
	{
		free(dev);
		free(s);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory");
	}
	dev->ops = &emulated_ops;
	dev->impl = s;
#ifdef CLAD_EMU_GPU_LIKE
	snprintf(dev->desc, sizeof(dev->desc), "emulated (host memory, device kernels run one element at a time; "
			 "GPU-like rounding: %s, float FMA GEMM)",
#ifdef __FP_FAST_FMAF
			 "a*b+c contracted to FMA"
#else
			 "no FMA on this CPU, no contraction"
#endif
		);
#else
	snprintf(dev->desc, sizeof(dev->desc), "emulated (host memory, device kernels run one element at a time)");
#endif
	*out = dev;
	return CLAD_OK;
}

/* ---- the CUDA module ---- */

static pthread_mutex_t cuda_lock = PTHREAD_MUTEX_INITIALIZER;
static clad_cuda_open_fn cuda_open;	/* once loaded: kept for the process's life */

/* The directory of the running program, or "" when /proc cannot tell. */
static void
program_dir(char *dir, size_t size)
{
	char		exe[PATH_MAX];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char	   *slash;

	dir[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
	{
		*slash = '\0';
		snprintf(dir, size, "%s", exe[0] ? exe : "/");
	}
}

/*
 * The places the module is looked for, in order (device_impl.h), into
 * paths[]; returns how many (1 when CLAD_CUDA_MODULE is set).
 */
static int
module_candidates(char paths[2][PATH_MAX + 32])
{
	const char *env = getenv(CLAD_CUDA_MODULE_ENV);
	char		dir[PATH_MAX];

	if (env && *env)
	{
		snprintf(paths[0], PATH_MAX + 32, "%s", env);
		return 1;
	}
	program_dir(dir, sizeof(dir));
	if (!dir[0])
		return 0;
	snprintf(paths[0], PATH_MAX + 32, "%s/../core/cuda/" CLAD_CUDA_MODULE_FILE, dir);
	snprintf(paths[1], PATH_MAX + 32, "%s/../lib/clad/" CLAD_CUDA_MODULE_FILE, dir);
	return 2;
}

/* The first candidate that exists, or -1. */
static int
find_module(char paths[2][PATH_MAX + 32], int n)
{
	for (int i = 0; i < n; i++)
		if (access(paths[i], F_OK) == 0)
			return i;
	return -1;
}

int
clad_device_cuda_built(void)
{
	char		paths[2][PATH_MAX + 32];

	return cuda_open != NULL || find_module(paths, module_candidates(paths)) >= 0;
}

/* Load the module (once); CLAD_ERR_UNSUPPORTED with the reason when it cannot be had. */
static clad_status
load_cuda_module(void)
{
	char		paths[2][PATH_MAX + 32];
	int			n, at;
	void	   *h;
	void	   *sym;

	if (cuda_open)
		return CLAD_OK;
	n = module_candidates(paths);
	at = find_module(paths, n);
	if (at < 0)
	{
		if (getenv(CLAD_CUDA_MODULE_ENV) && *getenv(CLAD_CUDA_MODULE_ENV))
			return clad_fail(CLAD_ERR_UNSUPPORTED, "no CUDA backend: %s=%s: %s; use --device cpu",
							 CLAD_CUDA_MODULE_ENV, paths[0], strerror(errno));
		if (n == 0)
			return clad_fail(CLAD_ERR_UNSUPPORTED, "no CUDA backend: cannot tell where this program is "
							 "(/proc/self/exe) to find " CLAD_CUDA_MODULE_FILE "; set " CLAD_CUDA_MODULE_ENV
							 " or use --device cpu");
		return clad_fail(CLAD_ERR_UNSUPPORTED, "no CUDA backend: this build of clad has no " CLAD_CUDA_MODULE_FILE
						 " (looked for %s and %s; make CUDA=1 builds it where the CUDA Toolkit is installed, "
						 CLAD_CUDA_MODULE_ENV " names another); use --device cpu", paths[0], paths[1]);
	}
	/* RTLD_LOCAL: the CUDA libraries' symbols stay out of the program's scope */
	if (!(h = dlopen(paths[at], RTLD_NOW | RTLD_LOCAL)))
	{
		const char *why = dlerror();

		return clad_fail(CLAD_ERR_UNSUPPORTED, "the CUDA backend %s cannot be loaded: %s%s; use --device cpu",
						 paths[at], why ? why : "unknown error",
						 why && strstr(why, "libcu") ? " (the CUDA runtime it needs, cuBLAS and cudart, "
						 "is not installed or not on the library path: LD_LIBRARY_PATH)" : "");
	}
	if (!(sym = dlsym(h, CLAD_CUDA_OPEN_SYMBOL)))
	{
		dlclose(h);
		return clad_fail(CLAD_ERR_UNSUPPORTED, "%s is not clad's CUDA backend (no %s); use --device cpu",
						 paths[at], CLAD_CUDA_OPEN_SYMBOL);
	}
	/* never closed: the CUDA runtime keeps state (and exit handlers) for the process's life */
	memcpy(&cuda_open, &sym, sizeof(cuda_open));
	return CLAD_OK;
}

/* CUDA GPU ordinal through the module (loaded on first use). */
static clad_status
cuda_device_open(int ordinal, clad_device **out)
{
	static const clad_cuda_host host = {CLAD_DEVICE_ABI, clad_fail};
	clad_status st;

	pthread_mutex_lock(&cuda_lock);
	st = load_cuda_module();
	pthread_mutex_unlock(&cuda_lock);
	if (st != CLAD_OK)
		return st;
	return cuda_open(&host, ordinal, out);
}

clad_status
clad_device_open(const char *name, clad_device **out)
{
	*out = NULL;
	if (!name || strcmp(name, "cpu") == 0)
		return CLAD_OK;
	if (strcmp(name, "emulated") == 0)
		return emulated_open(out);
	if (strncmp(name, "cuda", 4) == 0 && (name[4] == '\0' || name[4] == ':'))
	{
		int			ordinal = 0;

		if (name[4] == ':')
		{
			char	   *end;
			long		v = strtol(name + 5, &end, 10);

			if (end == name + 5 || *end || v < 0 || v > 1024)
				return clad_fail(CLAD_ERR_INVALID, "bad device \"%s\": expected cuda or cuda:N", name);
			ordinal = (int) v;
		}
		return cuda_device_open(ordinal, out);
	}
	return clad_fail(CLAD_ERR_INVALID, "unknown device \"%s\": expected cpu, cuda, cuda:N or emulated", name);
}

void
clad_device_close(clad_device *dev)
{
	if (dev)
		dev->ops->close(dev);
}

const char *
clad_device_describe(const clad_device *dev)
{
	return dev ? dev->desc : "cpu";
}
