/* core/device_layers.h: the layers of layers.h on a device (private to core).
 *
 * Same shapes, conventions and accumulation rules as layers.h; every
 * pointer is device memory.  Each layer is a short sequence of kernels
 * (device_kernels.h) and GEMMs on the device `dev`.  Scratch is device
 * memory of clad_dev_scratch_floats(...) floats (doubles are carved from it).
 */
#ifndef CLAD_DEVICE_LAYERS_H
#define CLAD_DEVICE_LAYERS_H

#include "device_impl.h"
#include "layers.h"

typedef enum clad_dev_layer
{
	CLAD_DEV_CONV, CLAD_DEV_CONVT, CLAD_DEV_BN, CLAD_DEV_LINEAR
} clad_dev_layer;

/*
 * Scratch floats a layer needs: conv/convt from g (batch g->B), BN for C
 * channels of B*S values, linear for B rows of OUT outputs.
 */
size_t		clad_dev_scratch_floats(clad_dev_layer kind, const clad_conv_geom *g, int B, int C, size_t S);

/* in (B,C,H,W), weight (OC,C,KH,KW), bias (OC) or NULL -> out (B,OC,OH,OW) */
void		clad_dev_conv2d_forward(clad_device *dev, float *out, const float *in, const float *weight,
									const float *bias, const clad_conv_geom *g, float *scratch);
/* dout (B,OC,OH,OW) -> din, dweight, dbias += (each may be NULL) */
void		clad_dev_conv2d_backward(clad_device *dev, float *din, float *dweight, float *dbias,
									 const float *dout, const float *in, const float *weight,
									 const clad_conv_geom *g, float *scratch);
/* in (B,C,H,W), weight (C,OC,KH,KW), bias (OC) -> out (B,OC,OH,OW) */
void		clad_dev_convt2d_forward(clad_device *dev, float *out, const float *in, const float *weight,
									 const float *bias, const clad_conv_geom *g, float *scratch);
/* dout (B,OC,OH,OW) -> din, dweight (C,OC,KH,KW), dbias += (each may be NULL) */
void		clad_dev_convt2d_backward(clad_device *dev, float *din, float *dweight, float *dbias,
									  const float *dout, const float *in, const float *weight,
									  const clad_conv_geom *g, float *scratch);

/* in (B,IN), weight (OUT,IN), bias (OUT) or NULL -> out (B,OUT) */
void		clad_dev_linear_forward(clad_device *dev, float *out, const float *in, const float *weight,
									const float *bias, int B, int IN, int OUT);
/* dout (B,OUT) -> din (B,IN), dweight (OUT,IN), dbias (OUT) += (each may be NULL) */
void		clad_dev_linear_backward(clad_device *dev, float *din, float *dweight, float *dbias,
									 const float *dout, const float *in, const float *weight,
									 int B, int IN, int OUT, float *scratch);

/* BatchNorm over (B,C,S), as clad_batchnorm_* */
void		clad_dev_batchnorm_forward_train(clad_device *dev, float *out, float *save_mean,
											 float *save_invstd, const float *in, const float *gamma,
											 const float *beta, float *running_mean, float *running_var,
											 int B, int C, int S, float momentum, float eps, float *scratch);
void		clad_dev_batchnorm_backward_train(clad_device *dev, float *din, float *dgamma, float *dbeta,
											  const float *dout, const float *in, const float *save_mean,
											  const float *save_invstd, const float *gamma,
											  int B, int C, int S, float *scratch);
void		clad_dev_batchnorm_forward_eval(clad_device *dev, float *out, const float *in,
											const float *gamma, const float *beta,
											const float *running_mean, const float *running_var,
											int B, int C, int S, float eps, float *scratch);
void		clad_dev_batchnorm_backward_eval(clad_device *dev, float *din, float *dgamma, float *dbeta,
											 const float *dout, const float *in, const float *gamma,
											 const float *running_mean, const float *running_var,
											 int B, int C, int S, float eps, float *scratch);

/*
 * res (C doubles) = per-channel sum over (B,S) of the term k_reduce_partial's
 * mode names, divided by dn; part holds clad_dev_sum_partials(B, C, S)
 * partial sums (doubles).
 */
size_t		clad_dev_sum_partials(int B, int C, size_t S);
void		clad_dev_channel_sum(clad_device *dev, double *res, double *part, int mode, const float *x,
								 const float *y, const float *mf, const float *sf, const double *md,
								 int B, int C, size_t S, double dn);

/* One elementwise kernel over n elements (activations, dropout, add, ...). */
void		clad_dev_run(clad_device *dev, clad_kernel k, size_t n, const clad_kargs *a);

#endif
