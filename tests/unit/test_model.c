/* tests/unit/test_model.c: the CLAD model file round-trips, scores consistently, refuses malformed input
 * (a "summary" that is not a JSON object too), and forward, backward and scoring stop on cancellation. */
#include "model.h"
#include "gemm.h"
#include "testutil.h"
#include "testmodel.h"

#include <string.h>

static clad_model *
make_model(void)
{
	return test_model_new("cnn", 5);
}

/* Load must fail with a message, and leave no model. */
static void
refused(const uint8_t *buf, size_t len, const char *what)
{
	clad_model *m = (clad_model *) 1;
	clad_status st = clad_model_load(buf, len, &m);

	CHECK_MSG(st != CLAD_OK && m == NULL && clad_last_error()[0], "%s was accepted", what);
}

/* Re-save a model after changing one metadata key (NULL value: drop it). */
static uint8_t *
with_meta(const uint8_t *good, size_t len, const char *key, const char *value, size_t *out_len)
{
	clad_st_file *f;
	clad_st_writer *w = clad_st_writer_new();
	uint8_t    *buf;

	CHECK(clad_st_parse(good, len, &f) == CLAD_OK);
	for (size_t i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta_keys[i], key) != 0)
			clad_st_writer_meta(w, f->meta_keys[i], f->meta_values[i]);
	if (value)
		clad_st_writer_meta(w, key, value);
	for (size_t i = 0; i < f->n_tensors; i++)
		clad_st_writer_add(w, f->tensors[i].name, f->tensors[i].dtype, f->tensors[i].ndim,
						   f->tensors[i].shape, f->tensors[i].data);
	CHECK(clad_st_writer_finish(w, &buf, out_len) == CLAD_OK);
	clad_st_writer_free(w);
	clad_st_free(f);
	return buf;
}

/* Re-save after replacing (or, with data NULL and ndim < 0, dropping) one tensor. */
static uint8_t *
with_tensor(const uint8_t *good, size_t len, const char *name, clad_dtype dt, int ndim,
			const int64_t *shape, const void *data, size_t *out_len)
{
	clad_st_file *f;
	clad_st_writer *w = clad_st_writer_new();
	uint8_t    *buf;

	CHECK(clad_st_parse(good, len, &f) == CLAD_OK);
	for (size_t i = 0; i < f->n_meta; i++)
		clad_st_writer_meta(w, f->meta_keys[i], f->meta_values[i]);
	for (size_t i = 0; i < f->n_tensors; i++)
		if (strcmp(f->tensors[i].name, name) != 0)
			clad_st_writer_add(w, f->tensors[i].name, f->tensors[i].dtype, f->tensors[i].ndim,
							   f->tensors[i].shape, f->tensors[i].data);
	if (ndim >= 0)
		clad_st_writer_add(w, name, dt, ndim, shape, data);
	CHECK(clad_st_writer_finish(w, &buf, out_len) == CLAD_OK);
	clad_st_writer_free(w);
	clad_st_free(f);
	return buf;
}

/* ------------------------------------------------------------ cancellation */

/* A cancel check that counts its calls and asks to stop once it has been called more than cancel_after times. */
static int	cancel_calls = 0;
static int	cancel_after = 0;

static int
cancel_check(void)
{
	return ++cancel_calls > cancel_after;
}

static void
cancel_arm(int after)
{
	cancel_calls = 0;
	cancel_after = after;
	clad_set_cancel_check(cancel_check);
}

/* One forward + backward of net (reseeded, gradients zeroed): output, parameter gradients and dx. */
static clad_status
net_pass(clad_net *net, const float *x, const float *G, int B, clad_mode mode, float *out,
		 float *grads, float *dx)
{
	clad_status st;

	clad_net_seed(net, 77);
	if ((st = clad_net_forward(net, x, B, mode)) != CLAD_OK)
		return st;
	memcpy(out, clad_net_output(net), sizeof(float) * B * clad_net_out_numel(net));
	clad_net_zero_grad(net);
	if ((st = clad_net_backward(net, G, 1, dx)) != CLAD_OK)
		return st;
	memcpy(grads, clad_net_grads(net), sizeof(float) * clad_net_num_params(net));
	return CLAD_OK;
}

static clad_net *
cancel_test_net(void)
{
	clad_net   *n = NULL;

	CHECK(clad_classifier_build("cnn", 2, 8, 8, 3, &n) == CLAD_OK);
	if (n)
		clad_classifier_init(n, "cnn", 11);
	return n;
}

/*
 * clad_net_forward and clad_net_backward stop with CLAD_ERR_CANCELLED at the
 * check that asks for it (one check per layer), and the net computes exactly
 * what a fresh net computes afterwards.
 */
static void
test_cancel_net(void)
{
	const int	B = 3;
	clad_net   *ref = cancel_test_net(), *n = cancel_test_net();
	size_t		nin = (size_t) B * 2 * 8 * 8, nout, np;
	float	   *x, *G, *out0, *g0, *dx0, *out1, *g1, *dx1;
	clad_rng	r;

	if (!ref || !n)
	{
		clad_net_free(ref);
		clad_net_free(n);
		return;
	}
	nout = (size_t) B * clad_net_out_numel(n);
	np = clad_net_num_params(n);
	x = malloc(sizeof(float) * nin);
	dx0 = malloc(sizeof(float) * nin);
	dx1 = malloc(sizeof(float) * nin);
	G = malloc(sizeof(float) * nout);
	out0 = malloc(sizeof(float) * nout);
	out1 = malloc(sizeof(float) * nout);
	g0 = malloc(sizeof(float) * np);
	g1 = malloc(sizeof(float) * np);
	clad_rng_seed(&r, 17);
	for (size_t i = 0; i < nin; i++)
		x[i] = clad_rng_normal(&r);
	for (size_t i = 0; i < nout; i++)
		G[i] = clad_rng_normal(&r);

	CHECK(clad_cancel_requested() == 0);
	for (int m = 0; m < 2; m++)
	{
		clad_mode	mode = m ? CLAD_TRAIN : CLAD_EVAL;
		int			nf, nb;

		/* the fresh run; then a check that never cancels counts the checks of each pass */
		CHECK(net_pass(ref, x, G, B, mode, out0, g0, dx0) == CLAD_OK);
		cancel_arm(1 << 30);
		clad_net_seed(n, 77);
		CHECK(clad_net_forward(n, x, B, mode) == CLAD_OK);
		nf = cancel_calls;
		cancel_calls = 0;
		clad_net_zero_grad(n);
		CHECK(clad_net_backward(n, G, 1, dx1) == CLAD_OK);
		nb = cancel_calls;
		clad_set_cancel_check(NULL);
		CHECK_MSG(nf >= 10 && nb >= 10, "cancel checks: %d in forward, %d in backward", nf, nb);
		CHECK(memcmp(clad_net_output(n), out0, sizeof(float) * nout) == 0);
		CHECK(memcmp(clad_net_grads(n), g0, sizeof(float) * np) == 0);
		CHECK(memcmp(dx1, dx0, sizeof(float) * nin) == 0);

		/* forward cancelled before layer k: stops there; no backward of the half pass */
		for (int k = 0; k < nf; k++)
		{
			clad_status st;

			cancel_arm(k);
			clad_net_seed(n, 77);
			st = clad_net_forward(n, x, B, mode);
			CHECK_MSG(st == CLAD_ERR_CANCELLED && cancel_calls == k + 1,
					  "mode %d: forward cancelled at check %d: %s after %d checks", m, k + 1,
					  clad_status_name(st), cancel_calls);
			CHECK(clad_last_error()[0] != '\0');
			clad_set_cancel_check(NULL);
			CHECK(clad_net_backward(n, G, 1, dx1) == CLAD_ERR_INVALID);
			CHECK(net_pass(n, x, G, B, mode, out1, g1, dx1) == CLAD_OK);
			CHECK_MSG(memcmp(out1, out0, sizeof(float) * nout) == 0 &&
					  memcmp(g1, g0, sizeof(float) * np) == 0 &&
					  memcmp(dx1, dx0, sizeof(float) * nin) == 0,
					  "mode %d: after a forward cancelled at check %d, results differ", m, k + 1);
		}
		/* backward cancelled before layer k; with and without dx */
		for (int k = 0; k < nb; k++)
			for (int withdx = 0; withdx < 2; withdx++)
			{
				clad_status st;

				clad_net_seed(n, 77);
				CHECK(clad_net_forward(n, x, B, mode) == CLAD_OK);
				cancel_arm(k);
				st = clad_net_backward(n, G, 1, withdx ? dx1 : NULL);
				CHECK_MSG(st == CLAD_ERR_CANCELLED && cancel_calls == k + 1,
						  "mode %d: backward cancelled at check %d: %s after %d checks", m, k + 1,
						  clad_status_name(st), cancel_calls);
				clad_set_cancel_check(NULL);
				/* the forward pass is still there: a backward from it, then a whole new pass */
				clad_net_zero_grad(n);
				CHECK(clad_net_backward(n, G, 1, dx1) == CLAD_OK);
				CHECK_MSG(memcmp(clad_net_grads(n), g0, sizeof(float) * np) == 0 &&
						  memcmp(dx1, dx0, sizeof(float) * nin) == 0,
						  "mode %d: backward again after one cancelled at check %d differs", m, k + 1);
				CHECK(net_pass(n, x, G, B, mode, out1, g1, dx1) == CLAD_OK);
				CHECK_MSG(memcmp(out1, out0, sizeof(float) * nout) == 0 &&
						  memcmp(g1, g0, sizeof(float) * np) == 0 &&
						  memcmp(dx1, dx0, sizeof(float) * nin) == 0,
						  "mode %d: after a backward cancelled at check %d, results differ", m, k + 1);
			}
	}
	clad_set_cancel_check(NULL);
	CHECK(clad_cancel_requested() == 0);
	free(x);
	free(G);
	free(dx0);
	free(dx1);
	free(out0);
	free(out1);
	free(g0);
	free(g1);
	clad_net_free(ref);
	clad_net_free(n);
}

/* clad_model_score and clad_model_embed pass the cancellation on; the model scores as before afterwards. */
static void
test_cancel_model(clad_model *m, const float *x, int B)
{
	float		c0[4], s0[4], c1[4], s1[4], z0[4 * 6], z1[4 * 6];
	int			total;

	if (B > 4)
		return;
	CHECK(clad_model_score(m, x, B, c0, s0) == CLAD_OK);
	CHECK(clad_model_embed(m, x, B, z0, NULL, NULL) == CLAD_OK);
	cancel_arm(1 << 30);
	CHECK(clad_model_score(m, x, B, c1, s1) == CLAD_OK);
	total = cancel_calls;
	clad_set_cancel_check(NULL);
	/* ODIN: forward, input gradient, forward again */
	CHECK_MSG(total >= 30, "%d cancel checks in a score", total);
	CHECK(memcmp(c0, c1, sizeof(float) * B) == 0 && memcmp(s0, s1, sizeof(float) * B) == 0);
	for (int k = 0; k < total; k++)
	{
		clad_status st;

		cancel_arm(k);
		st = clad_model_score(m, x, B, c1, s1);
		CHECK_MSG(st == CLAD_ERR_CANCELLED && cancel_calls == k + 1,
				  "score cancelled at check %d: %s after %d checks", k + 1, clad_status_name(st),
				  cancel_calls);
		clad_set_cancel_check(NULL);
		CHECK(clad_model_score(m, x, B, c1, s1) == CLAD_OK);
		CHECK_MSG(memcmp(c0, c1, sizeof(float) * B) == 0 && memcmp(s0, s1, sizeof(float) * B) == 0,
				  "score after one cancelled at check %d differs", k + 1);
	}
	/* without conf and score outputs too (the internal buffer is freed) */
	cancel_arm(3);
	CHECK(clad_model_score(m, x, B, NULL, NULL) == CLAD_ERR_CANCELLED);
	cancel_arm(0);
	CHECK(clad_model_embed(m, x, B, z1, NULL, NULL) == CLAD_ERR_CANCELLED);
	cancel_arm(2);
	CHECK(clad_model_embed(m, x, B, z1, NULL, NULL) == CLAD_ERR_CANCELLED);
	clad_set_cancel_check(NULL);
	CHECK(clad_model_embed(m, x, B, z1, NULL, NULL) == CLAD_OK);
	CHECK(memcmp(z0, z1, sizeof(float) * B * 6) == 0);
	CHECK(clad_model_score(m, x, B, c1, s1) == CLAD_OK);
	CHECK(memcmp(c0, c1, sizeof(float) * B) == 0);
}

/* ------------------------------------------------------------ summary */

/* The "summary" metadata must be a JSON object: anything else is CLAD_ERR_FORMAT. */
static void
test_summary_json(const uint8_t *good, size_t len, clad_model *orig)
{
	static const char *const bad[] = {
		"not json", "[1,2]", "{\"a\":1,\"a\":2}", "{\"a\": {\"b\": 1, \"b\": 2}}", "", "null",
		"1", "\"{}\"", "{", "{\"a\": 1,}", "{} {}", "{}x", "{'a': 1}",
	};
	static const char *const good_values[] = {
		"{}", "{\"auroc\": 0.9}", " { } ", "{\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\"}",
	};
	uint8_t    *b;
	size_t		blen;
	float		x[784], c0[1], c1[1];
	clad_rng	r;

	clad_rng_seed(&r, 8);
	for (int i = 0; i < 784; i++)
		x[i] = clad_rng_uniform(&r);
	CHECK(clad_model_score(orig, x, 1, c0, NULL) == CLAD_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		clad_model *m = (clad_model *) 1;
		clad_status st;

		b = with_meta(good, len, "summary", bad[i], &blen);
		st = clad_model_load(b, blen, &m);
		CHECK_MSG(st == CLAD_ERR_FORMAT && m == NULL && strstr(clad_last_error(), "summary"),
				  "summary '%s': %s (%s)", bad[i], clad_status_name(st), clad_last_error());
		free(b);
	}
	for (size_t i = 0; i < sizeof(good_values) / sizeof(good_values[0]); i++)
	{
		clad_model *m = NULL;
		clad_status st;

		b = with_meta(good, len, "summary", good_values[i], &blen);
		st = clad_model_load(b, blen, &m);
		CHECK_MSG(st == CLAD_OK && m, "summary '%s': %s (%s)", good_values[i],
				  clad_status_name(st), clad_last_error());
		if (m)
		{
			CHECK(strcmp(m->summary, good_values[i]) == 0);
			CHECK(clad_model_score(m, x, 1, c1, NULL) == CLAD_OK && c1[0] == c0[0]);
		}
		clad_model_free(m);
		free(b);
	}
	/* saving checks the summary too: no model file that cannot be loaded again */
	{
		clad_model *m = make_model();

		free(m->summary);
		m->summary = strdup("[\"not an object\"]");
		b = NULL;
		CHECK(clad_model_save(m, &b, &blen) == CLAD_ERR_INVALID && b == NULL);
		free(b);
		clad_model_free(m);
	}
}

/*
 * Releasing the weights the inference plans replace: the same scores and
 * embeddings as before, less resident memory, and everything that would need
 * the released weights refused until the model is loaded again.
 */
static void
test_release(void)
{
	clad_model *m, *m2 = NULL;
	uint8_t    *buf = NULL, *b2 = NULL;
	size_t		len, l2;
	float		x[3 * 784], c0[3], s0[3], z0[18], c1[3], s1[3], z1[18];
	size_t		released;
	clad_rng	r;

	CHECK(clad_model_create("cvae", "resnet18", 1, 28, 28, 4, 6, &m) == CLAD_OK);
	clad_autoencoder_init(m->encoder, 3);
	clad_classifier_init(m->clf, "resnet18", 4);
	m->mean[0] = 0.13f;
	m->std[0] = 0.31f;
	m->T = 1000.0f;
	m->eps = 0.0161f;
	m->threshold = 0.25f;
	clad_rng_seed(&r, 11);
	for (int i = 0; i < 3 * 784; i++)
		x[i] = clad_rng_uniform(&r);
	CHECK(clad_model_prepare(m, 4) == CLAD_OK);
	CHECK(clad_model_score(m, x, 3, c0, s0) == CLAD_OK);
	CHECK(clad_model_embed(m, x, 3, z0, NULL, NULL) == CLAD_OK);
	CHECK(clad_model_save(m, &buf, &len) == CLAD_OK);

	released = clad_model_release_weights(m);
	/* ResNet-18's layers 2-4 run on inference plans at 28x28: most of its 44 MB */
	CHECK_MSG(released > 30u * 1024 * 1024, "released only %zu bytes", released);
	CHECK(clad_model_release_weights(m) == 0);	/* twice: nothing more */
	for (int b = 1; b <= 3; b++)
	{
		CHECK(clad_model_score(m, x, b, c1, s1) == CLAD_OK);
		CHECK(clad_model_embed(m, x, b, z1, NULL, NULL) == CLAD_OK);
		for (int i = 0; i < b; i++)
			CHECK(c1[i] == c0[i] && s1[i] == s0[i]);
		/* the encoder's im2col blocks depend on the batch: equal up to rounding */
		for (int i = 0; i < b * 6; i++)
			CHECK_MSG(b == 3 ? z1[i] == z0[i] : fabsf(z1[i] - z0[i]) <= 1e-5f * (1.0f + fabsf(z0[i])),
					  "embedding %d of batch %d: %g, before release %g", i, b, z1[i], z0[i]);
	}
	/* refused: a batch beyond the plans, training mode, training steps, saving, preparing again */
	{
		float		big[5 * 784] = {0}, cb[5];
		clad_adam	opt = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};

		CHECK(clad_model_score(m, big, 5, cb, NULL) == CLAD_ERR_INVALID);
		CHECK(clad_net_forward(m->clf, x, 1, CLAD_TRAIN) == CLAD_ERR_INVALID);
		CHECK(clad_net_forward(m->clf, x, 1, CLAD_EVAL) == CLAD_OK);
		CHECK(clad_net_backward(m->clf, clad_net_output(m->clf), 1, NULL) == CLAD_ERR_INVALID);
		CHECK(clad_net_adam_step(m->clf, &opt) == CLAD_ERR_INVALID);
		CHECK(clad_model_save(m, &b2, &l2) == CLAD_ERR_INVALID && b2 == NULL);
		CHECK(clad_model_prepare(m, 4) == CLAD_ERR_INVALID);
		/* and the model still scores afterwards */
		CHECK(clad_model_score(m, x, 1, c1, s1) == CLAD_OK && c1[0] == c0[0]);
	}
	clad_model_free(m);

	/* a loaded model releases the same way and scores the same */
	CHECK(clad_model_load(buf, len, &m2) == CLAD_OK);
	if (m2)
	{
		CHECK(clad_model_prepare(m2, 4) == CLAD_OK);
		CHECK(clad_model_release_weights(m2) == released);
		CHECK(clad_model_score(m2, x, 3, c1, s1) == CLAD_OK);
		for (int i = 0; i < 3; i++)
			CHECK(c1[i] == c0[i]);
		clad_model_free(m2);
	}
	free(buf);
}

int
main(void)
{
	clad_model *m = make_model(), *m2 = NULL;
	uint8_t    *buf, *bad;
	size_t		len, blen;
	float		x[3 * 784], z1[18], z2[18], p1[12], p2[12], c1[3], c2[3], s1[3], s2[3];
	int32_t		k1[3], k2[3];
	clad_rng	r;

	clad_blas_init(CLAD_BLAS_AUTO, 1);
	clad_rng_seed(&r, 5);
	for (int i = 0; i < 3 * 784; i++)
		x[i] = clad_rng_uniform(&r);

	/* round trip: same settings, same outputs */
	CHECK(clad_model_save(m, &buf, &len) == CLAD_OK);
	CHECK(clad_model_load(buf, len, &m2) == CLAD_OK);
	if (!m2)
		return test_summary("test_model");
	CHECK(m2->C == 1 && m2->H == 28 && m2->K == 4 && m2->latent == 6 && m2->n_calib == 5);
	CHECK(m2->mean[0] == 0.13f && m2->std[0] == 0.31f && m2->eps == 0.0161f && m2->T == 1000.0f);
	CHECK(strcmp(m2->summary, "{\"auroc\": 0.9}") == 0 && strcmp(m2->classifier, "cnn") == 0);
	CHECK(clad_model_embed(m, x, 3, z1, p1, k1) == CLAD_OK);
	CHECK(clad_model_embed(m2, x, 3, z2, p2, k2) == CLAD_OK);
	CHECK(memcmp(z1, z2, sizeof(z1)) == 0 && memcmp(p1, p2, sizeof(p1)) == 0 && memcmp(k1, k2, sizeof(k1)) == 0);
	CHECK(clad_model_score(m, x, 3, c1, s1) == CLAD_OK);
	CHECK(clad_model_prepare(m2, 8) == CLAD_OK);
	CHECK(clad_model_score(m2, x, 3, c2, s2) == CLAD_OK);
	for (int b = 0; b < 3; b++)
	{
		CHECK(fabsf(c1[b] - c2[b]) <= 1e-6f * c1[b]);
		CHECK(s2[b] >= 0.0f && s2[b] <= 1.0f);
		/* one image alone scores as in the batch */
		CHECK(clad_model_score(m2, x + b * 784, 1, c2, s2) == CLAD_OK);
		CHECK(fabsf(c1[b] - c2[0]) <= 1e-6f * c1[b]);
	}
	for (int b = 0; b < 3; b++)
	{
		float		sum = 0;

		for (int k = 0; k < 4; k++)
			sum += p1[b * 4 + k];
		CHECK(fabsf(sum - 1.0f) < 1e-5f && k1[b] >= 0 && k1[b] < 4);
	}
	/* calibrated score: (n + 1 - i) / (n + 1) at the i-th calibration
	 * confidence, linear in between, 1 at confidence 0, 0 at 1, strictly falling */
	CHECK(clad_model_calibrated_score(m2, 0.0f) > 1.0f - 1e-6f && clad_model_calibrated_score(m2, 0.0f) <= 1.0f);
	CHECK(clad_model_calibrated_score(m2, 1.0f) < 1e-6f && clad_model_calibrated_score(m2, 1.0f) >= 0.0f);
	CHECK(m2->n_calib >= 3);
	for (int i = 0; i < m2->n_calib; i++)
		if ((i == 0 || m2->calib[i - 1] < m2->calib[i]) && (i + 1 == m2->n_calib || m2->calib[i] < m2->calib[i + 1]))
			CHECK_MSG(fabsf(clad_model_calibrated_score(m2, m2->calib[i]) -
							(float) (m2->n_calib - i) / (float) (m2->n_calib + 1)) < 1e-6f,
					  "calibrated score at calibration confidence %d", i);
	{
		/* from 5 spacings below the first calibration confidence to 5 above the last */
		float		sp = (m2->calib[m2->n_calib - 1] - m2->calib[0]) / (float) (m2->n_calib - 1);
		float		prev = 2.0f, lo = m2->calib[0] - 5 * sp, hi = m2->calib[m2->n_calib - 1] + 5 * sp;
		int			falls = 1;

		for (int j = 0; j <= 1000; j++)
		{
			float		sc = clad_model_calibrated_score(m2, lo + (hi - lo) * (float) j / 1000.0f);

			falls &= sc < prev && sc >= 0.0f && sc <= 1.0f;
			prev = sc;
		}
		CHECK_MSG(falls, "the calibrated score must fall strictly with the confidence");
	}
	/* bad pixels */
	x[7] = NAN;
	CHECK(clad_model_score(m2, x, 1, c2, s2) == CLAD_ERR_NUMERIC);
	x[7] = 0.5f;

	/* truncation: every offset of the header, and a spread of offsets in the data */
	{
		size_t		hdr = 8 + (size_t) buf[0] + ((size_t) buf[1] << 8) + ((size_t) buf[2] << 16);

		for (size_t cut = 0; cut < len; cut += cut < hdr + 16 ? 1 : 9973)
			refused(buf, cut, "a truncated model");
	}
	/* metadata */
	{
		static const char *const keys[] = {"format", "format_version", "input_shape", "normalize_mean",
			"normalize_std", "autoencoder", "classifier", "clusters", "latent", "odin_temperature",
		"odin_epsilon", "threshold", "summary"};
		static const char *const bad_values[][2] = {
			{"format", "onnx"}, {"format_version", "2"}, {"format_version", "1x"},
			{"input_shape", "1,28"}, {"input_shape", "1,28,28,"}, {"input_shape", "3,28,28"},
			{"normalize_mean", "nan"}, {"normalize_std", "0"}, {"normalize_std", "0.3,0.3"},
			{"autoencoder", "vae"}, {"classifier", "resnet50"}, {"clusters", "1"},
			{"clusters", "5"}, {"latent", "7"}, {"odin_temperature", "-1"}, {"odin_epsilon", "inf"},
			{"threshold", ""},
		};

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		{
			bad = with_meta(buf, len, keys[i], NULL, &blen);
			refused(bad, blen, keys[i]);
			free(bad);
		}
		for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
		{
			bad = with_meta(buf, len, bad_values[i][0], bad_values[i][1], &blen);
			refused(bad, blen, bad_values[i][1]);
			free(bad);
		}
	}
	/* tensors: missing, misshapen, wrong dtype, NaN, unsorted calibration */
	{
		float		w[4 * 6 * 9] = {0};
		int64_t		s_wrong[2] = {4, 5}, s_ok[2] = {4, 6}, s_cal[1] = {5};
		float		cal[5] = {0.5f, 0.4f, 0.6f, 0.7f, 0.8f};

		bad = with_tensor(buf, len, "classifier.fc3.weight", CLAD_DTYPE_F32, -1, NULL, NULL, &blen);
		refused(bad, blen, "a model without classifier.fc3.weight");
		free(bad);
		bad = with_tensor(buf, len, "encoder.conv1.bias", CLAD_DTYPE_F32, -1, NULL, NULL, &blen);
		refused(bad, blen, "a model without encoder.conv1.bias");
		free(bad);
		bad = with_tensor(buf, len, "dec.centers", CLAD_DTYPE_F32, 2, s_wrong, w, &blen);
		refused(bad, blen, "misshapen centres");
		free(bad);
		bad = with_tensor(buf, len, "dec.centers", CLAD_DTYPE_I32, 2, s_ok, w, &blen);
		refused(bad, blen, "I32 centres");
		free(bad);
		w[3] = NAN;
		bad = with_tensor(buf, len, "dec.centers", CLAD_DTYPE_F32, 2, s_ok, w, &blen);
		refused(bad, blen, "NaN centres");
		free(bad);
		bad = with_tensor(buf, len, "calibration.confidences", CLAD_DTYPE_F32, 1, s_cal, cal, &blen);
		refused(bad, blen, "unsorted calibration");
		free(bad);
		bad = with_tensor(buf, len, "classifier.bn4.num_batches_tracked", CLAD_DTYPE_F32, 0, NULL, w, &blen);
		refused(bad, blen, "an F32 counter");
		free(bad);
	}
	test_summary_json(buf, len, m2);
	test_cancel_model(m2, x, 3);
	test_cancel_model(m, x, 1);
	test_cancel_net();
	clad_set_cancel_check(NULL);
	free(buf);
	clad_model_free(m);
	clad_model_free(m2);
	test_release();
	return test_summary("test_model");
}
