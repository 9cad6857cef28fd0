/* core/device.h: where a net trains: the CPU (the default), a CUDA GPU, or
 * the emulated device that tests the device path on a CPU.
 *
 * A device is opened by name and handed to clad_net_to_device (net.h); the
 * net's weights, gradients, optimiser state and activations then live in the
 * device's memory, and every layer, training loss and optimiser step runs
 * there.  The host keeps the data (inputs and targets go up per batch, loss
 * values come down), so callers change nothing else.
 */
#ifndef CLAD_DEVICE_H
#define CLAD_DEVICE_H

#include "status.h"

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct clad_device clad_device;

/*
 * Open a device:
 *   "cpu"       *out = NULL: nets stay on the host (not an error)
 *   "cuda"      the first CUDA GPU; "cuda:N" the N-th
 *   "emulated"  host memory behind the device interface, running the same
 *               kernel bodies as the GPU one element at a time (for tests;
 *               slow).  Its addresses are tagged so that any host access to
 *               device memory faults, as it would with a GPU.
 * The CUDA backend is a module loaded at run time (device_impl.h: where it
 * is looked for; $CLAD_CUDA_MODULE overrides), so every program starts
 * without the CUDA libraries.  CUDA fails with CLAD_ERR_UNSUPPORTED and a
 * message saying why when the module is not there, cannot be loaded (the
 * CUDA runtime missing: the loader's own words), or finds no usable GPU.
 * CLAD_CUDA_DEBUG=1 makes the CUDA device wait after every launch and name
 * the kernel (or cuBLAS call) that failed.
 */
clad_status clad_device_open(const char *name, clad_device **out);
void		clad_device_close(clad_device *dev);

/* One line on what the device is ("cuda:0 NVIDIA H200, 139.8 GiB, cuBLAS 13.0"). */
const char *clad_device_describe(const clad_device *dev);

/* Non-zero when the CUDA backend's module is there to load (make CUDA=1 or nvcc found). */
int			clad_device_cuda_built(void);

#ifdef __cplusplus
}
#endif

#endif
