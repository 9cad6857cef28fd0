/* tests/unit/test_prepared.c: a prepared model (core/prepared.h) written to a file and
 * mapped scores exactly as the model it was prepared from, refuses what a mapped
 * net must not do, and a file with any byte changed, cut short, of another
 * source, batch size or layout is refused. */
#include "prepared.h"
#include "gemm.h"
#include "testutil.h"
#include "testmodel.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_B 4

static const uint8_t sha_a[32] = {1, 2, 3, 4, 5};
static const uint8_t sha_b[32] = {9, 9, 9};

/* A ResNet-18 CLAD model with seeded weights, prepared for MAX_B. */
static clad_model *
make_model(void)
{
	clad_model *m = test_model_new("resnet18", 3);

	m->threshold = 0.25f;
	CHECK(clad_model_prepare(m, MAX_B) == CLAD_OK);
	return m;
}

/* The file's bytes, 64-byte aligned (as a mapping is), in *len. */
static uint8_t *
read_aligned(const char *path, size_t *len)
{
	int			fd = open(path, O_RDONLY);
	struct stat sb;
	uint8_t    *b;

	CHECK(fd >= 0 && fstat(fd, &sb) == 0);
	*len = (size_t) sb.st_size;
	b = aligned_alloc(64, (*len + 63) / 64 * 64);
	CHECK(b && read(fd, b, *len) == (ssize_t) *len);
	close(fd);
	return b;
}

static void
refused(const uint8_t *buf, size_t len, const uint8_t *sha, int max_B, const char *what)
{
	clad_model *m = (clad_model *) 1;
	clad_status st = clad_prepared_open(buf, len, sha, max_B, CLAD_PRECISION_FP32, &m);

	CHECK_MSG(st != CLAD_OK && m == NULL && clad_last_error()[0], "%s was accepted", what);
}

/*
 * q prepared for MAX_B, scored (c0, s0 for the 3 images x), written as a
 * prepared file at path and mapped again: the mapped model, its bytes in *qb.
 */
static clad_model *
prepared_roundtrip(clad_model *q, const char *path, const uint8_t *sha, const float *x, float *c0, float *s0,
				   uint8_t **qb, size_t *ql)
{
	int			qfd = open(path, O_RDWR | O_TRUNC);
	clad_model *qp = NULL;

	CHECK(clad_model_prepare(q, MAX_B) == CLAD_OK);
	CHECK(clad_model_score(q, x, 3, c0, s0) == CLAD_OK);
	CHECK(clad_prepared_write(q, sha, MAX_B, qfd) == CLAD_OK);
	close(qfd);
	*qb = read_aligned(path, ql);
	CHECK(clad_prepared_open(*qb, *ql, sha, MAX_B, CLAD_PRECISION_FP32, &qp) == CLAD_OK);
	return qp;
}

/*
 * A model prepared in bf16: its confidences near fp32's (c32, for the 3
 * images x) but not equal; its prepared file (at path) smaller than the fp32
 * one (fp32_len bytes), mapped in bf16 the same answers bit for bit, and
 * refused when asked for in fp32 (and the fp32 file in bf16: fp32_buf).
 */
static void
check_bf16(const char *path, const float *x, const float *c32, const uint8_t *fp32_buf, size_t fp32_len)
{
	clad_model *q = make_model(), *qp = NULL;
	float		c[3], s[3], c1[3], s1[3];
	int			fd = open(path, O_RDWR | O_TRUNC);
	uint8_t    *b;
	size_t		len;

	CHECK(clad_model_prepare_in(q, MAX_B, CLAD_PRECISION_BF16) == CLAD_OK && q->precision == CLAD_PRECISION_BF16);
	CHECK(clad_model_score(q, x, 3, c, s) == CLAD_OK);
	CHECK_MSG(memcmp(c, c32, sizeof(c)) != 0, "bf16 confidences equal fp32's: nothing was rounded");
	for (int i = 0; i < 3; i++)
		CHECK_MSG(fabsf(c[i] - c32[i]) < 2e-3f * fmaxf(1.0f, fabsf(c32[i])),
				  "bf16 confidence %.9g against fp32 %.9g", c[i], c32[i]);
	CHECK(fd >= 0 && clad_prepared_write(q, sha_a, MAX_B, fd) == CLAD_OK);
	close(fd);
	b = read_aligned(path, &len);
	CHECK_MSG(len < fp32_len * 0.7, "bf16 prepared file %zu bytes, fp32 %zu", len, fp32_len);
	CHECK(clad_prepared_open(b, len, sha_a, MAX_B, CLAD_PRECISION_BF16, &qp) == CLAD_OK);
	if (qp)
	{
		CHECK(qp->precision == CLAD_PRECISION_BF16 && clad_model_score(qp, x, 3, c1, s1) == CLAD_OK);
		CHECK_MSG(memcmp(c, c1, sizeof(c)) == 0 && memcmp(s, s1, sizeof(s)) == 0,
				  "mapped bf16 scores differ from the bf16 model's");
		clad_model_free(qp);
	}
	qp = (clad_model *) 1;
	CHECK(clad_prepared_open(b, len, sha_a, MAX_B, CLAD_PRECISION_FP32, &qp) == CLAD_ERR_UNSUPPORTED && !qp);
	CHECK_MSG(strstr(clad_last_error(), "in bf16, not fp32"), "%s", clad_last_error());
	CHECK(clad_prepared_open(fp32_buf, fp32_len, sha_a, MAX_B, CLAD_PRECISION_BF16, &qp) == CLAD_ERR_UNSUPPORTED);
	CHECK_MSG(strstr(clad_last_error(), "in fp32, not bf16"), "%s", clad_last_error());
	free(b);
	clad_model_free(q);
}

int
main(void)
{
	clad_model *m = make_model(), *p = NULL;
	char		path[] = "/tmp/clad_test_prepared.XXXXXX";
	int			fd = mkstemp(path);
	uint8_t    *buf;
	size_t		len;
	float		x[3 * 784], c0[3], s0[3], z0[18], q0[12], c1[3], s1[3], z1[18], q1[12];
	int32_t		k0[3], k1[3];
	clad_rng	r;

	clad_blas_init(CLAD_BLAS_AUTO, 1);
	clad_rng_seed(&r, 11);
	for (int i = 0; i < 3 * 784; i++)
		x[i] = clad_rng_uniform(&r);
	CHECK(clad_model_score(m, x, 3, c0, s0) == CLAD_OK);
	CHECK(clad_model_embed(m, x, 3, z0, q0, k0) == CLAD_OK);

	/* written, read back, opened: the same answers, bit for bit, at every batch size */
	CHECK(fd >= 0 && clad_prepared_write(m, sha_a, MAX_B, fd) == CLAD_OK);
	close(fd);
	buf = read_aligned(path, &len);
	CHECK(clad_prepared_open(buf, len, sha_a, MAX_B, CLAD_PRECISION_FP32, &p) == CLAD_OK);
	if (!p)
		return test_summary("test_prepared");
	CHECK(p->K == 4 && p->latent == 6 && p->n_calib == 3 && p->eps == 0.0161f && p->threshold == 0.25f &&
		  p->calib[2] == m->calib[2] && p->centers[5] == m->centers[5] && strcmp(p->summary, m->summary) == 0);
	CHECK(strcmp(p->classifier, "resnet18") == 0 && strcmp(p->autoencoder, "cvae") == 0);
	for (int b = 1; b <= 3; b++)
	{
		CHECK(clad_model_score(m, x, b, c0, s0) == CLAD_OK);
		CHECK(clad_model_embed(m, x, b, z0, q0, k0) == CLAD_OK);
		CHECK(clad_model_score(p, x, b, c1, s1) == CLAD_OK);
		CHECK(clad_model_embed(p, x, b, z1, q1, k1) == CLAD_OK);
		CHECK_MSG(memcmp(c0, c1, sizeof(float) * b) == 0 && memcmp(s0, s1, sizeof(float) * b) == 0,
				  "batch %d: scores differ from the model's", b);
		CHECK_MSG(memcmp(z0, z1, sizeof(float) * 6 * b) == 0 && memcmp(q0, q1, sizeof(float) * 4 * b) == 0 &&
				  memcmp(k0, k1, sizeof(int32_t) * b) == 0, "batch %d: embeddings differ", b);
	}
	/* what a mapped net refuses: bigger batches, training, saving, preparing, loading over it */
	{
		float		big[5 * 784] = {0}, cb[5];
		clad_adam	opt = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
		uint8_t    *saved = NULL, *model_file = NULL;
		size_t		saved_len, model_len;
		clad_model *fresh = make_model();
		clad_st_file *f = NULL;

		CHECK(clad_model_score(p, big, 5, cb, NULL) == CLAD_ERR_INVALID);
		CHECK(clad_net_forward(p->clf, x, 1, CLAD_TRAIN) == CLAD_ERR_INVALID);
		CHECK(clad_net_forward(p->clf, x, 1, CLAD_EVAL) == CLAD_OK);
		CHECK(clad_net_backward(p->clf, clad_net_output(p->clf), 1, NULL) == CLAD_ERR_INVALID);
		CHECK(clad_net_adam_step(p->clf, &opt) == CLAD_ERR_INVALID);
		CHECK(clad_model_save(p, &saved, &saved_len) == CLAD_ERR_INVALID && saved == NULL);
		CHECK(clad_model_prepare(p, MAX_B) == CLAD_ERR_INVALID);
		CHECK(clad_model_release_weights(p) == 0);
		CHECK(clad_model_save(fresh, &model_file, &model_len) == CLAD_OK);
		CHECK(clad_st_parse(model_file, model_len, &f) == CLAD_OK);
		CHECK(f && clad_net_load(p->clf, f, "classifier.") == CLAD_ERR_INVALID);
		CHECK(f && clad_net_load_in_place(p->clf, f, "classifier.") == CLAD_ERR_INVALID);
		/* and it still scores as before */
		CHECK(clad_model_score(p, x, 1, c1, s1) == CLAD_OK && c1[0] == c0[0]);
		clad_st_free(f);
		free(model_file);
		clad_model_free(fresh);
	}
	clad_model_free(p);

	/* through a read-only shared mapping, as the extension maps it */
	{
		int			rfd = open(path, O_RDONLY);
		void	   *map = mmap(NULL, len, PROT_READ, MAP_SHARED, rfd, 0);

		CHECK(rfd >= 0 && map != MAP_FAILED);
		CHECK(clad_prepared_open(map, len, sha_a, MAX_B, CLAD_PRECISION_FP32, &p) == CLAD_OK);
		if (p)
		{
			CHECK(clad_model_score(p, x, 1, c1, s1) == CLAD_OK && c1[0] == c0[0] && s1[0] == s0[0]);
			clad_model_free(p);
		}
		munmap(map, len);
		close(rfd);
	}

	/* refused: another source, batch size; any byte changed (header and every section); cut short */
	refused(buf, len, sha_b, MAX_B, "a file prepared from another model");
	refused(buf, len, sha_a, MAX_B + 1, "a file prepared for another batch size");
	for (size_t at = 0; at < len; at += at < 320 ? 1 : len / 37)
	{
		buf[at] ^= 0x10;
		refused(buf, len, NULL, MAX_B, "a file with a changed byte");
		buf[at] ^= 0x10;
	}
	for (size_t cut = 0; cut < len; cut += cut < 320 ? 7 : len / 23)
		refused(buf, cut, NULL, MAX_B, "a file cut short");
	{
		uint8_t    *longer = aligned_alloc(64, len + 64);

		memcpy(longer, buf, len);
		memset(longer + len, 0, 64);
		refused(longer, len + 64, NULL, MAX_B, "a file with bytes after its end");
		free(longer);
	}
	/* the untouched file still opens: the checks above refused for their reasons */
	CHECK(clad_prepared_open(buf, len, sha_a, MAX_B, CLAD_PRECISION_FP32, &p) == CLAD_OK);
	clad_model_free(p);

	/* a model that was never prepared, or for another batch size, is not written */
	{
		clad_model *q;
		int			qfd = open(path, O_WRONLY | O_TRUNC);

		CHECK(clad_model_create("cvae", "resnet18", 1, 28, 28, 4, 6, &q) == CLAD_OK);
		CHECK(clad_prepared_write(q, sha_a, MAX_B, qfd) == CLAD_ERR_INVALID);
		CHECK(clad_model_prepare(q, MAX_B + 1) == CLAD_OK);
		CHECK(clad_prepared_write(q, sha_a, MAX_B, qfd) == CLAD_ERR_INVALID);
		clad_model_free(q);
		close(qfd);
	}
	/* a model without inference plans (the small cnn: no conv on a small map), and one
	 * whose weights were released after preparing, write and map as well */
	for (int variant = 0; variant < 2; variant++)
	{
		clad_model *q, *qp = NULL;
		int			qfd = open(path, O_RDWR | O_TRUNC);
		uint8_t    *qb;
		size_t		ql;

		CHECK(clad_model_create("cvae", variant ? "resnet18" : "cnn", 1, 28, 28, 4, 6, &q) == CLAD_OK);
		clad_autoencoder_init(q->encoder, 5);
		clad_classifier_init(q->clf, variant ? "resnet18" : "cnn", 6);
		q->n_calib = 1;
		q->calib = calloc(1, sizeof(float));
		CHECK(clad_model_prepare(q, MAX_B) == CLAD_OK);
		CHECK(clad_model_score(q, x, 3, c0, s0) == CLAD_OK);
		if (variant)
			CHECK(clad_model_release_weights(q) > 0);
		CHECK(clad_prepared_write(q, sha_a, MAX_B, qfd) == CLAD_OK);
		close(qfd);
		qb = read_aligned(path, &ql);
		CHECK(clad_prepared_open(qb, ql, sha_a, MAX_B, CLAD_PRECISION_FP32, &qp) == CLAD_OK);
		if (qp)
		{
			CHECK(clad_model_score(qp, x, 3, c1, s1) == CLAD_OK);
			CHECK_MSG(memcmp(c0, c1, sizeof(float) * 3) == 0, "%s: scores differ",
					  variant ? "released resnet18" : "cnn");
			clad_model_free(qp);
		}
		free(qb);
		clad_model_free(q);
	}
	/* a neighbour model (a bank of floats, then of bfloat16): its bank is
	 * scored where it lies in the mapping, and a changed bank byte is refused
	 * like any other */
	for (int bf16 = 0; bf16 < 2; bf16++)
	{
		clad_model *q, *qp = NULL;
		int			pool[2] = {2, 1};
		uint8_t    *qb;
		size_t		ql;
		float		xn[3 * 784];
		clad_orientation_work w = {0};

		CHECK(clad_model_create_rotations("cvae", "resnet18", 1, 28, 28, 3, 6, 4, &q) == CLAD_OK);
		clad_autoencoder_init(q->encoder, 5);
		clad_classifier_init(q->clf, "resnet18", 6);
		q->n_calib = 1;
		q->calib = calloc(1, sizeof(float));
		for (int i = 0; i < 3 * 784; i++)
			xn[i] = 1.0f - 2.0f * x[(i * 7) % (3 * 784)];
		CHECK(clad_neighbours_init(&q->nb, q->clf, 4, pool, 3, bf16) == CLAD_OK);
		CHECK(clad_neighbours_fill(&q->nb, q->clf, xn, 8, &w) == CLAD_OK);
		q->neighbours = 1;
		q->nb.std[0] = 0.5f;
		qp = prepared_roundtrip(q, path, sha_a, x, c0, s0, &qb, &ql);
		if (qp)
		{
			CHECK(qp->neighbours && qp->nb.owned[0] == NULL && qp->nb.owned[1] == NULL);
			CHECK((const uint8_t *) qp->nb.bank[1] > qb && (const uint8_t *) qp->nb.bank[1] < qb + ql);
			CHECK(clad_model_score(qp, x, 3, c1, s1) == CLAD_OK);
			CHECK_MSG(memcmp(c0, c1, sizeof(float) * 3) == 0 && memcmp(s0, s1, sizeof(float) * 3) == 0,
					  "neighbour model%s: scores differ", bf16 ? " (bf16)" : "");
			{
				size_t		at = (size_t) ((const uint8_t *) qp->nb.bank[1] - qb) + 40;

				clad_model_free(qp);
				qp = NULL;
				qb[at] ^= 0x10;
				refused(qb, ql, NULL, MAX_B, "a neighbour model with a changed bank byte");
			}
		}
		clad_orientation_work_free(&w);
		free(qb);
		clad_model_free(q);
	}
	/* a Deep SVDD model: its encoder mapped, the classifier's sections empty */
	{
		clad_model *q, *qp;
		uint8_t    *qb;
		size_t		ql;

		CHECK(clad_model_create_deepsvdd("cvae_nobias", 1, 28, 28, 6, 0, &q) == CLAD_OK);
		clad_autoencoder_init(q->encoder, 9);
		for (int j = 0; j < 6; j++)
			q->svdd_center[j] = 0.2f * (float) j - 0.5f;
		q->n_calib = 2;
		q->calib = malloc(sizeof(float) * 2);
		q->calib[0] = -2.0f;
		q->calib[1] = -1.0f;
		qp = prepared_roundtrip(q, path, sha_a, x, c0, s0, &qb, &ql);
		if (qp)
		{
			CHECK(qp->method == CLAD_METHOD_DEEPSVDD && qp->clf == NULL);
			CHECK(clad_model_score(qp, x, 3, c1, s1) == CLAD_OK);
			CHECK_MSG(memcmp(c0, c1, sizeof(float) * 3) == 0 && memcmp(s0, s1, sizeof(float) * 3) == 0,
					  "Deep SVDD model: scores differ");
			clad_model_free(qp);
		}
		free(qb);
		clad_model_free(q);
	}
	/* a one-class SVM: no nets, every net section empty, the support vectors scored where they lie */
	{
		clad_model *q, *qp;
		uint8_t    *qb;
		size_t		ql;
		float	   *px = seeded_pixels(4, 23);

		CHECK(clad_model_create_ocsvm(1, 28, 28, 4, 0.002f, 0.5f, &q) == CLAD_OK);
		for (int i = 0; i < 4 * 784; i++)
			q->svm.sv_owned[i] = 2.0f * px[i] - 1.0f;
		for (int i = 0; i < 4; i++)
			q->svm.coef[i] = 0.25f + 0.1f * (float) i;
		CHECK(clad_ocsvm_check(&q->svm) == CLAD_OK);
		q->n_calib = 2;
		q->calib = malloc(sizeof(float) * 2);
		q->calib[0] = -0.3f;
		q->calib[1] = 0.1f;
		qp = prepared_roundtrip(q, path, sha_a, x, c0, s0, &qb, &ql);
		if (qp)
		{
			CHECK(qp->method == CLAD_METHOD_OCSVM && qp->encoder == NULL && qp->svm.n_sv == 4);
			/* borrowed from the mapping when aligned (a copy otherwise), never a wrong pointer */
			CHECK(qp->svm.sv_owned == NULL ? ((const uint8_t *) qp->svm.sv > qb &&
											  (const uint8_t *) qp->svm.sv < qb + ql) : qp->svm.sv == qp->svm.sv_owned);
			CHECK(clad_model_score(qp, x, 3, c1, s1) == CLAD_OK);
			CHECK_MSG(memcmp(c0, c1, sizeof(float) * 3) == 0 && memcmp(s0, s1, sizeof(float) * 3) == 0,
					  "one-class SVM model: scores differ");
			clad_model_free(qp);
		}
		free(qb);
		free(px);
		clad_model_free(q);
	}
	CHECK(clad_model_score(m, x, 3, c0, s0) == CLAD_OK);
	check_bf16(path, x, c0, buf, len);
	free(buf);
	unlink(path);
	clad_model_free(m);
	return test_summary("test_prepared");
}
