/* tests/unit/test_device.c: nets on a device against the same nets on the CPU.
 *
 * The device is CLAD_TEST_DEVICE (default "emulated": the device kernels and
 * the device code path run on the CPU, with tagged addresses so that any host
 * access to device memory faults).  With CLAD_TEST_DEVICE=cuda the same checks
 * run on a GPU; without one they are skipped with a message.
 *
 * For every layer (in small nets of odd shapes) and every reference model:
 * outputs of training and eval passes (relative error 1e-4), input and
 * parameter gradients (1e-3), BatchNorm statistics, one SGD step and one
 * Adam step, the same random draws (dropout, variational noise), batches
 * that grow, and moving nets back and forth; every training loss (the
 * kernels of clad_net_loss) and the backward pass from it.  Plus the errors: unknown
 * devices, CUDA without a build or a GPU, and what a net on a device refuses.
 */
#include "device.h"
#include "device_impl.h"
#include "gemm.h"
#include "architectures.h"
#include "net.h"
#include "rng.h"
#include "testutil.h"

#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUT_TOL 1e-4
#define GRAD_TOL 1e-3

static clad_device *dev;

static float *
random_floats(size_t n, uint64_t seed)
{
	clad_rng	r;
	float	   *v = malloc(sizeof(float) * n);

	clad_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
		v[i] = clad_rng_uniform(&r) * 2.0f - 1.0f;
	return v;
}

/*
 * How closely a device must agree with the CPU.  A deep net in training mode
 * amplifies rounding (BatchNorm over few values divides by small spreads):
 * two CPU runs whose inputs differ in the last bits can differ by 1e-3 in a
 * randomly initialised ResNet-18.  So each comparison also runs the CPU a
 * second time on an input perturbed at rounding level (the "noisy" twin),
 * and the device must agree within tol or NOISE_FACTOR times the CPU's own
 * spread, whichever is larger.  For well-conditioned values (every small
 * net below, eval passes) the plain tolerance decides.
 */
#define NOISE_FACTOR 30.0
#define PERTURB 2.5e-7f

static double worst_ratio = 0;	/* largest error / bound seen, reported at the end */

static void
check_close(const char *what, const char *part, const float *got, const float *want,
			const float *noisy, size_t n, double tol)
{
	double		e = max_rel_err(got, want, n);
	double		floor = noisy ? NOISE_FACTOR * max_rel_err(noisy, want, n) : 0;
	double		bound = tol > floor ? tol : floor;

	if (e / bound > worst_ratio)
		worst_ratio = e / bound;
	CHECK_MSG(e <= bound, "%s: %s: relative error %.3g > %.3g (tolerance %.0e, CPU noise x%.0f %.3g)",
			  what, part, e, bound, tol, NOISE_FACTOR, floor);
}

/*
 * A gradient that is zero in exact arithmetic (a bias in front of a
 * training-mode BatchNorm: the batch mean absorbs it) comes out as rounding
 * noise, some 1e-7 of the net's largest gradient, and its relative error
 * measures only how two summation orders round.  Such a tensor (largest
 * gradient under ZERO_GRAD times the net's) is checked absolutely: the
 * device's gradient, and the parameter an SGD step moved by it, must stay
 * within ZERO_GRAD times the net's largest gradient of the CPU's.
 */
#define ZERO_GRAD 1e-5

static double
max_abs(const float *v, size_t n)
{
	double		m = 0;

	for (size_t i = 0; i < n; i++)
		if (!(fabs(v[i]) <= m))
			m = isnan(v[i]) ? INFINITY : fabs(v[i]);
	return m;
}

static double
max_abs_diff(const float *a, const float *b, size_t n)
{
	double		m = 0;

	for (size_t i = 0; i < n; i++)
		if (!(fabs((double) a[i] - b[i]) <= m))
			m = isnan(a[i]) || isnan(b[i]) ? INFINITY : fabs((double) a[i] - b[i]);
	return m;
}

/*
 * Every tensor (parameters and buffers) of got against want (and noisy):
 * their gradients (grads) or their values.  want's gradients must still be
 * those of the last backward pass (they tell which are rounding noise).
 */
static void
check_tensors(const char *what, const char *part, clad_net *got, clad_net *want, clad_net *noisy,
			  int grads, double tol)
{
	double		scale = 0;

	for (size_t i = 0; i < clad_net_num_tensors(want); i++)
	{
		const clad_tensor_info *w = clad_net_tensor(want, i);

		if (!w->is_buffer && max_abs(w->grad, w->numel) > scale)
			scale = max_abs(w->grad, w->numel);
	}
	for (size_t i = 0; i < clad_net_num_tensors(want); i++)
	{
		const clad_tensor_info *w = clad_net_tensor(want, i), *g = clad_net_tensor(got, i);
		const clad_tensor_info *z = clad_net_tensor(noisy, i);
		char		label[160];

		if (grads && w->is_buffer)
			continue;
		snprintf(label, sizeof(label), "%s %s", part, w->name);
		if (!w->is_buffer && max_abs(w->grad, w->numel) <= ZERO_GRAD * scale)
		{
			double		e = grads ? max_abs_diff(g->grad, w->grad, w->numel)
				: max_abs_diff(g->data, w->data, w->numel);

			CHECK_MSG(e <= ZERO_GRAD * scale,
					  "%s: %s (a gradient that is zero but for rounding): off by %.3g > %.3g",
					  what, label, e, ZERO_GRAD * scale);
		}
		else if (grads)
			check_close(what, label, g->grad, w->grad, z->grad, w->numel, tol);
		else
			check_close(what, label, g->data, w->data, z->data, w->numel, tol);
	}
}

/* Copy every parameter and buffer of src into dst (same architecture). */
static void
copy_weights(clad_net *dst, clad_net *src)
{
	for (size_t i = 0; i < clad_net_num_tensors(src); i++)
		memcpy(clad_net_tensor(dst, i)->data, clad_net_tensor(src, i)->data,
			   sizeof(float) * clad_net_tensor(src, i)->numel);
}

/* Run the same call on the three nets (ref and noisy on the CPU, twin on the device). */
#define ALL3(call_ref, call_noisy, call_twin) \
	do { CHECK((call_ref) == CLAD_OK); CHECK((call_noisy) == CLAD_OK); \
		 CHECK_MSG((call_twin) == CLAD_OK, "%s: %s", what, clad_last_error()); } while (0)

/*
 * ref runs on the CPU, twin on the device, noisy on the CPU with its input
 * perturbed at rounding level; all start from ref's weights and the same
 * generator seed.  Checked: forward and backward in training mode (batch
 * B), the BatchNorm statistics it moves, a round trip to the host and
 * back, an SGD step, and eval passes at B and at a larger batch.
 */
static void
compare_on_device(const char *what, clad_net *ref, clad_net *twin, clad_net *noisy, int B)
{
	int			C, H, W;
	size_t		in_n, out_n = clad_net_out_numel(ref);
	int			B2 = B + 3;
	float	   *x, *xz, *dout, *dx_ref, *dx_dev, *dx_z, *out_ref, *out_z;
	clad_sgd	sgd_ref = {0.05f, 0.9f, 1e-4f, 0}, sgd_dev = sgd_ref, sgd_z = sgd_ref;
	clad_rng	r;

	clad_net_in_shape(ref, &C, &H, &W);
	in_n = (size_t) C * H * W;
	x = random_floats(in_n * B2, 7);
	xz = malloc(sizeof(float) * in_n * B2);
	clad_rng_seed(&r, 70);
	for (size_t i = 0; i < in_n * B2; i++)
		xz[i] = x[i] * (1.0f + PERTURB * (2.0f * clad_rng_uniform(&r) - 1.0f));
	dout = random_floats(out_n * B2, 8);
	dx_ref = malloc(sizeof(float) * in_n * B2);
	dx_dev = malloc(sizeof(float) * in_n * B2);
	dx_z = malloc(sizeof(float) * in_n * B2);
	out_ref = malloc(sizeof(float) * out_n * B2);
	out_z = malloc(sizeof(float) * out_n * B2);
	copy_weights(twin, ref);
	copy_weights(noisy, ref);
	clad_net_seed(ref, 99);
	clad_net_seed(twin, 99);
	clad_net_seed(noisy, 99);
	if (clad_net_to_device(twin, dev) != CLAD_OK)
	{
		CHECK_MSG(0, "%s: to_device: %s", what, clad_last_error());
		goto done;
	}
	CHECK(clad_net_device(twin) == dev);

	/* training pass: outputs, input gradient, BatchNorm statistics */
	ALL3(clad_net_forward(ref, x, B, CLAD_TRAIN), clad_net_forward(noisy, xz, B, CLAD_TRAIN),
		 clad_net_forward(twin, x, B, CLAD_TRAIN));
	check_close(what, "train output", clad_net_output(twin), clad_net_output(ref), clad_net_output(noisy),
				out_n * B, OUT_TOL);
	clad_net_zero_grad(ref);
	clad_net_zero_grad(twin);
	clad_net_zero_grad(noisy);
	ALL3(clad_net_backward(ref, dout, 1, dx_ref), clad_net_backward(noisy, dout, 1, dx_z),
		 clad_net_backward(twin, dout, 1, dx_dev));
	check_close(what, "train input gradient", dx_dev, dx_ref, dx_z, in_n * B, GRAD_TOL);

	/* parameter gradients and statistics, brought back to the host */
	CHECK(clad_net_to_device(twin, NULL) == CLAD_OK);
	CHECK(clad_net_device(twin) == NULL);
	check_tensors(what, "grad", twin, ref, noisy, 1, GRAD_TOL);
	check_tensors(what, "after a training pass", twin, ref, noisy, 0, OUT_TOL);

	/* back on the device: an SGD step (momentum, weight decay) with those gradients */
	CHECK(clad_net_to_device(twin, dev) == CLAD_OK);
	ALL3(clad_net_sgd_step(ref, &sgd_ref), clad_net_sgd_step(noisy, &sgd_z), clad_net_sgd_step(twin, &sgd_dev));
	CHECK(clad_net_sync_host(twin) == CLAD_OK);
	check_tensors(what, "after an SGD step", twin, ref, noisy, 0, GRAD_TOL);

	/*
	 * The eval passes run on the CPU's weights in all three nets: the step
	 * moved the biases that feed a BatchNorm by their gradients, which are
	 * rounding noise (the true ones are zero), so the nets' weights now
	 * differ by chance, and an eval pass (no batch statistics to absorb a
	 * bias) would compare that chance rather than the eval layers.
	 */
	CHECK(clad_net_to_device(twin, NULL) == CLAD_OK);
	copy_weights(twin, ref);
	copy_weights(noisy, ref);
	CHECK(clad_net_to_device(twin, dev) == CLAD_OK);

	/* eval passes, at B and at a batch that makes the device grow its buffers */
	for (int pass = 0; pass < 2; pass++)
	{
		int			b = pass ? B2 : B;

		ALL3(clad_net_forward(ref, x, b, CLAD_EVAL), clad_net_forward(noisy, xz, b, CLAD_EVAL),
			 clad_net_forward(twin, x, b, CLAD_EVAL));
		memcpy(out_ref, clad_net_output(ref), sizeof(float) * out_n * b);
		memcpy(out_z, clad_net_output(noisy), sizeof(float) * out_n * b);
		check_close(what, pass ? "eval output, larger batch" : "eval output", clad_net_output(twin), out_ref,
					out_z, out_n * b, OUT_TOL);
		ALL3(clad_net_backward(ref, dout, 0, dx_ref), clad_net_backward(noisy, dout, 0, dx_z),
			 clad_net_backward(twin, dout, 0, dx_dev));
		check_close(what, "eval input gradient", dx_dev, dx_ref, dx_z, in_n * b, GRAD_TOL);
	}


done:
	free(x);
	free(xz);
	free(dout);
	free(dx_ref);
	free(dx_dev);
	free(dx_z);
	free(out_ref);
	free(out_z);
}


/*
 * How far Adam's floats may be from the exact step, per element: each
 * operation of the update (optim.c's adam_update, device_kernels.h's k_adam) rounds
 * once, by at most u of its result (u = 2^-24, float's unit roundoff); a
 * GPU contracts some a*b + c pairs into one fused multiply-add, which drops
 * a rounding but never adds one.  So both the CPU's and the device's results
 * lie within the running error bound below (first-order: each operation's
 * bound is the propagated bounds of its operands plus u times its result),
 * and the device must agree with the CPU within twice it; the bound uses
 * 2u, for the second-order terms the analysis drops.  Small: a few ulps of
 * the update and of the parameter (a flat 1e-6 failed under contraction:
 * 2.7e-6 relative for parameters near zero); large only where the update
 * itself is ill-conditioned (a gradient that weight decay all but cancels).
 */
typedef struct adam_bound_state
{
	double		p, m, v;		/* error bounds carried between steps */
} adam_bound_state;

/* One step on the CPU's floats (as adam_update), advancing the bounds; returns the new parameter. */
static float
adam_step_bounded(float *p, float g_in, float *m, float *v, const clad_adam *o, float ss, float bc,
				  adam_bound_state *e)
{
	const double u = FLT_EPSILON;	/* 2 x the unit roundoff */
	float		g = g_in + o->weight_decay * *p;
	float		m0 = *m, v0 = *v, sq, d, num, r;
	double		eg, es, ed, enum_, er;

	eg = o->weight_decay * e->p + u * fabs(o->weight_decay * *p) + u * fabs(g);
	*m = o->beta1 * *m + (1.0f - o->beta1) * g;
	e->m = o->beta1 * e->m + (1.0 - o->beta1) * eg +
		u * (fabs(o->beta1 * m0) + fabs((1.0f - o->beta1) * g) + fabs(*m));
	*v = o->beta2 * *v + (1.0f - o->beta2) * g * g;
	e->v = o->beta2 * e->v + (1.0 - o->beta2) * 2.0 * fabs(g) * eg +
		u * (fabs(o->beta2 * v0) + 2.0 * fabs((1.0f - o->beta2) * g * g) + fabs(*v));
	sq = sqrtf(*v);
	/* sqrt: the derivative's bound, or sqrt(e) where v is too close to 0 for it */
	es = (sq > 0 ? fmin(e->v / (2.0 * sq), sqrt(e->v)) : sqrt(e->v)) + u * sq;
	d = sq / bc + o->eps;
	ed = es / bc + u * (fabs(sq / bc) + fabs(d));
	num = ss * *m;
	enum_ = ss * e->m + u * fabs(num);
	r = num / d;
	er = enum_ / d + fabs(num) * ed / ((double) d * d) + u * fabs(r);
	*p -= r;
	e->p += er + u * fabs(*p);
	return *p;
}

static double worst_adam = 0;	/* largest difference / bound of the Adam checks */

/*
 * Adam on the device against Adam on the CPU applied to the device's own
 * gradients (a first Adam step moves each parameter by about lr times the
 * sign of its gradient, so comparing with the CPU's gradients would only
 * measure which rounding-level gradients changed sign).  Two steps, so the
 * moment estimates kept on the device are used too; each parameter within
 * twice its rounding bound (above) of the CPU's.
 */
static void
compare_adam(const char *what, clad_net *ref, clad_net *twin, int B)
{
	int			C, H, W;
	size_t		np = clad_net_num_params(ref), in_n, bad = 0, worst_at = 0;
	float	   *x, *dout, *p, *g, *m, *v, *p2, *m2, *v2;
	adam_bound_state *eb;
	clad_adam	opt_dev = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f, 0}, opt_cpu = opt_dev, opt_replay = opt_dev;
	double		worst = 0;

	clad_net_in_shape(ref, &C, &H, &W);
	in_n = (size_t) C * H * W;
	x = random_floats(in_n * B, 17);
	dout = random_floats(clad_net_out_numel(ref) * B, 18);
	p = malloc(sizeof(float) * np);
	g = malloc(sizeof(float) * np);
	m = calloc(np, sizeof(float));
	v = calloc(np, sizeof(float));
	p2 = malloc(sizeof(float) * np);
	m2 = calloc(np, sizeof(float));
	v2 = calloc(np, sizeof(float));
	eb = calloc(np, sizeof(adam_bound_state));
	copy_weights(twin, ref);
	clad_net_seed(twin, 5);
	CHECK(clad_net_to_device(twin, dev) == CLAD_OK);
	CHECK(clad_net_forward(twin, x, B, CLAD_TRAIN) == CLAD_OK);
	clad_net_zero_grad(twin);
	CHECK(clad_net_backward(twin, dout, 1, NULL) == CLAD_OK);
	CHECK(clad_net_to_device(twin, NULL) == CLAD_OK);
	memcpy(p, clad_net_params(twin), sizeof(float) * np);
	memcpy(p2, p, sizeof(float) * np);
	memcpy(g, clad_net_grads(twin), sizeof(float) * np);
	CHECK(clad_net_to_device(twin, dev) == CLAD_OK);
	for (int step = 0; step < 2; step++)
	{
		float		ss, bc;

		CHECK(clad_net_adam_step(twin, &opt_dev) == CLAD_OK);
		clad_adam_step(&opt_cpu, p, g, m, v, np);
		clad_adam_next(&opt_replay, &ss, &bc);
		for (size_t i = 0; i < np; i++)
			adam_step_bounded(&p2[i], g[i], &m2[i], &v2[i], &opt_replay, ss, bc, &eb[i]);
	}
	CHECK(opt_dev.step == 2);
	/* the replay is the CPU's Adam (else the bound describes other arithmetic) */
	CHECK_MSG(memcmp(p, p2, sizeof(float) * np) == 0, "%s: the bounded replay of Adam differs from optim.c's", what);
	CHECK(clad_net_sync_host(twin) == CLAD_OK);
	for (size_t i = 0; i < np; i++)
	{
		double		d = fabs((double) clad_net_params(twin)[i] - p[i]), tol = 2.0 * eb[i].p;
		double		ratio = d == 0 ? 0 : (tol > 0 ? d / tol : INFINITY);

		if (!(ratio <= worst))
		{
			worst = isnan(d) ? INFINITY : ratio;
			worst_at = i;
		}
		if (!(d <= tol))
			bad++;
	}
	if (worst > worst_adam)
		worst_adam = worst;
	CHECK_MSG(bad == 0, "%s: two Adam steps: %zu of %zu parameters beyond their rounding bound; worst: "
			  "parameter %zu, device %.9g, CPU %.9g, bound %.3g (x%.3g)", what, bad, np, worst_at,
			  clad_net_params(twin)[worst_at], p[worst_at], 2.0 * eb[worst_at].p, worst);
	CHECK(clad_net_to_device(twin, NULL) == CLAD_OK);
	free(x);
	free(dout);
	free(p);
	free(g);
	free(m);
	free(v);
	free(p2);
	free(m2);
	free(v2);
	free(eb);
}

typedef clad_net *(*builder) (void);

static void
compare_built(const char *what, builder build, int B)
{
	clad_net   *ref = build(), *twin = build(), *noisy = build();

	if (!ref || !twin || !noisy)
		CHECK_MSG(0, "%s: build failed: %s", what, clad_last_error());
	else
	{
		compare_on_device(what, ref, twin, noisy, B);
		/* a fresh twin: no optimiser state yet */
		clad_net_free(twin);
		if ((twin = build()) != NULL)
			compare_adam(what, ref, twin, B);
	}
	clad_net_free(ref);
	clad_net_free(twin);
	clad_net_free(noisy);
}

/* Small nets that put every layer at odd shapes, strides, paddings and 1x1 / 2x2 maps. */
static clad_net *
convs_net(void)
{
	clad_net   *n = clad_net_new(2, 7, 5);
	int			v;

	v = clad_net_conv(n, 0, "c1", 3, 3, 2, 1, 1);	/* 7x5 -> 4x3, bias */
	v = clad_net_batchnorm(n, v, "bn1");
	v = clad_net_relu(n, v);
	v = clad_net_conv(n, v, "c2", 4, 1, 1, 0, 0);	/* pointwise, no bias */
	v = clad_net_elu(n, v);
	v = clad_net_conv(n, v, "c3", 5, 3, 1, 1, 1);	/* 4x3 keeps its size */
	v = clad_net_maxpool(n, v, 3, 2, 1);	/* overlapping windows with padding: 2x2 */
	v = clad_net_conv(n, v, "c4", 3, 2, 1, 0, 1);	/* 2x2 -> 1x1 */
	v = clad_net_sigmoid(n, v);
	if (clad_net_finish(n) != CLAD_OK)
	{
		clad_net_free(n);
		return NULL;
	}
	clad_classifier_init(n, "cnn", 5);
	return n;
}

static clad_net *
deconv_net(void)
{
	clad_net   *n = clad_net_new(3, 3, 4);
	int			v;

	v = clad_net_convt(n, 0, "d1", 2, 4, 2, 1, 1);	/* 3x4 -> 6x8 */
	v = clad_net_batchnorm(n, v, "bn");
	v = clad_net_elu(n, v);
	v = clad_net_convt(n, v, "d2", 3, 3, 1, 1, 0);	/* keeps 6x8, no bias */
	v = clad_net_maxpool(n, v, 2, 2, 0);	/* 3x4 */
	v = clad_net_avgpool(n, v);
	if (clad_net_finish(n) != CLAD_OK)
	{
		clad_net_free(n);
		return NULL;
	}
	clad_autoencoder_init(n, 6);
	return n;
}

static clad_net *
dense_net(void)
{
	clad_net   *n = clad_net_new(1, 4, 5);
	int			v, a, b;

	v = clad_net_dropout(n, 0, 0.3f);
	v = clad_net_linear(n, v, "fc1", 12, 1);
	v = clad_net_batchnorm(n, v, "bn");	/* BatchNorm1d */
	a = clad_net_relu(n, v);
	b = clad_net_linear(n, a, "fc2", 12, 0);
	v = clad_net_add(n, a, b);	/* a residual sum */
	v = clad_net_reshape(n, v, 3, 2, 2);
	v = clad_net_conv(n, v, "c", 4, 3, 1, 1, 1);
	v = clad_net_reshape(n, v, 16, 1, 1);
	v = clad_net_linear(n, v, "mu_sigma", 6, 1);
	v = clad_net_reparam(n, v);	/* variational code of 3 */
	if (clad_net_finish(n) != CLAD_OK)
	{
		clad_net_free(n);
		return NULL;
	}
	clad_autoencoder_init(n, 7);
	return n;
}

/* The reference models, each at the input size it is used at or a small one. */
static const char *cur_arch;
static int	cur_C, cur_H, cur_W, cur_K;

static clad_net *
classifier(void)
{
	clad_net   *n;

	if (clad_classifier_build(cur_arch, cur_C, cur_H, cur_W, cur_K, &n) != CLAD_OK)
		return NULL;
	clad_classifier_init(n, cur_arch, 3);
	return n;
}

static clad_net *
encoder_or_decoder(int decoder)
{
	clad_net   *e, *d;

	if (clad_autoencoder_build(cur_arch, cur_C, cur_H, cur_W, cur_K, &e, &d) != CLAD_OK)
		return NULL;
	clad_autoencoder_init(e, 1);
	clad_autoencoder_init(d, 2);
	clad_net_free(decoder ? e : d);
	return decoder ? d : e;
}

static clad_net *
encoder(void)
{
	return encoder_or_decoder(0);
}

static clad_net *
decoder(void)
{
	return encoder_or_decoder(1);
}

static void
check_models(void)
{
	static const struct { const char *arch; int C, H, W, B; } clfs[] = {
		{"resnet18", 1, 28, 28, 6}, {"resnet18", 3, 12, 12, 5}, {"cnn", 1, 28, 28, 3},
		{"cnn_large", 3, 32, 32, 2}, {"fc3", 1, 28, 28, 4}, {"linear", 2, 6, 6, 3},
	};
	static const struct { const char *arch; int C, H, W, B; } aes[] = {
		{"cvae", 1, 28, 28, 3}, {"cvae_large", 3, 32, 32, 2}, {"linear", 1, 28, 28, 4},
		{"cvae_nobias", 1, 28, 28, 3},
	};
	char		what[128];

	for (size_t i = 0; i < sizeof(clfs) / sizeof(clfs[0]); i++)
	{
		cur_arch = clfs[i].arch;
		cur_C = clfs[i].C;
		cur_H = clfs[i].H;
		cur_W = clfs[i].W;
		cur_K = 5;
		snprintf(what, sizeof(what), "classifier %s %dx%dx%d", cur_arch, cur_C, cur_H, cur_W);
		compare_built(what, classifier, clfs[i].B);
	}
	for (size_t i = 0; i < sizeof(aes) / sizeof(aes[0]); i++)
	{
		cur_arch = aes[i].arch;
		cur_C = aes[i].C;
		cur_H = aes[i].H;
		cur_W = aes[i].W;
		cur_K = 10;				/* the latent size */
		snprintf(what, sizeof(what), "encoder %s %dx%dx%d", cur_arch, cur_C, cur_H, cur_W);
		compare_built(what, encoder, aes[i].B);
		snprintf(what, sizeof(what), "decoder %s %dx%dx%d", cur_arch, cur_C, cur_H, cur_W);
		compare_built(what, decoder, aes[i].B);
	}
}

/* What a net on a device refuses, and that it is unharmed by the refusals. */
static void
check_refusals(void)
{
	clad_net   *n = convs_net();
	clad_st_writer *w = clad_st_writer_new();
	float	   *x = random_floats(2 * 7 * 5 * 4, 3);

	CHECK(n && w);
	CHECK(clad_net_to_device(n, dev) == CLAD_OK);
	CHECK(clad_net_save(n, w, "") == CLAD_ERR_INVALID);
	CHECK(strstr(clad_last_error(), "on device") != NULL);
	CHECK(clad_net_prepare_inference(n, 4) == CLAD_ERR_INVALID);
	CHECK(clad_net_release_planned_weights(n) == 0);
	CHECK(clad_net_backward(n, x, 1, NULL) == CLAD_ERR_INVALID);	/* no forward yet */
	CHECK(clad_net_forward(n, x, 0, CLAD_EVAL) == CLAD_ERR_INVALID);
	CHECK(clad_net_forward(n, x, 4, CLAD_EVAL) == CLAD_OK);
	CHECK(clad_net_to_device(n, NULL) == CLAD_OK);
	CHECK(clad_net_save(n, w, "") == CLAD_OK);

	/* a net prepared for CPU scoring, with its weights released, stays on the CPU */
	CHECK(clad_net_prepare_inference(n, 4) == CLAD_OK);
	if (clad_net_release_planned_weights(n) > 0)
		CHECK(clad_net_to_device(n, dev) == CLAD_ERR_INVALID);
	clad_st_writer_free(w);
	clad_net_free(n);
	free(x);

	/* BatchNorm1d over one image is refused on the device as on the host; freeing a
	 * net while it is on the device releases the device memory */
	n = dense_net();
	x = random_floats(20, 4);
	CHECK(clad_net_to_device(n, dev) == CLAD_OK);
	CHECK(clad_net_forward(n, x, 1, CLAD_TRAIN) == CLAD_ERR_SHAPE);
	CHECK(clad_net_forward(n, x, 1, CLAD_EVAL) == CLAD_OK);
	clad_net_free(n);
	free(x);
}

/* "cuda" with CLAD_CUDA_MODULE set to path: refused, the message holding want */
static void
check_module_refused(const char *path, const char *want)
{
	clad_device *d = (clad_device *) 1;
	clad_status st;

	setenv(CLAD_CUDA_MODULE_ENV, path, 1);
	st = clad_device_open("cuda", &d);
	CHECK_MSG(st == CLAD_ERR_UNSUPPORTED && d == NULL, "module %s: status %d", path, (int) st);
	CHECK_MSG(strstr(clad_last_error(), want) && strstr(clad_last_error(), "use --device cpu"),
			  "module %s: \"%s\" does not say \"%s\"", path, clad_last_error(), want);
	if (d && st == CLAD_OK)
		clad_device_close(d);
}

static void
check_open_errors(void)
{
	clad_device *d = (clad_device *) 1;
	clad_status st;
	const char *env = getenv(CLAD_CUDA_MODULE_ENV);
	char	   *saved = env ? strdup(env) : NULL;
	Dl_info		libc;
	char		text[] = "/tmp/clad_test_device_XXXXXX";
	int			fd;

	CHECK(clad_device_open("cpu", &d) == CLAD_OK && d == NULL);
	CHECK(strcmp(clad_device_describe(NULL), "cpu") == 0);
	CHECK(clad_device_open("tpu", &d) == CLAD_ERR_INVALID && d == NULL);
	CHECK(strstr(clad_last_error(), "unknown device") != NULL);
	CHECK(clad_device_open("cuda:x", &d) == CLAD_ERR_INVALID);
	CHECK(clad_device_open("cuda:-1", &d) == CLAD_ERR_INVALID);

	/*
	 * The CUDA module (device_impl.h) where it cannot be had, before a real one
	 * is loaded (a loaded module is kept): missing, not a shared object, a
	 * shared object that is not clad's.
	 */
	check_module_refused("/nonexistent/clad_cuda.so", "No such file");
	check_module_refused("/nonexistent/clad_cuda.so", "no CUDA backend");
	if ((fd = mkstemp(text)) >= 0)
	{
		CHECK(write(fd, "not a module\n", 13) == 13);
		close(fd);
		check_module_refused(text, "cannot be loaded");
		unlink(text);
	}
	if (dladdr((void *) &dlopen, &libc) && libc.dli_fname && libc.dli_fname[0] == '/')
		check_module_refused(libc.dli_fname, "is not clad's CUDA backend");
	if (saved)
		setenv(CLAD_CUDA_MODULE_ENV, saved, 1);
	else
		unsetenv(CLAD_CUDA_MODULE_ENV);
	free(saved);

	/* CUDA: a device, or a clear refusal (no module, no runtime, no driver, no GPU), never a crash */
	st = clad_device_open("cuda", &d);
	if (st == CLAD_OK)
	{
		printf("  cuda: %s\n", clad_device_describe(d));
		clad_device_close(d);
	}
	else
	{
		CHECK(st == CLAD_ERR_UNSUPPORTED);
		CHECK(strlen(clad_last_error()) > 10);
		CHECK(strstr(clad_last_error(), "use --device cpu") != NULL);
		printf("  cuda unavailable (as expected without a GPU): %s\n", clad_last_error());
	}
	if (!clad_device_cuda_built())
		CHECK(strstr(clad_last_error(), "no CUDA backend") != NULL);
	st = clad_device_open("cuda:1000", &d);
	CHECK(st != CLAD_OK || d != NULL);
	if (st == CLAD_OK)
		clad_device_close(d);
}

/* BLAS's column-major sgemm, as its reference implementation defines it (the cuBLAS convention). */
static void
colmajor_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda,
			   const float *B, int ldb, float beta, float *C, int ldc)
{
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++)
		{
			double		s = 0;

			for (int l = 0; l < k; l++)
				s += (double) (ta ? A[l + (size_t) i * lda] : A[i + (size_t) l * lda]) *
					(tb ? B[j + (size_t) l * ldb] : B[l + (size_t) j * ldb]);
			C[i + (size_t) j * ldc] = (float) (alpha * s + beta * C[i + (size_t) j * ldc]);
		}
}

/* The arguments the CUDA backend gives cuBLAS compute the row-major product, for every transpose. */
static void
check_colmajor_mapping(void)
{
	const int	M = 5, N = 7, K = 3, pad = 2;

	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++)
		{
			int			lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
			float	   *A = random_floats((size_t) (ta ? K : M) * lda, 31);
			float	   *B = random_floats((size_t) (tb ? N : K) * ldb, 32);
			float	   *want = random_floats((size_t) M * ldc, 33), *got = malloc(sizeof(float) * M * ldc);
			clad_colmajor_gemm g = clad_rowmajor_as_colmajor(ta, tb, M, N, K, A, lda, B, ldb);

			memcpy(got, want, sizeof(float) * M * ldc);
			clad_sgemm_ref(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, want, ldc);
			colmajor_sgemm(g.trans_first, g.trans_second, g.m, g.n, g.k, 0.5f, g.first, g.ld_first,
						   g.second, g.ld_second, 0.25f, got, ldc);
			CHECK_MSG(max_rel_err(got, want, (size_t) M * ldc) < 1e-5, "column-major mapping ta=%d tb=%d", ta, tb);
			free(A);
			free(B);
			free(want);
			free(got);
		}
}

/* input (1,4,5) -> linear 12 -> ELU -> linear out: a net to put a loss on */
static clad_net *
loss_net(int out)
{
	clad_net   *n = clad_net_new(1, 4, 5);
	int			v;

	v = clad_net_linear(n, 0, "fc1", 12, 1);
	v = clad_net_elu(n, v);
	v = clad_net_linear(n, v, "fc2", out, 1);
	if (clad_net_finish(n) != CLAD_OK)
	{
		clad_net_free(n);
		return NULL;
	}
	clad_autoencoder_init(n, 11);
	return n;
}

static double worst_loss = 0;	/* largest difference / bound of the loss values */

/*
 * A loss value from the device against core/loss.c's function evaluated on
 * the same output (the device's, brought down), so that the check measures
 * the loss kernels alone (the forward pass is checked on its own, and its
 * outputs differ from the CPU's where the GEMMs sum in another order).  Both
 * sum in double and round the result to float; what can differ is each
 * float the sums take in and that last rounding, so the bound is 8 units of
 * float roundoff (FLT_EPSILON / 2 each) of the sum of the terms' magnitudes
 * per row: the loss itself for MSE and Deep SVDD (terms >= 0), |log-sum-exp|
 * + |logit / T| for cross-entropy (a difference that can cancel), and
 * sum |p (log p - log q)| + 2 (p's and q's rounding: p sums to 1 per row)
 * for DEC.  Also: the rows counted correct, recounted from the same output.
 */
static void
check_loss_value(const char *what, const clad_loss_spec *spec, const float *y, int B, size_t out,
				 float loss_dev, int right_dev)
{
	int			K = spec->kind == CLAD_LOSS_DEC_KL ? spec->K : 1;
	float	   *grad = calloc((size_t) B * out, sizeof(float));
	float	   *q = malloc(sizeof(float) * B * K), *p = malloc(sizeof(float) * B * K);
	float		want = 0;
	double		scale = 0, d, bound;
	int			right = 0;

	switch (spec->kind)
	{
		case CLAD_LOSS_MSE:
			want = clad_mse_loss(grad, y, spec->target, (size_t) B * out);
			scale = fabs(want);
			break;
		case CLAD_LOSS_SVDD:
			want = clad_svdd_loss(grad, y, spec->centers, B, (int) out);
			scale = fabs(want);
			break;
		case CLAD_LOSS_CROSS_ENTROPY:
			want = clad_cross_entropy_loss(grad, y, spec->labels, B, (int) out, spec->T);
			for (int b = 0; b < B; b++)
			{
				const float *l = y + (size_t) b * out;
				double		mx = -INFINITY, sum = 0;
				int			best = 0;

				for (size_t k = 0; k < out; k++)
				{
					mx = fmax(mx, l[k] / spec->T);
					if (l[k] > l[best])
						best = (int) k;
				}
				for (size_t k = 0; k < out; k++)
					sum += exp(l[k] / spec->T - mx);
				right += best == spec->labels[b];
				if (spec->labels[b] >= 0 && spec->labels[b] < (int) out)
					scale += (fabs(mx + log(sum)) + fabs(l[spec->labels[b]] / spec->T)) / B;
			}
			CHECK_MSG(right_dev == right, "%s: %d rows correct on the device, %d by its output", what,
					  right_dev, right);
			break;
		case CLAD_LOSS_DEC_KL:
			clad_dec_soft_assign(q, y, spec->centers, B, K, (int) out, spec->alpha);
			clad_dec_target(p, q, B, K);
			want = clad_dec_kl_loss(grad, NULL, y, spec->centers, p, B, K, (int) out, spec->alpha);
			for (size_t i = 0; i < (size_t) B * K; i++)
				if (p[i] > 0 && q[i] > 0)
					scale += fabs(p[i] * (log(p[i]) - log(q[i]))) / B;
			scale += 2.0;
			break;
	}
	if (isfinite(want))
	{
		d = fabs((double) loss_dev - want);
		bound = 8.0 * (FLT_EPSILON / 2) * scale + 1e-30;
		if (d / bound > worst_loss)
			worst_loss = d / bound;
		CHECK_MSG(d <= bound, "%s: loss %.9g on the device, %.9g by loss.c on the device's output: "
				  "%.3g apart, bound %.3g", what, loss_dev, want, d, bound);
	}
	free(grad);
	free(q);
	free(p);
}

/*
 * One loss on a net on the CPU (ref) and its copy on the device (twin):
 * the value, what the spec gives back, and the gradients the backward pass
 * takes from it.  On the CPU the loss must also be exactly core/loss.c's
 * function (value and gradient) on the same output.
 */
static void
compare_loss(const char *what, clad_loss_spec spec, int out, int B)
{
	clad_net   *ref = loss_net(out), *twin = loss_net(out);
	float	   *x = random_floats((size_t) 20 * B, 41);
	float	   *dx_ref = malloc(sizeof(float) * 20 * B), *dx_dev = malloc(sizeof(float) * 20 * B);
	float	   *dx_fn = malloc(sizeof(float) * 20 * B), *grad = calloc((size_t) B * out, sizeof(float));
	int			K = spec.kind == CLAD_LOSS_DEC_KL ? spec.K : 1;
	float	   *dc_ref = calloc((size_t) K * out, sizeof(float)), *dc_dev = calloc((size_t) K * out, sizeof(float));
	int			right_ref = -1, right_dev = -2;
	float		loss_ref, loss_dev, loss_fn = 0;
	clad_loss_spec sd = spec;

	CHECK_MSG(ref && twin, "%s: build failed", what);
	copy_weights(twin, ref);
	spec.correct = &right_ref;
	sd.correct = &right_dev;
	spec.dcenters = spec.kind == CLAD_LOSS_DEC_KL ? dc_ref : NULL;
	sd.dcenters = spec.kind == CLAD_LOSS_DEC_KL ? dc_dev : NULL;
	CHECK(clad_net_to_device(twin, dev) == CLAD_OK);
	CHECK(clad_net_forward(ref, x, B, CLAD_TRAIN) == CLAD_OK);
	CHECK(clad_net_forward(twin, x, B, CLAD_TRAIN) == CLAD_OK);
	CHECK(clad_net_loss(ref, &spec, &loss_ref) == CLAD_OK);
	CHECK_MSG(clad_net_loss(twin, &sd, &loss_dev) == CLAD_OK, "%s: %s", what, clad_last_error());

	/* the CPU path is core/loss.c's function, exactly */
	{
		const float *y = clad_net_output(ref);
		float	   *q = malloc(sizeof(float) * B * K), *p = malloc(sizeof(float) * B * K);

		switch (spec.kind)
		{
			case CLAD_LOSS_MSE:
				loss_fn = clad_mse_loss(grad, y, spec.target, (size_t) B * out);
				break;
			case CLAD_LOSS_CROSS_ENTROPY:
				loss_fn = clad_cross_entropy_loss(grad, y, spec.labels, B, out, spec.T);
				break;
			case CLAD_LOSS_DEC_KL:
				clad_dec_soft_assign(q, y, spec.centers, B, K, out, spec.alpha);
				clad_dec_target(p, q, B, K);
				loss_fn = clad_dec_kl_loss(grad, NULL, y, spec.centers, p, B, K, out, spec.alpha);
				break;
			case CLAD_LOSS_SVDD:
				loss_fn = clad_svdd_loss(grad, y, spec.centers, B, out);
				break;
		}
		free(q);
		free(p);
	}
	CHECK_MSG(memcmp(&loss_fn, &loss_ref, sizeof(float)) == 0, "%s: CPU loss %.9g is not loss.c's %.9g",
			  what, loss_ref, loss_fn);
	/* the device's forward pass (its GEMMs sum in another order) */
	check_close(what, "output", clad_net_output(twin), clad_net_output(ref), NULL, (size_t) B * out, OUT_TOL);
	check_loss_value(what, &spec, clad_net_output(twin), B, out, loss_dev, right_dev);
	if (spec.kind == CLAD_LOSS_CROSS_ENTROPY)
		CHECK_MSG(right_ref >= 0 && right_ref <= B, "%s: %d rows correct of %d on the CPU", what, right_ref, B);
	if (!isfinite(loss_ref))
		CHECK_MSG(!isfinite(loss_dev), "%s: the CPU's loss is not finite, the device's %g is", what, loss_dev);
	if (spec.kind == CLAD_LOSS_DEC_KL)
		check_close(what, "centre gradient", dc_dev, dc_ref, NULL, (size_t) K * out, OUT_TOL);
	if (!isfinite(loss_ref))
		goto done;

	/* the backward pass from the kept gradient */
	clad_net_zero_grad(ref);
	clad_net_zero_grad(twin);
	CHECK(clad_net_backward(ref, NULL, 1, dx_ref) == CLAD_OK);
	CHECK(clad_net_backward(twin, NULL, 1, dx_dev) == CLAD_OK);
	check_close(what, "input gradient", dx_dev, dx_ref, NULL, (size_t) 20 * B, GRAD_TOL);
	CHECK(clad_net_to_device(twin, NULL) == CLAD_OK);
	check_tensors(what, "gradient", twin, ref, ref, 1, GRAD_TOL);
	/* ... which is the function's gradient */
	clad_net_zero_grad(ref);
	CHECK(clad_net_backward(ref, grad, 1, dx_fn) == CLAD_OK);
	CHECK_MSG(memcmp(dx_fn, dx_ref, sizeof(float) * 20 * B) == 0, "%s: backward from the loss differs", what);
done:
	clad_net_free(ref);
	clad_net_free(twin);
	free(x);
	free(dx_ref);
	free(dx_dev);
	free(dx_fn);
	free(grad);
	free(dc_ref);
	free(dc_dev);
}

static void
check_losses(void)
{
	const int	B = 6, D = 5, K = 4, classes = 7;
	float	   *target = random_floats((size_t) B * 18, 51);
	float	   *centers = random_floats((size_t) K * D, 52);
	int32_t		labels[6] = {0, 6, 3, 3, 1, 5}, bad[6] = {0, 6, 7, 3, 1, 5};
	clad_net   *n = loss_net(classes);
	float		x[40] = {0}, loss;
	clad_loss_spec ce = {.kind = CLAD_LOSS_CROSS_ENTROPY, .labels = labels, .T = 1.0f};
	clad_loss_spec sp;

	compare_loss("MSE", (clad_loss_spec) {.kind = CLAD_LOSS_MSE, .target = target}, 18, B);
	compare_loss("cross-entropy", ce, classes, B);
	ce.T = 2.5f;
	compare_loss("cross-entropy T=2.5", ce, classes, B);
	ce.labels = bad;
	compare_loss("cross-entropy, a label out of range", ce, classes, B);
	compare_loss("DEC KL", (clad_loss_spec) {.kind = CLAD_LOSS_DEC_KL, .centers = centers, .K = K, .alpha = 1.0f},
				 D, B);
	compare_loss("DEC KL alpha=2", (clad_loss_spec) {.kind = CLAD_LOSS_DEC_KL, .centers = centers, .K = K,
				 .alpha = 2.0f}, D, B);
	compare_loss("Deep SVDD", (clad_loss_spec) {.kind = CLAD_LOSS_SVDD, .centers = centers}, D, B);
	free(target);
	target = random_floats(300 * 18, 53);
	compare_loss("MSE, batch 300", (clad_loss_spec) {.kind = CLAD_LOSS_MSE, .target = target}, 18, 300);

	/* what clad_net_loss and a backward from it refuse, on the device and on the CPU */
	for (int on = 0; on < 2; on++)
	{
		CHECK(n && clad_net_to_device(n, on ? dev : NULL) == CLAD_OK);
		ce.labels = labels;
		CHECK(clad_net_loss(n, &ce, &loss) == CLAD_ERR_INVALID);	/* no forward */
		CHECK(clad_net_forward(n, x, 2, CLAD_TRAIN) == CLAD_OK);
		CHECK(clad_net_backward(n, NULL, 1, NULL) == CLAD_ERR_INVALID);	/* no loss */
		sp = ce;
		sp.labels = NULL;
		CHECK(clad_net_loss(n, &sp, &loss) == CLAD_ERR_INVALID);
		sp = ce;
		sp.T = 0.0f;
		CHECK(clad_net_loss(n, &sp, &loss) == CLAD_ERR_INVALID);
		sp = (clad_loss_spec) {.kind = CLAD_LOSS_DEC_KL, .centers = centers, .K = 0, .alpha = 1.0f};
		CHECK(clad_net_loss(n, &sp, &loss) == CLAD_ERR_INVALID);
		sp.kind = (clad_loss_kind) 99;
		CHECK(clad_net_loss(n, &sp, &loss) == CLAD_ERR_INVALID);
		CHECK(clad_net_backward(n, NULL, 1, NULL) == CLAD_ERR_INVALID);	/* a failed loss keeps nothing */
		CHECK(clad_net_loss(n, &ce, &loss) == CLAD_OK && isfinite(loss));
		CHECK(clad_net_backward(n, NULL, 1, NULL) == CLAD_OK);
		CHECK(clad_net_forward(n, x, 2, CLAD_TRAIN) == CLAD_OK);
		CHECK(clad_net_backward(n, NULL, 1, NULL) == CLAD_ERR_INVALID);	/* the loss was of the last forward */
	}
	clad_net_free(n);
	free(target);
	free(centers);
}

/* One training step: forward, loss, backward and an optimiser step (Adam, or SGD for DEC). */
static clad_status
train_step(clad_net *n, const float *x, int B, clad_loss_spec *spec)
{
	static clad_adam adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f, 0};
	static clad_sgd sgd = {0.01f, 0.9f, 0, 0};
	clad_status st;
	float		loss;

	if ((st = clad_net_forward(n, x, B, CLAD_TRAIN)) != CLAD_OK || (st = clad_net_loss(n, spec, &loss)) != CLAD_OK)
		return st;
	clad_net_zero_grad(n);
	if ((st = clad_net_backward(n, NULL, 1, NULL)) != CLAD_OK)
		return st;
	return spec->kind == CLAD_LOSS_DEC_KL ? clad_net_sgd_step(n, &sgd) : clad_net_adam_step(n, &adam);
}

/*
 * The host waits for the device only where it needs a value: a training step
 * (forward, loss, backward, optimiser step) waits once, for the loss (with
 * the rows counted correct, or DEC's centre gradient, in the same download);
 * the layers, the backward pass and the step queue up behind it.
 */
static void
check_waits(void)
{
	const int	B = 6;
	float	   *x = random_floats((size_t) B * 2 * 7 * 5, 61), *target = random_floats((size_t) B * 9, 62);
	float	   *centers = random_floats(4 * 9, 63), dcent[4 * 9];
	int32_t		labels[6] = {0, 4, 3, 3, 1, 2};
	int			correct;
	clad_loss_spec specs[] = {
		{.kind = CLAD_LOSS_CROSS_ENTROPY, .labels = labels, .T = 1.0f, .correct = &correct},
		{.kind = CLAD_LOSS_MSE, .target = target},
		{.kind = CLAD_LOSS_DEC_KL, .centers = centers, .K = 4, .alpha = 1.0f, .dcenters = dcent},
		{.kind = CLAD_LOSS_SVDD, .centers = centers},
	};
	const char *names[] = {"cross-entropy + Adam", "MSE + Adam", "DEC KL + SGD", "Deep SVDD + Adam"};

	for (int i = 0; i < 5; i++)
	{
		/* a conv/BN classifier, then the small dense net of the losses (9 outputs) */
		clad_net   *n = i == 0 ? convs_net() : loss_net(9);
		clad_loss_spec *spec = &specs[i == 0 ? 0 : i - 1];
		unsigned long before;
		clad_status st;

		CHECK(n && clad_net_to_device(n, dev) == CLAD_OK);
		CHECK(train_step(n, x, B, spec) == CLAD_OK);	/* the first step allocates */
		before = dev->waits;
		st = train_step(n, x, B, spec);
		CHECK_MSG(st == CLAD_OK, "%s: %s", names[i == 0 ? 0 : i - 1], clad_last_error());
		CHECK_MSG(dev->waits - before == 1, "%s%s: a training step waited %lu times for the device (1 expected)",
				  names[i == 0 ? 0 : i - 1], i == 0 ? " (conv/BN net)" : "", dev->waits - before);
		clad_net_free(n);
	}
	free(x);
	free(target);
	free(centers);
}

/* one autoencoder step through the chained calls (trainer/train.c's); the loss in *loss */
static clad_status
autoencoder_step(clad_net *e, clad_net *d, const float *x, int B, const float *target, float *scratch,
				 clad_adam *oe, clad_adam *od, float *loss)
{
	clad_loss_spec mse = {.kind = CLAD_LOSS_MSE, .target = target};
	clad_status st;

	if ((st = clad_net_forward(e, x, B, CLAD_TRAIN)) != CLAD_OK ||
		(st = clad_net_forward_after(d, e, CLAD_TRAIN)) != CLAD_OK ||
		(st = clad_net_loss(d, &mse, loss)) != CLAD_OK)
		return st;
	clad_net_zero_grad(e);
	clad_net_zero_grad(d);
	if ((st = clad_net_backward_through(d, e, NULL, 1, scratch)) != CLAD_OK ||
		(st = clad_net_adam_step(e, oe)) != CLAD_OK)
		return st;
	return clad_net_adam_step(d, od);
}

/*
 * An autoencoder step on the device waits once (for the loss): the codes go
 * from the encoder to the decoder, and their gradient back, on the device.
 * Its updates equal the host's (the same step through the host's buffers).
 */
static void
check_autoencoder_chain(void)
{
	const int	B = 3, latent = 6;
	float	   *x = random_floats((size_t) B * 28 * 28, 71), *target = random_floats((size_t) B * 28 * 28, 72);
	float	   *scratch = malloc(sizeof(float) * B * latent);
	clad_net   *e[2], *d[2];
	float	   *before[2], loss[2];
	size_t		np[2];
	clad_adam	oe[2], od[2];
	unsigned long waits;

	for (int k = 0; k < 2; k++)		/* 0: host, 1: device */
	{
		CHECK(clad_autoencoder_build("cvae", 1, 28, 28, latent, &e[k], &d[k]) == CLAD_OK);
		clad_autoencoder_init(e[k], 1);
		clad_autoencoder_init(d[k], 2);
		clad_net_set_stochastic(e[k], 0);
		clad_net_set_stochastic(d[k], 0);
		oe[k] = od[k] = (clad_adam) {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
		np[k] = clad_net_num_params(e[k]);
		before[k] = malloc(sizeof(float) * np[k]);
		memcpy(before[k], clad_net_params(e[k]), sizeof(float) * np[k]);
		if (k == 1)
			CHECK(clad_net_to_device(e[k], dev) == CLAD_OK && clad_net_to_device(d[k], dev) == CLAD_OK);
		CHECK_MSG(autoencoder_step(e[k], d[k], x, B, target, scratch, &oe[k], &od[k], &loss[k]) == CLAD_OK,
				  "autoencoder step on the %s: %s", k ? "device" : "host", clad_last_error());
	}
	/* the first step allocates; the second is the one counted */
	waits = dev->waits;
	CHECK(autoencoder_step(e[1], d[1], x, B, target, scratch, &oe[1], &od[1], &loss[1]) == CLAD_OK);
	CHECK_MSG(dev->waits - waits == 1, "an autoencoder step waited %lu times for the device (1 expected)",
			  dev->waits - waits);
	CHECK(autoencoder_step(e[0], d[0], x, B, target, scratch, &oe[0], &od[0], &loss[0]) == CLAD_OK);
	CHECK_MSG(fabsf(loss[0] - loss[1]) <= 1e-4f * fabsf(loss[0]), "autoencoder loss: host %g, device %g",
			  loss[0], loss[1]);
	CHECK(clad_net_sync_host(e[1]) == CLAD_OK);
	{
		/* the encoder's updates over two steps (the gradient it got through the decoder) */
		double		worst = 0, largest = 0;

		for (size_t i = 0; i < np[0]; i++)
		{
			double		u0 = clad_net_params(e[0])[i] - before[0][i], u1 = clad_net_params(e[1])[i] - before[1][i];

			worst = fmax(worst, fabs(u1 - u0));
			largest = fmax(largest, fabs(u0));
		}
		worst /= largest;
		CHECK_MSG(np[0] == np[1] && largest > 0 && worst <= 1e-3, "the encoder's updates on the device differ "
				  "from the host's by %.3g of the largest", worst);
		printf("  autoencoder step through the chained calls: 1 wait, encoder updates within %.2g of the host's (of the largest)\n",
			   worst);
	}
	for (int k = 0; k < 2; k++)
	{
		clad_net_free(e[k]);
		clad_net_free(d[k]);
		free(before[k]);
	}
	free(x);
	free(target);
	free(scratch);
}

/*
 * A kernel that fails (on a GPU: a fault, found only by the next wait) is
 * reported by the next call that waits, naming the kernel, and then
 * cleared: a forward pass's by the loss, a backward pass's by the input
 * gradient's download, an optimiser step's by bringing the weights back.
 * The emulated device fails a launch on request (clad_emulated_fail_launch).
 */
static void
check_deferred_failures(void)
{
	const int	B = 4;
	clad_net   *n = loss_net(3);
	float	   *x = random_floats((size_t) B * 20, 71), dx[4 * 20], loss;
	int32_t		labels[4] = {0, 2, 1, 1};
	clad_loss_spec ce = {.kind = CLAD_LOSS_CROSS_ENTROPY, .labels = labels, .T = 1.0f};
	clad_adam	adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0, 0};

	CHECK(n && clad_net_to_device(n, dev) == CLAD_OK);
	CHECK(train_step(n, x, B, &ce) == CLAD_OK);

	clad_emulated_fail_launch(dev, K_ELU_FWD, 1);
	CHECK(clad_net_forward(n, x, B, CLAD_TRAIN) == CLAD_OK);	/* queued: nothing known yet */
	CHECK(clad_net_loss(n, &ce, &loss) == CLAD_ERR_DEVICE);
	CHECK_MSG(strstr(clad_last_error(), "k_elu_fwd") != NULL, "forward failure: %s", clad_last_error());
	CHECK(train_step(n, x, B, &ce) == CLAD_OK);	/* reported once, then cleared */

	clad_emulated_fail_launch(dev, K_ELU_BWD, 1);
	CHECK(clad_net_forward(n, x, B, CLAD_TRAIN) == CLAD_OK && clad_net_loss(n, &ce, &loss) == CLAD_OK);
	CHECK(clad_net_backward(n, NULL, 1, dx) == CLAD_ERR_DEVICE);
	CHECK_MSG(strstr(clad_last_error(), "k_elu_bwd") != NULL, "backward failure: %s", clad_last_error());

	clad_emulated_fail_launch(dev, K_ADAM, 1);
	CHECK(train_step(n, x, B, &ce) == CLAD_OK);
	CHECK(clad_net_adam_step(n, &adam) == CLAD_OK);
	CHECK(clad_net_sync_host(n) == CLAD_ERR_DEVICE);
	CHECK_MSG(strstr(clad_last_error(), "k_adam") != NULL, "optimiser failure: %s", clad_last_error());
	CHECK(clad_net_to_device(n, NULL) == CLAD_OK);
	clad_net_free(n);
	free(x);
}

int
main(void)
{
	const char *name = getenv("CLAD_TEST_DEVICE");
	clad_status st;

	clad_blas_init(getenv("CLAD_TEST_REFBLAS") ? CLAD_BLAS_REFERENCE : CLAD_BLAS_AUTO, 1);
	check_open_errors();
	check_colmajor_mapping();
	if (!name || !*name)
		name = "emulated";
	st = clad_device_open(name, &dev);
	if (st != CLAD_OK || !dev)
	{
		/* only a GPU that is not there may skip: the emulated device always opens */
		int			no_gpu = st == CLAD_ERR_UNSUPPORTED && strncmp(name, "cuda", 4) == 0;

		CHECK_MSG(no_gpu, "device %s does not open: %s", name, st != CLAD_OK ? clad_last_error() : "it is the host");
		if (no_gpu)
			printf("test_device: SKIPPED: device %s: %s\n", name, clad_last_error());
		return test_summary("test_device");
	}
	printf("  device: %s\n", clad_device_describe(dev));
	compare_built("conv/bn/relu/elu/maxpool/sigmoid net", convs_net, 3);
	compare_built("convtranspose/bn/maxpool/avgpool net", deconv_net, 2);
	compare_built("dropout/linear/bn1d/add/reshape/reparam net", dense_net, 4);
	check_models();
	check_losses();
	check_refusals();
	check_waits();
	check_autoencoder_chain();
	if (strcmp(name, "emulated") == 0)
		check_deferred_failures();
	clad_device_close(dev);
	/* the parity table of tests/gpu/run.sh reads these lines */
	printf("  worst error / bound: %.3g\n", worst_ratio);
	printf("  parity: outputs and gradients, worst error / bound %.3g\n", worst_ratio);
	printf("  parity: Adam steps, worst difference / rounding bound %.3g\n", worst_adam);
	printf("  parity: loss values, worst difference / rounding bound %.3g\n", worst_loss);
	return test_summary("test_device");
}
