/* tests/unit/test_layers_grad.c: finite-difference checks of every layer, loss and optimiser.
 *
 * Part 1 calls the functions of core/layers.h directly.  For a seeded
 * upstream gradient G, L = sum(G * forward(x, theta)) is accumulated in
 * double; the analytic backward (din, dweight, dbias, dgamma, dbeta) is
 * compared with central differences of L on every coordinate (sampled
 * above FD_MAX_COORDS).  Error = max |analytic - numeric| / max(max |numeric|,
 * floor), floor 1e-3 unless the gradient's natural scale is smaller (the
 * cross-entropy at T = 1000).  Backward passes accumulate, so every gradient
 * buffer is pre-filled with random values that are subtracted afterwards;
 * the NULL-gradient variants must give the same numbers.  Forward values are
 * checked against naive double-precision loops where that is cheap, and the
 * losses, BatchNorm's running statistics, DEC's assignment and target, Adam
 * and SGD against hand calculations.
 *
 * Part 2 wraps each layer in a one-layer clad_net (the net's plumbing), and
 * checks the shallow classifiers whole and ODIN's input gradient.
 *
 * Parts 1 and 2 run twice: with the plain C sgemm and with CLAD_BLAS_AUTO
 * (OpenBLAS when present).
 */
#include "gemm.h"
#include "layers.h"
#include "architectures.h"
#include "odin.h"
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ===================================================================== */
/* Part 1: layer functions called directly                                */
/* ===================================================================== */

#define FD_MAX_COORDS 1500		/* coordinates checked per gradient before sampling */
#define FD_TOL 1e-2

typedef void (*fwd_fn) (void *state, float *out);

/* One finite-difference problem: L = sum(G * fwd(state)). */
typedef struct fd_job
{
	fwd_fn		fwd;
	void	   *state;
	float	   *out;			/* nout scratch */
	const float *G;
	size_t		nout;
	float		h;				/* central-difference step */
	double		floor;			/* error denominator floor */
	double		tol;
} fd_job;

/* The case being checked, its report line and the worst error seen. */
static char case_name[160];
static char case_line[512];
static double worst_fd = 0.0;
static char worst_fd_what[240];
static double worst_value = 0.0;	/* worst relative error of the value checks */
static char worst_value_what[240];

static void
case_begin(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(case_name, sizeof(case_name), fmt, ap);
	va_end(ap);
	case_line[0] = '\0';
}

static void
case_end(void)
{
	printf("  %-44s%s\n", case_name, case_line);
}

static double
job_loss(fd_job *j)
{
	double		s = 0.0;

	j->fwd(j->state, j->out);
	for (size_t i = 0; i < j->nout; i++)
		s += (double) j->G[i] * j->out[i];
	return s;
}

/*
 * Central differences of L in the n floats of v against analytic (n); v is
 * restored.  The step actually taken (after float rounding of v +- h) is the
 * denominator.
 */
static double
grad_check(fd_job *j, const char *what, float *v, size_t n, const float *analytic)
{
	double		maxdiff = 0.0, maxnum = 0.0, err;
	size_t		step = n > FD_MAX_COORDS ? (n + FD_MAX_COORDS - 1) / FD_MAX_COORDS : 1;
	clad_rng	r;

	clad_rng_seed(&r, 99 + n);
	for (size_t i0 = 0; i0 < n; i0 += step)
	{
		size_t		i = step > 1 ? i0 + clad_rng_below(&r, step) : i0;
		float		keep, up, down;
		double		lp, lm, num, d;

		if (i >= n)
			break;
		keep = v[i];
		up = keep + j->h;
		down = keep - j->h;
		v[i] = up;
		lp = job_loss(j);
		v[i] = down;
		lm = job_loss(j);
		v[i] = keep;
		num = (lp - lm) / ((double) up - (double) down);
		d = fabs(num - analytic[i]);
		if (!(d <= maxdiff))
			maxdiff = isnan(d) ? INFINITY : d;
		if (fabs(num) > maxnum)
			maxnum = fabs(num);
	}
	err = maxdiff / fmax(maxnum, j->floor);
	CHECK_MSG(err <= j->tol, "%s: %s off by %.2e (max |numeric| %.2e, tolerance %.0e)",
			  case_name, what, err, maxnum, j->tol);
	{
		size_t		len = strlen(case_line);

		/* small gradients: show their scale, so that a check against the floor is visible */
		if (maxnum < 1e-2)
			snprintf(case_line + len, sizeof(case_line) - len, " %s %.1e (max|g| %.0e)", what, err, maxnum);
		else
			snprintf(case_line + len, sizeof(case_line) - len, " %s %.1e", what, err);
	}
	if (err > worst_fd || isnan(err))
	{
		worst_fd = err;
		snprintf(worst_fd_what, sizeof(worst_fd_what), "%s: %s", case_name, what);
	}
	return err;
}

/* Record a value check: relative error err against tol. */
static void
value_check(double err, double tol, const char *fmt,...)
{
	char		what[200];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	CHECK_MSG(err <= tol, "%s: value error %.2e > %.0e", what, err, tol);
	if (err > worst_value || isnan(err))
	{
		worst_value = err;
		snprintf(worst_value_what, sizeof(worst_value_what), "%s", what);
	}
}

static float *
alloc_floats(size_t n)
{
	float	   *p = calloc(n ? n : 1, sizeof(float));

	if (!p)
	{
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

static void
fill_normal(float *v, size_t n, float scale, clad_rng *r)
{
	for (size_t i = 0; i < n; i++)
		v[i] = scale * clad_rng_normal(r);
}

/* Gradient buffers get random prior contents (backward accumulates): keep a copy. */
static float *
prior_fill(float *g, size_t n, clad_rng *r)
{
	float	   *prior = alloc_floats(n);

	fill_normal(prior, n, 0.5f, r);
	memcpy(g, prior, sizeof(float) * n);
	return prior;
}

static void
prior_remove(float *g, float *prior, size_t n)
{
	for (size_t i = 0; i < n; i++)
		g[i] -= prior[i];
	free(prior);
}

/* max |a - b| / max(max |b|, 1e-30): for results that must agree closely */
static double
max_abs_rel(const float *a, const float *b, size_t n)
{
	double		d = 0.0, m = 0.0;

	for (size_t i = 0; i < n; i++)
	{
		double		e = fabs((double) a[i] - b[i]);

		if (!(e <= d))
			d = isnan(e) ? INFINITY : e;
		if (fabs(b[i]) > m)
			m = fabs(b[i]);
	}
	return d / fmax(m, 1e-30);
}

/* ---- convolution and transposed convolution ---------------------------- */

typedef struct conv_state
{
	clad_conv_geom g;
	int			transposed;
	float	   *x, *w, *b, *scratch;
} conv_state;

static void
conv_fwd(void *p, float *out)
{
	conv_state *s = p;

	if (s->transposed)
		clad_convt2d_forward(out, s->x, s->w, s->b, &s->g, s->scratch);
	else
		clad_conv2d_forward(out, s->x, s->w, s->b, &s->g, s->scratch);
}

/* PyTorch's Conv2d / ConvTranspose2d written out in double; mag gets sum |terms|. */
static void
conv_naive(double *out, double *mag, const conv_state *s)
{
	const clad_conv_geom *g = &s->g;
	size_t		nout = (size_t) g->B * g->OC * g->OH * g->OW;

	for (size_t i = 0; i < nout; i++)
	{
		int			oc = (int) (i / ((size_t) g->OH * g->OW) % g->OC);

		out[i] = s->b ? s->b[oc] : 0.0;
		mag[i] = s->b ? fabs(s->b[oc]) : 0.0;
	}
	for (int b = 0; b < g->B; b++)
		for (int c = 0; c < g->C; c++)
			for (int oc = 0; oc < g->OC; oc++)
				for (int kh = 0; kh < g->KH; kh++)
					for (int kw = 0; kw < g->KW; kw++)
					{
						if (!s->transposed)
						{
							double		wv = s->w[(((size_t) oc * g->C + c) * g->KH + kh) * g->KW + kw];

							for (int oh = 0; oh < g->OH; oh++)
								for (int ow = 0; ow < g->OW; ow++)
								{
									int			ih = oh * g->stride - g->pad + kh;
									int			iw = ow * g->stride - g->pad + kw;
									size_t		o = (((size_t) b * g->OC + oc) * g->OH + oh) * g->OW + ow;
									double		t;

									if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
										continue;
									t = wv * s->x[(((size_t) b * g->C + c) * g->H + ih) * g->W + iw];
									out[o] += t;
									mag[o] += fabs(t);
								}
						}
						else
						{
							double		wv = s->w[(((size_t) c * g->OC + oc) * g->KH + kh) * g->KW + kw];

							for (int ih = 0; ih < g->H; ih++)
								for (int iw = 0; iw < g->W; iw++)
								{
									int			oh = ih * g->stride - g->pad + kh;
									int			ow = iw * g->stride - g->pad + kw;
									size_t		o = (((size_t) b * g->OC + oc) * g->OH + oh) * g->OW + ow;
									double		t;

									if (oh < 0 || oh >= g->OH || ow < 0 || ow >= g->OW)
										continue;
									t = wv * s->x[(((size_t) b * g->C + c) * g->H + ih) * g->W + iw];
									out[o] += t;
									mag[o] += fabs(t);
								}
						}
					}
}

static void
check_conv(int transposed, int B, int C, int H, int W, int OC, int KH, int KW,
		   int stride, int pad, int bias, int chunk, uint64_t seed)
{
	conv_state	s = {0};
	clad_conv_geom *g = &s.g;
	clad_rng	r;
	size_t		nin, nw, nout, nscratch;
	float	   *out, *G, *din, *dw, *db = NULL, *p1, *p2, *p3 = NULL;
	fd_job		j;
	clad_status st;

	case_begin("%s %dx%dx%d->%d k%dx%d s%d p%d %s B%d%s", transposed ? "convT" : "conv",
			   C, H, W, OC, KH, KW, stride, pad, bias ? "bias" : "nobias", B,
			   chunk > 1 ? (chunk >= B ? " chunk=B" : " chunk=2") : "");
	st = transposed ? clad_convt_geom_init(g, B, C, H, W, OC, KH, KW, stride, pad)
		: clad_conv_geom_init(g, B, C, H, W, OC, KH, KW, stride, pad);
	CHECK_MSG(st == CLAD_OK, "%s: geometry refused", case_name);
	if (st != CLAD_OK)
		return;
	if (!transposed)
	{
		CHECK(g->OH == (H + 2 * pad - KH) / stride + 1 && g->OW == (W + 2 * pad - KW) / stride + 1);
		CHECK(g->chunk == 1);
		g->chunk = chunk;
	}
	else
		CHECK(g->OH == (H - 1) * stride - 2 * pad + KH && g->OW == (W - 1) * stride - 2 * pad + KW);
	s.transposed = transposed;
	nin = (size_t) B * C * H * W;
	nw = (size_t) OC * C * KH * KW;
	nout = (size_t) B * OC * g->OH * g->OW;
	nscratch = transposed ? clad_convt_scratch_floats(g) : clad_conv_scratch_floats(g);

	clad_rng_seed(&r, seed);
	s.x = alloc_floats(nin);
	s.w = alloc_floats(nw);
	s.scratch = alloc_floats(nscratch);
	fill_normal(s.x, nin, 1.0f, &r);
	fill_normal(s.w, nw, 0.5f, &r);
	if (bias)
	{
		s.b = alloc_floats(OC);
		fill_normal(s.b, OC, 1.0f, &r);
	}
	out = alloc_floats(nout);
	G = alloc_floats(nout);
	fill_normal(G, nout, 1.0f, &r);

	/* forward against the naive loops */
	{
		double	   *want = malloc(sizeof(double) * nout), *mag = malloc(sizeof(double) * nout);
		double		worst = 0.0;

		conv_fwd(&s, out);
		conv_naive(want, mag, &s);
		for (size_t i = 0; i < nout; i++)
		{
			double		e = fabs(out[i] - want[i]) / (mag[i] + 1e-6);

			if (!(e <= worst))
				worst = isnan(e) ? INFINITY : e;
		}
		value_check(worst, 1e-5, "%s forward vs naive", case_name);
		free(want);
		free(mag);
	}

	/* analytic gradients, accumulated onto random prior contents */
	din = alloc_floats(nin);
	dw = alloc_floats(nw);
	p1 = prior_fill(din, nin, &r);
	p2 = prior_fill(dw, nw, &r);
	if (bias)
	{
		db = alloc_floats(OC);
		p3 = prior_fill(db, OC, &r);
	}
	if (transposed)
		clad_convt2d_backward(din, dw, db, G, s.x, s.w, g, s.scratch);
	else
		clad_conv2d_backward(din, dw, db, G, s.x, s.w, g, s.scratch);
	prior_remove(din, p1, nin);
	prior_remove(dw, p2, nw);
	if (bias)
		prior_remove(db, p3, OC);

	/* each gradient alone (the others NULL) gives the same numbers */
	for (int which = 0; which < 3; which++)
	{
		size_t		n = which == 0 ? nin : (which == 1 ? nw : (size_t) OC);
		float	   *one = alloc_floats(n);
		const float *full = which == 0 ? din : (which == 1 ? dw : db);

		if (which == 2 && !bias)
		{
			free(one);
			continue;
		}
		if (transposed)
			clad_convt2d_backward(which == 0 ? one : NULL, which == 1 ? one : NULL,
								  which == 2 ? one : NULL, G, s.x, s.w, g, s.scratch);
		else
			clad_conv2d_backward(which == 0 ? one : NULL, which == 1 ? one : NULL,
								 which == 2 ? one : NULL, G, s.x, s.w, g, s.scratch);
		CHECK_MSG(max_abs_rel(one, full, n) <= 1e-5, "%s: %s alone differs from the full backward (%.2e)",
				  case_name, which == 0 ? "din" : (which == 1 ? "dweight" : "dbias"),
				  max_abs_rel(one, full, n));
		free(one);
	}

	/* the layer is linear in x, w and b: a large step costs no truncation error */
	j = (fd_job) {conv_fwd, &s, out, G, nout, 1e-2f, 1e-3, FD_TOL};
	grad_check(&j, "din", s.x, nin, din);
	grad_check(&j, "dW", s.w, nw, dw);
	if (bias)
		grad_check(&j, "db", s.b, OC, db);
	case_end();

	free(s.x);
	free(s.w);
	free(s.b);
	free(s.scratch);
	free(out);
	free(G);
	free(din);
	free(dw);
	free(db);
}

static void
check_convs(void)
{
	static const struct
	{
		int			C, H, W, OC, KH, KW, s, p, bias, B;
	}			cs[] = {
		{2, 5, 7, 3, 3, 3, 1, 1, 1, 1},		/* odd sizes, stride 1, pad 1 */
		{2, 5, 7, 3, 3, 3, 1, 1, 0, 3},
		{2, 5, 7, 3, 3, 3, 2, 1, 0, 3},		/* stride 2 */
		{3, 5, 7, 2, 3, 3, 2, 0, 1, 3},		/* pad 0 */
		{3, 5, 7, 2, 3, 3, 1, 0, 0, 1},
		{2, 5, 7, 3, 3, 3, 1, 3, 1, 1},		/* pad 3 > kernel radius */
		{3, 9, 11, 4, 7, 7, 2, 3, 1, 1},	/* the ResNet stem: 7x7 stride 2 pad 3 */
		{3, 9, 11, 4, 7, 7, 2, 3, 0, 3},
		{4, 1, 1, 5, 3, 3, 1, 1, 1, 3},		/* 1x1 map */
		{4, 1, 1, 5, 1, 1, 1, 0, 0, 1},		/* 1x1 map, pointwise */
		{4, 2, 2, 5, 3, 3, 1, 1, 0, 1},		/* 2x2 map */
		{4, 2, 2, 6, 3, 3, 2, 1, 1, 3},
		{5, 3, 4, 4, 1, 1, 1, 0, 1, 3},		/* 1x1 kernel: the pointwise path */
		{5, 3, 4, 4, 1, 1, 1, 0, 0, 1},
		{5, 5, 7, 4, 1, 1, 2, 0, 1, 3},		/* 1x1 stride 2 (downsample): not pointwise */
		{2, 5, 7, 3, 3, 1, 1, 1, 1, 3},		/* non-square kernels catch KH/KW swaps */
		{2, 6, 5, 3, 1, 3, 2, 0, 0, 1},
	};

	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
	{
		check_conv(0, cs[i].B, cs[i].C, cs[i].H, cs[i].W, cs[i].OC, cs[i].KH, cs[i].KW,
				   cs[i].s, cs[i].p, cs[i].bias, 1, 100 + i);
		/* several images per GEMM: chunk 2 (a partial last chunk at B = 3) and chunk = B */
		if (cs[i].B > 1)
		{
			check_conv(0, cs[i].B, cs[i].C, cs[i].H, cs[i].W, cs[i].OC, cs[i].KH, cs[i].KW,
					   cs[i].s, cs[i].p, cs[i].bias, 2, 200 + i);
			check_conv(0, cs[i].B, cs[i].C, cs[i].H, cs[i].W, cs[i].OC, cs[i].KH, cs[i].KW,
					   cs[i].s, cs[i].p, cs[i].bias, cs[i].B, 300 + i);
		}
	}
	check_conv(1, 2, 3, 3, 4, 2, 4, 4, 2, 1, 1, 1, 400);	/* the decoder's 4x4 stride 2 pad 1 */
	check_conv(1, 1, 3, 3, 4, 2, 4, 4, 2, 1, 1, 1, 401);
	check_conv(1, 1, 2, 3, 3, 3, 3, 3, 1, 1, 0, 1, 402);	/* 3x3 stride 1 pad 1 */
	check_conv(1, 3, 2, 5, 3, 3, 3, 3, 1, 1, 1, 1, 403);
	check_conv(1, 2, 3, 1, 1, 4, 4, 4, 1, 0, 1, 1, 404);	/* 1x1 latent to 4x4 */
	check_conv(1, 2, 2, 3, 2, 3, 3, 2, 2, 0, 0, 1, 405);	/* non-square, no padding */
}

/* ---- linear ------------------------------------------------------------- */

typedef struct linear_state
{
	float	   *x, *w, *b;
	int			B, IN, OUT;
} linear_state;

static void
linear_fwd(void *p, float *out)
{
	linear_state *s = p;

	clad_linear_forward(out, s->x, s->w, s->b, s->B, s->IN, s->OUT);
}

static void
check_linear(int B, int IN, int OUT, int bias, uint64_t seed)
{
	linear_state s = {0};
	clad_rng	r;
	size_t		nin = (size_t) B * IN, nw = (size_t) OUT * IN, nout = (size_t) B * OUT;
	float	   *out = alloc_floats(nout), *G = alloc_floats(nout);
	float	   *din = alloc_floats(nin), *dw = alloc_floats(nw), *db = NULL;
	float	   *p1, *p2, *p3 = NULL;
	fd_job		j;

	case_begin("linear %d->%d %s B%d", IN, OUT, bias ? "bias" : "nobias", B);
	clad_rng_seed(&r, seed);
	s = (linear_state) {alloc_floats(nin), alloc_floats(nw), bias ? alloc_floats(OUT) : NULL, B, IN, OUT};
	fill_normal(s.x, nin, 1.0f, &r);
	fill_normal(s.w, nw, 0.5f, &r);
	if (bias)
		fill_normal(s.b, OUT, 1.0f, &r);
	fill_normal(G, nout, 1.0f, &r);
	/* forward: out may hold garbage before the call */
	for (size_t i = 0; i < nout; i++)
		out[i] = NAN;
	linear_fwd(&s, out);
	{
		double		worst = 0.0;

		for (int b = 0; b < B; b++)
			for (int o = 0; o < OUT; o++)
			{
				double		want = bias ? s.b[o] : 0.0, mag = bias ? fabs(s.b[o]) : 0.0, e;

				for (int i = 0; i < IN; i++)
				{
					want += (double) s.x[b * IN + i] * s.w[o * IN + i];
					mag += fabs((double) s.x[b * IN + i] * s.w[o * IN + i]);
				}
				e = fabs(out[b * OUT + o] - want) / (mag + 1e-6);
				if (!(e <= worst))
					worst = isnan(e) ? INFINITY : e;
			}
		value_check(worst, 1e-5, "%s forward vs naive", case_name);
	}
	p1 = prior_fill(din, nin, &r);
	p2 = prior_fill(dw, nw, &r);
	if (bias)
	{
		db = alloc_floats(OUT);
		p3 = prior_fill(db, OUT, &r);
	}
	clad_linear_backward(din, dw, db, G, s.x, s.w, B, IN, OUT);
	prior_remove(din, p1, nin);
	prior_remove(dw, p2, nw);
	if (bias)
		prior_remove(db, p3, OUT);
	{
		float	   *one = alloc_floats(nin > nw ? nin : nw);

		clad_linear_backward(one, NULL, NULL, G, s.x, s.w, B, IN, OUT);
		CHECK_MSG(max_abs_rel(one, din, nin) <= 1e-6, "%s: din alone differs", case_name);
		memset(one, 0, sizeof(float) * nw);
		clad_linear_backward(NULL, one, NULL, G, s.x, s.w, B, IN, OUT);
		CHECK_MSG(max_abs_rel(one, dw, nw) <= 1e-6, "%s: dweight alone differs", case_name);
		free(one);
	}
	j = (fd_job) {linear_fwd, &s, out, G, nout, 1e-2f, 1e-3, FD_TOL};
	grad_check(&j, "din", s.x, nin, din);
	grad_check(&j, "dW", s.w, nw, dw);
	if (bias)
		grad_check(&j, "db", s.b, OUT, db);
	case_end();
	free(s.x);
	free(s.w);
	free(s.b);
	free(out);
	free(G);
	free(din);
	free(dw);
	free(db);
}

/* ---- batch normalisation ------------------------------------------------ */

typedef struct bn_state
{
	float	   *x, *gamma, *beta;
	const float *rm, *rv;		/* running statistics, never modified by the FD */
	float	   *rm_s, *rv_s;	/* scratch copies the training forward updates */
	float	   *save_mean, *save_invstd;
	int			B, C, S, train;
	float		eps;
} bn_state;

static void
bn_fwd(void *p, float *out)
{
	bn_state   *s = p;

	if (s->train)
	{
		memcpy(s->rm_s, s->rm, sizeof(float) * s->C);
		memcpy(s->rv_s, s->rv, sizeof(float) * s->C);
		clad_batchnorm_forward_train(out, s->save_mean, s->save_invstd, s->x, s->gamma, s->beta,
									 s->rm_s, s->rv_s, s->B, s->C, s->S, 0.1f, s->eps);
	}
	else
		clad_batchnorm_forward_eval(out, s->x, s->gamma, s->beta, s->rm, s->rv,
									s->B, s->C, s->S, s->eps);
}

/*
 * x_scale: input spread; for B*S = 2 the normalised output is +-1 whatever
 * the input, and only eps makes it depend on x: close inputs (small spread)
 * make that dependence large enough to check.
 */
static void
check_bn(const char *label, int train, int B, int C, int S, float x_scale, float h, uint64_t seed)
{
	bn_state	s = {0};
	clad_rng	r;
	size_t		n = (size_t) B * C * S;
	float	   *out = alloc_floats(n), *G = alloc_floats(n), *din = alloc_floats(n);
	float	   *dg = alloc_floats(C), *dbt = alloc_floats(C), *rm = alloc_floats(C), *rv = alloc_floats(C);
	float	   *p1, *p2, *p3;
	fd_job		j;

	case_begin("batchnorm %s %s B%d C%d S%d", label, train ? "train" : "eval", B, C, S);
	clad_rng_seed(&r, seed);
	s.x = alloc_floats(n);
	s.gamma = alloc_floats(C);
	s.beta = alloc_floats(C);
	s.rm_s = alloc_floats(C);
	s.rv_s = alloc_floats(C);
	s.save_mean = alloc_floats(C);
	s.save_invstd = alloc_floats(C);
	s.rm = rm;
	s.rv = rv;
	s.B = B;
	s.C = C;
	s.S = S;
	s.train = train;
	s.eps = 1e-5f;
	for (size_t i = 0; i < n; i++)
		s.x[i] = 0.3f + x_scale * clad_rng_normal(&r);
	if (B * S == 2)
		/* keep the two values of a channel at least x_scale/2 apart */
		for (int c = 0; c < C; c++)
		{
			float	   *a = &s.x[c * S], *b = &s.x[(size_t) (B - 1) * C * S + c * S + S - 1];

			if (fabsf(*a - *b) < 0.5f * x_scale)
				*b = *a + (*b >= *a ? 0.5f : -0.5f) * x_scale;
		}
	for (int c = 0; c < C; c++)
	{
		s.gamma[c] = 1.0f + 0.3f * clad_rng_normal(&r);
		s.beta[c] = 0.3f * clad_rng_normal(&r);
		rm[c] = 0.2f * clad_rng_normal(&r);
		rv[c] = 0.5f + clad_rng_uniform(&r);
	}
	fill_normal(G, n, 1.0f, &r);

	/* forward values against the formulas in double */
	bn_fwd(&s, out);
	{
		double		worst = 0.0;

		for (int c = 0; c < C; c++)
		{
			double		mean = 0.0, var = 0.0, m, is;

			for (int b = 0; b < B; b++)
				for (int k = 0; k < S; k++)
					mean += s.x[((size_t) b * C + c) * S + k];
			mean /= (double) B * S;
			for (int b = 0; b < B; b++)
				for (int k = 0; k < S; k++)
					var += pow(s.x[((size_t) b * C + c) * S + k] - mean, 2);
			var /= (double) B * S;
			m = train ? mean : rm[c];
			is = 1.0 / sqrt((train ? var : rv[c]) + 1e-5);
			if (train)
			{
				worst = fmax(worst, fabs(s.save_mean[c] - mean) / (fabs(mean) + 1e-3));
				worst = fmax(worst, fabs(s.save_invstd[c] - is) / is);
			}
			for (int b = 0; b < B; b++)
				for (int k = 0; k < S; k++)
				{
					size_t		i = ((size_t) b * C + c) * S + k;
					double		want = (s.x[i] - m) * is * s.gamma[c] + s.beta[c];

					worst = fmax(worst, fabs(out[i] - want) / (fabs(want) + 1e-2));
				}
		}
		value_check(worst, 2e-5, "%s forward vs formula", case_name);
	}

	p1 = prior_fill(din, n, &r);
	p2 = prior_fill(dg, C, &r);
	p3 = prior_fill(dbt, C, &r);
	bn_fwd(&s, out);			/* the saved statistics of the unperturbed input */
	if (train)
		clad_batchnorm_backward_train(din, dg, dbt, G, s.x, s.save_mean, s.save_invstd, s.gamma, B, C, S);
	else
		clad_batchnorm_backward_eval(din, dg, dbt, G, s.x, s.gamma, rm, rv, B, C, S, 1e-5f);
	prior_remove(din, p1, n);
	prior_remove(dg, p2, C);
	prior_remove(dbt, p3, C);
	{
		float	   *one = alloc_floats(n);

		if (train)
			clad_batchnorm_backward_train(one, NULL, NULL, G, s.x, s.save_mean, s.save_invstd, s.gamma, B, C, S);
		else
			clad_batchnorm_backward_eval(one, NULL, NULL, G, s.x, s.gamma, rm, rv, B, C, S, 1e-5f);
		CHECK_MSG(max_abs_rel(one, din, n) <= 1e-6, "%s: din alone differs", case_name);
		memset(one, 0, sizeof(float) * n);
		if (train)
			clad_batchnorm_backward_train(NULL, one, NULL, G, s.x, s.save_mean, s.save_invstd, s.gamma, B, C, S);
		else
			clad_batchnorm_backward_eval(NULL, one, NULL, G, s.x, s.gamma, rm, rv, B, C, S, 1e-5f);
		CHECK_MSG(max_abs_rel(one, dg, C) <= 1e-6, "%s: dgamma alone differs", case_name);
		free(one);
	}

	j = (fd_job) {bn_fwd, &s, out, G, n, h, 1e-3, FD_TOL};
	grad_check(&j, "din", s.x, n, din);
	grad_check(&j, "dgamma", s.gamma, C, dg);
	grad_check(&j, "dbeta", s.beta, C, dbt);
	case_end();
	/* the FD never touched the running statistics */
	CHECK(s.rm == rm && s.rv == rv);

	free(s.x);
	free(s.gamma);
	free(s.beta);
	free(s.rm_s);
	free(s.rv_s);
	free(s.save_mean);
	free(s.save_invstd);
	free(out);
	free(G);
	free(din);
	free(dg);
	free(dbt);
	free(rm);
	free(rv);
}

/* BatchNorm running statistics: momentum 0.1, unbiased variance; by hand. */
static void
check_bn_running_stats(void)
{
	/* B = 2, C = 2, S = 2: channel 0 sees {1, 2, 3, 6}, channel 1 sees {-1, -1, 0, 4} */
	float		x[8] = {1, 2, -1, -1, 3, 6, 0, 4}, y[8];
	float		g[2] = {1, 2}, b[2] = {0, 1}, sm[2], si[2];
	float		rm[2] = {0.5f, -0.2f}, rv[2] = {2.0f, 0.7f};
	/* ch0: mean 3, sum sq dev 4+1+0+9 = 14; ch1: mean 0.5, sum sq dev 2.25+2.25+0.25+12.25 = 17 */
	double		want_rm[2] = {0.9 * 0.5 + 0.1 * 3.0, 0.9 * -0.2 + 0.1 * 0.5};
	double		want_rv[2] = {0.9 * 2.0 + 0.1 * 14.0 / 3.0, 0.9 * 0.7 + 0.1 * 17.0 / 3.0};
	double		want_is[2] = {1.0 / sqrt(14.0 / 4.0 + 1e-5), 1.0 / sqrt(17.0 / 4.0 + 1e-5)};
	double		e = 0.0;

	clad_batchnorm_forward_train(y, sm, si, x, g, b, rm, rv, 2, 2, 2, 0.1f, 1e-5f);
	for (int c = 0; c < 2; c++)
	{
		e = fmax(e, fabs(rm[c] - want_rm[c]) / fabs(want_rm[c]));
		e = fmax(e, fabs(rv[c] - want_rv[c]) / fabs(want_rv[c]));
		e = fmax(e, fabs(si[c] - want_is[c]) / want_is[c]);
	}
	e = fmax(e, fabs(sm[0] - 3.0) / 3.0);
	e = fmax(e, fabs(sm[1] - 0.5) / 0.5);
	/* y of x = 6 in channel 0: (6 - 3) * invstd */
	e = fmax(e, fabs(y[5] - 3.0 * want_is[0]) / (3.0 * want_is[0]));
	value_check(e, 1e-6, "batchnorm running mean/var (momentum 0.1, unbiased)");
	printf("  %-44s rel err %.1e\n", "batchnorm running statistics by hand", e);
}

/* ---- elementwise activations and dropout -------------------------------- */

enum act_kind { ACT_RELU, ACT_ELU, ACT_SIGMOID, ACT_DROPOUT };

typedef struct act_state
{
	enum act_kind kind;
	float	   *x, *mask;
	size_t		n;
	float		p;
	uint64_t	seed;
} act_state;

static void
act_fwd(void *p, float *out)
{
	act_state  *s = p;

	switch (s->kind)
	{
		case ACT_RELU:
			clad_relu_forward(out, s->x, s->n);
			break;
		case ACT_ELU:
			clad_elu_forward(out, s->x, s->n);
			break;
		case ACT_SIGMOID:
			clad_sigmoid_forward(out, s->x, s->n);
			break;
		case ACT_DROPOUT:
			{
				clad_rng	r;

				/* the same seed every pass: the mask is fixed */
				clad_rng_seed(&r, s->seed);
				clad_dropout_forward(out, s->mask, s->x, s->n, s->p, &r);
				break;
			}
	}
}

static void
check_activation(enum act_kind kind, uint64_t seed)
{
	static const char *const names[] = {"relu", "elu", "sigmoid", "dropout p=0.3 (fixed mask)"};
	const size_t n = 2 * 3 * 5 * 7;
	act_state	s = {kind, alloc_floats(n), alloc_floats(n), n, 0.3f, seed + 1};
	float	   *out = alloc_floats(n), *G = alloc_floats(n), *din = alloc_floats(n), *p1;
	clad_rng	r;
	fd_job		j;
	double		worst = 0.0;

	case_begin("%s", names[kind]);
	clad_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
	{
		float		v = 1.5f * clad_rng_normal(&r);

		/* no point within 1e-2 of the kink at 0 (the step is 1e-3) */
		if (fabsf(v) < 2e-2f)
			v = v < 0 ? v - 2e-2f : v + 2e-2f;
		s.x[i] = v;
	}
	fill_normal(G, n, 1.0f, &r);
	act_fwd(&s, out);
	for (size_t i = 0; i < n; i++)
	{
		double		x = s.x[i], want;

		switch (kind)
		{
			case ACT_RELU:
				want = x > 0 ? x : 0;
				break;
			case ACT_ELU:
				want = x > 0 ? x : expm1(x);
				break;
			case ACT_SIGMOID:
				want = 1.0 / (1.0 + exp(-x));
				break;
			default:
				/* mask entries are 0 or 1/(1-p), and out = in * mask */
				CHECK_MSG(s.mask[i] == 0.0f || fabsf(s.mask[i] - 1.0f / 0.7f) < 1e-6f,
						  "dropout mask value %g", s.mask[i]);
				want = x * s.mask[i];
				break;
		}
		worst = fmax(worst, fabs(out[i] - want) / (fabs(want) + 1e-6));
	}
	value_check(worst, 1e-6, "%s forward vs formula", case_name);
	p1 = prior_fill(din, n, &r);
	switch (kind)
	{
		case ACT_RELU:
			clad_relu_backward(din, G, out, n);
			break;
		case ACT_ELU:
			clad_elu_backward(din, G, out, n);
			break;
		case ACT_SIGMOID:
			clad_sigmoid_backward(din, G, out, n);
			break;
		case ACT_DROPOUT:
			clad_dropout_backward(din, G, s.mask, n);
			break;
	}
	prior_remove(din, p1, n);
	j = (fd_job) {act_fwd, &s, out, G, n, kind == ACT_RELU || kind == ACT_ELU ? 1e-3f : 1e-2f, 1e-3, FD_TOL};
	grad_check(&j, "din", s.x, n, din);
	case_end();
	free(s.x);
	free(s.mask);
	free(out);
	free(G);
	free(din);
}

/* Dropout's mask statistics and its edge probabilities. */
static void
check_dropout_values(void)
{
	const size_t n = 20000;
	float	   *x = alloc_floats(n), *y = alloc_floats(n), *m = alloc_floats(n);
	clad_rng	r;
	size_t		zeros = 0;

	for (size_t i = 0; i < n; i++)
		x[i] = 1.0f + (float) (i % 13);
	clad_rng_seed(&r, 5);
	clad_dropout_forward(y, m, x, n, 0.3f, &r);
	for (size_t i = 0; i < n; i++)
		zeros += m[i] == 0.0f;
	CHECK_MSG(fabs((double) zeros / n - 0.3) < 0.02, "dropout p=0.3 dropped %.3f", (double) zeros / n);
	clad_dropout_forward(y, m, x, n, 0.0f, &r);
	for (size_t i = 0; i < n; i++)
		if (m[i] != 1.0f || y[i] != x[i])
		{
			CHECK_MSG(0, "dropout p=0 changed element %zu", i);
			break;
		}
	free(x);
	free(y);
	free(m);
}

/* ---- pooling ------------------------------------------------------------- */

typedef struct pool_state
{
	clad_pool_geom g;			/* max pool; avg pool when g.k == 0 */
	float	   *x;
	int32_t    *argmax;
} pool_state;

static void
pool_fwd(void *p, float *out)
{
	pool_state *s = p;

	if (s->g.k)
		clad_maxpool_forward(out, s->argmax, s->x, &s->g);
	else
		clad_avgpool_forward(out, s->x, s->g.B, s->g.C, s->g.H * s->g.W);
}

/*
 * Ties and NaNs, against the rule written out: scanning a window row by
 * row, a cell takes it when larger, or when it is NaN and the best is not
 * (the first maximum wins; a NaN wins and stays, as PyTorch).  Values from
 * {0, 1, NaN} make most windows a tie.
 */
static void
check_maxpool_ties(int H, int W, int k, int stride, int pad, float nan_frac, uint64_t seed)
{
	clad_pool_geom g;
	clad_rng	r;
	int			C = 3, n = C * H * W, ok = 1;
	float	   *x, *out;
	int32_t    *am;

	case_begin("maxpool %dx%d s%d p%d ties and %.1f%% NaN on %dx%d", k, k, stride, pad, 100 * nan_frac, H, W);
	CHECK(clad_pool_geom_init(&g, 1, C, H, W, k, stride, pad) == CLAD_OK);
	x = alloc_floats(n);
	out = alloc_floats((size_t) C * g.OH * g.OW);
	am = calloc((size_t) C * g.OH * g.OW, sizeof(int32_t));
	clad_rng_seed(&r, seed);
	for (int i = 0; i < n; i++)
	{
		float		u = clad_rng_uniform(&r);

		x[i] = u < nan_frac ? NAN : (u < nan_frac + 0.45f ? 0.0f : 1.0f);
	}
	clad_maxpool_forward(out, am, x, &g);
	for (int c = 0; c < C; c++)
		for (int oh = 0; oh < g.OH; oh++)
			for (int ow = 0; ow < g.OW; ow++)
			{
				const float *xp = x + (size_t) c * H * W;
				size_t		o = ((size_t) c * g.OH + oh) * g.OW + ow;
				int			where = -1;

				for (int ih = oh * stride - pad; ih < oh * stride - pad + k; ih++)
					for (int iw = ow * stride - pad; iw < ow * stride - pad + k; iw++)
					{
						if (ih < 0 || ih >= H || iw < 0 || iw >= W)
							continue;
						if (where < 0 || xp[ih * W + iw] > xp[where] ||
							(isnan(xp[ih * W + iw]) && !isnan(xp[where])))
							where = ih * W + iw;
					}
				if (am[o] != where || !(out[o] == xp[where] || (isnan(out[o]) && isnan(xp[where]))))
					ok = 0;
			}
	CHECK_MSG(ok, "%s: a tie or a NaN went to the wrong cell", case_name);
	{
		/* without an argmax asked for, the same outputs */
		float	   *out2 = alloc_floats((size_t) C * g.OH * g.OW);

		clad_maxpool_forward(out2, NULL, x, &g);
		CHECK_MSG(memcmp(out, out2, sizeof(float) * C * g.OH * g.OW) == 0,
				  "%s: the outputs differ without an argmax", case_name);
		free(out2);
	}
	free(x);
	free(out);
	free(am);
	case_end();
}

static void
check_maxpool(int B, int C, int H, int W, int k, int stride, int pad, uint64_t seed)
{
	pool_state	s = {0};
	clad_pool_geom *g = &s.g;
	clad_rng	r;
	size_t		nin = (size_t) B * C * H * W, nout;
	int32_t    *perm;
	float	   *out, *G, *din, *p1;
	fd_job		j;
	int			ok = 1;

	case_begin("maxpool %dx%d s%d p%d on %dx%dx%d B%d", k, k, stride, pad, C, H, W, B);
	CHECK(clad_pool_geom_init(g, B, C, H, W, k, stride, pad) == CLAD_OK);
	CHECK(g->OH == (H + 2 * pad - k) / stride + 1 && g->OW == (W + 2 * pad - k) / stride + 1);
	nout = (size_t) B * C * g->OH * g->OW;
	s.x = alloc_floats(nin);
	s.argmax = calloc(nout, sizeof(int32_t));
	out = alloc_floats(nout);
	G = alloc_floats(nout);
	din = alloc_floats(nin);
	perm = malloc(sizeof(int32_t) * nin);
	clad_rng_seed(&r, seed);
	/* distinct values 0.05 apart (> 2 * step), mostly negative so that a
	 * padded cell that won as a zero would show */
	for (size_t i = 0; i < nin; i++)
		perm[i] = (int32_t) i;
	clad_rng_shuffle(&r, perm, nin);
	for (size_t i = 0; i < nin; i++)
		s.x[i] = 0.05f * (float) perm[i] - 0.05f * (float) nin * 0.8f;
	fill_normal(G, nout, 1.0f, &r);
	pool_fwd(&s, out);
	for (int p = 0; p < B * C; p++)
		for (int oh = 0; oh < g->OH; oh++)
			for (int ow = 0; ow < g->OW; ow++)
			{
				float		best = -INFINITY;
				int			where = -1;
				size_t		o = ((size_t) p * g->OH + oh) * g->OW + ow;

				for (int kh = 0; kh < k; kh++)
					for (int kw = 0; kw < k; kw++)
					{
						int			ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;

						if (ih >= 0 && ih < H && iw >= 0 && iw < W &&
							s.x[(size_t) p * H * W + ih * W + iw] > best)
						{
							best = s.x[(size_t) p * H * W + ih * W + iw];
							where = ih * W + iw;
						}
					}
				if (out[o] != best || s.argmax[o] != where)
					ok = 0;
			}
	CHECK_MSG(ok, "%s: forward or argmax differs from the naive max", case_name);
	p1 = prior_fill(din, nin, &r);
	clad_maxpool_backward(din, G, s.argmax, g);
	prior_remove(din, p1, nin);
	j = (fd_job) {pool_fwd, &s, out, G, nout, 1e-2f, 1e-3, FD_TOL};
	grad_check(&j, "din", s.x, nin, din);
	case_end();
	free(s.x);
	free(s.argmax);
	free(out);
	free(G);
	free(din);
	free(perm);
}

static void
check_avgpool(int B, int C, int H, int W, uint64_t seed)
{
	pool_state	s = {0};
	clad_rng	r;
	size_t		nin = (size_t) B * C * H * W, nout = (size_t) B * C;
	float	   *out = alloc_floats(nout), *G = alloc_floats(nout), *din = alloc_floats(nin), *p1;
	fd_job		j;
	double		worst = 0.0;

	case_begin("global avgpool %dx%dx%d B%d", C, H, W, B);
	s.g = (clad_pool_geom) {B, C, H, W, 0, 0, 0, 1, 1};
	s.x = alloc_floats(nin);
	clad_rng_seed(&r, seed);
	fill_normal(s.x, nin, 1.0f, &r);
	fill_normal(G, nout, 1.0f, &r);
	pool_fwd(&s, out);
	for (size_t p = 0; p < nout; p++)
	{
		double		m = 0.0, mag = 0.0;

		for (int i = 0; i < H * W; i++)
		{
			m += s.x[p * H * W + i];
			mag += fabs(s.x[p * H * W + i]);
		}
		worst = fmax(worst, fabs(out[p] - m / (H * W)) / (mag / (H * W) + 1e-6));
	}
	value_check(worst, 1e-6, "%s forward vs mean", case_name);
	p1 = prior_fill(din, nin, &r);
	clad_avgpool_backward(din, G, B, C, H * W);
	prior_remove(din, p1, nin);
	j = (fd_job) {pool_fwd, &s, out, G, nout, 1e-2f, 1e-3, FD_TOL};
	grad_check(&j, "din", s.x, nin, din);
	case_end();
	free(s.x);
	free(out);
	free(G);
	free(din);
}

/* ---- losses: L is the loss itself (upstream gradient 1) ------------------ */

enum loss_kind { LOSS_MSE, LOSS_CE, LOSS_DEC };

typedef struct loss_state
{
	enum loss_kind kind;
	float	   *a, *b;			/* pred/target, logits, z/centres */
	const float *p;				/* DEC target, held constant */
	const int32_t *labels;
	int			B, K, D;
	float		T, alpha;
} loss_state;

static void
loss_fwd(void *p, float *out)
{
	loss_state *s = p;

	switch (s->kind)
	{
		case LOSS_MSE:
			out[0] = clad_mse_loss(NULL, s->a, s->b, (size_t) s->B * s->K);
			break;
		case LOSS_CE:
			out[0] = clad_cross_entropy_loss(NULL, s->a, s->labels, s->B, s->K, s->T);
			break;
		case LOSS_DEC:
			out[0] = clad_dec_kl_loss(NULL, NULL, s->a, s->b, s->p, s->B, s->K, s->D, s->alpha);
			break;
	}
}

static void
check_mse(void)
{
	const int	B = 4, K = 6, n = B * K;
	float		pred[24], target[24], grad[24], one = 1.0f, out, *p1;
	loss_state	s = {LOSS_MSE, pred, target, NULL, NULL, B, K, 0, 0, 0};
	clad_rng	r;
	fd_job		j;
	double		want = 0.0, loss;

	case_begin("mse loss (grad wrt pred)");
	clad_rng_seed(&r, 31);
	fill_normal(pred, n, 1.0f, &r);
	fill_normal(target, n, 1.0f, &r);
	p1 = prior_fill(grad, n, &r);
	loss = clad_mse_loss(grad, pred, target, n);
	prior_remove(grad, p1, n);
	for (int i = 0; i < n; i++)
		want += pow((double) pred[i] - target[i], 2) / n;
	value_check(fabs(loss - want) / want, 1e-6, "mse value");
	j = (fd_job) {loss_fwd, &s, &out, &one, 1, 1e-2f, 1e-3, FD_TOL};
	grad_check(&j, "dpred", pred, n, grad);
	case_end();
}

static void
check_cross_entropy(float T, uint64_t seed)
{
	enum { B = 4, K = 6 };
	float		logits[B * K], grad[B * K], one = 1.0f, out, *p1;
	int32_t		labels[B] = {0, 5, 2, 2};
	loss_state	s = {LOSS_CE, logits, NULL, NULL, labels, B, K, 0, T, 0};
	clad_rng	r;
	fd_job		j;
	double		want = 0.0, loss;

	case_begin("cross-entropy T=%g (grad wrt logits)", T);
	clad_rng_seed(&r, seed);
	/* logits on the scale of T, so that softmax(logits / T) is not saturated
	 * and a step of T * 1e-3 moves the loss measurably */
	fill_normal(logits, B * K, 2.0f * T, &r);
	p1 = prior_fill(grad, B * K, &r);
	loss = clad_cross_entropy_loss(grad, logits, labels, B, K, T);
	prior_remove(grad, p1, B * K);
	for (int b = 0; b < B; b++)
	{
		double		s2 = 0.0, m = -INFINITY;

		for (int k = 0; k < K; k++)
			m = fmax(m, (double) logits[b * K + k] / T);
		for (int k = 0; k < K; k++)
			s2 += exp((double) logits[b * K + k] / T - m);
		want += (m + log(s2) - (double) logits[b * K + labels[b]] / T) / B;
	}
	value_check(fabs(loss - want) / want, 1e-6, "cross-entropy T=%g value", T);
	/* the gradient is (softmax - onehot) / (T B): its scale is 1 / T, and so is the floor */
	j = (fd_job) {loss_fwd, &s, &out, &one, 1, 1e-2f * T, 1e-3 / T, FD_TOL};
	grad_check(&j, "dlogits", logits, B * K, grad);
	case_end();
}

/* DEC: soft assignment and target by hand, KL gradient wrt z and centres with P constant. */
static void
check_dec(float alpha, uint64_t seed)
{
	enum { B = 7, K = 3, D = 5 };
	float		z[B * D], mu[K * D], q[B * K], p[B * K], dz[B * D], dmu[K * D], one = 1.0f, out;
	float	   *p1, *p2;
	loss_state	s = {LOSS_DEC, z, mu, p, NULL, B, K, D, 0, alpha};
	clad_rng	r;
	fd_job		j;
	double		eq = 0.0, ep = 0.0, esum = 0.0, loss, want = 0.0;
	double		qd[B * K], pd[B * K], f[K] = {0};

	case_begin("DEC KL alpha=%g (grad wrt z, centres)", alpha);
	clad_rng_seed(&r, seed);
	fill_normal(z, B * D, 1.0f, &r);
	fill_normal(mu, K * D, 1.0f, &r);
	clad_dec_soft_assign(q, z, mu, B, K, D, alpha);
	clad_dec_target(p, q, B, K);
	/* q and p by hand, in double */
	for (int i = 0; i < B; i++)
	{
		double		sq = 0.0;

		for (int k = 0; k < K; k++)
		{
			double		d2 = 0.0;

			for (int d = 0; d < D; d++)
				d2 += pow((double) z[i * D + d] - mu[k * D + d], 2);
			qd[i * K + k] = pow(1.0 + d2 / alpha, -(alpha + 1.0) / 2.0);
			sq += qd[i * K + k];
		}
		for (int k = 0; k < K; k++)
			qd[i * K + k] /= sq;
	}
	for (int i = 0; i < B; i++)
		for (int k = 0; k < K; k++)
			f[k] += qd[i * K + k];
	for (int i = 0; i < B; i++)
	{
		double		sp = 0.0, rq = 0.0, rp = 0.0;

		for (int k = 0; k < K; k++)
			sp += pd[i * K + k] = qd[i * K + k] * qd[i * K + k] / f[k];
		for (int k = 0; k < K; k++)
		{
			pd[i * K + k] /= sp;
			eq = fmax(eq, fabs(q[i * K + k] - qd[i * K + k]) / qd[i * K + k]);
			ep = fmax(ep, fabs(p[i * K + k] - pd[i * K + k]) / pd[i * K + k]);
			rq += q[i * K + k];
			rp += p[i * K + k];
		}
		esum = fmax(esum, fmax(fabs(rq - 1.0), fabs(rp - 1.0)));
	}
	value_check(eq, 1e-5, "DEC soft assignment alpha=%g vs formula", alpha);
	value_check(ep, 1e-5, "DEC target alpha=%g vs formula", alpha);
	value_check(esum, 1e-6, "DEC q and p rows sum to 1 (alpha=%g)", alpha);

	p1 = prior_fill(dz, B * D, &r);
	p2 = prior_fill(dmu, K * D, &r);
	loss = clad_dec_kl_loss(dz, dmu, z, mu, p, B, K, D, alpha);
	prior_remove(dz, p1, B * D);
	prior_remove(dmu, p2, K * D);
	for (int i = 0; i < B * K; i++)
		want += p[i] * (log((double) p[i]) - log(qd[i])) / B;
	value_check(fabs(loss - want) / fmax(want, 1e-3), 1e-5, "DEC KL value alpha=%g", alpha);
	j = (fd_job) {loss_fwd, &s, &out, &one, 1, 5e-3f, 1e-3, FD_TOL};
	grad_check(&j, "dz", z, B * D, dz);
	grad_check(&j, "dcentres", mu, K * D, dmu);
	case_end();
}

/* Cross-entropy, softmax and the loss edge cases by hand. */
static void
check_loss_values(void)
{
	double		e = 0.0;

	/* logits (0, ln 3), label 1: softmax (1/4, 3/4), loss -ln(3/4) */
	{
		float		l[2] = {0.0f, logf(3.0f)}, g[2] = {0, 0}, pr[2];
		int32_t		lab = 1;

		e = fmax(e, fabs(clad_cross_entropy_loss(g, l, &lab, 1, 2, 1.0f) + log(0.75)) / -log(0.75));
		e = fmax(e, fabs(g[0] - 0.25) / 0.25);
		e = fmax(e, fabs(g[1] + 0.25) / 0.25);
		clad_softmax(pr, l, 1, 2, 1.0f);
		e = fmax(e, fabs(pr[0] - 0.25) / 0.25 + fabs(pr[1] - 0.75) / 0.75);
	}
	/* the same with T = 2 and doubled logits; mean over a batch of two */
	{
		float		l[4] = {0.0f, 2.0f * logf(3.0f), 2.0f * logf(3.0f), 0.0f}, g[4] = {0};
		int32_t		lab[2] = {1, 1};
		double		want = (-log(0.75) - log(0.25)) / 2.0;

		e = fmax(e, fabs(clad_cross_entropy_loss(g, l, lab, 2, 2, 2.0f) - want) / want);
		/* d/dl = (p - y) / (T B): row 0 (1/4 - 0, 3/4 - 1) / 4 */
		e = fmax(e, fabs(g[0] - 0.25 / 4) / (0.25 / 4));
		e = fmax(e, fabs(g[1] + 0.25 / 4) / (0.25 / 4));
		e = fmax(e, fabs(g[2] - 0.75 / 4) / (0.75 / 4));
	}
	/* T = 1000 with logits of 1e4 does not overflow */
	{
		float		l[3] = {1e4f, -2e4f, 3e4f}, pr[3];
		int32_t		lab = 0;
		double		z = exp(10.0) + exp(-20.0) + exp(30.0);

		e = fmax(e, fabs(clad_cross_entropy_loss(NULL, l, &lab, 1, 3, 1000.0f) - (log(z) - 10.0)) /
				 (log(z) - 10.0));
		clad_softmax(pr, l, 1, 3, 1000.0f);
		e = fmax(e, fabs(pr[2] - exp(30.0) / z));
	}
	value_check(e, 1e-6, "cross-entropy and softmax by hand");
	printf("  %-44s rel err %.1e\n", "cross-entropy / softmax by hand", e);
	{
		float		l[2] = {1, 2};
		int32_t		bad = 2;

		CHECK(isnan(clad_cross_entropy_loss(NULL, l, &bad, 1, 2, 1.0f)));
	}
}

/* ---- optimisers against PyTorch's update rules in double ----------------- */

static void
check_optimisers(void)
{
	enum { N = 5 };
	/* a zero gradient and a tiny one (where eps matters) among ordinary ones */
	const float g1[N] = {0.1f, -0.2f, 0.3f, 0.0f, 1e-8f}, g2[N] = {-0.05f, -0.1f, 0.7f, 0.2f, 2e-8f};
	const float p0[N] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f};
	double		ea = 0.0, es = 0.0;

	for (int wd = 0; wd < 2; wd++)
	{
		float		p[N], m[N] = {0}, v[N] = {0}, q[N], buf[N];
		double		pd[N], md[N] = {0}, vd[N] = {0}, qd[N], bd[N];
		float		decay = wd ? 0.01f : 0.0f;
		clad_adam	adam = {1e-3f, 0.9f, 0.999f, 1e-8f, decay, 0};
		clad_sgd	sgd = {0.01f, 0.9f, decay, 0};

		for (int i = 0; i < N; i++)
		{
			p[i] = q[i] = p0[i];
			pd[i] = qd[i] = p0[i];
			buf[i] = NAN;		/* the first SGD step must not read the buffer */
		}
		for (int step = 1; step <= 2; step++)
		{
			const float *g = step == 1 ? g1 : g2;

			clad_adam_step(&adam, p, g, m, v, N);
			clad_sgd_step(&sgd, q, g, buf, N);
			CHECK(adam.step == step && sgd.step == step);
			for (int i = 0; i < N; i++)
			{
				/* torch.optim.Adam (weight decay added to the gradient) */
				double		ga = (double) g[i] + (double) decay * pd[i];
				double		gs = (double) g[i] + (double) decay * qd[i];

				md[i] = 0.9 * md[i] + 0.1 * ga;
				vd[i] = 0.999 * vd[i] + 0.001 * ga * ga;
				pd[i] -= 1e-3 / (1.0 - pow(0.9, step)) * md[i] /
					(sqrt(vd[i]) / sqrt(1.0 - pow(0.999, step)) + 1e-8);
				/* torch.optim.SGD, momentum 0.9, dampening 0: first step buf = grad */
				bd[i] = step == 1 ? gs : 0.9 * bd[i] + gs;
				qd[i] -= 0.01 * bd[i];
			}
		}
		for (int i = 0; i < N; i++)
		{
			/* errors relative to the distance moved (the update is ~1e-3) */
			ea = fmax(ea, fabs(p[i] - pd[i]) / fmax(fabs(pd[i] - p0[i]), 1e-4));
			es = fmax(es, fabs(q[i] - qd[i]) / fmax(fabs(qd[i] - p0[i]), 1e-4));
			CHECK_MSG(fabs(p[i] - pd[i]) < 1e-6, "adam (wd %g) param %d: %.9g vs %.9g", decay, i, p[i], pd[i]);
			CHECK_MSG(fabs(q[i] - qd[i]) < 1e-6, "sgd (wd %g) param %d: %.9g vs %.9g", decay, i, q[i], qd[i]);
		}
	}
	value_check(ea, 2e-3, "adam two steps (error relative to the step)");
	value_check(es, 2e-3, "sgd momentum two steps (error relative to the step)");
	printf("  %-44s err/step adam %.1e sgd %.1e\n", "adam, sgd momentum: two steps by hand", ea, es);
}

static void
check_layer_functions(void)
{
	check_convs();
	check_linear(1, 7, 5, 1, 500);
	check_linear(1, 7, 5, 0, 501);
	check_linear(4, 7, 5, 1, 502);
	check_linear(4, 7, 5, 0, 503);
	check_bn("2d", 1, 3, 4, 5, 1.0f, 1e-2f, 600);
	check_bn("1d", 1, 4, 5, 1, 1.0f, 1e-2f, 601);
	/* 1x1 map, B = 2: the output is +-gamma + beta up to eps; the input
	 * gradient is of order eps / spread^3, so use close values and a small step */
	check_bn("1x1 map", 1, 2, 3, 1, 0.05f, 1e-3f, 602);
	check_bn("2d", 0, 2, 4, 6, 1.0f, 1e-2f, 603);
	check_bn("1d", 0, 4, 5, 1, 1.0f, 1e-2f, 604);
	check_bn("2d, channels in two blocks", 0, 2, 70, 3, 1.0f, 1e-2f, 605);	/* eval forward works in blocks of 64 */
	check_bn("1x1 map, channels in three blocks", 0, 3, 130, 1, 1.0f, 1e-2f, 606);
	check_bn_running_stats();
	check_activation(ACT_RELU, 700);
	check_activation(ACT_ELU, 701);
	check_activation(ACT_SIGMOID, 702);
	check_activation(ACT_DROPOUT, 703);
	check_dropout_values();
	check_maxpool(2, 3, 7, 5, 2, 2, 0, 800);
	check_maxpool(2, 3, 7, 5, 3, 2, 1, 801);
	check_maxpool(1, 2, 4, 6, 3, 1, 1, 802);	/* overlapping windows: one input wins several */
	check_maxpool(2, 2, 1, 1, 3, 2, 1, 803);	/* a 1x1 map padded to 3x3 */
	check_maxpool_ties(8, 9, 2, 2, 0, 0.1f, 804);	/* the 2x2 path */
	check_maxpool_ties(6, 70, 2, 2, 0, 0.0f, 809);	/* the 2x2 path's vector rows (no NaN) */
	check_maxpool_ties(12, 70, 2, 2, 0, 0.005f, 810);	/* rows with and without a NaN */
	check_maxpool_ties(7, 7, 3, 2, 1, 0.1f, 805);	/* the 3x3 stride-2 path (ResNet's stem), odd size */
	check_maxpool_ties(8, 10, 3, 2, 1, 0.1f, 806);	/* the same, even sizes: a clipped last row and column */
	check_maxpool_ties(7, 6, 3, 1, 1, 0.1f, 807);	/* the general loop */
	/* the 3x3 stride-2 path's vector rows (planes without a NaN): rows of more than 32 windows, */
	/* odd and even sizes, maps of one and two rows or columns, planes with and without a NaN */
	check_maxpool_ties(9, 70, 3, 2, 1, 0.0f, 811);
	check_maxpool_ties(10, 71, 3, 2, 1, 0.0f, 812);
	check_maxpool_ties(14, 14, 3, 2, 1, 0.002f, 813);
	check_maxpool_ties(1, 9, 3, 2, 1, 0.0f, 814);
	check_maxpool_ties(2, 8, 3, 2, 1, 0.0f, 815);
	check_maxpool_ties(5, 1, 3, 2, 1, 0.0f, 816);
	check_maxpool_ties(6, 2, 3, 2, 1, 0.0f, 817);
	check_maxpool_ties(3, 3, 3, 2, 1, 0.0f, 818);
	check_maxpool(1, 2, 14, 12, 3, 2, 1, 808);	/* the 3x3 stride-2 path with inner windows */
	check_avgpool(2, 3, 3, 5, 900);
	check_avgpool(3, 4, 1, 1, 901);
	check_mse();
	check_cross_entropy(1.0f, 1000);
	check_cross_entropy(1000.0f, 1001);
	check_dec(1.0f, 1100);
	check_dec(2.5f, 1101);
	check_loss_values();
	check_optimisers();
}

/* ===================================================================== */
/* Part 2: one-layer nets, shallow models, ODIN                           */
/* ===================================================================== */

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
check_net_layers(void)
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
 * cvae_large are checked against PyTorch's autograd in tests/unit/test_parity.c.
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
	/* a whole model through ReLU kinks: central differences are good to about 1% */
	CHECK_MSG(worst / scale < 2e-2, "ODIN input gradient off by %.2e", worst / scale);
	clad_odin_work_free(&w);
	clad_net_free(n);
}

/* Distance in units in the last place between two finite floats. */
static int64_t
ulps_apart(float a, float b)
{
	int32_t		ia, ib;
	int64_t		oa, ob;

	memcpy(&ia, &a, sizeof(ia));
	memcpy(&ib, &b, sizeof(ib));
	oa = ia < 0 ? -(int64_t) (ia & 0x7fffffff) : ia;
	ob = ib < 0 ? -(int64_t) (ib & 0x7fffffff) : ib;
	return oa > ob ? oa - ob : ob - oa;
}

/*
 * ELU's own e^x - 1 against the correctly rounded value (double expm1):
 * every 37th float in [-87, 0] (30 million, tiny ones included) within 1
 * ulp, and the edges (-0, below -87, -inf, NaN) as expm1f gives them; then
 * clad_elu_forward element by element, in a buffer long and odd enough for
 * the vector loop and its tail.
 */
static void
check_elu_values(void)
{
	int64_t		worst = 0;
	float		worst_x = 0;
	const float edges[] = {-0.0f, 0.0f, -1e-45f, -1e-30f, -0.3465f, -0.3466f, -87.0f, -87.5f, -200.0f,
	-INFINITY, 0.5f, 3.0f, INFINITY, NAN};
	size_t		n = 1001, n_edges = sizeof(edges) / sizeof(edges[0]);
	float	   *in = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * n);

	for (uint32_t b = 0x80000000u; b < 0xC2AE0000u; b += 37)
	{
		float		x, got;
		int64_t		u;

		memcpy(&x, &b, sizeof(x));
		got = clad_expm1_nonpositive(x);
		u = ulps_apart(got, (float) expm1((double) x));
		if (u > worst)
		{
			worst = u;
			worst_x = x;
		}
	}
	printf("  ELU's expm1 on [-87, 0]: worst %lld ulp (at %g)\n", (long long) worst, worst_x);
	CHECK_MSG(worst <= 1, "ELU's expm1 is %lld ulp off at %g", (long long) worst, worst_x);
	for (size_t i = 0; i < n; i++)
		in[i] = i < n_edges ? edges[i] : -20.0f + 25.0f * (float) i / (float) n;
	clad_elu_forward(out, in, n);
	for (size_t i = 0; i < n; i++)
	{
		float		want = in[i] > 0.0f ? in[i] : expm1f(in[i]);

		if (isnan(want))
			CHECK_MSG(isnan(out[i]), "ELU(NaN) = %g", out[i]);
		else
			CHECK_MSG(ulps_apart(out[i], want) <= 1 && signbit(out[i]) == signbit(want),
					  "ELU(%g) = %.9g, expm1f gives %.9g", in[i], out[i], want);
	}
	free(in);
	free(out);
}

/*
 * One training step of a model (forward, backward with the input gradient,
 * an Adam step) with the loops split among threads: the same floats as one
 * thread (with products cut as the trainer cuts them whatever the threads).
 * Returns the parameters after the step followed by the input gradient.
 */
static float *
train_step_with_threads(int threads, int resnet, size_t *n)
{
	clad_net   *net = NULL;
	clad_adam	opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f, 0};
	const int	B = 12;
	float	   *x, *dout, *res;
	size_t		np, nin = (size_t) B * 28 * 28, nout;
	clad_rng	r;

	CHECK(clad_blas_init(CLAD_BLAS_AUTO, threads) == CLAD_OK);
	clad_sgemm_thread_independent(1);
	if (resnet)
	{
		CHECK(clad_classifier_build("resnet18", 1, 28, 28, 10, &net) == CLAD_OK);
		clad_classifier_init(net, "resnet18", 5);
	}
	else
	{
		clad_net   *dec = NULL;

		CHECK(clad_autoencoder_build("cvae", 1, 28, 28, 10, &net, &dec) == CLAD_OK);
		clad_net_free(dec);
		clad_autoencoder_init(net, 5);
		clad_net_set_stochastic(net, 0);
	}
	np = clad_net_num_params(net);
	nout = (size_t) B * clad_net_out_numel(net);
	x = alloc_floats(nin);
	dout = alloc_floats(nout);
	clad_rng_seed(&r, 9);
	fill_normal(x, nin, 1.0f, &r);
	fill_normal(dout, nout, 1.0f, &r);
	res = alloc_floats(np + nin);
	CHECK(clad_net_forward(net, x, B, CLAD_TRAIN) == CLAD_OK);
	clad_net_zero_grad(net);
	CHECK(clad_net_backward(net, dout, 1, res + np) == CLAD_OK);
	CHECK(clad_net_adam_step(net, &opt) == CLAD_OK);
	memcpy(res, clad_net_params(net), sizeof(float) * np);
	*n = np + nin;
	clad_net_free(net);
	free(x);
	free(dout);
	CHECK(clad_blas_init(CLAD_BLAS_AUTO, 1) == CLAD_OK);
	clad_sgemm_thread_independent(0);
	return res;
}

static void
check_threads_same_floats(void)
{
	for (int resnet = 0; resnet < 2; resnet++)
	{
		size_t		n1, n2;
		float	   *one = train_step_with_threads(1, resnet, &n1);
		float	   *two = train_step_with_threads(2, resnet, &n2);

		CHECK_MSG(n1 == n2 && memcmp(one, two, sizeof(float) * n1) == 0,
				  "%s: a training step with 2 threads differs from 1 thread", resnet ? "resnet18" : "cvae encoder");
		printf("  %s training step: 2 threads give 1 thread's floats\n", resnet ? "resnet18" : "cvae encoder");
		free(one);
		free(two);
	}
}

/* BatchNorm's running variance starts at 1 whatever the layer's name (a one-letter name included) */
static void
check_batchnorm_defaults(void)
{
	const char *names[] = {"b", "bn", "layer1.0.bn1"};

	for (int i = 0; i < 3; i++)
	{
		clad_net   *n = clad_net_new(2, 3, 3);
		char		rv[128];
		const clad_tensor_info *t;

		CHECK(n && clad_net_batchnorm(n, 0, names[i]) >= 0 && clad_net_finish(n) == CLAD_OK);
		snprintf(rv, sizeof(rv), "%s.running_var", names[i]);
		t = clad_net_find(n, rv);
		CHECK_MSG(t && t->numel == 2 && t->data[0] == 1.0f && t->data[1] == 1.0f,
				  "BatchNorm \"%s\": running_var does not start at 1", names[i]);
		clad_net_free(n);
	}
}

int
main(void)
{
	check_elu_values();
	check_batchnorm_defaults();
	check_threads_same_floats();
	for (int pass = 0; pass < 2; pass++)
	{
		CHECK(clad_blas_init(pass ? CLAD_BLAS_AUTO : CLAD_BLAS_REFERENCE, 1) == CLAD_OK);
		if (!pass)
			CHECK(clad_blas_is_openblas() == 0);
		printf("== pass %d, sgemm: %s\n", pass + 1, clad_blas_describe());
		printf("layer functions (error = max|analytic - numeric| / max(max|numeric|, floor)):\n");
		check_layer_functions();
		printf("one-layer nets:\n");
		check_net_layers();
	}
	printf("whole models and ODIN (sgemm: %s):\n", clad_blas_describe());
	check_models();
	check_odin_gradient();
	printf("worst finite-difference error of the layer functions: %.2e (%s)\n", worst_fd, worst_fd_what);
	printf("worst value error: %.2e (%s)\n", worst_value, worst_value_what);
	return test_summary("test_layers_grad");
}
