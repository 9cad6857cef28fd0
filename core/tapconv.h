/* core/tapconv.h: convolution on small maps as a sum over kernel taps.
 *
 * On ResNet's late stages the maps are 4x4, 2x2 and 1x1, where im2col + GEMM
 * spends most of its work and weight reads on zero padding (a 3x3 conv on a
 * 1x1 map uses only its centre tap).  A plan (clad_tapconv) lists, for each
 * kernel tap (kh,kw), the (output, input) position pairs where it meets a
 * real pixel.  Then
 *     out[:, p] += W_tap @ in[:, q]   for every tap and pair (p, q)
 * and the input gradient is the transpose.  Only the taps that touch real
 * pixels are stored or read.  Two kinds:
 *   an inference plan also keeps each tap's weights packed in 16-channel
 *     panels for each direction (see tapconv.c), so that every pass streams
 *     contiguous memory; built once per model at load time, it runs eval
 *     forward and input-gradient passes (clad_tapconv_inference_*);
 *   a training plan holds no weights: its passes read them as they are
 *     (they change every step) and give every gradient
 *     (clad_tapconv_training_*); a net runs through it every pass that no
 *     inference plan serves (training, eval before preparing).
 *
 * An inference plan where every tap meets at most
 * CLAD_TAPCONV_SHARED_MAX_PAIRS positions (2x2 and 1x1 maps) is shared: it keeps only the forward panels
 * and its input gradient reads them transposed.  Such a layer uses each
 * weight a few times per image, so at batch 1 its passes are bound by
 * weight reads; one copy instead of two halves the bytes that ODIN's
 * forward, input-gradient and second forward passes cycle through, which
 * then stay in the last-level cache between passes (ResNet-18's 2x2 and
 * 1x1 stages hold 14 of its 17 MB of useful weights).  Plans with more
 * positions per tap keep a panel copy per direction: there the compute
 * dominates and the straight kernel is the faster one.
 */
#ifndef CLAD_TAPCONV_H
#define CLAD_TAPCONV_H

#define CLAD_TAPCONV_SHARED_MAX_PAIRS 4
#define CLAD_TAPCONV_SHARED_MIN_OC 64	/* below it, the transposed kernel's reductions cost too much */

#include "bf16.h"
#include "cpu_isa.h"
#include "layers.h"

typedef struct clad_tap
{
	int			npairs;
	int32_t    *out_pos;		/* (npairs) output positions oh*OW+ow */
	int32_t    *in_pos;			/* (npairs) input positions ih*W+iw */
	const void *fwd;			/* OC/16 panels of (C, 16): forward */
	const void *bwd;			/* C/16 panels of (OC, 16): input gradient; NULL in a shared plan */
} clad_tap;

typedef struct clad_tapconv
{
	clad_conv_geom g;			/* B ignored */
	int			ntaps;			/* taps that touch a real pixel */
	int			shared;			/* input gradient reads the fwd panels (see above) */
	clad_precision precision;	/* of the panels' elements: float, or bfloat16 (bf16.h) */
	clad_tap   *taps;
	void	   *panels;			/* one block holding every tap's fwd and bwd panels */
	size_t		panels_bytes;
	int			borrowed;		/* panels belong to the caller (a mapped file) */
} clad_tapconv;

/* Whether a conv of geometry g can have a plan (channels multiples of 16). */
int			clad_tapconv_supported(const clad_conv_geom *g);

/*
 * Plan for geometry g: with weight (OC,C,KH,KW) an inference plan with the
 * weights packed (channels must then be multiples of 16), with weight NULL
 * a training plan.
 */
clad_status clad_tapconv_build(clad_tapconv *tc, const clad_conv_geom *g, const float *weight);

/*
 * An inference plan as clad_tapconv_build's, its panels of precision p: in
 * bf16 each weight is rounded to the nearest bfloat16 (half the bytes; the
 * passes widen each to the float it stands for, and take activations and
 * sums in float, so the only change against fp32 is the weights' rounding,
 * a relative 2^-9 at most, and the order of nothing else).
 */
clad_status clad_tapconv_build_inference(clad_tapconv *tc, const clad_conv_geom *g, const float *weight,
										 clad_precision p);
void		clad_tapconv_free(clad_tapconv *tc);

/*
 * An inference plan over panels packed earlier (copies of built plans'
 * tc->panels of precision p, one after another): the plan takes its panels
 * from the start of panels (avail_bytes at most) and says how many bytes it
 * took; nothing is packed or copied, and the plan never writes or frees them.
 */
clad_status clad_tapconv_build_packed(clad_tapconv *tc, const clad_conv_geom *g, const void *panels,
									  size_t avail_bytes, clad_precision p, size_t *used_bytes);

/*
 * The kernels' instruction set is chosen from the CPU's features at first
 * use (CLAD_TAPCONV_ISA_*).  clad_tapconv_limit_isa lowers it (for tests,
 * so that every kernel runs on one machine; a negative isa restores the
 * best) and returns the one now in use.
 */
#define CLAD_TAPCONV_ISA_BASELINE CLAD_ISA_BASELINE
#define CLAD_TAPCONV_ISA_AVX2 CLAD_ISA_AVX2
#define CLAD_TAPCONV_ISA_AVX512 CLAD_ISA_AVX512
int			clad_tapconv_limit_isa(int isa);

/* ---- inference plans ---- */

/* Scratch floats for a batch of B. */
size_t		clad_tapconv_inference_scratch_floats(const clad_tapconv *tc, int B);

/* in (B,C,H,W), bias (OC) or NULL -> out (B,OC,OH,OW) */
void		clad_tapconv_inference_forward(const clad_tapconv *tc, float *out, const float *in,
										   const float *bias, int B, float *scratch);

/* dout (B,OC,OH,OW) -> din (B,C,H,W) (accumulated) */
void		clad_tapconv_inference_backward_input(const clad_tapconv *tc, float *din,
												  const float *dout, int B, float *scratch);

/* ---- training plans ---- */

/*
 * With channels in multiples of 16 the forward and input-gradient passes
 * run the panel kernels above on weights packed at every call, over fixed
 * blocks of images that the trainer's threads share, and the weight
 * gradient is summed by register tiles straight into (OC,C,KH,KW);
 * otherwise OpenBLAS runs on gathered positions with the weights rearranged
 * by tap.  Either way a float does not depend on the thread count, and on
 * small maps no multiply-add is spent on padding, in the weight gradient
 * too.  Kernels of at most CLAD_TAPCONV_TRAINING_MAX_TAPS positions (a plan
 * for a bigger one must not be used here).
 */
#define CLAD_TAPCONV_TRAINING_MAX_TAPS 64

size_t		clad_tapconv_training_scratch_floats(const clad_tapconv *tc, int B);

/* in (B,C,H,W), weight (OC,C,KH,KW), bias (OC) or NULL -> out (B,OC,OH,OW) */
void		clad_tapconv_training_forward(const clad_tapconv *tc, float *out, const float *in,
										  const float *weight, const float *bias, int B, float *scratch);

/* dout (B,OC,OH,OW) -> din (B,C,H,W), dweight (OC,C,KH,KW), dbias (OC),
 * each accumulated, each may be NULL */
void		clad_tapconv_training_backward(const clad_tapconv *tc, float *din, float *dweight,
										   float *dbias, const float *dout, const float *in,
										   const float *weight, int B, float *scratch);

#endif
