/* core/device.c: opening devices by name, and the emulated device. */
#include "device_impl.h"
#include "gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The emulated device keeps its memory on the host but hands out addresses
 * with bit 62 flipped: not canonical on x86-64 or AArch64, so a host access
 * to "device" memory faults at once, as it would with a GPU.  Its own calls
 * flip the bit back.
 */
#define EMU_TAG ((uintptr_t) 1 << 62)
#define EMU(p) ((void *) ((uintptr_t) (p) ^ EMU_TAG))

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

static clad_status
emu_upload(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	memcpy(EMU(dst), src, bytes);
	return CLAD_OK;
}

static clad_status
emu_download(clad_device *dev, void *dst, const void *src, size_t bytes)
{
	memcpy(dst, EMU(src), bytes);
	return CLAD_OK;
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

static void
emu_gemm(clad_device *dev, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
		 const float *B, int ldb, float beta, float *C, int ldc)
{
	clad_sgemm_ref(ta, tb, M, N, K, alpha, EMU(A), lda, EMU(B), ldb, beta, EMU(C), ldc);
}

/* untag every pointer of a kernel's arguments (NULL stays NULL) */
#define UNTAG(f) (a.f = a.f ? EMU(a.f) : NULL)

static void
emu_launch(clad_device *dev, clad_kernel k, size_t n, const clad_kargs *args)
{
	clad_kargs	a = *args;

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
	return CLAD_OK;
}

static void
emu_close(clad_device *dev)
{
	free(dev);
}

static const clad_device_ops emulated_ops = {
	emu_alloc, emu_release, emu_upload, emu_download, emu_zero, emu_copy, emu_gemm, emu_launch,
	emu_sync, emu_close
};

int
clad_device_cuda_built(void)
{
	return clad_cuda_device_open != NULL;
}

clad_status
clad_device_open(const char *name, clad_device **out)
{
	*out = NULL;
	if (!name || strcmp(name, "cpu") == 0)
		return CLAD_OK;
	if (strcmp(name, "emulated") == 0)
	{
		clad_device *dev = calloc(1, sizeof(clad_device));

		if (!dev)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory");
		dev->ops = &emulated_ops;
		snprintf(dev->desc, sizeof(dev->desc), "emulated (host memory, device kernels run one element at a time)");
		*out = dev;
		return CLAD_OK;
	}
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
		if (!clad_cuda_device_open)
			return clad_fail(CLAD_ERR_UNSUPPORTED,
							 "this build of clad has no CUDA backend (rebuild with make CUDA=1 where the "
							 "CUDA Toolkit is installed); use --device cpu");
		return clad_cuda_device_open(ordinal, out);
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
