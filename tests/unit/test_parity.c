/* tests/unit/test_parity.c: clad against PyTorch on the reference architectures.
 *
 *   test_parity OUTDIR                      check every case OUTDIR/index.txt lists
 *   test_parity --write-clad-model PATH     write a clad ResNet-18 for check_clad_model.py
 *   test_parity                             (as `make check` runs it) skip: no data
 *
 * The data come from tests/parity/gen_parity.py (see its docstring for the
 * tensors of a case); tests/parity/run.sh generates them and runs both
 * directions.  Each case is loaded into a clad net built by
 * clad_classifier_build / clad_autoencoder_build and run forward and
 * backward in the case's mode (training mode with clad_net_set_stochastic
 * off: batch statistics, no dropout, z = mu), and every tensor PyTorch
 * computed is compared: outputs, losses, latent codes and ODIN confidences
 * ("out", tolerance 1e-4), parameter and input gradients ("grad", 1e-3),
 * optimiser results ("optim", 1e-3: two Adam and two SGD steps applied to
 * PyTorch's saved gradients, see run_classifier) and the running statistics
 * after the step ("stats", 1e-4; in eval mode they must stay unchanged).
 * Eval-mode cases are run again after clad_net_prepare_inference (on the
 * inference plans), and classifiers once more on image 0 alone.  Every
 * case runs twice: with the plain C GEMM and with CLAD_BLAS_AUTO (OpenBLAS when
 * present, as clad_blas_init chooses it).  PARITY_VERBOSE=1 prints every
 * comparison.
 *
 * Error measure (max-norm relative error):
 *     err(got, want) = max_i |got_i - want_i| / max_i |want_i|
 * with one exception: in training mode the gradient of the bias of a
 * layer followed by BatchNorm is exactly zero (the batch mean removes it;
 * PyTorch's float64 value is rounding noise), so it has no scale of its
 * own; its error is max_i |got_i - want_i| / max_i |want'_i|, where want'
 * is the gradient of that BatchNorm's bias (the sum whose cancellation
 * leaves clad's float32 noise).
 */
#include "gemm.h"
#include "architectures.h"
#include "odin.h"
#include "testutil.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum
{
	K_OUT, K_GRAD, K_OPTIM, K_STATS, NKINDS
};
static const char *const kind_name[NKINDS] = {"out", "grad", "optim", "stats"};
static const double kind_tol[NKINDS] = {1e-4, 1e-3, 1e-3, 1e-4};

typedef struct parity_case
{
	const char *name;
	const clad_st_file *f;
	double		worst[NKINDS];
	int			seen[NKINDS];
	char		worst_at[NKINDS][128];
	int			failed;
} parity_case;

/* max_i |got_i - want_i| / max_i |want_i| (the max-norm relative error); NaN gives +inf */
static double
maxnorm_rel_err(const float *got, const float *want, size_t n, double *wmax_out, double *dmax_out)
{
	double		wmax = 0.0, dmax = 0.0;

	for (size_t i = 0; i < n; i++)
	{
		double		d = fabs((double) got[i] - (double) want[i]);

		if (fabs(want[i]) > wmax)
			wmax = fabs(want[i]);
		if (!(d <= dmax))
			dmax = isnan(d) ? INFINITY : d;
	}
	if (wmax_out)
		*wmax_out = wmax;
	if (dmax_out)
		*dmax_out = dmax;
	if (dmax == 0.0)
		return 0.0;
	return wmax > 0.0 ? dmax / wmax : INFINITY;
}

static void
fail_case(parity_case *pc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
fail_case(parity_case *pc, const char *fmt, ...)
{
	va_list		ap;

	test_checks++;
	test_failures++;
	fflush(stdout);
	fprintf(stderr, "FAIL %s: ", pc->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pc->failed = 1;
}

/* A float copy of the F32 tensor name with n elements, or NULL (a failure is recorded). */
static float *
want_f32(parity_case *pc, const char *name, size_t n)
{
	const clad_st_tensor *t = clad_st_find(pc->f, name);
	float	   *v;

	if (!t)
	{
		fail_case(pc, "reference lacks \"%s\"", name);
		return NULL;
	}
	if (t->dtype != CLAD_DTYPE_F32 || t->numel != n)
	{
		fail_case(pc, "reference tensor \"%s\" is %s with %zu elements, not F32 with %zu",
				  name, clad_dtype_name(t->dtype), t->numel, n);
		return NULL;
	}
	if (!(v = malloc(sizeof(float) * (n ? n : 1))))
	{
		fail_case(pc, "out of memory reading \"%s\"", name);
		return NULL;
	}
	memcpy(v, t->data, sizeof(float) * n);	/* the data may be unaligned */
	return v;
}

static int	verbose = 0;		/* PARITY_VERBOSE=1: print every comparison */

static void
record(parity_case *pc, int kind, const char *label, double err)
{
	test_checks++;
	if (verbose)
		printf("    %-5s %.2e  %s\n", kind_name[kind], err, label);
	if (!pc->seen[kind] || !(err <= pc->worst[kind]))
	{
		pc->worst[kind] = err;
		snprintf(pc->worst_at[kind], sizeof(pc->worst_at[kind]), "%s", label);
	}
	pc->seen[kind] = 1;
	if (!(err <= kind_tol[kind]))
	{
		fail_case(pc, "%s error of \"%s\" = %.3g > %.0e", kind_name[kind], label, err, kind_tol[kind]);
	}
}

/*
 * Compare got (n) with the reference tensor name; note is added to the
 * label (" [inference]"); with scale_name, the error is relative to the largest
 * |x| of that reference tensor instead (structurally zero gradients).
 */
static void
compare_scaled(parity_case *pc, int kind, const char *name, const float *got, size_t n,
			   const char *note, const char *scale_name)
{
	float	   *want = want_f32(pc, name, n);
	double		dmax, err;
	char		label[160];

	if (!want)
		return;
	err = maxnorm_rel_err(got, want, n, NULL, &dmax);
	snprintf(label, sizeof(label), "%s%s", name, note ? note : "");
	if (scale_name)
	{
		const clad_st_tensor *st = clad_st_find(pc->f, scale_name);
		float	   *sw = st ? want_f32(pc, scale_name, st->numel) : NULL;
		double		smax;

		if (!sw)
		{
			fail_case(pc, "reference lacks \"%s\"", scale_name);
			free(want);
			return;
		}
		maxnorm_rel_err(sw, sw, st->numel, &smax, NULL);
		err = dmax == 0.0 ? 0.0 : (smax > 0.0 ? dmax / smax : INFINITY);
		snprintf(label, sizeof(label), "%s%s (zero; scale of %s)", name, note ? note : "", scale_name);
		free(sw);
	}
	record(pc, kind, label, err);
	free(want);
}

static void
compare(parity_case *pc, int kind, const char *name, const float *got, size_t n, const char *note)
{
	compare_scaled(pc, kind, name, got, n, note, NULL);
}

/* Compare got (row_len) with row 0 of the reference tensor name (rows x row_len). */
static void
compare_rows(parity_case *pc, const char *name, const float *got, int rows, size_t row_len, const char *note)
{
	float	   *want = want_f32(pc, name, rows * row_len);
	char		label[128];

	if (!want)
		return;
	snprintf(label, sizeof(label), "%s[0]%s", name, note);
	record(pc, K_OUT, label, maxnorm_rel_err(got, want, row_len, NULL, NULL));
	free(want);
}

/* Compare a scalar. */
static void
compare1(parity_case *pc, int kind, const char *name, float got)
{
	compare(pc, kind, name, &got, 1, NULL);
}

static int
meta_int(parity_case *pc, const char *key)
{
	const char *v = clad_st_meta(pc->f, key);

	if (!v)
	{
		fail_case(pc, "metadata lacks \"%s\"", key);
		return 0;
	}
	return atoi(v);
}

static double
meta_double(parity_case *pc, const char *key)
{
	const char *v = clad_st_meta(pc->f, key);

	if (!v)
	{
		fail_case(pc, "metadata lacks \"%s\"", key);
		return 0.0;
	}
	return atof(v);
}

static int
clad_ok(parity_case *pc, clad_status st, const char *what)
{
	if (st == CLAD_OK)
		return 1;
	fail_case(pc, "%s failed: %s", what, clad_last_error());
	return 0;
}

/* Every reference tensor under prefix must be one of net's (clad_net_load checks the converse). */
static void
check_names(parity_case *pc, const clad_net *net, const char *prefix)
{
	size_t		len = strlen(prefix);

	for (size_t i = 0; i < pc->f->n_tensors; i++)
	{
		const char *n = pc->f->tensors[i].name;

		if (strncmp(n, prefix, len) == 0 && !clad_net_find(net, n + len))
			fail_case(pc, "clad's net has no tensor \"%s\"", n);
	}
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t		a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/*
 * The BatchNorm (its name in bn, without ".weight") that directly follows
 * the layer whose bias is tensor i, or 0: clad registers a layer's weight
 * and bias, then the BatchNorm's weight, bias and running statistics.
 */
static int
bn_after_bias(const clad_net *net, size_t i, char *bn, size_t bn_size)
{
	const clad_tensor_info *t = clad_net_tensor(net, i);
	const clad_tensor_info *g = clad_net_tensor(net, i + 1);
	char		rm[160];

	if (!t || !g || !ends_with(t->name, ".bias") || g->ndim != 1 || !ends_with(g->name, ".weight"))
		return 0;
	snprintf(bn, bn_size, "%.*s", (int) (strlen(g->name) - strlen(".weight")), g->name);
	snprintf(rm, sizeof(rm), "%s.running_mean", bn);
	return clad_net_find(net, rm) != NULL;
}

/*
 * Parameter gradients: "grad." + prefix + name for every trainable tensor
 * (in training mode a bias followed by BatchNorm is scaled by that
 * BatchNorm's bias gradient: see the top of the file).
 */
static void
compare_param_grads(parity_case *pc, const clad_net *net, const char *prefix, clad_mode mode)
{
	char		name[160], bn[128], scale[192];

	for (size_t i = 0; i < clad_net_num_tensors(net); i++)
	{
		const clad_tensor_info *t = clad_net_tensor(net, i);

		if (t->is_buffer)
			continue;
		snprintf(name, sizeof(name), "grad.%s%s", prefix, t->name);
		if (mode == CLAD_TRAIN && bn_after_bias(net, i, bn, sizeof(bn)))
		{
			snprintf(scale, sizeof(scale), "grad.%s%s.bias", prefix, bn);
			compare_scaled(pc, K_GRAD, name, t->grad, t->numel, NULL, scale);
		}
		else
			compare(pc, K_GRAD, name, t->grad, t->numel, NULL);
	}
}

/* Buffers against ref_prefix + prefix + name ("after." in training mode, unchanged in eval). */
static void
compare_buffers(parity_case *pc, const clad_net *net, const char *ref_prefix, const char *prefix)
{
	char		name[160];

	for (size_t i = 0; i < clad_net_num_tensors(net); i++)
	{
		const clad_tensor_info *t = clad_net_tensor(net, i);

		if (!t->is_buffer)
			continue;
		snprintf(name, sizeof(name), "%s%s%s", ref_prefix, prefix, t->name);
		if (t->is_counter)
		{
			const clad_st_tensor *s = clad_st_find(pc->f, name);
			int64_t		c;

			if (!s || s->dtype != CLAD_DTYPE_I64 || s->numel != 1)
			{
				fail_case(pc, "reference lacks the I64 counter \"%s\"", name);
				continue;
			}
			memcpy(&c, s->data, sizeof(c));
			record(pc, K_STATS, name, (double) c == (double) t->data[0] ? 0.0 : INFINITY);
		}
		else
			compare(pc, K_STATS, name, t->data, t->numel, NULL);
	}
}

/* Optimiser results: kind + "." + prefix + name for every trainable tensor. */
static void
compare_params(parity_case *pc, const clad_net *net, const char *kind, const char *prefix)
{
	char		name[160];

	for (size_t i = 0; i < clad_net_num_tensors(net); i++)
	{
		const clad_tensor_info *t = clad_net_tensor(net, i);

		if (t->is_buffer)
			continue;
		snprintf(name, sizeof(name), "%s.%s%s", kind, prefix, t->name);
		compare(pc, K_OPTIM, name, t->data, t->numel, NULL);
	}
}

/* Non-zero when the reference holds a tensor whose name starts with prefix. */
static int
has_prefix(const clad_st_file *f, const char *prefix)
{
	for (size_t i = 0; i < f->n_tensors; i++)
		if (strncmp(f->tensors[i].name, prefix, strlen(prefix)) == 0)
			return 1;
	return 0;
}

/* Put the reference gradients "grad." + prefix + name into net's gradient buffers. */
static int
load_ref_grads(parity_case *pc, clad_net *net, const char *prefix)
{
	char		name[160];

	for (size_t i = 0; i < clad_net_num_tensors(net); i++)
	{
		const clad_tensor_info *t = clad_net_tensor(net, i);
		float	   *g;

		if (t->is_buffer)
			continue;
		snprintf(name, sizeof(name), "grad.%s%s", prefix, t->name);
		if (!(g = want_f32(pc, name, t->numel)))
			return 0;
		memcpy(t->grad, g, sizeof(float) * t->numel);
		free(g);
	}
	return 1;
}

/* ODIN input gradient and confidence (eval mode) against key.grad_input, key.conf (T, eps: key.T, key.eps) */
static void
check_odin(parity_case *pc, clad_net *net, const float *x, int B, int K, size_t in_numel,
		   const char *key, const char *note)
{
	char		n_t[64], n_eps[64], n_grad[64], n_conf[64];
	float		T, eps;
	float	   *logits = malloc(sizeof(float) * B * K);
	float	   *dx = malloc(sizeof(float) * B * in_numel);
	float	   *conf = malloc(sizeof(float) * B);
	clad_odin_work w = {0};

	snprintf(n_t, sizeof(n_t), "%s.T", key);
	snprintf(n_eps, sizeof(n_eps), "%s.eps", key);
	snprintf(n_grad, sizeof(n_grad), "%s.grad_input", key);
	snprintf(n_conf, sizeof(n_conf), "%s.conf", key);
	if (!clad_st_meta(pc->f, n_t) || !clad_st_meta(pc->f, n_eps))
		fail_case(pc, "metadata lacks %s or %s", n_t, n_eps);
	else if (!logits || !dx || !conf)
		fail_case(pc, "out of memory");
	else
	{
		T = (float) meta_double(pc, n_t);
		eps = (float) meta_double(pc, n_eps);
		if (clad_ok(pc, clad_input_gradient(net, x, B, NULL, T, logits, dx, &w), "clad_input_gradient"))
		{
			compare(pc, K_OUT, "output", logits, (size_t) B * K, note);
			compare(pc, K_GRAD, n_grad, dx, (size_t) B * in_numel, note);
		}
		if (clad_ok(pc, clad_odin_confidence(net, x, B, T, eps, conf, NULL, NULL, &w),
					"clad_odin_confidence"))
			compare(pc, K_OUT, n_conf, conf, B, note);
	}
	clad_odin_work_free(&w);
	free(logits);
	free(dx);
	free(conf);
}

static void
run_classifier(parity_case *pc)
{
	const char *arch = clad_st_meta(pc->f, "arch");
	const char *mode_s = clad_st_meta(pc->f, "mode");
	int			C = meta_int(pc, "C"), H = meta_int(pc, "H"), W = meta_int(pc, "W");
	int			K = meta_int(pc, "K"), B = meta_int(pc, "B");
	clad_mode	mode = mode_s && strcmp(mode_s, "train") == 0 ? CLAD_TRAIN : CLAD_EVAL;
	size_t		in_numel = (size_t) C * H * W;
	clad_net   *net = NULL;
	float	   *x = NULL, *dlogits = NULL, *dx = NULL, *saved = NULL;
	int32_t    *labels = NULL;
	const clad_st_tensor *lt;
	float		loss;

	if (pc->failed || !arch)
	{
		fail_case(pc, "bad metadata");
		return;
	}
	if (!clad_ok(pc, clad_classifier_build(arch, C, H, W, K, &net), "clad_classifier_build"))
		return;
	if (!clad_ok(pc, clad_net_load(net, pc->f, "model."), "clad_net_load"))
		goto done;
	check_names(pc, net, "model.");
	clad_net_set_stochastic(net, 0);
	if (!(x = want_f32(pc, "input", B * in_numel)))
		goto done;
	lt = clad_st_find(pc->f, "labels");
	labels = malloc(sizeof(int32_t) * B);
	dlogits = calloc((size_t) B * K, sizeof(float));
	dx = malloc(sizeof(float) * B * in_numel);
	if (!lt || lt->dtype != CLAD_DTYPE_I64 || lt->numel != (size_t) B || !labels || !dlogits || !dx)
	{
		fail_case(pc, "no I64 labels (B) or out of memory");
		goto done;
	}
	for (int b = 0; b < B; b++)
	{
		int64_t		y;

		memcpy(&y, lt->data + 8 * b, 8);
		labels[b] = (int32_t) y;
	}

	/* eval: a first pass on image 0 alone, so that the real batch must grow the activations */
	if (mode == CLAD_EVAL && B > 1 &&
		clad_ok(pc, clad_net_forward(net, x, 1, CLAD_EVAL), "forward [B=1]"))
		compare_rows(pc, "output", clad_net_output(net), B, K, " [B=1 first]");
	clad_net_zero_grad(net);
	if (!clad_ok(pc, clad_net_forward(net, x, B, mode), "forward"))
		goto done;
	compare(pc, K_OUT, "output", clad_net_output(net), (size_t) B * K, NULL);
	loss = clad_cross_entropy_loss(dlogits, clad_net_output(net), labels, B, K, 1.0f);
	compare1(pc, K_OUT, "loss", loss);
	if (!clad_ok(pc, clad_net_backward(net, dlogits, 1, dx), "backward"))
		goto done;
	compare_param_grads(pc, net, "model.", mode);
	compare(pc, K_GRAD, "grad.input", dx, B * in_numel, NULL);
	compare_buffers(pc, net, mode == CLAD_TRAIN ? "after." : "", "model.");

	/*
	 * Optimisers: two steps each from the loaded weights, with PyTorch's
	 * gradients (grad.*) in the net's gradient buffers, so that only the
	 * update rules are compared: Adam's update lr * g / (|g| + eps) is
	 * ill-conditioned where |g| is tiny, and gradients that agree to 1e-5 of
	 * their largest entry still move such entries by up to 2 lr differently.
	 */
	if (has_prefix(pc->f, "adam.") || has_prefix(pc->f, "sgd."))
	{
		size_t		np = clad_net_num_params(net);
		clad_adam	adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
		clad_sgd	sgd = {.lr = 0.01f, .momentum = 0.9f};

		if (!(saved = malloc(sizeof(float) * np)))
			goto done;
		if (!load_ref_grads(pc, net, "model."))
			goto done;
		memcpy(saved, clad_net_params(net), sizeof(float) * np);
		if (clad_ok(pc, clad_net_adam_step(net, &adam), "adam step") &&
			clad_ok(pc, clad_net_adam_step(net, &adam), "adam step"))
			compare_params(pc, net, "adam", "model.");
		memcpy(clad_net_params(net), saved, sizeof(float) * np);
		if (clad_ok(pc, clad_net_sgd_step(net, &sgd), "sgd step") &&
			clad_ok(pc, clad_net_sgd_step(net, &sgd), "sgd step"))
			compare_params(pc, net, "sgd", "model.");
		memcpy(clad_net_params(net), saved, sizeof(float) * np);
	}
	if (clad_st_find(pc->f, "odin.grad_input"))
		check_odin(pc, net, x, B, K, in_numel, "odin", NULL);
	if (clad_st_find(pc->f, "odin_t1.grad_input"))
		check_odin(pc, net, x, B, K, in_numel, "odin_t1", NULL);

	/* eval mode again, prepared for inference (inference plans for small maps) */
	if (mode == CLAD_EVAL &&
		clad_ok(pc, clad_net_prepare_inference(net, B), "clad_net_prepare_inference") &&
		clad_ok(pc, clad_net_forward(net, x, B, CLAD_EVAL), "forward [inference]"))
	{
		compare(pc, K_OUT, "output", clad_net_output(net), (size_t) B * K, " [inference]");
		memset(dlogits, 0, sizeof(float) * B * K);
		clad_cross_entropy_loss(dlogits, clad_net_output(net), labels, B, K, 1.0f);
		if (clad_ok(pc, clad_net_backward(net, dlogits, 0, dx), "backward [inference]"))
			compare(pc, K_GRAD, "grad.input", dx, B * in_numel, " [inference]");
		if (clad_st_find(pc->f, "odin.grad_input"))
			check_odin(pc, net, x, B, K, in_numel, "odin", " [inference]");
		if (clad_st_find(pc->f, "odin_t1.grad_input"))
			check_odin(pc, net, x, B, K, in_numel, "odin_t1", " [inference]");
	}
	/* a smaller batch on the same net (activations sized for B are reused): image 0 alone */
	if (mode == CLAD_EVAL && B > 1 &&
		clad_ok(pc, clad_net_forward(net, x, 1, CLAD_EVAL), "forward [B=1]"))
		compare_rows(pc, "output", clad_net_output(net), B, K, " [B=1 after]");
done:
	clad_net_free(net);
	free(x);
	free(labels);
	free(dlogits);
	free(dx);
	free(saved);
}

static void
run_autoencoder(parity_case *pc)
{
	const char *arch = clad_st_meta(pc->f, "arch");
	const char *mode_s = clad_st_meta(pc->f, "mode");
	int			C = meta_int(pc, "C"), H = meta_int(pc, "H"), W = meta_int(pc, "W");
	int			h = meta_int(pc, "K"), B = meta_int(pc, "B");
	clad_mode	mode = mode_s && strcmp(mode_s, "train") == 0 ? CLAD_TRAIN : CLAD_EVAL;
	size_t		in_numel = (size_t) C * H * W;
	clad_net   *e = NULL, *d = NULL;
	float	   *x = NULL, *z = NULL, *dr = NULL, *dz = NULL, *dx = NULL;
	float		loss;

	if (pc->failed || !arch)
	{
		fail_case(pc, "bad metadata");
		return;
	}
	if (!clad_ok(pc, clad_autoencoder_build(arch, C, H, W, h, &e, &d), "clad_autoencoder_build"))
		return;
	if (!clad_ok(pc, clad_net_load(e, pc->f, "encoder."), "clad_net_load (encoder)") ||
		!clad_ok(pc, clad_net_load(d, pc->f, "decoder."), "clad_net_load (decoder)"))
		goto done;
	check_names(pc, e, "encoder.");
	check_names(pc, d, "decoder.");
	clad_net_set_stochastic(e, 0);
	clad_net_set_stochastic(d, 0);
	z = malloc(sizeof(float) * B * h);
	dr = calloc((size_t) B * in_numel, sizeof(float));
	dz = malloc(sizeof(float) * B * h);
	dx = malloc(sizeof(float) * B * in_numel);
	if (!(x = want_f32(pc, "input", B * in_numel)) || !z || !dr || !dz || !dx)
		goto done;
	if (clad_net_out_numel(e) != (size_t) h || clad_net_out_numel(d) != in_numel)
	{
		fail_case(pc, "encoder or decoder has the wrong output size");
		goto done;
	}

	clad_net_zero_grad(e);
	clad_net_zero_grad(d);
	if (!clad_ok(pc, clad_net_forward(e, x, B, mode), "encoder forward"))
		goto done;
	memcpy(z, clad_net_output(e), sizeof(float) * B * h);
	compare(pc, K_OUT, "latent", z, (size_t) B * h, NULL);
	if (!clad_ok(pc, clad_net_forward(d, z, B, mode), "decoder forward"))
		goto done;
	compare(pc, K_OUT, "output", clad_net_output(d), B * in_numel, NULL);
	loss = clad_mse_loss(dr, clad_net_output(d), x, B * in_numel);
	compare1(pc, K_OUT, "loss", loss);
	if (!clad_ok(pc, clad_net_backward(d, dr, 1, dz), "decoder backward"))
		goto done;
	compare(pc, K_GRAD, "grad.latent", dz, (size_t) B * h, NULL);
	if (!clad_ok(pc, clad_net_backward(e, dz, 1, dx), "encoder backward"))
		goto done;
	compare_param_grads(pc, e, "encoder.", mode);
	compare_param_grads(pc, d, "decoder.", mode);
	compare(pc, K_GRAD, "grad.input", dx, B * in_numel, NULL);
	compare_buffers(pc, e, mode == CLAD_TRAIN ? "after." : "", "encoder.");
	compare_buffers(pc, d, mode == CLAD_TRAIN ? "after." : "", "decoder.");

	if (mode == CLAD_EVAL &&
		clad_ok(pc, clad_net_prepare_inference(e, B), "clad_net_prepare_inference") &&
		clad_ok(pc, clad_net_prepare_inference(d, B), "clad_net_prepare_inference") &&
		clad_ok(pc, clad_net_forward(e, x, B, CLAD_EVAL), "encoder forward [inference]"))
	{
		memcpy(z, clad_net_output(e), sizeof(float) * B * h);
		compare(pc, K_OUT, "latent", z, (size_t) B * h, " [inference]");
		if (clad_ok(pc, clad_net_forward(d, z, B, CLAD_EVAL), "decoder forward [inference]"))
			compare(pc, K_OUT, "output", clad_net_output(d), B * in_numel, " [inference]");
	}
done:
	clad_net_free(e);
	clad_net_free(d);
	free(x);
	free(z);
	free(dr);
	free(dz);
	free(dx);
}

static void
run_dec(parity_case *pc)
{
	int			B = meta_int(pc, "B"), K = meta_int(pc, "K"), D = meta_int(pc, "D");
	float		alpha = (float) meta_double(pc, "alpha");
	float	   *z, *mu, *q, *p, *dz, *dmu;
	float		loss;

	if (pc->failed)
		return;
	z = want_f32(pc, "dec.z", (size_t) B * D);
	mu = want_f32(pc, "dec.centers", (size_t) K * D);
	q = malloc(sizeof(float) * B * K);
	p = malloc(sizeof(float) * B * K);
	dz = calloc((size_t) B * D, sizeof(float));
	dmu = calloc((size_t) K * D, sizeof(float));
	if (z && mu && q && p && dz && dmu)
	{
		clad_dec_soft_assign(q, z, mu, B, K, D, alpha);
		compare(pc, K_OUT, "dec.q", q, (size_t) B * K, NULL);
		clad_dec_target(p, q, B, K);
		compare(pc, K_OUT, "dec.p", p, (size_t) B * K, NULL);
		loss = clad_dec_kl_loss(dz, dmu, z, mu, p, B, K, D, alpha);
		compare1(pc, K_OUT, "loss", loss);
		compare(pc, K_GRAD, "grad.z", dz, (size_t) B * D, NULL);
		compare(pc, K_GRAD, "grad.centers", dmu, (size_t) K * D, NULL);
	}
	free(z);
	free(mu);
	free(q);
	free(p);
	free(dz);
	free(dmu);
}

static void
run_case(const char *dir, const char *name, const char *backend)
{
	char		path[4096];
	uint8_t    *buf = NULL;
	size_t		len;
	clad_st_file *f = NULL;
	parity_case pc;
	const char *kind;

	memset(&pc, 0, sizeof(pc));
	pc.name = name;
	snprintf(path, sizeof(path), "%s/%s.safetensors", dir, name);
	if (clad_read_file(path, &buf, &len) != CLAD_OK || clad_st_parse(buf, len, &f) != CLAD_OK)
	{
		CHECK_MSG(0, "%s: %s", path, clad_last_error());
		free(buf);
		return;
	}
	pc.f = f;
	kind = clad_st_meta(f, "kind");
	if (kind && strcmp(kind, "classifier") == 0)
		run_classifier(&pc);
	else if (kind && strcmp(kind, "autoencoder") == 0)
		run_autoencoder(&pc);
	else if (kind && strcmp(kind, "dec") == 0)
		run_dec(&pc);
	else
		fail_case(&pc, "unknown case kind \"%s\"", kind ? kind : "");

	printf("[%s] %-22s", backend, name);
	for (int k = 0; k < NKINDS; k++)
		if (pc.seen[k])
			printf("  %s %.1e (%s)", kind_name[k], pc.worst[k], pc.worst_at[k]);
	printf("%s\n", pc.failed ? "  FAILED" : "");
	fflush(stdout);
	clad_st_free(f);
	free(buf);
}

static int
run_all(const char *dir)
{
	char		path[4096], line[256];
	char	  **names = NULL;
	int			n = 0;
	FILE	   *fp;

	snprintf(path, sizeof(path), "%s/index.txt", dir);
	if (!(fp = fopen(path, "r")))
	{
		fprintf(stderr, "test_parity: cannot open %s (run tests/parity/run.sh)\n", path);
		return 1;
	}
	while (fgets(line, sizeof(line), fp))
	{
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		names = realloc(names, sizeof(char *) * (n + 1));
		names[n++] = strdup(line);
	}
	fclose(fp);
	CHECK_MSG(n > 0, "%s lists no cases", path);

	for (int pass = 0; pass < 2; pass++)
	{
		const char *backend = pass ? "auto" : "ref ";

		if (clad_blas_init(pass ? CLAD_BLAS_AUTO : CLAD_BLAS_REFERENCE, 1) != CLAD_OK)
		{
			CHECK_MSG(0, "clad_blas_init: %s", clad_last_error());
			continue;
		}
		printf("== GEMM: %s\n", clad_blas_describe());
		for (int i = 0; i < n; i++)
			run_case(dir, names[i], backend);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	printf("tolerances: out %.0e, grad %.0e, optim %.0e, stats %.0e (max-norm relative error)\n",
		   kind_tol[K_OUT], kind_tol[K_GRAD], kind_tol[K_OPTIM], kind_tol[K_STATS]);
	return test_summary("test_parity");
}

/*
 * The reverse direction: a clad ResNet-18 (1x28x28, 10 classes) initialised
 * by clad, with BatchNorm parameters and statistics set to non-trivial
 * values, saved with clad_net_save under "model." with an input and clad's
 * eval-mode logits ("output"); tests/parity/check_clad_model.py loads it
 * into torchvision's resnet18 (strict) and compares the logits.
 */
static int
write_clad_model(const char *path)
{
	const int	C = 1, H = 28, W = 28, K = 10, B = 4;
	clad_net   *net = NULL;
	clad_st_writer *w = NULL;
	clad_rng	r;
	float	   *x = malloc(sizeof(float) * B * C * H * W);
	uint8_t    *buf = NULL;
	size_t		len;
	int64_t		xshape[4] = {B, C, H, W}, oshape[2] = {B, K};
	clad_status st;

	clad_blas_init(CLAD_BLAS_AUTO, 1);
	if ((st = clad_classifier_build("resnet18", C, H, W, K, &net)) != CLAD_OK)
		goto fail;
	clad_classifier_init(net, "resnet18", 20240601);
	clad_rng_seed(&r, 77);
	for (size_t i = 0; i < clad_net_num_tensors(net); i++)
	{
		const clad_tensor_info *t = clad_net_tensor(net, i);
		size_t		l = strlen(t->name);
		char		base[96];
		const clad_tensor_info *g, *b;

		if (l <= 13 || strcmp(t->name + l - 13, ".running_mean") != 0)
			continue;
		snprintf(base, sizeof(base), "%.*s", (int) (l - 13), t->name);
		{
			char		n1[128], n2[128], n3[128], n4[128];

			snprintf(n1, sizeof(n1), "%s.weight", base);
			snprintf(n2, sizeof(n2), "%s.bias", base);
			snprintf(n3, sizeof(n3), "%s.running_var", base);
			snprintf(n4, sizeof(n4), "%s.num_batches_tracked", base);
			g = clad_net_find(net, n1);
			b = clad_net_find(net, n2);
			for (size_t j = 0; j < t->numel; j++)
			{
				t->data[j] = clad_rng_uniform(&r) - 0.5f;
				clad_net_find(net, n3)->data[j] = 0.5f + 1.5f * clad_rng_uniform(&r);
				g->data[j] = 0.5f + clad_rng_uniform(&r);
				b->data[j] = 0.6f * clad_rng_uniform(&r) - 0.3f;
			}
			clad_net_find(net, n4)->data[0] = (float) (1 + clad_rng_below(&r, 1000));
		}
	}
	for (int i = 0; i < B * C * H * W; i++)
		x[i] = clad_rng_normal(&r);
	if ((st = clad_net_forward(net, x, B, CLAD_EVAL)) != CLAD_OK)
		goto fail;
	if (!(w = clad_st_writer_new()))
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((st = clad_net_save(net, w, "model.")) != CLAD_OK ||
		(st = clad_st_writer_add(w, "input", CLAD_DTYPE_F32, 4, xshape, x)) != CLAD_OK ||
		(st = clad_st_writer_add(w, "output", CLAD_DTYPE_F32, 2, oshape, clad_net_output(net))) != CLAD_OK ||
		(st = clad_st_writer_meta(w, "arch", "resnet18")) != CLAD_OK ||
		(st = clad_st_writer_meta(w, "C", "1")) != CLAD_OK ||
		(st = clad_st_writer_meta(w, "K", "10")) != CLAD_OK ||
		(st = clad_st_writer_finish(w, &buf, &len)) != CLAD_OK ||
		(st = clad_write_file(path, buf, len)) != CLAD_OK)
		goto fail;
	printf("test_parity: wrote clad resnet18 (%zu tensors) to %s\n", clad_net_num_tensors(net), path);
	clad_st_writer_free(w);
	clad_net_free(net);
	free(x);
	free(buf);
	return 0;
fail:
	fprintf(stderr, "test_parity: writing %s failed: %s\n", path, clad_last_error());
	clad_st_writer_free(w);
	clad_net_free(net);
	free(x);
	free(buf);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-clad-model") == 0)
		return write_clad_model(argv[2]);
	verbose = getenv("PARITY_VERBOSE") && atoi(getenv("PARITY_VERBOSE")) > 0;
	if (argc == 2 && argv[1][0] != '-')
		return run_all(argv[1]);
	if (argc == 1)
	{
		printf("test_parity: skipped (needs the PyTorch data: make check-parity)\n");
		return 0;
	}
	fprintf(stderr, "usage: test_parity OUTDIR | test_parity --write-clad-model PATH\n");
	return 2;
}
