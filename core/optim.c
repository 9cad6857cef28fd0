/* core/optim.c: Adam and SGD with momentum, with PyTorch's update rules. */
#include "layers.h"
#include "parallel.h"
#include "vectorize.h"

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

/* The elementwise Adam update; the scalars as locals so that the loop vectorises. */
CLAD_VECTOR_LOOP
static void
adam_update(float *restrict param, const float *restrict grad, float *restrict m, float *restrict v,
			size_t n, float beta1, float beta2, float eps, float weight_decay, float step_size,
			float bc2_sqrt)
{
	for (size_t i = 0; i < n; i++)
	{
		float		g = grad[i] + weight_decay * param[i];

		m[i] = beta1 * m[i] + (1.0f - beta1) * g;
		v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
		param[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
	}
}

/* An optimiser step over ranges of the parameters, split among the trainer's threads. */
typedef struct adam_args
{
	float	   *param, *m, *v;
	const float *grad;
	float		beta1, beta2, eps, weight_decay, step_size, bc2_sqrt;
} adam_args;

typedef struct sgd_args
{
	float	   *param, *buf;
	const float *grad;
	float		lr, momentum, weight_decay;
	int			first;
} sgd_args;

#define PARAMS_EACH 65536

/* One thread's range of an Adam step. */
static void
adam_range(size_t lo, size_t hi, void *p)
{
	const adam_args *a = p;

	adam_update(a->param + lo, a->grad + lo, a->m + lo, a->v + lo, hi - lo, a->beta1, a->beta2, a->eps,
				a->weight_decay, a->step_size, a->bc2_sqrt);
}

void
clad_adam_step(clad_adam *opt, float *param, const float *grad,
			   float *m, float *v, size_t n)
{
	adam_args	a = {param, m, v, grad, opt->beta1, opt->beta2, opt->eps, opt->weight_decay, 0, 0};

	clad_adam_next(opt, &a.step_size, &a.bc2_sqrt);
	clad_parallel_for(n, PARAMS_EACH, adam_range, &a);
}

/* SGD with momentum and weight decay over n parameters (first: the momentum buffer starts). */
CLAD_VECTOR_LOOP
static void
sgd_update(float *restrict param, const float *restrict grad, float *restrict buf, size_t n,
		   float lr, float momentum, float weight_decay, int first)
{
	for (size_t i = 0; i < n; i++)
	{
		float		g = grad[i] + weight_decay * param[i];

		if (momentum != 0.0f)
		{
			buf[i] = first ? g : momentum * buf[i] + g;
			g = buf[i];
		}
		param[i] -= lr * g;
	}
}

/* One thread's range of an SGD step. */
static void
sgd_range(size_t lo, size_t hi, void *p)
{
	const sgd_args *a = p;

	sgd_update(a->param + lo, a->grad + lo, a->buf ? a->buf + lo : NULL, hi - lo, a->lr, a->momentum,
			   a->weight_decay, a->first);
}

void
clad_sgd_step(clad_sgd *opt, float *param, const float *grad, float *buf, size_t n)
{
	sgd_args	a = {param, buf, grad, opt->lr, opt->momentum, opt->weight_decay, opt->step == 0};

	opt->step++;
	clad_parallel_for(n, PARAMS_EACH, sgd_range, &a);
}
