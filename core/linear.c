/* core/linear.c: fully connected layer. */
#include "layers.h"
#include "gemm.h"

void
clad_linear_forward(float *out, const float *in, const float *weight,
					const float *bias, int B, int IN, int OUT)
{
	if (bias)
		for (int b = 0; b < B; b++)
			for (int o = 0; o < OUT; o++)
				out[(size_t) b * OUT + o] = bias[o];
	/* out (B, OUT) (+)= in (B, IN) @ W^T (IN, OUT) */
	clad_sgemm(0, 1, B, OUT, IN, 1.0f, in, IN, weight, IN, bias ? 1.0f : 0.0f, out, OUT);
}

void
clad_linear_backward(float *din, float *dweight, float *dbias,
					 const float *dout, const float *in, const float *weight,
					 int B, int IN, int OUT)
{
	if (dbias)
		for (int b = 0; b < B; b++)
			for (int o = 0; o < OUT; o++)
				dbias[o] += dout[(size_t) b * OUT + o];
	if (dweight)
		/* dW (OUT, IN) += dout^T (OUT, B) @ in (B, IN) */
		clad_sgemm(1, 0, OUT, IN, B, 1.0f, dout, OUT, in, IN, 1.0f, dweight, IN);
	if (din)
		/* din (B, IN) += dout (B, OUT) @ W (OUT, IN) */
		clad_sgemm(0, 0, B, IN, OUT, 1.0f, dout, OUT, weight, IN, 1.0f, din, IN);
}
