/* core/activation.c: ReLU, ELU (alpha 1), Sigmoid, Dropout. */
#include "kernels.h"
#include "layers.h"
#include "vectorize.h"

#include <math.h>

CLAD_VECTOR_LOOP
void
clad_relu_forward(float *out, const float *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

CLAD_VECTOR_LOOP
void
clad_relu_backward(float *din, const float *dout, const float *out, size_t n)
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

CLAD_VECTOR_LOOP
void
clad_elu_forward(float *out, const float *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		float		x = in[i];
		float		e = k_expm1_nonpositive(x < 0.0f ? x : 0.0f);

		/* x itself for x >= 0 (and -0, and NaN, as expm1f would give) */
		out[i] = (x >= 0.0f || x != x) ? x : e;
	}
}

CLAD_VECTOR_LOOP
void
clad_elu_backward(float *din, const float *dout, const float *out, size_t n)
{
	/* for x <= 0, d/dx (e^x - 1) = e^x = out + 1 */
	for (size_t i = 0; i < n; i++)
		din[i] += out[i] > 0.0f ? dout[i] : dout[i] * (out[i] + 1.0f);
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
