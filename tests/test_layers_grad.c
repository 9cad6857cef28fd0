/* tests/test_layers_grad.c: finite-difference checks of every layer, loss and whole model.
 *
 * Each layer is wrapped in a one-layer net (so the net's plumbing is checked
 * too).  For a seeded upstream gradient G, L(x, theta) = sum(G * f(x)); the
 * analytic input and parameter gradients are compared with central
 * differences on sampled coordinates.  Error = max |analytic - numeric| /
 * max |numeric| over the sampled coordinates.  Stochastic layers are made
 * repeatable by reseeding the net before every forward pass.
 */
#include "gemm.h"
#include "models.h"
#include "odin.h"
#include "testutil.h"

#include <string.h>

typedef struct fd_case
{
	clad_net   *net;
	int			B;
	clad_mode	mode;
	const float *G;
} fd_case;

static double
loss_at(fd_case *c, const float *x)
{
	double		s = 0.0;
	size_t		n = (size_t) c->B * clad_net_out_numel(c->net);
	const float *out;

	clad_net_seed(c->net, 1234);
	if (clad_net_forward(c->net, x, c->B, c->mode) != CLAD_OK)
		return NAN;
	out = clad_net_output(c->net);
	for (size_t i = 0; i < n; i++)
		s += (double) c->G[i] * out[i];
	return s;
}

/* Compare an analytic gradient with central differences at up to max_coords coordinates of v. */
static int	fd_coords_scale = 1;	/* whole models sample fewer coordinates */

/*
 * Central differences of a float32 loss carry rounding noise of about
 * 1e-7 * sum|G * out| / h: gradients below a few times that are numerically
 * zero (a conv bias followed by BatchNorm has an exact zero gradient).
 */
static double fd_floor = 1e-3;
#define FD_FLOOR fd_floor

static double
fd_error(fd_case *c, float *v, size_t n, const float *analytic, const float *x, float h, int max_coords)
{
	double		worst = 0.0, scale = 0.0;
	clad_rng	r;
	size_t		step;

	max_coords = max_coords / fd_coords_scale > 2 ? max_coords / fd_coords_scale : 2;
	step = n > (size_t) max_coords ? n / max_coords : 1;

	clad_rng_seed(&r, n);
	for (size_t i0 = 0; i0 < n; i0 += step)
	{
		size_t		i = step > 1 ? i0 + clad_rng_below(&r, step) : i0;
		float		keep;
		double		lp, lm, num;

		if (i >= n)
			break;
		keep = v[i];
		v[i] = keep + h;
		lp = loss_at(c, x);
		v[i] = keep - h;
		lm = loss_at(c, x);
		v[i] = keep;
		num = (lp - lm) / (2.0 * h);
		if (fabs(num) > scale)
			scale = fabs(num);
		if (fabs(num - analytic[i]) > worst)
			worst = fabs(num - analytic[i]);
	}
	return worst / (scale > FD_FLOOR ? scale : FD_FLOOR);
}

/* Check dL/dx and dL/dtheta of a finished net; consumes the net. */
static void
check_net(const char *name, clad_net *net, int B, clad_mode mode, float h, double tol)
{
	int			C, H, W;
	size_t		nin, nout, np = clad_net_num_params(net);
	float	   *x, *G, *dx, *grads;
	fd_case		c;
	clad_rng	r;
	double		ein, ep = 0.0;

	clad_net_in_shape(net, &C, &H, &W);
	nin = (size_t) B * C * H * W;
	nout = (size_t) B * clad_net_out_numel(net);
	x = malloc(sizeof(float) * nin);
	G = malloc(sizeof(float) * nout);
	dx = malloc(sizeof(float) * nin);
	grads = malloc(sizeof(float) * (np ? np : 1));
	clad_rng_seed(&r, 42);
	for (size_t i = 0; i < nin; i++)
		x[i] = clad_rng_normal(&r);
	for (size_t i = 0; i < nout; i++)
		G[i] = clad_rng_normal(&r);
	/* non-trivial BatchNorm and bias values: give every parameter a random value */
	for (size_t i = 0; i < np; i++)
		clad_net_params(net)[i] = clad_net_params(net)[i] + 0.1f * clad_rng_normal(&r);
	c = (fd_case) {net, B, mode, G};
	loss_at(&c, x);
	{
		double		mass = 0.0;

		for (size_t i = 0; i < nout; i++)
			mass += fabs((double) G[i] * clad_net_output(net)[i]);
		fd_floor = fmax(1e-3, 20.0 * 6e-8 * mass / (2.0 * h));
	}
	clad_net_zero_grad(net);
	CHECK(clad_net_backward(net, G, 1, dx) == CLAD_OK);
	memcpy(grads, clad_net_grads(net), sizeof(float) * np);

	ein = fd_error(&c, x, nin, dx, x, h, 48);
	for (size_t t = 0; t < clad_net_num_tensors(net); t++)
	{
		const clad_tensor_info *ti = clad_net_tensor(net, t);
		double		e;

		if (ti->is_buffer)
			continue;
		e = fd_error(&c, ti->data, ti->numel, grads + (ti->grad - clad_net_grads(net)), x, h, 24);
		if (e > ep)
			ep = e;
		CHECK_MSG(e <= tol, "%s: gradient of %s off by %.2e", name, ti->name, e);
	}
	CHECK_MSG(ein <= tol, "%s: input gradient off by %.2e", name, ein);
	printf("  %-34s input %.1e  params %.1e\n", name, ein, ep);
	free(x);
	free(G);
	free(dx);
	free(grads);
	clad_net_free(net);
}

/* One-layer nets over a (C,H,W) input. */
#define NET(C, H, W) clad_net *n = clad_net_new(C, H, W); int v = 0; (void) v

static void
check_layers(void)
{
	static const struct { int C, H, W, OC, k, s, p, bias, B; } convs[] = {
		{2, 5, 7, 3, 3, 1, 1, 1, 1}, {2, 5, 7, 3, 3, 2, 1, 0, 3}, {3, 6, 6, 4, 3, 2, 0, 1, 2},
		{1, 11, 9, 4, 7, 2, 3, 0, 2}, {4, 1, 1, 5, 3, 1, 1, 1, 2}, {4, 2, 2, 5, 3, 1, 1, 0, 1},
		{4, 2, 2, 6, 3, 2, 1, 0, 3}, {5, 3, 3, 4, 1, 1, 0, 1, 2}, {5, 4, 4, 4, 1, 2, 0, 0, 2},
	};
	char		name[96];

	for (size_t i = 0; i < sizeof(convs) / sizeof(convs[0]); i++)
	{
		NET(convs[i].C, convs[i].H, convs[i].W);
		clad_net_conv(n, 0, "conv", convs[i].OC, convs[i].k, convs[i].s, convs[i].p, convs[i].bias);
		CHECK(clad_net_finish(n) == CLAD_OK);
		snprintf(name, sizeof(name), "conv %dx%dx%d k%d s%d p%d B%d", convs[i].C, convs[i].H,
				 convs[i].W, convs[i].k, convs[i].s, convs[i].p, convs[i].B);
		check_net(name, n, convs[i].B, CLAD_EVAL, 1e-2f, 1e-2);
	}
	{
		NET(3, 3, 4);
		clad_net_convt(n, 0, "deconv", 2, 4, 2, 1, 1);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("convtranspose k4 s2 p1 B2", n, 2, CLAD_EVAL, 1e-2f, 1e-2);
	}
	{
		NET(2, 3, 3);
		clad_net_convt(n, 0, "deconv", 3, 3, 1, 1, 0);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("convtranspose k3 s1 p1 B1", n, 1, CLAD_EVAL, 1e-2f, 1e-2);
	}
	for (int B = 1; B <= 4; B += 3)
	{
		NET(3, 2, 2);
		clad_net_linear(n, 0, "fc", 5, B == 1);
		CHECK(clad_net_finish(n) == CLAD_OK);
		snprintf(name, sizeof(name), "linear B%d", B);
		check_net(name, n, B, CLAD_EVAL, 1e-2f, 1e-2);
	}
	{
		static const struct { int C, H, W, B; clad_mode m; const char *name; } bns[] = {
			{4, 5, 1, 3, CLAD_TRAIN, "batchnorm2d train B3 C4 S5"},
			{4, 1, 1, 4, CLAD_TRAIN, "batchnorm1d train B4"},
			{3, 1, 1, 2, CLAD_TRAIN, "batchnorm 1x1 map train B2"},
			{4, 3, 2, 2, CLAD_EVAL, "batchnorm2d eval"},
		};

		for (size_t i = 0; i < sizeof(bns) / sizeof(bns[0]); i++)
		{
			NET(bns[i].C, bns[i].H, bns[i].W);
			clad_net_batchnorm(n, 0, "bn");
			CHECK(clad_net_finish(n) == CLAD_OK);
			/* a following nonlinearity makes sum(G*y) sensitive beyond the mean */
			check_net(bns[i].name, n, bns[i].B, bns[i].m, 1e-2f, 2e-2);
		}
	}
	{
		NET(3, 4, 5);
		clad_net_elu(n, 0);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("elu", n, 2, CLAD_EVAL, 1e-3f, 1e-2);
	}
	{
		NET(3, 4, 5);
		clad_net_sigmoid(n, 0);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("sigmoid", n, 2, CLAD_EVAL, 1e-2f, 1e-2);
	}
	{
		NET(3, 4, 5);
		clad_net_relu(n, 0);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("relu", n, 2, CLAD_EVAL, 1e-3f, 1e-2);
	}
	{
		NET(3, 4, 5);
		clad_net_dropout(n, 0, 0.3f);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("dropout (reseeded mask)", n, 2, CLAD_TRAIN, 1e-2f, 1e-2);
	}
	{
		NET(3, 7, 5);
		clad_net_maxpool(n, 0, 2, 2, 0);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("maxpool 2x2 on 7x5", n, 2, CLAD_EVAL, 1e-3f, 1e-2);
	}
	{
		NET(2, 7, 6);
		clad_net_maxpool(n, 0, 3, 2, 1);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("maxpool 3x3 s2 p1 on 7x6", n, 2, CLAD_EVAL, 1e-3f, 1e-2);
	}
	{
		NET(3, 3, 5);
		clad_net_avgpool(n, 0);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("adaptive avgpool", n, 2, CLAD_EVAL, 1e-2f, 1e-2);
	}
	{
		NET(2, 3, 3);
		v = clad_net_conv(n, 0, "a", 2, 3, 1, 1, 1);
		v = clad_net_add(n, v, 0);
		v = clad_net_reshape(n, v, 18, 1, 1);
		clad_net_linear(n, v, "fc", 3, 1);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("residual add + reshape", n, 2, CLAD_EVAL, 1e-2f, 1e-2);
	}
	{
		NET(8, 1, 1);
		clad_net_reparam(n, 0);
		CHECK(clad_net_finish(n) == CLAD_OK);
		check_net("reparam (reseeded noise)", n, 3, CLAD_TRAIN, 1e-2f, 1e-2);
	}
}

/*
 * Whole models.  In float32, central differences through many ReLU kinks,
 * max-pool switches and BatchNorms are too noisy to bound tightly, so only
 * the shallow classifiers are checked here (at 5%); ResNet-18, cvae and
 * cvae_large are checked against PyTorch's autograd in tests/test_parity.c.
 */
static void
check_models(void)
{
	static const char *const clfs[] = {"cnn", "cnn_large", "fc3", "linear"};
	char		name[64];

	fd_coords_scale = 4;
	for (size_t i = 0; i < 4; i++)
	{
		clad_net   *n;

		CHECK(clad_classifier_build(clfs[i], 2, 8, 8, 3, &n) == CLAD_OK);
		clad_classifier_init(n, clfs[i], 5);
		snprintf(name, sizeof(name), "model %s (eval)", clfs[i]);
		check_net(name, n, 2, CLAD_EVAL, 1e-3f, 5e-2);
	}
	fd_coords_scale = 1;
}

/* Losses are checked directly: gradient against central differences of the loss. */
static void
check_losses(void)
{
	clad_rng	r;
	float		a[24], b[24], g[24], ga[24];
	int32_t		y[4] = {0, 2, 1, 5};
	double		worst = 0;

	clad_rng_seed(&r, 8);
	for (int i = 0; i < 24; i++)
	{
		a[i] = clad_rng_normal(&r);
		b[i] = clad_rng_normal(&r);
	}
	memset(g, 0, sizeof(g));
	clad_mse_loss(g, a, b, 24);
	for (int i = 0; i < 24; i++)
	{
		float		k = a[i];
		double		lp, lm;

		a[i] = k + 1e-2f;
		lp = clad_mse_loss(NULL, a, b, 24);
		a[i] = k - 1e-2f;
		lm = clad_mse_loss(NULL, a, b, 24);
		a[i] = k;
		worst = fmax(worst, fabs((lp - lm) / 2e-2 - g[i]));
	}
	CHECK_MSG(worst < 1e-3, "mse gradient off by %.2e", worst);

	for (int t = 0; t < 2; t++)
	{
		float		T = t ? 1000.0f : 1.0f, h = t ? 5.0f : 1e-2f;

		worst = 0;
		for (int i = 0; i < 24; i++)
			ga[i] = a[i] * (t ? 1000.0f : 1.0f);
		memset(g, 0, sizeof(g));
		clad_cross_entropy_loss(g, ga, y, 4, 6, T);
		for (int i = 0; i < 24; i++)
		{
			float		k = ga[i];
			double		lp, lm;

			ga[i] = k + h;
			lp = clad_cross_entropy_loss(NULL, ga, y, 4, 6, T);
			ga[i] = k - h;
			lm = clad_cross_entropy_loss(NULL, ga, y, 4, 6, T);
			ga[i] = k;
			worst = fmax(worst, fabs((lp - lm) / (2 * h) - g[i]) / (t ? 1e-3 : 1.0));
		}
		CHECK_MSG(worst < 1e-3, "cross-entropy (T=%g) gradient off by %.2e", T, worst);
	}
	/* cross-entropy value by hand: logits (0, ln 3) label 1 -> -ln(3/4) */
	{
		float		l[2] = {0.0f, logf(3.0f)};
		int32_t		lab = 1;

		CHECK(fabs(clad_cross_entropy_loss(NULL, l, &lab, 1, 2, 1.0f) + log(0.75)) < 1e-6);
	}
	/* DEC: rows of q and p sum to 1; KL gradient wrt z and centres */
	{
		float		z[30], mu[15], q[18], p[18], dz[30], dmu[15];
		double		ez = 0, emu = 0, s;

		for (int i = 0; i < 30; i++)
			z[i] = clad_rng_normal(&r);
		for (int i = 0; i < 15; i++)
			mu[i] = clad_rng_normal(&r);
		clad_dec_soft_assign(q, z, mu, 6, 3, 5, 1.0f);
		clad_dec_target(p, q, 6, 3);
		for (int i = 0; i < 6; i++)
		{
			s = q[i * 3] + q[i * 3 + 1] + q[i * 3 + 2];
			CHECK(fabs(s - 1) < 1e-5);
			s = p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2];
			CHECK(fabs(s - 1) < 1e-5);
		}
		memset(dz, 0, sizeof(dz));
		memset(dmu, 0, sizeof(dmu));
		clad_dec_kl_loss(dz, dmu, z, mu, p, 6, 3, 5, 1.0f);
		for (int i = 0; i < 45; i++)
		{
			float	   *v = i < 30 ? &z[i] : &mu[i - 30];
			float		k = *v;
			double		lp, lm, num;

			*v = k + 1e-2f;
			lp = clad_dec_kl_loss(NULL, NULL, z, mu, p, 6, 3, 5, 1.0f);
			*v = k - 1e-2f;
			lm = clad_dec_kl_loss(NULL, NULL, z, mu, p, 6, 3, 5, 1.0f);
			*v = k;
			num = (lp - lm) / 2e-2;
			if (i < 30)
				ez = fmax(ez, fabs(num - dz[i]));
			else
				emu = fmax(emu, fabs(num - dmu[i - 30]));
		}
		CHECK_MSG(ez < 1e-3 && emu < 1e-3, "DEC KL gradient off: z %.2e centres %.2e", ez, emu);
	}
}

/* Optimisers against PyTorch's update rules written out in double precision. */
static void
check_optimisers(void)
{
	float		p[3] = {0.5f, -1.0f, 2.0f}, g[3] = {0.1f, -0.2f, 0.3f}, m[3] = {0}, v[3] = {0};
	double		pd[3] = {0.5, -1.0, 2.0}, md[3] = {0}, vd[3] = {0};
	clad_adam	adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
	float		q[3] = {0.5f, -1.0f, 2.0f}, buf[3];
	double		qd[3] = {0.5, -1.0, 2.0}, bd[3];
	clad_sgd	sgd = {0.01f, 0.9f, 0.0f, 0};

	for (int step = 1; step <= 2; step++)
	{
		clad_adam_step(&adam, p, g, m, v, 3);
		clad_sgd_step(&sgd, q, g, buf, 3);
		for (int i = 0; i < 3; i++)
		{
			md[i] = 0.9 * md[i] + 0.1 * g[i];
			vd[i] = 0.999 * vd[i] + 0.001 * g[i] * g[i];
			pd[i] -= 1e-3 / (1 - pow(0.9, step)) * md[i] /
				(sqrt(vd[i]) / sqrt(1 - pow(0.999, step)) + 1e-8);
			bd[i] = step == 1 ? g[i] : 0.9 * bd[i] + g[i];
			qd[i] -= 0.01 * bd[i];
		}
	}
	for (int i = 0; i < 3; i++)
	{
		CHECK_MSG(fabs(p[i] - pd[i]) < 1e-6, "adam param %d: %g vs %g", i, p[i], pd[i]);
		CHECK_MSG(fabs(q[i] - qd[i]) < 1e-6, "sgd param %d: %g vs %g", i, q[i], qd[i]);
	}
}

/* BatchNorm running statistics: momentum 0.1, unbiased variance */
static void
check_running_stats(void)
{
	float		x[4] = {1, 2, 3, 6}, y[4], sm, si, rm = 0.5f, rv = 2.0f, g = 1, b = 0;

	clad_batchnorm_forward_train(y, &sm, &si, x, &g, &b, &rm, &rv, 4, 1, 1, 0.1f, 1e-5f);
	CHECK(fabsf(rm - (0.9f * 0.5f + 0.1f * 3.0f)) < 1e-6f);
	CHECK(fabsf(rv - (0.9f * 2.0f + 0.1f * (14.0f / 3.0f))) < 1e-5f);
}

/* ODIN's input gradient is that of CE(f(x)/T, argmax) per image */
static void
check_odin_gradient(void)
{
	clad_net   *n;
	clad_odin_work w = {0};
	float		x[2 * 64], dx[2 * 64], logits[6];
	clad_rng	r;
	double		worst = 0, scale = 0;

	CHECK(clad_classifier_build("cnn", 1, 8, 8, 3, &n) == CLAD_OK);
	clad_classifier_init(n, "cnn", 9);
	clad_rng_seed(&r, 3);
	for (int i = 0; i < 128; i++)
		x[i] = clad_rng_normal(&r);
	CHECK(clad_input_gradient(n, x, 2, NULL, 2.0f, logits, dx, &w) == CLAD_OK);
	for (int i = 0; i < 128; i += 5)
	{
		float		k = x[i];
		int32_t		lab[2];
		double		l[2];

		for (int b = 0; b < 2; b++)
		{
			const float *row = logits + 3 * b;

			lab[b] = row[0] >= row[1] && row[0] >= row[2] ? 0 : (row[1] >= row[2] ? 1 : 2);
		}
		for (int s = 0; s < 2; s++)
		{
			x[i] = k + (s ? -1e-3f : 1e-3f);
			clad_net_forward(n, x, 2, CLAD_EVAL);
			/* sum over the batch of each image's own loss, in double (the
			 * float loss would quantise the differences) */
			l[s] = 0.0;
			for (int b = 0; b < 2; b++)
			{
				const float *o = clad_net_output(n) + 3 * b;
				double		z = 0.0;

				for (int k2 = 0; k2 < 3; k2++)
					z += exp(o[k2] / 2.0);
				l[s] += log(z) - o[lab[b]] / 2.0;
			}
		}
		x[i] = k;
		scale = fmax(scale, fabs((l[0] - l[1]) / 2e-3));
		worst = fmax(worst, fabs((l[0] - l[1]) / 2e-3 - dx[i]));
	}
	CHECK_MSG(worst / scale < 1e-2, "ODIN input gradient off by %.2e", worst / scale);
	clad_odin_work_free(&w);
	clad_net_free(n);
}

int
main(void)
{
	for (int pass = 0; pass < 2; pass++)
	{
		clad_blas_init(pass ? CLAD_BLAS_AUTO : CLAD_BLAS_REFERENCE, 1);
		printf("sgemm: %s\n", clad_blas_describe());
		check_layers();
	}
	check_models();
	check_losses();
	check_optimisers();
	check_running_stats();
	check_odin_gradient();
	return test_summary("test_layers_grad");
}
