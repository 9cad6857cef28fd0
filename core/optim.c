/* core/optim.c: Adam and SGD with momentum, with PyTorch's update rules. */
#include "layers.h"

#include <math.h>

void
clad_adam_next(clad_adam *opt, float *step_size, float *bc2_sqrt)
{
	double		bc1, bc2;

	opt->step++;
	bc1 = 1.0 - pow(opt->beta1, (double) opt->step);
	bc2 = 1.0 - pow(opt->beta2, (double) opt->step);
	*step_size = (float) (opt->lr / bc1);
	*bc2_sqrt = (float) sqrt(bc2);
}

void
clad_adam_step(clad_adam *opt, float *param, const float *grad,
			   float *m, float *v, size_t n)
{
	float		step_size, bc2_sqrt;

	clad_adam_next(opt, &step_size, &bc2_sqrt);
	for (size_t i = 0; i < n; i++)
	{
		float		g = grad[i] + opt->weight_decay * param[i];

		m[i] = opt->beta1 * m[i] + (1.0f - opt->beta1) * g;
		v[i] = opt->beta2 * v[i] + (1.0f - opt->beta2) * g * g;
		param[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + opt->eps);
	}
}

void
clad_sgd_step(clad_sgd *opt, float *param, const float *grad, float *buf, size_t n)
{
	int			first = opt->step == 0;

	opt->step++;
	for (size_t i = 0; i < n; i++)
	{
		float		g = grad[i] + opt->weight_decay * param[i];

		if (opt->momentum != 0.0f)
		{
			buf[i] = first ? g : opt->momentum * buf[i] + g;
			g = buf[i];
		}
		param[i] -= opt->lr * g;
	}
}
