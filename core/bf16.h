/* core/bf16.h: bfloat16 storage, and a matrix-vector product over it.
 *
 * A bfloat16 is the upper half of a float: the same sign and 8-bit exponent,
 * 7 stored mantissa bits (relative rounding error at most 2^-8).  clad stores large
 * read-mostly tables in it (the neighbour bank, neighbours.h) to halve the
 * bytes every score streams; the arithmetic stays in float: an element
 * widens exactly to the float it stands for, and products and sums are fp32.
 */
#ifndef CLAD_BF16_H
#define CLAD_BF16_H

#include <stddef.h>
#include <stdint.h>

typedef uint16_t clad_bf16;

/* x rounded to the nearest bfloat16 (ties to even); NaN stays a (quiet) NaN, infinities stay. */
clad_bf16	clad_bf16_round(float x);

/* The float a bfloat16 stands for (exact). */
float		clad_bf16_float(clad_bf16 h);

/* dst (n) = clad_bf16_round(src (n)). */
void		clad_bf16_round_array(clad_bf16 *dst, const float *src, size_t n);

/* dst (n) = clad_bf16_float(src (n)): each element widened (exact). */
void		clad_bf16_float_array(float *restrict dst, const clad_bf16 *restrict src, size_t n);

/*
 * y (M) = A (M x N bfloat16, row-major, leading dimension lda) . x (N):
 * each element widened to float, products and sums in float.  The kernel
 * (AVX-512, AVX2 or plain C, cpu_isa.h) is chosen from the CPU at first
 * use; a given kernel gives the same floats for the same row and x, wherever
 * the row lies in A.
 */
void		clad_bf16_gemv(int M, int N, const clad_bf16 *A, int lda, const float *x, float *y);

/*
 * The precision a model's convolution weights are scored in: fp32 (the
 * default: the trainer's floats, bit for bit) or bf16 (the weights of the
 * small-map convolutions, tapconv.h, rounded to bfloat16 and widened as they
 * are read; activations and sums stay fp32).
 */
typedef enum clad_precision
{
	CLAD_PRECISION_FP32 = 0,
	CLAD_PRECISION_BF16 = 1
} clad_precision;

/* "fp32" or "bf16" */
const char *clad_precision_name(clad_precision p);

/* Parse "fp32" or "bf16" into *p; 0 for anything else (*p unchanged). */
int			clad_precision_parse(const char *s, clad_precision *p);

/*
 * Lower the kernel's instruction set to at most isa (CLAD_ISA_*; for tests,
 * so that every kernel runs on one machine; negative restores the best) and
 * return the one now in use.
 */
int			clad_bf16_limit_isa(int isa);

#endif
