/* core/model.c: the CLAD model file (safetensors + metadata), its validation, and scoring. */
#include "model.h"
#include "vectorize.h"

#include <jansson.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clad_status model_create(const char *autoencoder, const char *classifier, int C, int H, int W,
								int K, int latent, int R, int with_decoder, clad_model **out);
static clad_status model_read(const uint8_t *buf, size_t len, int with_nets, int member, clad_model **out);

clad_status
clad_model_create(const char *autoencoder, const char *classifier,
				  int C, int H, int W, int K, int latent, clad_model **out)
{
	return model_create(autoencoder, classifier, C, H, W, K, latent, 1, 1, out);
}

clad_status
clad_model_create_rotations(const char *autoencoder, const char *classifier,
							int C, int H, int W, int K, int latent, int R, clad_model **out)
{
	return model_create(autoencoder, classifier, C, H, W, K, latent, R, 1, out);
}

/*
 * A new model; without the decoder (which only training uses) when
 * with_decoder is 0; without a classifier and DEC centres when classifier is
 * NULL (then K is 0); without an encoder when autoencoder is NULL too.
 */
static clad_status
model_create(const char *autoencoder, const char *classifier, int C, int H, int W,
			 int K, int latent, int R, int with_decoder, clad_model **out)
{
	clad_model *m;
	clad_status st;

	*out = NULL;
	if (R != 1 && R != 2 && R != 4)
		return clad_fail(CLAD_ERR_INVALID, "rotations must be 1, 2 or 4, not %d", R);
	if (R == 4 && H != W)
		return clad_fail(CLAD_ERR_INVALID, "quarter turns need square images, not %dx%d (use 2 rotations)",
						 H, W);
	if ((long) K * R > 65536)
		return clad_fail(CLAD_ERR_INVALID, "%d clusters x %d rotations are too many classes", K, R);
	if (C < 1 || C > CLAD_MAX_CHANNELS || H < 1 || W < 1 || H > 4096 || W > 4096)
		return clad_fail(CLAD_ERR_INVALID, "input shape %dx%dx%d out of range (1-%d channels, sides up to 4096)",
						 C, H, W, CLAD_MAX_CHANNELS);
	if (!(m = calloc(1, sizeof(*m))))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory creating model");
	snprintf(m->autoencoder, sizeof(m->autoencoder), "%s", autoencoder ? autoencoder : "");
	snprintf(m->classifier, sizeof(m->classifier), "%s", classifier ? classifier : "");
	if (!classifier)
		K = 0;
	m->C = C;
	m->H = H;
	m->W = W;
	m->K = K;
	m->latent = latent;
	m->rotations = R;
	for (int c = 0; c < CLAD_MAX_CHANNELS; c++)
	{
		m->mean[c] = 0.0f;
		m->std[c] = 1.0f;
	}
	m->T = 1000.0f;
	m->eps = 0.0f;
	m->threshold = 0.0f;
	if (!(m->summary = strdup("{}")) ||
		(classifier && !(m->centers = calloc((size_t) K * (latent > 0 ? latent : 1), sizeof(float)))))
	{
		clad_model_free(m);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory creating model");
	}
	if ((autoencoder && (st = clad_autoencoder_build(autoencoder, C, H, W, latent, &m->encoder,
													 with_decoder ? &m->decoder : NULL)) != CLAD_OK) ||
		(classifier && (st = clad_classifier_build(classifier, C, H, W, K * R, &m->clf)) != CLAD_OK))
	{
		clad_model_free(m);
		return st;
	}
	*out = m;
	return CLAD_OK;
}

clad_status
clad_model_create_deepsvdd(const char *autoencoder, int C, int H, int W, int latent, int with_decoder,
						   clad_model **out)
{
	clad_status st = model_create(autoencoder, NULL, C, H, W, 0, latent, 1, with_decoder, out);

	if (st != CLAD_OK)
		return st;
	(*out)->method = CLAD_METHOD_DEEPSVDD;
	if (!((*out)->svdd_center = calloc(latent > 0 ? latent : 1, sizeof(float))))
	{
		clad_model_free(*out);
		*out = NULL;
		return clad_fail(CLAD_ERR_NOMEM, "out of memory creating model");
	}
	return CLAD_OK;
}

clad_status
clad_model_create_ocsvm(int C, int H, int W, int n_sv, float gamma, float rho, clad_model **out)
{
	clad_status st = model_create(NULL, NULL, C, H, W, 0, 0, 1, 0, out);

	if (st != CLAD_OK)
		return st;
	(*out)->method = CLAD_METHOD_OCSVM;
	if ((st = clad_ocsvm_init(&(*out)->svm, n_sv, C * H * W, gamma, rho)) != CLAD_OK)
	{
		clad_model_free(*out);
		*out = NULL;
	}
	return st;
}

clad_status
clad_model_create_ensemble(clad_model **members, int n, clad_model **out)
{
	clad_status st = CLAD_OK;

	*out = NULL;
	if (n < 2 || n > CLAD_MAX_MEMBERS)
		st = clad_fail(CLAD_ERR_INVALID, "an ensemble has 2 to %d models, not %d", CLAD_MAX_MEMBERS, n);
	for (int i = 0; st == CLAD_OK && i < n; i++)
		if (!members[i] || members[i]->method == CLAD_METHOD_ENSEMBLE)
			st = clad_fail(CLAD_ERR_INVALID, "ensemble member %d is %s", i,
						   members[i] ? "an ensemble itself" : "missing");
		else if (members[i]->C != members[0]->C || members[i]->H != members[0]->H ||
				 members[i]->W != members[0]->W)
			st = clad_fail(CLAD_ERR_SHAPE, "ensemble member %d takes %dx%dx%d images, member 0 %dx%dx%d", i,
						   members[i]->C, members[i]->H, members[i]->W, members[0]->C, members[0]->H,
						   members[0]->W);
	if (st == CLAD_OK)
		st = model_create(NULL, NULL, members[0]->C, members[0]->H, members[0]->W, 0, 0, 1, 0, out);
	if (st != CLAD_OK)
	{
		for (int i = 0; i < n && i < CLAD_MAX_MEMBERS; i++)
			clad_model_free(members[i]);
		return st;
	}
	(*out)->method = CLAD_METHOD_ENSEMBLE;
	for (int i = 0; i < n; i++)
		(*out)->members[i] = members[i];
	(*out)->n_members = n;
	return CLAD_OK;
}

const char *
clad_model_method_name(const clad_model *m)
{
	switch (m->method)
	{
		case CLAD_METHOD_DEEPSVDD:
			return "deepsvdd";
		case CLAD_METHOD_OCSVM:
			return "ocsvm";
		case CLAD_METHOD_ENSEMBLE:
			return "ensemble";
		default:
			return "clad";
	}
}

void
clad_model_free(clad_model *m)
{
	if (!m)
		return;
	clad_net_free(m->encoder);
	clad_net_free(m->decoder);
	clad_net_free(m->clf);
	free(m->centers);
	free(m->svdd_center);
	free(m->calib);
	free(m->summary);
	free(m->xnorm);
	clad_odin_work_free(&m->odin);
	clad_orientation_work_free(&m->orient);
	clad_neighbours_free(&m->nb);
	clad_ocsvm_free(&m->svm);
	for (int i = 0; i < m->n_members; i++)
		clad_model_free(m->members[i]);
	free(m);
}

/* ------------------------------------------------------------------ save */

static clad_status
meta_float(clad_st_writer *w, const char *key, float v)
{
	char		b[64];

	snprintf(b, sizeof(b), "%.9g", v);
	return clad_st_writer_meta(w, key, b);
}

static clad_status
meta_floats(clad_st_writer *w, const char *key, const float *v, int n)
{
	char		b[256];
	size_t		at = 0;

	for (int i = 0; i < n; i++)
		at += (size_t) snprintf(b + at, sizeof(b) - at, "%s%.9g", i ? "," : "", v[i]);
	return clad_st_writer_meta(w, key, b);
}

/* Hosts pass the summary on as JSON (the extension's jsonb): it must be an object. */
static int
summary_is_object(const char *text)
{
	json_t	   *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	int			ok = j && json_is_object(j);

	json_decref(j);
	return ok;
}

static clad_status
model_write(const clad_model *m, int with_nets, uint8_t **buf, size_t *len)
{
	clad_st_writer *w = clad_st_writer_new();
	clad_status st = CLAD_OK;
	char		b[64];
	int64_t		cshape[2] = {m->K, m->latent}, qshape[1] = {m->n_calib}, zshape[1] = {m->latent};
	int			svdd = m->method == CLAD_METHOD_DEEPSVDD, svm = m->method == CLAD_METHOD_OCSVM;
	int			ens = m->method == CLAD_METHOD_ENSEMBLE;
	int64_t		sshape[2] = {m->svm.n_sv, m->svm.dim}, ashape[1] = {m->svm.n_sv};

	*buf = NULL;
	*len = 0;
	if (!w)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory writing model");
#define TRY(call) do { if (st == CLAD_OK) st = (call); } while (0)
	TRY(clad_st_writer_meta(w, "format", "clad"));
	/* each score keeps the version it came with: ODIN models are written as before */
	snprintf(b, sizeof(b), "%d", clad_model_format_version(m));
	TRY(clad_st_writer_meta(w, "format_version", b));
	if (m->method != CLAD_METHOD_CLAD)
		TRY(clad_st_writer_meta(w, "method", clad_model_method_name(m)));
	if (m->rotations > 1)
	{
		TRY(clad_st_writer_meta(w, "score", clad_model_score_name(m)));
		snprintf(b, sizeof(b), "%d", m->rotations);
		TRY(clad_st_writer_meta(w, "rotations", b));
	}
	if (m->neighbours)
	{
		float		pool[CLAD_NEIGHBOUR_MAX_TAPS];

		for (int t = 0; t < m->nb.ntaps; t++)
			pool[t] = (float) m->nb.pool[t];
		TRY(meta_floats(w, "neighbour_pool", pool, m->nb.ntaps));
		TRY(meta_floats(w, "neighbour_mean", m->nb.mean, m->nb.ntaps));
		TRY(meta_floats(w, "neighbour_std", m->nb.std, m->nb.ntaps));
	}
	snprintf(b, sizeof(b), "%d,%d,%d", m->C, m->H, m->W);
	TRY(clad_st_writer_meta(w, "input_shape", b));
	if (ens)
	{
		/* each member normalises as its own file says */
		char		names[CLAD_MAX_MEMBERS * 16] = "";

		for (int i = 0; i < m->n_members; i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? "," : "",
					 clad_model_method_name(m->members[i]));
		TRY(clad_st_writer_meta(w, "members", names));
		TRY(clad_st_writer_meta(w, "combination", "mean_score"));
	}
	else
	{
		TRY(meta_floats(w, "normalize_mean", m->mean, m->C));
		TRY(meta_floats(w, "normalize_std", m->std, m->C));
	}
	if (svm)
	{
		TRY(clad_st_writer_meta(w, "kernel", "rbf"));
		TRY(meta_float(w, "gamma", m->svm.gamma));
		TRY(meta_float(w, "rho", m->svm.rho));
	}
	else if (!ens)
		TRY(clad_st_writer_meta(w, "autoencoder", m->autoencoder));
	if (m->method == CLAD_METHOD_CLAD)
	{
		TRY(clad_st_writer_meta(w, "classifier", m->classifier));
		snprintf(b, sizeof(b), "%d", m->K);
		TRY(clad_st_writer_meta(w, "clusters", b));
	}
	snprintf(b, sizeof(b), "%d", m->latent);
	if (!svm && !ens)
		TRY(clad_st_writer_meta(w, "latent", b));
	if (m->method == CLAD_METHOD_CLAD)
	{
		TRY(meta_float(w, "odin_temperature", m->T));
		TRY(meta_float(w, "odin_epsilon", m->eps));
	}
	TRY(meta_float(w, "threshold", m->threshold));
	if (st == CLAD_OK && !summary_is_object(m->summary ? m->summary : "{}"))
		st = clad_fail(CLAD_ERR_INVALID, "model summary must be a JSON object");
	TRY(clad_st_writer_meta(w, "summary", m->summary ? m->summary : "{}"));
	if (with_nets && m->encoder)
		TRY(clad_net_save(m->encoder, w, "encoder."));
	if (svdd)
		TRY(clad_st_writer_add(w, "svdd.center", CLAD_DTYPE_F32, 1, zshape, m->svdd_center));
	else if (svm)
	{
		/* the support vectors are what scoring reads, so a prepared file's settings hold them too */
		TRY(clad_st_writer_add(w, "ocsvm.support_vectors", CLAD_DTYPE_F32, 2, sshape, m->svm.sv));
		TRY(clad_st_writer_add(w, "ocsvm.coefficients", CLAD_DTYPE_F32, 1, ashape, m->svm.coef));
	}
	else if (ens)
	{
		/* each member as the whole file it would be alone */
		for (int i = 0; st == CLAD_OK && i < m->n_members; i++)
		{
			uint8_t    *mb = NULL;
			size_t		ml = 0;
			char		name[32];

			snprintf(name, sizeof(name), "ensemble.member.%d", i);
			TRY(clad_model_save(m->members[i], &mb, &ml));
			TRY(clad_st_writer_add(w, name, CLAD_DTYPE_U8, 1, (int64_t[]) {(int64_t) ml}, mb));
			free(mb);
		}
	}
	else
	{
		TRY(clad_st_writer_add(w, "dec.centers", CLAD_DTYPE_F32, 2, cshape, m->centers));
		if (with_nets)
			TRY(clad_net_save(m->clf, w, "classifier."));
	}
	TRY(clad_st_writer_add(w, "calibration.confidences", CLAD_DTYPE_F32, 1, qshape, m->calib));
	for (int t = 0; m->neighbours && t < m->nb.ntaps; t++)
	{
		char		name[32];
		int64_t		bshape[3] = {m->nb.R, m->nb.n, m->nb.dim[t]};

		snprintf(name, sizeof(name), "neighbours.bank.%d", t);
		TRY(clad_st_writer_add(w, name, m->nb.bf16 ? CLAD_DTYPE_BF16 : CLAD_DTYPE_F32, 3, bshape, m->nb.bank[t]));
	}
	TRY(clad_st_writer_finish(w, buf, len));
#undef TRY
	clad_st_writer_free(w);
	return st;
}

clad_status
clad_model_save(const clad_model *m, uint8_t **buf, size_t *len)
{
	return model_write(m, 1, buf, len);
}

clad_status
clad_model_save_settings(const clad_model *m, uint8_t **buf, size_t *len)
{
	return model_write(m, 0, buf, len);
}

/* ------------------------------------------------------------------ load */

static clad_status
need_meta(const clad_st_file *f, const char *key, const char **out)
{
	if (!(*out = clad_st_meta(f, key)))
		return clad_fail(CLAD_ERR_FORMAT, "model metadata lacks \"%s\"", key);
	return CLAD_OK;
}

static clad_status
parse_int(const clad_st_file *f, const char *key, int lo, int hi, int *out)
{
	const char *s;
	char	   *end;
	long		v;
	clad_status st = need_meta(f, key, &s);

	if (st != CLAD_OK)
		return st;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return clad_fail(CLAD_ERR_FORMAT, "model metadata \"%s\" must be an integer in %d..%d", key, lo, hi);
	*out = (int) v;
	return CLAD_OK;
}

/* n comma-separated finite floats */
static clad_status
parse_floats(const clad_st_file *f, const char *key, int n, float *out)
{
	const char *s;
	clad_status st = need_meta(f, key, &s);

	if (st != CLAD_OK)
		return st;
	for (int i = 0; i < n; i++)
	{
		char	   *end;
		double		v;

		errno = 0;
		v = strtod(s, &end);
		if (errno || end == s || !isfinite(v) || *end != (i + 1 < n ? ',' : '\0'))
			return clad_fail(CLAD_ERR_FORMAT, "model metadata \"%s\" must be %d finite number%s",
							 key, n, n == 1 ? "" : "s separated by commas");
		out[i] = (float) v;
		s = end + 1;
	}
	return CLAD_OK;
}

/* The float element k of x: bfloat16 (widened exactly, as clad_bf16_float does) or float. */
static inline float
bank_element(const void *x, int bf16, size_t k)
{
	uint32_t	u;
	float		v;

	if (!bf16)
		return ((const float *) x)[k];
	u = (uint32_t) ((const clad_bf16 *) x)[k] << 16;
	memcpy(&v, &u, sizeof(v));
	return v;
}

/*
 * The sum of squares of x (n elements, bfloat16 or float), in 16 float
 * lanes: a vector loop (every load reads the whole bank through here, for a
 * mapped prepared file in a backend's first call; the element type's branch
 * is taken out of the loop by the compiler).  The order of the sums differs
 * from a plain loop's, within 1e-5 of the double sum for a unit row: far
 * inside the tolerance it is checked against.  Not finite when an element is
 * not (or when squares overflow).
 */
CLAD_VECTOR_LOOP
static float
bank_sumsq(const void *x, int bf16, size_t n)
{
	float		s[16] = {0}, sum = 0.0f;
	size_t		k = 0;

	for (; k + 16 <= n; k += 16)
		for (int j = 0; j < 16; j++)
		{
			float		v = bank_element(x, bf16, k + j);

			s[j] += v * v;
		}
	for (; k < n; k++)
	{
		float		v = bank_element(x, bf16, k);

		s[k & 15] += v * v;
	}
	for (int j = 0; j < 16; j++)
		sum += s[j];
	return sum;
}

/*
 * The sum of squares of bank row `row` of tap t, and in *bad the first
 * element that is NaN or infinite (left alone when there is none: looked for
 * only when the sum is not finite, which such an element makes it).
 */
static double
bank_row_sumsq(const clad_neighbours *nb, int t, size_t row, size_t *bad)
{
	size_t		D = (size_t) nb->dim[t];
	const void *x = (const char *) nb->bank[t] + row * D * clad_neighbours_elem_size(nb);
	float		sum = bank_sumsq(x, nb->bf16, D);

	for (size_t k = 0; !isfinite(sum) && k < D && *bad == D; k++)
		if (!isfinite(bank_element(x, nb->bf16, k)))
			*bad = k;
	return sum;
}

/*
 * The neighbour bank of a format 3 file: per feature tap of the classifier its
 * pooling, the held-out statistics and a bank tensor (R, n, dim) of unit
 * (or zero) rows, F32 or BF16 (the same for every tap), n the same for every tap.
 */
static clad_status
read_neighbours(const clad_st_file *f, clad_model *m, int borrow)
{
	int			ntaps = clad_net_num_features(m->clf), pool[CLAD_NEIGHBOUR_MAX_TAPS], n = 0;
	clad_dtype	dtype = CLAD_DTYPE_F32;
	float		v[CLAD_NEIGHBOUR_MAX_TAPS];
	clad_status st;

	if (ntaps < 1)
		return clad_fail(CLAD_ERR_FORMAT, "classifier %s has no feature taps for a neighbour score", m->classifier);
	if ((st = parse_floats(f, "neighbour_pool", ntaps, v)) != CLAD_OK)
		return st;
	for (int t = 0; t < ntaps; t++)
	{
		if (v[t] != floorf(v[t]) || v[t] < 1.0f || v[t] > 4096.0f)
			return clad_fail(CLAD_ERR_FORMAT, "model metadata \"neighbour_pool\" must be whole numbers of cells");
		pool[t] = (int) v[t];
	}
	for (int t = 0; t < ntaps; t++)
	{
		char		name[32];
		const clad_st_tensor *b;

		snprintf(name, sizeof(name), "neighbours.bank.%d", t);
		b = clad_st_find(f, name);
		if (b && t == 0)
			dtype = b->dtype;
		if (!b || (b->dtype != CLAD_DTYPE_F32 && b->dtype != CLAD_DTYPE_BF16) || b->dtype != dtype ||
			b->ndim != 3 || b->shape[0] != m->rotations ||
			b->shape[1] < 1 || b->shape[1] > (1 << 24) || (t > 0 && b->shape[1] != n))
			return clad_fail(CLAD_ERR_FORMAT, "model lacks an F32 or BF16 \"%s\" of shape (%d, n, features) "
							 "with the same n and type for every tap", name, m->rotations);
		n = (int) b->shape[1];
	}
	if ((st = clad_neighbours_init(&m->nb, m->clf, m->rotations, pool, n, dtype == CLAD_DTYPE_BF16)) != CLAD_OK)
		return st == CLAD_ERR_INVALID ? clad_fail(CLAD_ERR_FORMAT, "model metadata \"neighbour_pool\" does not fit "
												  "the classifier's features") : st;
	if ((st = parse_floats(f, "neighbour_mean", ntaps, m->nb.mean)) != CLAD_OK ||
		(st = parse_floats(f, "neighbour_std", ntaps, m->nb.std)) != CLAD_OK)
		return st;
	for (int t = 0; t < ntaps; t++)
	{
		char		name[32];
		size_t		D = (size_t) m->nb.dim[t], esize = clad_neighbours_elem_size(&m->nb);
		/* a row's squared length may miss 1 by its elements' rounding: 2^-24 x 2 or 2^-8 x 2, and a margin */
		double		tol = m->nb.bf16 ? 1e-2 : 1e-3;
		const clad_st_tensor *b;

		if (!(m->nb.std[t] > 0.0f))
			return clad_fail(CLAD_ERR_FORMAT, "model metadata \"neighbour_std\" must be positive");
		snprintf(name, sizeof(name), "neighbours.bank.%d", t);
		b = clad_st_find(f, name);
		if (b->shape[2] != (int64_t) D)
			return clad_fail(CLAD_ERR_SHAPE, "tensor \"%s\" dim 2 is %lld, expected %lld", name,
							 (long long) b->shape[2], (long long) D);
		if (borrow && (uintptr_t) b->data % esize == 0)
			/* scored where it lies (a prepared file's mapping); checked below as a copy is */
			clad_neighbours_borrow(&m->nb, t, b->data);
		else
			memcpy(m->nb.owned[t], b->data, b->nbytes);
		for (size_t row = 0; row < (size_t) m->rotations * n; row++)
		{
			size_t		bad = D;
			double		norm = bank_row_sumsq(&m->nb, t, row, &bad);

			if (bad < D)
				return clad_fail(CLAD_ERR_NUMERIC, "tensor \"%s\" holds NaN or infinity at element %zu",
								 name, row * D + bad);
			if (norm != 0.0 && fabs(norm - 1.0) > tol)
				return clad_fail(CLAD_ERR_FORMAT, "model \"%s\" rows must be finite and of unit length", name);
		}
	}
	m->neighbours = 1;
	return CLAD_OK;
}

/*
 * A one-class SVM model from its settings: kernel, gamma and rho, the number
 * of support vectors; and nothing of the other methods (no nets, no
 * clusters or centres, no other tensors).
 */
static clad_status
read_ocsvm_settings(const clad_st_file *f, int C, int H, int W, clad_model **out)
{
	static const char *others[] = {"autoencoder", "latent", "classifier", "clusters", "odin_temperature",
	"odin_epsilon", "score", "rotations"};
	const clad_st_tensor *sv = clad_st_find(f, "ocsvm.support_vectors");
	const char *s;
	float		gamma, rho;
	clad_status st;

	for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++)
		if (clad_st_meta(f, others[i]))
			return clad_fail(CLAD_ERR_FORMAT, "an ocsvm model has no \"%s\" (it has no nets)", others[i]);
	for (size_t i = 0; i < f->n_tensors; i++)
	{
		const char *name = f->tensors[i].name;

		if (strcmp(name, "ocsvm.support_vectors") != 0 && strcmp(name, "ocsvm.coefficients") != 0 &&
			strcmp(name, "calibration.confidences") != 0)
			return clad_fail(CLAD_ERR_FORMAT, "an ocsvm model has no tensor \"%.64s\"", name);
	}
	if ((st = need_meta(f, "kernel", &s)) != CLAD_OK)
		return st;
	if (strcmp(s, "rbf") != 0)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "ocsvm kernel \"%.32s\": this build scores rbf", s);
	if ((st = parse_floats(f, "gamma", 1, &gamma)) != CLAD_OK ||
		(st = parse_floats(f, "rho", 1, &rho)) != CLAD_OK)
		return st;
	if (C < 1 || C > CLAD_MAX_CHANNELS || H < 1 || W < 1 || H > 4096 || W > 4096)
		return clad_fail(CLAD_ERR_INVALID, "input shape %dx%dx%d out of range (1-%d channels, sides up to 4096)",
						 C, H, W, CLAD_MAX_CHANNELS);
	if (!sv || sv->dtype != CLAD_DTYPE_F32 || sv->ndim != 2 || sv->shape[0] < 1 || sv->shape[0] > (1 << 24) ||
		sv->shape[1] != (int64_t) C * H * W)
		return clad_fail(CLAD_ERR_FORMAT, "model lacks an F32 \"ocsvm.support_vectors\" of shape (n, %d)",
						 C * H * W);
	return clad_model_create_ocsvm(C, H, W, (int) sv->shape[0], gamma, rho, out);
}

/* The support vectors (borrowed where they lie when borrow and aligned) and coefficients, checked. */
static clad_status
read_ocsvm_vectors(const clad_st_file *f, clad_model *m, int borrow)
{
	const clad_st_tensor *sv = clad_st_find(f, "ocsvm.support_vectors");
	clad_status st;

	if (borrow && (uintptr_t) sv->data % sizeof(float) == 0)
		/* scored where it lies (a prepared file's mapping); checked below as a copy is */
		clad_ocsvm_borrow(&m->svm, (const float *) sv->data);
	else
		memcpy(m->svm.sv_owned, sv->data, sv->nbytes);
	if ((st = clad_st_read_f32(f, "ocsvm.coefficients", 1, (int64_t[]) {m->svm.n_sv}, m->svm.coef)) != CLAD_OK)
		return st;
	return clad_ocsvm_check(&m->svm);
}

/*
 * An ensemble from its file: only its own keys; its members, each a whole
 * model file loaded as one (every check of its method), of the methods its
 * "members" names, in order, and of its input shape; no nested ensemble.
 */
static clad_status
read_ensemble(const clad_st_file *f, int C, int H, int W, clad_model **out)
{
	static const char *keys[] = {"format", "format_version", "method", "input_shape", "members", "combination",
	"threshold", "summary"};
	clad_model *members[CLAD_MAX_MEMBERS] = {0};
	const char *s, *names;
	int			n = 0;
	clad_status st;

	for (size_t i = 0; i < f->n_meta; i++)
	{
		size_t		k = 0;

		while (k < sizeof(keys) / sizeof(*keys) && strcmp(keys[k], f->meta_keys[i]) != 0)
			k++;
		if (k == sizeof(keys) / sizeof(*keys))
			return clad_fail(CLAD_ERR_FORMAT, "an ensemble model has no \"%.64s\" (its members carry their "
							 "settings)", f->meta_keys[i]);
	}
	if ((st = need_meta(f, "combination", &s)) != CLAD_OK || (st = need_meta(f, "members", &names)) != CLAD_OK)
		return st;
	if (strcmp(s, "mean_score") != 0)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "ensemble combination \"%.32s\": this build combines by "
						 "mean_score", s);
	for (size_t i = 0; i < f->n_tensors; i++)
	{
		const clad_st_tensor *t = &f->tensors[i];
		char		want[32];
		int			k;

		if (strcmp(t->name, "calibration.confidences") == 0)
			continue;
		if (sscanf(t->name, "ensemble.member.%d", &k) != 1 || k < 0 || k >= CLAD_MAX_MEMBERS ||
			(snprintf(want, sizeof(want), "ensemble.member.%d", k), strcmp(want, t->name) != 0))
			return clad_fail(CLAD_ERR_FORMAT, "an ensemble model has no tensor \"%.64s\"", t->name);
		if (t->dtype != CLAD_DTYPE_U8 || t->ndim != 1)
			return clad_fail(CLAD_ERR_FORMAT, "ensemble member \"%s\" must be a 1-D U8 tensor (a model file)",
							 t->name);
		n++;
	}
	if (n < 2)
		return clad_fail(CLAD_ERR_FORMAT, "an ensemble model needs 2 to %d members, it has %d", CLAD_MAX_MEMBERS, n);
	for (int i = 0; i < n; i++)
	{
		char		name[32];
		const clad_st_tensor *t;
		size_t		len = strcspn(names, ",");

		snprintf(name, sizeof(name), "ensemble.member.%d", i);
		if (!(t = clad_st_find(f, name)))
			st = clad_fail(CLAD_ERR_FORMAT, "ensemble model lacks \"%s\" (members are numbered from 0)", name);
		else if ((st = model_read(t->data, t->nbytes, 1, 1, &members[i])) != CLAD_OK)
		{
			char		why[400];

			snprintf(why, sizeof(why), "%s", clad_last_error());
			st = clad_fail(st, "ensemble member %d: %s", i, why);
		}
		else if (strlen(clad_model_method_name(members[i])) != len ||
				 strncmp(clad_model_method_name(members[i]), names, len) != 0 ||
				 (names[len] == '\0') != (i == n - 1))
			st = clad_fail(CLAD_ERR_FORMAT, "ensemble model metadata \"members\" does not name its %d members' "
						   "methods in order", n);
		else if (members[i]->C != C || members[i]->H != H || members[i]->W != W)
			st = clad_fail(CLAD_ERR_SHAPE, "ensemble member %d takes %dx%dx%d images, the ensemble %dx%dx%d", i,
						   members[i]->C, members[i]->H, members[i]->W, C, H, W);
		if (st != CLAD_OK)
		{
			for (int j = 0; j <= i; j++)
				clad_model_free(members[j]);
			return st;
		}
		names += len + (names[len] == ',');
	}
	return clad_model_create_ensemble(members, n, out);
}

/* member: a file inside an ensemble's, which may not be an ensemble (refused before it is read) */
static clad_status
model_read(const uint8_t *buf, size_t len, int with_nets, int member, clad_model **out)
{
	clad_st_file *f = NULL;
	clad_model *m = NULL;
	clad_status st;
	const char *s, *ae, *clf = NULL;
	int			version, C, H, W, K = 0, latent = 0, R = 1, svdd = 0, svm = 0, ens = 0;

	*out = NULL;
	if ((st = clad_st_parse(buf, len, &f)) != CLAD_OK)
		return st;
#define TRY(call) do { if ((st = (call)) != CLAD_OK) goto fail; } while (0)
	TRY(need_meta(f, "format", &s));
	if (strcmp(s, "clad") != 0)
	{
		st = clad_fail(CLAD_ERR_FORMAT, "not a clad model (format \"%s\")", s);
		goto fail;
	}
	TRY(parse_int(f, "format_version", 1, 1000000, &version));
	if (version < 1 || version > CLAD_FORMAT_VERSION)
	{
		st = clad_fail(CLAD_ERR_UNSUPPORTED, "model format version %d, this build reads 1 to %d",
					   version, CLAD_FORMAT_VERSION);
		goto fail;
	}
	if (version == 4)
	{
		/* another method than CLAD */
		TRY(need_meta(f, "method", &s));
		svdd = strcmp(s, "deepsvdd") == 0;
		svm = strcmp(s, "ocsvm") == 0;
		ens = strcmp(s, "ensemble") == 0;
		if (ens && member)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "an ensemble's member cannot be an ensemble");
			goto fail;
		}
		if (!svdd && !svm && !ens)
		{
			st = clad_fail(CLAD_ERR_UNSUPPORTED, "model method \"%.32s\": this build reads deepsvdd, ocsvm "
						   "and ensemble in format version 4 (and clad in 1 to 3)", s);
			goto fail;
		}
	}
	else if (clad_st_meta(f, "method"))
	{
		st = clad_fail(CLAD_ERR_FORMAT, "model metadata \"method\" belongs to format version 4, not %d",
					   version);
		goto fail;
	}
	if (version == 2 || version == 3)
	{
		const char *want = version == 2 ? "orientation" : "neighbours";

		TRY(need_meta(f, "score", &s));
		if (strcmp(s, want) != 0)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "model metadata \"score\" must be \"%s\" in format version %d",
						   want, version);
			goto fail;
		}
		TRY(parse_int(f, "rotations", 2, 4, &R));
		if (R == 3)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "model metadata \"rotations\" must be 2 or 4");
			goto fail;
		}
	}
	TRY(need_meta(f, "input_shape", &s));
	{
		char		tail;

		if (sscanf(s, "%d,%d,%d%c", &C, &H, &W, &tail) != 3)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "model metadata \"input_shape\" must be C,H,W");
			goto fail;
		}
	}
	if (svm)
		TRY(read_ocsvm_settings(f, C, H, W, &m));
	else if (ens)
		TRY(read_ensemble(f, C, H, W, &m));
	else if (clad_st_meta(f, "kernel") || clad_st_find(f, "ocsvm.support_vectors"))
	{
		st = clad_fail(CLAD_ERR_FORMAT, "only an ocsvm model has a kernel and support vectors");
		goto fail;
	}
	else
	{
		TRY(need_meta(f, "autoencoder", &ae));
		if (svdd && (clad_st_meta(f, "classifier") || clad_st_meta(f, "clusters") || clad_st_find(f, "dec.centers")))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "a deepsvdd model has no classifier, clusters or DEC centres");
			goto fail;
		}
		if (!svdd)
		{
			TRY(need_meta(f, "classifier", &clf));
			TRY(parse_int(f, "clusters", 2, 65536, &K));
		}
		TRY(parse_int(f, "latent", 1, 65536, &latent));
		/* settings only: nets without weight memory, for clad_net_use_mapped */
		clad_net_defer_weights(!with_nets);
		if (svdd)
			st = clad_model_create_deepsvdd(ae, C, H, W, latent, 0, &m);
		else
			st = model_create(ae, clf, C, H, W, K, latent, R, 0, &m);	/* the decoder is for training only */
		clad_net_defer_weights(0);
		if (st != CLAD_OK)
			goto fail;
	}
	if (!ens)
	{
		TRY(parse_floats(f, "normalize_mean", C, m->mean));
		TRY(parse_floats(f, "normalize_std", C, m->std));
	}
	for (int c = 0; c < C; c++)
		if (!(m->std[c] > 0.0f))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "model normalisation std must be positive");
			goto fail;
		}
	if (m->method == CLAD_METHOD_CLAD)
	{
		TRY(parse_floats(f, "odin_temperature", 1, &m->T));
		TRY(parse_floats(f, "odin_epsilon", 1, &m->eps));
	}
	TRY(parse_floats(f, "threshold", 1, &m->threshold));
	if (!(m->T > 0.0f) || !(m->eps >= 0.0f))
	{
		st = clad_fail(CLAD_ERR_FORMAT, "model needs odin_temperature > 0 and odin_epsilon >= 0");
		goto fail;
	}
	TRY(need_meta(f, "summary", &s));
	{
		if (!summary_is_object(s))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "model metadata \"summary\" must be a JSON object");
			goto fail;
		}
	}
	free(m->summary);
	if (!(m->summary = strdup(s)))
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory loading model");
		goto fail;
	}
	/* a new model, freed on error: load in place */
	if (with_nets && m->encoder)
	{
		TRY(clad_net_load_in_place(m->encoder, f, "encoder."));
		if (m->clf)
			TRY(clad_net_load_in_place(m->clf, f, "classifier."));
	}
	if (svdd)
		TRY(clad_st_read_f32(f, "svdd.center", 1, (int64_t[]) {latent}, m->svdd_center));
	else if (svm)
		TRY(read_ocsvm_vectors(f, m, !with_nets));
	else if (ens)
		;						/* its members were read with its settings */
	else
		TRY(clad_st_read_f32(f, "dec.centers", 2, (int64_t[]) {K, latent}, m->centers));
	{
		const clad_st_tensor *q = clad_st_find(f, "calibration.confidences");

		if (!q || q->dtype != CLAD_DTYPE_F32 || q->ndim != 1 || q->numel > 100000000)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "model lacks a 1-D F32 \"calibration.confidences\"");
			goto fail;
		}
		m->n_calib = (int) q->numel;
		if (!(m->calib = malloc(sizeof(float) * (q->numel ? q->numel : 1))))
		{
			st = clad_fail(CLAD_ERR_NOMEM, "out of memory loading model");
			goto fail;
		}
		TRY(clad_st_read_f32(f, "calibration.confidences", 1, q->shape, m->calib));
		for (int i = 1; i < m->n_calib; i++)
			if (m->calib[i] < m->calib[i - 1])
			{
				st = clad_fail(CLAD_ERR_FORMAT, "calibration confidences must be sorted ascending");
				goto fail;
			}
	}
	if (version == 3)
		TRY(read_neighbours(f, m, !with_nets));
#undef TRY
	clad_st_free(f);
	*out = m;
	return CLAD_OK;
fail:
	clad_model_free(m);
	clad_st_free(f);
	return st;
}

clad_status
clad_model_load(const uint8_t *buf, size_t len, clad_model **out)
{
	return model_read(buf, len, 1, 0, out);
}

clad_status
clad_model_load_settings(const uint8_t *buf, size_t len, clad_model **out)
{
	return model_read(buf, len, 0, 0, out);
}

const char *
clad_model_score_name(const clad_model *m)
{
	if (m->method != CLAD_METHOD_CLAD)
		return clad_model_method_name(m);
	return m->neighbours ? "neighbours" : m->rotations > 1 ? "orientation" : "odin";
}

int
clad_model_format_version(const clad_model *m)
{
	if (m->method != CLAD_METHOD_CLAD)
		return 4;
	return m->neighbours ? 3 : m->rotations > 1 ? 2 : 1;
}

clad_status
clad_model_prepare(clad_model *m, int max_B)
{
	return clad_model_prepare_in(m, max_B, CLAD_PRECISION_FP32);
}

clad_status
clad_model_prepare_in(clad_model *m, int max_B, clad_precision p)
{
	clad_status st = m->clf ? clad_net_prepare_inference_in(m->clf, max_B, p) : CLAD_OK;

	if (st == CLAD_OK && m->encoder)
		st = clad_net_prepare_inference_in(m->encoder, max_B, p);
	for (int i = 0; st == CLAD_OK && i < m->n_members; i++)
		st = clad_model_prepare_in(m->members[i], max_B, p);
	if (st == CLAD_OK)
		m->precision = p;
	return st;
}

size_t
clad_model_release_weights(clad_model *m)
{
	size_t		n = (m->encoder ? clad_net_release_planned_weights(m->encoder) : 0) +
		(m->clf ? clad_net_release_planned_weights(m->clf) : 0);

	for (int i = 0; i < m->n_members; i++)
		n += clad_model_release_weights(m->members[i]);
	return n;
}

/* What a model of another method has not (clusters; a one-class SVM's code): an error naming its method. */
static clad_status
no_clusters(const clad_model *m, const char *what)
{
	return clad_fail(CLAD_ERR_INVALID, "a %s model has no %s: it is not a CLAD model",
					 clad_model_method_name(m), what);
}

/* ------------------------------------------------------------------ scoring */

static clad_status
normalise(clad_model *m, const float *pixels, int B)
{
	size_t		plane = (size_t) m->H * m->W;
	size_t		n = (size_t) B * m->C * plane;

	if (B < 1)
		return clad_fail(CLAD_ERR_INVALID, "batch size must be positive");
	if (B > m->xnorm_cap)
	{
		float	   *x = realloc(m->xnorm, sizeof(float) * n);

		if (!x)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory for a batch of %d images", B);
		m->xnorm = x;
		m->xnorm_cap = B;
	}
	for (int b = 0; b < B; b++)
		for (int c = 0; c < m->C; c++)
		{
			const float *src = pixels + ((size_t) b * m->C + c) * plane;
			float	   *dst = m->xnorm + ((size_t) b * m->C + c) * plane;
			float		mu = m->mean[c], inv = 1.0f / m->std[c];

			for (size_t i = 0; i < plane; i++)
			{
				if (!isfinite(src[i]))
					return clad_fail(CLAD_ERR_NUMERIC, "image pixel is NaN or infinite");
				dst[i] = (src[i] - mu) * inv;
			}
		}
	return CLAD_OK;
}

clad_status
clad_model_embed(clad_model *m, const float *pixels, int B, float *z, float *probs, int32_t *cluster)
{
	clad_status st;
	const float *code;
	float	   *q = NULL;

	if (!m->encoder)
		return clad_fail(CLAD_ERR_INVALID, "a %s model has no latent code: it has no encoder",
						 clad_model_method_name(m));
	if ((st = normalise(m, pixels, B)) != CLAD_OK ||
		(st = clad_net_forward(m->encoder, m->xnorm, B, CLAD_EVAL)) != CLAD_OK)
		return st;
	code = clad_net_output(m->encoder);
	if (z)
		memcpy(z, code, sizeof(float) * B * m->latent);
	if ((probs || cluster) && m->method != CLAD_METHOD_CLAD)
		return no_clusters(m, "clusters");
	if (probs || cluster)
	{
		q = probs ? probs : malloc(sizeof(float) * B * m->K);
		if (!q)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory assigning clusters");
		clad_dec_soft_assign(q, code, m->centers, B, m->K, m->latent, 1.0f);
		if (cluster)
			for (int b = 0; b < B; b++)
				cluster[b] = clad_argmax(q + (size_t) b * m->K, m->K);
		if (!probs)
			free(q);
	}
	return CLAD_OK;
}

float
clad_model_calibrated_score(const clad_model *m, float conf)
{
	int			n = m->n_calib, lo = 0, hi = m->n_calib;
	const float *c = m->calib;
	double		s, w;

	if (n == 0)
		return conf < m->threshold ? 1.0f : 0.0f;
	/* lo = how many calibration confidences are <= conf */
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (c[mid] <= conf)
			lo = mid + 1;
		else
			hi = mid;
	}
	/*
	 * n + 1 intervals, one below the smallest calibration confidence, one
	 * above the largest: within the inner ones the score falls linearly;
	 * in the outer two it approaches 1 (below) or 0 (above) exponentially,
	 * on the scale w of the calibration confidences' spread, so that images
	 * less (or more) confident than every held-out one still rank among
	 * themselves at float precision, wherever the confidences sit (at
	 * T = 1000 they all lie within about 1e-3 of 1/K).
	 */
	w = c[n - 1] > c[0] ? (double) c[n - 1] - c[0] : (c[0] > 0.0f ? c[0] : 1.0);
	if (lo == 0)
		s = 1.0 - exp(-((double) c[0] - conf) / w) / (n + 1);
	else if (lo == n)
		s = exp(-((double) conf - c[n - 1]) / w) / (n + 1);
	else
		s = (n - lo + 1 - ((double) conf - c[lo - 1]) / ((double) c[lo] - c[lo - 1])) / (n + 1);
	return s < 0.0 ? 0.0f : s > 1.0 ? 1.0f : (float) s;
}

/* conf (B) = 1 - the mean of the members' calibrated scores (each member normalises the pixels itself). */
static clad_status
ensemble_confidence(clad_model *m, const float *pixels, int B, float *conf)
{
	float		s1, *s = B == 1 ? &s1 : malloc(sizeof(float) * B);
	clad_status st = CLAD_OK;

	if (!s)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory scoring");
	for (int b = 0; b < B; b++)
		conf[b] = 0.0f;
	for (int i = 0; st == CLAD_OK && i < m->n_members; i++)
		if ((st = clad_model_score(m->members[i], pixels, B, NULL, s)) == CLAD_OK)
			for (int b = 0; b < B; b++)
				conf[b] += s[b];
	for (int b = 0; b < B; b++)
		conf[b] = 1.0f - conf[b] / (float) m->n_members;
	if (s != &s1)
		free(s);
	return st;
}

clad_status
clad_model_score(clad_model *m, const float *pixels, int B, float *conf, float *score)
{
	clad_status st;
	float		c1, *c = conf;

	if (B < 1)
		return clad_fail(CLAD_ERR_INVALID, "batch size must be positive");
	if (m->method != CLAD_METHOD_ENSEMBLE && (st = normalise(m, pixels, B)) != CLAD_OK)
		return st;
	if (!c)
	{
		if (B == 1)
			c = &c1;
		else if (!(c = malloc(sizeof(float) * B)))
			return clad_fail(CLAD_ERR_NOMEM, "out of memory scoring");
	}
	if (m->method == CLAD_METHOD_DEEPSVDD)
	{
		if ((st = clad_net_forward(m->encoder, m->xnorm, B, CLAD_EVAL)) == CLAD_OK)
			clad_svdd_confidence(clad_net_output(m->encoder), m->svdd_center, B, m->latent, c);
	}
	else if (m->method == CLAD_METHOD_OCSVM)
		st = clad_ocsvm_confidence(&m->svm, m->xnorm, B, c);
	else if (m->method == CLAD_METHOD_ENSEMBLE)
		st = ensemble_confidence(m, pixels, B, c);
	else if (m->rotations > 1)
	{
		/* all turns of an image in one pass, within the batch the plans were made for */
		int			rows = clad_net_inference_batch(m->clf);

		if (m->neighbours)
			st = clad_neighbour_confidence(&m->nb, m->clf, m->xnorm, B, rows > 0 ? rows : B * m->rotations,
										   c, &m->orient);
		else
			st = clad_orientation_confidence(m->clf, m->xnorm, B, m->K, m->rotations,
											 rows > 0 ? rows : B * m->rotations, c, NULL, &m->orient);
	}
	else
		st = clad_odin_confidence(m->clf, m->xnorm, B, m->T, m->eps, c, NULL, NULL, &m->odin);
	if (st == CLAD_OK && score)
		for (int b = 0; b < B; b++)
			score[b] = clad_model_calibrated_score(m, c[b]);
	if (c != conf && c != &c1)
		free(c);
	return st;
}

clad_status
clad_model_neighbour_distances(clad_model *m, const float *pixels, int B, float *dist)
{
	int			rows;
	clad_status st;

	if (!m->neighbours)
		return clad_fail(CLAD_ERR_INVALID, "the model's score is %s, not neighbours", clad_model_score_name(m));
	rows = clad_net_inference_batch(m->clf);
	if ((st = normalise(m, pixels, B)) != CLAD_OK)
		return st;
	return clad_neighbour_distances(&m->nb, m->clf, m->xnorm, B, rows > 0 ? rows : B * m->rotations, dist,
									&m->orient);
}

clad_status
clad_model_baseline(clad_model *m, const float *pixels, int B, float *conf)
{
	clad_status st;
	float	   *lp;
	int			R = m->rotations, rows;

	if (m->method != CLAD_METHOD_CLAD)
		return no_clusters(m, "baseline confidence (its classifier's)");
	rows = clad_net_inference_batch(m->clf);
	if ((st = normalise(m, pixels, B)) != CLAD_OK)
		return st;
	if (R == 1)
		return clad_odin_confidence(m->clf, m->xnorm, B, 1.0f, 0.0f, conf, NULL, NULL, &m->odin);
	if (m->neighbours)
		return clad_orientation_confidence(m->clf, m->xnorm, B, m->K, R, rows > 0 ? rows : B * R, conf, NULL,
										   &m->orient);
	if (!(lp = malloc(sizeof(float) * B * R)))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory scoring");
	st = clad_orientation_confidence(m->clf, m->xnorm, B, m->K, R, rows > 0 ? rows : B * R, NULL, lp,
									 &m->orient);
	for (int b = 0; st == CLAD_OK && b < B; b++)
		conf[b] = expf(lp[(size_t) b * R]);
	free(lp);
	return st;
}
