/* core/activation.c: ReLU, ELU (alpha 1), Sigmoid, Dropout. */
#include "device_kernels.h"
#include "layers.h"
#include "parallel.h"
#include "vectorize.h"

#include <math.h>

/* out = max(in, 0) over n values (one thread's share). */
CLAD_VECTOR_LOOP
static void
relu_forward_run(float *out, const float *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

/* din = dout where out > 0, else 0. */
CLAD_VECTOR_LOOP
static void
relu_backward_run(float *din, const float *dout, const float *out, size_t n)
{
	/* a select, not a branch (adding 0 changes nothing but the sign of a zero) */
	for (size_t i = 0; i < n; i++)
		din[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

float
clad_expm1_nonpositive(float x)
{
	return k_expm1_nonpositive(x);
}

/* out = ELU(in) over n values. */
CLAD_VECTOR_LOOP
static void
elu_forward_run(float *out, const float *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		float		x = in[i];
		float		e = k_expm1_nonpositive(x < 0.0f ? x : 0.0f);

		/* x itself for x >= 0 (and -0, and NaN, as expm1f would give) */
		out[i] = (x >= 0.0f || x != x) ? x : e;
	}
}

/* din = dout * ELU'(x), read from the output. */
CLAD_VECTOR_LOOP
static void
elu_backward_run(float *din, const float *dout, const float *out, size_t n)
{
	/* for x <= 0, d/dx (e^x - 1) = e^x = out + 1 */
	for (size_t i = 0; i < n; i++)
		din[i] += out[i] > 0.0f ? dout[i] : dout[i] * (out[i] + 1.0f);
}

/*
 * The public functions split n among the trainer's threads (core/parallel.h;
 * one call in a database backend): elements per thread at least ELEMENTS_EACH.
 */
#define ELEMENTS_EACH 32768

typedef struct elementwise_args
{
	float	   *out;
	const float *a, *b;
	void		(*run1) (float *, const float *, size_t);
	void		(*run2) (float *, const float *, const float *, size_t);
} elementwise_args;

/* One thread's range of an elementwise job. */
static void
elementwise_range(size_t lo, size_t hi, void *p)
{
	const elementwise_args *e = p;

	if (e->run1)
		e->run1(e->out + lo, e->a + lo, hi - lo);
	else
		e->run2(e->out + lo, e->a + lo, e->b + lo, hi - lo);
}

/* run(out, a) over n values, split among the threads. */
static void
split1(void (*run) (float *, const float *, size_t), float *out, const float *a, size_t n)
{
	elementwise_args e = {out, a, NULL, run, NULL};

	clad_parallel_for(n, ELEMENTS_EACH, elementwise_range, &e);
}

/* run(out, a, b) over n values, split among the threads. */
static void
split2(void (*run) (float *, const float *, const float *, size_t), float *out, const float *a,
	   const float *b, size_t n)
{
	elementwise_args e = {out, a, b, NULL, run};

	clad_parallel_for(n, ELEMENTS_EACH, elementwise_range, &e);
}

void
clad_relu_forward(float *out, const float *in, size_t n)
{
	split1(relu_forward_run, out, in, n);
}

void
clad_relu_backward(float *din, const float *dout, const float *out, size_t n)
{
	split2(relu_backward_run, din, dout, out, n);
}

void
clad_elu_forward(float *out, const float *in, size_t n)
{
	split1(elu_forward_run, out, in, n);
}

void
clad_elu_backward(float *din, const float *dout, const float *out, size_t n)
{
	split2(elu_backward_run, din, dout, out, n);
}

void
clad_sigmoid_forward(float *out, const float *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = 1.0f / (1.0f + expf(-in[i]));
}

void
clad_sigmoid_backward(float *din, const float *dout, const float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		din[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void
clad_dropout_mask(float *mask, size_t n, float p, clad_rng *rng)
{
	float		keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;

	for (size_t i = 0; i < n; i++)
		mask[i] = clad_rng_uniform(rng) < p ? 0.0f : keep;
}

void
clad_dropout_forward(float *out, float *mask, const float *in, size_t n,
					 float p, clad_rng *rng)
{
	clad_dropout_mask(mask, n, p, rng);
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] * mask[i];
}

void
clad_dropout_backward(float *din, const float *dout, const float *mask, size_t n)
{
	for (size_t i = 0; i < n; i++)
		din[i] += dout[i] * mask[i];
}
