/* core/tapconv_internal.h: what the tapconv files share; private to core.
 *   tapconv.c           plans, weight packing, layouts, the inference passes
 *   tapconv_kernels.c   the panel kernels, per instruction set
 *   tapconv_training.c  the training passes
 */
#ifndef CLAD_TAPCONV_INTERNAL_H
#define CLAD_TAPCONV_INTERNAL_H

#include "tapconv.h"

/* The panel width is part of the prepared file layout (core/prepared.h): changing it
 * means bumping CLAD_PREPARED_LAYOUT, or mapped files would be read with the wrong layout;
 * so does changing which plans are shared (tapconv.h). */
#define PANEL 16

/* What a weight-gradient tile reads and writes (see WGRAD_TILE). */
typedef struct wgrad_args
{
	float	   *dweight;		/* (OC, C, KH, KW), accumulated */
	const float *dy_cl, *x_cl;	/* (B, P, OC), (B, S, C) */
	int			B, S, P, C, OC, kk;
} wgrad_args;

typedef void (*wgrad_tile_fn) (const wgrad_args *, const struct clad_tap *, int k, int oc0, int c0);

typedef void (*panel_gemm_fn) (float *restrict, const float *restrict, const int32_t *, const int32_t *,
							   const float *restrict, int, int, int, int32_t *restrict);

/* the same over panels of bfloat16 weights (bf16.h), widened to float as they are read */
typedef void (*panel_gemm_bf16_fn) (float *restrict, const float *restrict, const int32_t *, const int32_t *,
									const clad_bf16 *restrict, int, int, int, int32_t *restrict);

/* one image's (C, S) -> (S, C) */
typedef void (*layout_to_cl_fn) (float *restrict d, const float *restrict s, int C, int S);

/* one image's (S, C) -> (C, S): d = s + bias[c] (0 without a bias), or d += s with accumulate */
typedef void (*layout_from_cl_fn) (float *restrict d, const float *restrict s, const float *restrict bias,
								   int accumulate, int C, int S);

/*
 * The kernels of one instruction set: Y += X @ W and Y += X @ W^T over
 * panels of floats, Y += X @ W^T over those panels laid out by column
 * (tapconv_panels_to_columns), then over panels of bfloat16, the weight gradient's
 * tiles (wgrad_rows output channels by wgrad_cols input channels at most),
 * and the layout changes between (C, S) images and channel-last rows.
 */
typedef struct panel_kernels
{
	panel_gemm_fn gemm, gemm_t;
	panel_gemm_fn gemm_t_columns;	/* Y += X @ W^T, W^T's panels laid out by column */
	panel_gemm_bf16_fn gemm_bf16, gemm_t_bf16;
	wgrad_tile_fn wgrad;
	int			wgrad_rows, wgrad_cols;
	layout_to_cl_fn to_channels_last;
	layout_from_cl_fn from_channels_last;
} panel_kernels;

/* tapconv_kernels.c: the kernels of the instruction set in use */
const panel_kernels *tapconv_kernels(void);

/* tapconv.c (see there) */
void		tapconv_pack_panels(float *panels, size_t stride, const float *weight, const clad_conv_geom *g,
								const int *idx, int ntaps, int backward);
void		tapconv_to_channels_last(float *dst, const float *src, int B, int C, int S);
void		tapconv_from_channels_last(float *dst, const float *src, const float *bias, int B, int C, int S,
									   int accumulate);
void		tapconv_panels_to_columns(float *columns, const void *panels, int bf16, int K, int M);
void		tapconv_tap_rows(const clad_tap *tap, int forward, int b0, int nb, int src_S, int dst_S,
							 int32_t *xrow, int32_t *yrow);

#endif
