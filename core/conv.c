/* core/conv.c: Conv2d and ConvTranspose2d as im2col / col2im around sgemm. */
#include "layers.h"
#include "gemm.h"
#include "parallel.h"

#include <string.h>

/* The refusal of a non-positive size, else CLAD_OK. */
static clad_status
check_positive(int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad)
{
	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || OC <= 0 || KH <= 0 || KW <= 0 ||
		stride <= 0 || pad < 0)
		return clad_fail(CLAD_ERR_INVALID, "convolution sizes must be positive");
	return CLAD_OK;
}

/* Every product a conv will index with must fit in an int and in size_t. */
static clad_status
check_geom_sizes(const clad_conv_geom *g)
{
	size_t		a, b;

	if (clad_mul_size((size_t) g->C * g->KH, (size_t) g->KW, &a) ||
		clad_mul_size(a, (size_t) g->OH * (size_t) g->OW, &b) || b > INT32_MAX ||
		clad_mul_size((size_t) g->B * g->C, (size_t) g->H * (size_t) g->W, &a) || a > INT32_MAX ||
		clad_mul_size((size_t) g->B * g->OC, (size_t) g->OH * (size_t) g->OW, &a) || a > INT32_MAX)
		return clad_fail(CLAD_ERR_OVERFLOW, "convolution too large");
	return CLAD_OK;
}

clad_status
clad_conv_geom_init(clad_conv_geom *g, int B, int C, int H, int W, int OC,
					int KH, int KW, int stride, int pad)
{
	clad_status st = check_positive(B, C, H, W, OC, KH, KW, stride, pad);

	if (st != CLAD_OK)
		return st;
	if (H + 2 * pad < KH || W + 2 * pad < KW)
		return clad_fail(CLAD_ERR_SHAPE, "convolution kernel %dx%d larger than padded input %dx%d",
						 KH, KW, H + 2 * pad, W + 2 * pad);
	*g = (clad_conv_geom) {B, C, H, W, OC, KH, KW, stride, pad,
		(H + 2 * pad - KH) / stride + 1, (W + 2 * pad - KW) / stride + 1, 1};
	return check_geom_sizes(g);
}

clad_status
clad_convt_geom_init(clad_conv_geom *g, int B, int C, int H, int W, int OC,
					 int KH, int KW, int stride, int pad)
{
	clad_status st = check_positive(B, C, H, W, OC, KH, KW, stride, pad);
	int			OH = (H - 1) * stride - 2 * pad + KH;
	int			OW = (W - 1) * stride - 2 * pad + KW;

	if (st != CLAD_OK)
		return st;
	if (OH <= 0 || OW <= 0)
		return clad_fail(CLAD_ERR_SHAPE, "transposed convolution output would be empty");
	*g = (clad_conv_geom) {B, C, H, W, OC, KH, KW, stride, pad, OH, OW, 1};
	/* the column buffer is (OC*KH*KW, H*W): check it like a conv of OC channels */
	{
		size_t		a, b;

		if (clad_mul_size((size_t) OC * KH, (size_t) KW, &a) ||
			clad_mul_size(a, (size_t) H * (size_t) W, &b) || b > INT32_MAX ||
			clad_mul_size((size_t) B * C, (size_t) H * (size_t) W, &a) || a > INT32_MAX ||
			clad_mul_size((size_t) B * OC, (size_t) OH * (size_t) OW, &a) || a > INT32_MAX)
			return clad_fail(CLAD_ERR_OVERFLOW, "transposed convolution too large");
	}
	return CLAD_OK;
}

/* A 1x1 convolution of stride 1 without padding: the input is its own column matrix. */
static int
is_pointwise(const clad_conv_geom *g)
{
	return g->KH == 1 && g->KW == 1 && g->stride == 1 && g->pad == 0;
}

/* Images per GEMM, g->chunk clamped to [1, B]. */
static int
chunk_of(const clad_conv_geom *g)
{
	return g->chunk < 1 ? 1 : (g->chunk > g->B ? g->B : g->chunk);
}

size_t
clad_conv_scratch_floats(const clad_conv_geom *g)
{
	size_t		P = (size_t) g->OH * g->OW;
	int			nb = chunk_of(g);

	if (nb == 1 && is_pointwise(g))
		return 0;
	if (nb == 1)
		return (size_t) g->C * g->KH * g->KW * P;
	/* columns (C*KH*KW, nb*P) and the product (OC, nb*P) */
	return ((size_t) g->C * g->KH * g->KW + g->OC) * nb * P;
}

size_t
clad_convt_scratch_floats(const clad_conv_geom *g)
{
	return (size_t) g->OC * g->KH * g->KW * g->H * g->W;
}

/*
 * One image: img (C,H,W) -> col (C*KH*KW, OH*OW), zeros where the window
 * reaches into the padding.
 */
static void
im2col_ld(float *col, size_t ld, const float *img, int C, int H, int W, int KH, int KW,
		  int stride, int pad, int OH, int OW)
{
	for (int c = 0; c < C; c++)
		for (int kh = 0; kh < KH; kh++)
			for (int kw = 0; kw < KW; kw++)
			{
				float	   *row = col + ((size_t) (c * KH + kh) * KW + kw) * ld;
				const float *plane = img + (size_t) c * H * W;

				/* output columns whose input column is inside the image */
				int			ow_lo = 0, ow_hi = OW;

				while (ow_lo < OW && ow_lo * stride - pad + kw < 0)
					ow_lo++;
				while (ow_hi > ow_lo && (ow_hi - 1) * stride - pad + kw >= W)
					ow_hi--;
				for (int oh = 0; oh < OH; oh++)
				{
					int			ih = oh * stride - pad + kh;
					float	   *dst = row + (size_t) oh * OW;
					const float *src;

					if (ih < 0 || ih >= H)
					{
						memset(dst, 0, sizeof(float) * OW);
						continue;
					}
					src = plane + (size_t) ih * W;	/* input column of ow: ow * stride - pad + kw */
					for (int ow = 0; ow < ow_lo; ow++)
						dst[ow] = 0.0f;
					if (stride == 1 && ow_hi > ow_lo)
						memcpy(dst + ow_lo, src + (ow_lo - pad + kw), sizeof(float) * (ow_hi - ow_lo));
					else
						for (int ow = ow_lo; ow < ow_hi; ow++)
							dst[ow] = src[ow * stride - pad + kw];
					for (int ow = ow_hi; ow < OW; ow++)
						dst[ow] = 0.0f;
				}
			}
}

/* col (C*KH*KW, OH*OW) <- one image (C, H, W). */
static void
im2col(float *col, const float *img, int C, int H, int W, int KH, int KW,
	   int stride, int pad, int OH, int OW)
{
	im2col_ld(col, (size_t) OH * OW, img, C, H, W, KH, KW, stride, pad, OH, OW);
}

/* One image: col (C*KH*KW, OH*OW, row stride ld) added back into img (C,H,W);
 * the inverse scatter of im2col. */
static void
col2im_add_ld(float *img, const float *col, size_t ld, int C, int H, int W, int KH, int KW,
			  int stride, int pad, int OH, int OW)
{
	for (int c = 0; c < C; c++)
		for (int kh = 0; kh < KH; kh++)
			for (int kw = 0; kw < KW; kw++)
			{
				const float *row = col + ((size_t) (c * KH + kh) * KW + kw) * ld;
				float	   *plane = img + (size_t) c * H * W;

				int			ow_lo = 0, ow_hi = OW;

				while (ow_lo < OW && ow_lo * stride - pad + kw < 0)
					ow_lo++;
				while (ow_hi > ow_lo && (ow_hi - 1) * stride - pad + kw >= W)
					ow_hi--;
				for (int oh = 0; oh < OH; oh++)
				{
					int			ih = oh * stride - pad + kh;
					float	   *dst;
					const float *src = row + (size_t) oh * OW;

					if (ih < 0 || ih >= H)
						continue;
					dst = plane + (size_t) ih * W;
					for (int ow = ow_lo; ow < ow_hi; ow++)
						dst[ow * stride - pad + kw] += src[ow];
				}
			}
}

/* One image (C, H, W) += col (C*KH*KW, OH*OW), the transpose of im2col. */
static void
col2im_add(float *img, const float *col, int C, int H, int W, int KH, int KW,
		   int stride, int pad, int OH, int OW)
{
	col2im_add_ld(img, col, (size_t) OH * OW, C, H, W, KH, KW, stride, pad, OH, OW);
}

/* out (OC, plane) += bias per channel. */
static void
add_bias(float *out, const float *bias, int OC, size_t plane)
{
	for (int oc = 0; oc < OC; oc++)
	{
		float		b = bias[oc];
		float	   *o = out + (size_t) oc * plane;

		for (size_t i = 0; i < plane; i++)
			o[i] += b;
	}
}

/* dbias (OC) += dout (OC, plane) summed over the plane. */
static void
sum_bias_grad(float *dbias, const float *dout, int OC, size_t plane)
{
	for (int oc = 0; oc < OC; oc++)
	{
		const float *d = dout + (size_t) oc * plane;
		float		s = 0.0f;

		for (size_t i = 0; i < plane; i++)
			s += d[i];
		dbias[oc] += s;
	}
}

/*
 * The per-image steps of a chunk (im2col, the scatter of the product back
 * to NCHW, col2im), split by images among the trainer's threads: each image
 * writes only its own columns or its own output.
 */
typedef enum chunk_step
{
	STEP_IM2COL, STEP_SCATTER, STEP_COL2IM
} chunk_step;

typedef struct chunk_args
{
	chunk_step	step;
	const clad_conv_geom *g;
	int			b0;
	size_t		ld, P;
	float	   *col, *out;
	const float *in, *Y, *bias;
} chunk_args;

/* One thread's images of a chunk step. */
static void
chunk_images(size_t lo, size_t hi, void *p)
{
	const chunk_args *a = p;
	const clad_conv_geom *g = a->g;
	size_t		P = a->P, img = (size_t) g->C * g->H * g->W;

	for (size_t b = lo; b < hi; b++)
		switch (a->step)
		{
			case STEP_IM2COL:
				im2col_ld(a->col + b * P, a->ld, a->in + (a->b0 + b) * img,
						  g->C, g->H, g->W, g->KH, g->KW, g->stride, g->pad, g->OH, g->OW);
				break;
			case STEP_SCATTER:
				for (int oc = 0; oc < g->OC; oc++)
				{
					float	   *o = a->out + ((a->b0 + b) * g->OC + oc) * P;
					const float *y = a->Y + (size_t) oc * a->ld + b * P;
					float		bv = a->bias ? a->bias[oc] : 0.0f;

					for (size_t i = 0; i < P; i++)
						o[i] = y[i] + bv;
				}
				break;
			case STEP_COL2IM:
				col2im_add_ld(a->out + (a->b0 + b) * img, a->col + b * P, a->ld,
							  g->C, g->H, g->W, g->KH, g->KW, g->stride, g->pad, g->OH, g->OW);
				break;
		}
}

/* One step over the nb images of a chunk, split among the threads. */
static void
chunk_step_run(chunk_args *a, chunk_step step, int nb)
{
	size_t		per = (size_t) a->g->C * a->g->KH * a->g->KW * a->P;

	a->step = step;
	clad_parallel_for((size_t) nb, clad_parallel_items_each(per, 16384), chunk_images, a);
}

/*
 * nb images at once: col (K, nb*P) holds image b's columns at b*P, and
 * Y (OC, nb*P) = W @ col is scattered back to out (nb, OC, P).
 */
static void
conv2d_forward_chunked(float *out, const float *in, const float *weight,
					   const float *bias, const clad_conv_geom *g, float *scratch)
{
	int			K = g->C * g->KH * g->KW;
	size_t		P = (size_t) g->OH * g->OW;
	int			nbmax = chunk_of(g);

	for (int b0 = 0; b0 < g->B; b0 += nbmax)
	{
		int			nb = g->B - b0 < nbmax ? g->B - b0 : nbmax;
		size_t		ld = (size_t) nb * P;
		float	   *col = scratch;
		float	   *Y = scratch + (size_t) K * ld;

		chunk_args	a = {.g = g, .b0 = b0, .ld = ld, .P = P, .col = col, .out = out, .in = in, .Y = Y,
		.bias = bias};

		chunk_step_run(&a, STEP_IM2COL, nb);
		clad_sgemm(0, 0, g->OC, (int) ld, K, 1.0f, weight, K, col, (int) ld, 0.0f, Y, (int) ld);
		chunk_step_run(&a, STEP_SCATTER, nb);
	}
}

/* conv2d_forward_chunked's backward: din, dweight and dbias over chunks of images. */
static void
conv2d_backward_chunked(float *din, float *dweight, float *dbias,
						const float *dout, const float *in, const float *weight,
						const clad_conv_geom *g, float *scratch)
{
	int			K = g->C * g->KH * g->KW;
	size_t		P = (size_t) g->OH * g->OW;
	int			nbmax = chunk_of(g);

	for (int b0 = 0; b0 < g->B; b0 += nbmax)
	{
		int			nb = g->B - b0 < nbmax ? g->B - b0 : nbmax;
		size_t		ld = (size_t) nb * P;
		float	   *col = scratch;
		float	   *dY = scratch + (size_t) K * ld;

		/* gather dout of the chunk as (OC, nb*P) */
		for (int b = 0; b < nb; b++)
		{
			const float *d = dout + (size_t) (b0 + b) * g->OC * P;

			if (dbias)
				sum_bias_grad(dbias, d, g->OC, P);
			for (int oc = 0; oc < g->OC; oc++)
				memcpy(dY + (size_t) oc * ld + b * P, d + (size_t) oc * P, sizeof(float) * P);
		}
		chunk_args	a = {.g = g, .b0 = b0, .ld = ld, .P = P, .col = col, .out = din, .in = in};

		if (dweight)
		{
			chunk_step_run(&a, STEP_IM2COL, nb);
			/* dW (OC, K) += dY (OC, nb*P) @ col^T (nb*P, K) */
			clad_sgemm(0, 1, g->OC, K, (int) ld, 1.0f, dY, (int) ld, col, (int) ld, 1.0f, dweight, K);
		}
		if (din)
		{
			/* dcol (K, nb*P) = W^T (K, OC) @ dY (OC, nb*P) */
			clad_sgemm(1, 0, K, (int) ld, g->OC, 1.0f, weight, K, dY, (int) ld, 0.0f, col, (int) ld);
			chunk_step_run(&a, STEP_COL2IM, nb);
		}
	}
}

void
clad_conv2d_forward(float *out, const float *in, const float *weight,
					const float *bias, const clad_conv_geom *g, float *scratch)
{
	int			K = g->C * g->KH * g->KW;
	int			P = g->OH * g->OW;

	if (chunk_of(g) > 1)
	{
		conv2d_forward_chunked(out, in, weight, bias, g, scratch);
		return;
	}

	for (int b = 0; b < g->B; b++)
	{
		const float *img = in + (size_t) b * g->C * g->H * g->W;
		float	   *o = out + (size_t) b * g->OC * P;
		const float *col = img;

		if (!is_pointwise(g))
		{
			im2col(scratch, img, g->C, g->H, g->W, g->KH, g->KW, g->stride, g->pad, g->OH, g->OW);
			col = scratch;
		}
		/* out_b (OC, P) = W (OC, K) @ col (K, P) */
		clad_sgemm(0, 0, g->OC, P, K, 1.0f, weight, K, col, P, 0.0f, o, P);
		if (bias)
			add_bias(o, bias, g->OC, (size_t) P);
	}
}

void
clad_conv2d_backward(float *din, float *dweight, float *dbias,
					 const float *dout, const float *in, const float *weight,
					 const clad_conv_geom *g, float *scratch)
{
	int			K = g->C * g->KH * g->KW;
	int			P = g->OH * g->OW;

	if (chunk_of(g) > 1)
	{
		conv2d_backward_chunked(din, dweight, dbias, dout, in, weight, g, scratch);
		return;
	}

	for (int b = 0; b < g->B; b++)
	{
		const float *img = in + (size_t) b * g->C * g->H * g->W;
		const float *d = dout + (size_t) b * g->OC * P;

		if (dbias)
			sum_bias_grad(dbias, d, g->OC, (size_t) P);
		if (dweight)
		{
			const float *col = img;

			if (!is_pointwise(g))
			{
				im2col(scratch, img, g->C, g->H, g->W, g->KH, g->KW, g->stride, g->pad, g->OH, g->OW);
				col = scratch;
			}
			/* dW (OC, K) += dout_b (OC, P) @ col^T (P, K) */
			clad_sgemm(0, 1, g->OC, K, P, 1.0f, d, P, col, P, 1.0f, dweight, K);
		}
		if (din)
		{
			float	   *di = din + (size_t) b * g->C * g->H * g->W;

			if (is_pointwise(g))
				/* din_b (C, P) += W^T (C, OC) @ dout_b (OC, P) */
				clad_sgemm(1, 0, K, P, g->OC, 1.0f, weight, K, d, P, 1.0f, di, P);
			else
			{
				clad_sgemm(1, 0, K, P, g->OC, 1.0f, weight, K, d, P, 0.0f, scratch, P);
				col2im_add(di, scratch, g->C, g->H, g->W, g->KH, g->KW, g->stride, g->pad,
						   g->OH, g->OW);
			}
		}
	}
}

/*
 * ConvTranspose2d is the data-gradient of the conv that maps (OC,OH,OW) to
 * (C,H,W) with the same kernel: its forward is a col2im, its input gradient
 * an im2col.
 */
void
clad_convt2d_forward(float *out, const float *in, const float *weight,
					 const float *bias, const clad_conv_geom *g, float *scratch)
{
	int			Kc = g->OC * g->KH * g->KW;
	int			P = g->H * g->W;
	size_t		oplane = (size_t) g->OH * g->OW;

	memset(out, 0, sizeof(float) * g->B * g->OC * oplane);
	for (int b = 0; b < g->B; b++)
	{
		const float *x = in + (size_t) b * g->C * P;
		float	   *o = out + (size_t) b * g->OC * oplane;

		/* col (OC*KH*KW, P) = W^T (Kc, C) @ x (C, P) */
		clad_sgemm(1, 0, Kc, P, g->C, 1.0f, weight, Kc, x, P, 0.0f, scratch, P);
		col2im_add(o, scratch, g->OC, g->OH, g->OW, g->KH, g->KW, g->stride, g->pad, g->H, g->W);
		if (bias)
			add_bias(o, bias, g->OC, oplane);
	}
}

void
clad_convt2d_backward(float *din, float *dweight, float *dbias,
					  const float *dout, const float *in, const float *weight,
					  const clad_conv_geom *g, float *scratch)
{
	int			Kc = g->OC * g->KH * g->KW;
	int			P = g->H * g->W;
	size_t		oplane = (size_t) g->OH * g->OW;

	for (int b = 0; b < g->B; b++)
	{
		const float *d = dout + (size_t) b * g->OC * oplane;

		if (dbias)
			sum_bias_grad(dbias, d, g->OC, oplane);
		if (!din && !dweight)
			continue;
		im2col(scratch, d, g->OC, g->OH, g->OW, g->KH, g->KW, g->stride, g->pad, g->H, g->W);
		if (din)
			/* din_b (C, P) += W (C, Kc) @ col (Kc, P) */
			clad_sgemm(0, 0, g->C, P, Kc, 1.0f, weight, Kc, scratch, P, 1.0f,
					   din + (size_t) b * g->C * P, P);
		if (dweight)
			/* dW (C, Kc) += x (C, P) @ col^T (P, Kc) */
			clad_sgemm(0, 1, g->C, Kc, P, 1.0f, in + (size_t) b * g->C * P, P, scratch, P,
					   1.0f, dweight, Kc);
	}
}
