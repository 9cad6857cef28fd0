/* tests/unit/test_kmeans.c: trainer/kmeans.c on data whose clustering is known.
 *
 * Well-separated Gaussian blobs (the blobs found, up to a permutation of the
 * labels; the centres their means; the inertia recomputed), a 1-D case and
 * K = 1 worked exactly, duplicated points, n = K, determinism under a seed,
 * restarts never worse than one run, a run stopped by max_iter, labels and
 * inertia optional, and the refusals kmeans.h implies (n < K, K, D, restarts,
 * max_iter below 1).  Every result is also checked to be a state Lloyd's
 * algorithm can stop in: each point with its nearest centre, each centre the
 * mean of its points, the inertia their sum of squared distances.
 */
#include "kmeans.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test's own generator (testutil.h's splitmix64, Box-Muller): independent of core's rng. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double
uniform01(void)
{
	return (double) (test_rand(&rng_state) >> 11) / 9007199254740992.0;
}

static double
gauss(void)
{
	double		u = uniform01(), v = uniform01();

	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static double
sq(const float *a, const float *b, int D)
{
	double		s = 0;

	for (int d = 0; d < D; d++)
		s += ((double) a[d] - b[d]) * ((double) a[d] - b[d]);
	return s;
}

/* The inertia of (centers, labels), summed independently of kmeans.c. */
static double
inertia_of(const float *x, int n, int D, const float *c, const int32_t *lab)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += sq(x + (size_t) i * D, c + (size_t) lab[i] * D, D);
	return s;
}

/*
 * The result is a stopping state of Lloyd's algorithm: labels in [0, K), each
 * point's centre its nearest, the inertia that of (centers, labels), and
 * (means) each non-empty cluster's centre the mean of its points.
 */
static void
check_lloyd_state(const char *what, const float *x, int n, int D, int K, const float *c,
				  const int32_t *lab, double inertia, int means)
{
	int			bad_label = 0, not_nearest = 0, not_mean = 0;
	double		want;

	for (int i = 0; i < n; i++)
		if (lab[i] < 0 || lab[i] >= K)
			bad_label++;
	CHECK_MSG(bad_label == 0, "%s: %d labels outside [0, %d)", what, bad_label, K);
	if (bad_label)
		return;
	for (int i = 0; i < n; i++)
	{
		double		own = sq(x + (size_t) i * D, c + (size_t) lab[i] * D, D);

		for (int k = 0; k < K; k++)
			if (sq(x + (size_t) i * D, c + (size_t) k * D, D) < own)
			{
				not_nearest++;
				break;
			}
	}
	CHECK_MSG(not_nearest == 0, "%s: %d points not with their nearest centre", what, not_nearest);
	want = inertia_of(x, n, D, c, lab);
	CHECK_MSG(fabs(inertia - want) <= 1e-9 * want + 1e-12, "%s: inertia %.17g, recomputed %.17g",
			  what, inertia, want);
	if (!means)
		return;
	for (int k = 0; k < K; k++)
	{
		int			cnt = 0;

		for (int i = 0; i < n; i++)
			cnt += lab[i] == k;
		for (int d = 0; cnt > 0 && d < D; d++)
		{
			double		m = 0;

			for (int i = 0; i < n; i++)
				if (lab[i] == k)
					m += x[(size_t) i * D + d];
			m /= cnt;
			if (fabs(c[(size_t) k * D + d] - m) > 1e-5 * (1 + fabs(m)))
				not_mean++;
		}
	}
	CHECK_MSG(not_mean == 0, "%s: %d centre coordinates are not the mean of their points", what,
			  not_mean);
}

/* ------------------------------------------------------------ blobs */

#define NB 4
#define DB 3

static void
test_blobs(void)
{
	static const float truth[NB][DB] = {{10, 0, 0}, {-10, 0, 0}, {0, 10, 0}, {0, 0, -10}};
	static const int sizes[NB] = {40, 60, 80, 120};
	int			n = 0, perm[NB], used[NB] = {0}, mislabelled = 0;
	float	   *x, c[NB * DB], c2[NB * DB], c3[NB * DB];
	int32_t    *blob, *lab, *lab2;
	double		inertia, inertia2, scatter = 0;
	float	   *copy;

	for (int b = 0; b < NB; b++)
		n += sizes[b];
	x = malloc(sizeof(float) * n * DB);
	copy = malloc(sizeof(float) * n * DB);
	blob = malloc(sizeof(int32_t) * n);
	lab = malloc(sizeof(int32_t) * n);
	lab2 = malloc(sizeof(int32_t) * n);
	/* points of the blobs interleaved at random (a shuffle of the blob ids) */
	for (int b = 0, i = 0; b < NB; b++)
		for (int j = 0; j < sizes[b]; j++)
			blob[i++] = b;
	for (int i = n - 1; i > 0; i--)
	{
		int			j = (int) (test_rand(&rng_state) % (uint64_t) (i + 1));
		int32_t		t = blob[i];

		blob[i] = blob[j];
		blob[j] = t;
	}
	for (int i = 0; i < n; i++)
		for (int d = 0; d < DB; d++)
			x[(size_t) i * DB + d] = (float) (truth[blob[i]][d] + 0.5 * gauss());
	memcpy(copy, x, sizeof(float) * n * DB);

	CHECK(clad_kmeans(x, n, DB, NB, 4, 100, 42, c, lab, &inertia) == CLAD_OK);
	CHECK_MSG(memcmp(copy, x, sizeof(float) * n * DB) == 0, "k-means wrote into its input");
	check_lloyd_state("blobs", x, n, DB, NB, c, lab, inertia, 1);

	/* the blobs, up to a permutation: blob b is cluster perm[b] */
	for (int b = 0; b < NB; b++)
	{
		perm[b] = -1;
		for (int i = 0; i < n; i++)
			if (blob[i] == b)
			{
				perm[b] = lab[i];
				break;
			}
		CHECK_MSG(perm[b] >= 0 && perm[b] < NB && !used[perm[b]], "blob %d: cluster %d taken twice",
				  b, perm[b]);
		if (perm[b] >= 0 && perm[b] < NB)
			used[perm[b]] = 1;
	}
	for (int i = 0; i < n; i++)
		mislabelled += lab[i] != perm[blob[i]];
	CHECK_MSG(mislabelled == 0, "blobs: %d of %d points not in their blob's cluster", mislabelled, n);

	/* each centre: its blob's mean (computed here), near the blob's true centre */
	for (int b = 0; b < NB && mislabelled == 0; b++)
	{
		double		mean[DB] = {0};
		float		meanf[DB];

		for (int i = 0; i < n; i++)
			if (blob[i] == b)
				for (int d = 0; d < DB; d++)
					mean[d] += x[(size_t) i * DB + d];
		for (int d = 0; d < DB; d++)
		{
			mean[d] /= sizes[b];
			meanf[d] = (float) mean[d];
			CHECK_MSG(fabs(c[perm[b] * DB + d] - mean[d]) < 1e-5,
					  "blob %d: centre[%d] %.7g, mean %.7g", b, d, c[perm[b] * DB + d], mean[d]);
			CHECK_MSG(fabs(c[perm[b] * DB + d] - truth[b][d]) < 0.3,
					  "blob %d: centre[%d] %.7g, true %.7g", b, d, c[perm[b] * DB + d], truth[b][d]);
		}
		for (int i = 0; i < n; i++)
			if (blob[i] == b)
				scatter += sq(x + (size_t) i * DB, meanf, DB);
	}
	/* the inertia: the blobs' scatter about their means, summed here from the true blobs */
	CHECK_MSG(fabs(inertia - scatter) <= 1e-6 * scatter, "blobs: inertia %.10g, scatter %.10g",
			  inertia, scatter);
	/* 300 points at sd 0.5 in 3-D: about 300 * 3 * 0.25 = 225 */
	CHECK_MSG(inertia > 150 && inertia < 300, "blobs: inertia %g", inertia);

	/* the same seed: the same bytes */
	CHECK(clad_kmeans(x, n, DB, NB, 4, 100, 42, c2, lab2, &inertia2) == CLAD_OK);
	CHECK(memcmp(c, c2, sizeof(c)) == 0);
	CHECK(memcmp(lab, lab2, sizeof(int32_t) * n) == 0);
	CHECK(inertia == inertia2);

	/* labels and inertia may be NULL: the same centres */
	CHECK(clad_kmeans(x, n, DB, NB, 4, 100, 42, c3, NULL, NULL) == CLAD_OK);
	CHECK(memcmp(c, c3, sizeof(c)) == 0);

	/* another seed: the same partition and inertia (labels may be permuted) */
	for (uint64_t seed = 1; seed <= 5; seed++)
	{
		int			same = 1;

		CHECK(clad_kmeans(x, n, DB, NB, 2, 100, seed * 1000003u, c2, lab2, &inertia2) == CLAD_OK);
		check_lloyd_state("blobs, other seed", x, n, DB, NB, c2, lab2, inertia2, 1);
		for (int i = 0; i < n && same; i++)
			for (int j = 0; j < i && same; j += 7)
				same = (lab[i] == lab[j]) == (lab2[i] == lab2[j]);
		CHECK_MSG(same, "seed %llu: another partition of the blobs", (unsigned long long) seed);
		CHECK_MSG(fabs(inertia2 - inertia) <= 1e-6 * inertia, "seed %llu: inertia %.10g vs %.10g",
				  (unsigned long long) seed, inertia2, inertia);
	}
	free(x);
	free(copy);
	free(blob);
	free(lab);
	free(lab2);
}

/* ------------------------------------------------------------ exact cases */

static void
test_exact(void)
{
	/* 1-D: {0,1,2} and {10,11,12}: centres 1 and 11, inertia 4 */
	{
		const float x[6] = {10, 0, 11, 1, 12, 2};
		float		c[2];
		int32_t		lab[6];
		double		in;

		CHECK(clad_kmeans(x, 6, 1, 2, 3, 50, 7, c, lab, &in) == CLAD_OK);
		CHECK_MSG((c[0] == 1 && c[1] == 11) || (c[0] == 11 && c[1] == 1), "1-D: centres %g %g",
				  c[0], c[1]);
		CHECK_MSG(in == 4.0, "1-D: inertia %.17g, want 4", in);
		CHECK(lab[0] == lab[2] && lab[2] == lab[4] && lab[1] == lab[3] && lab[3] == lab[5]
			  && lab[0] != lab[1]);
	}
	/* K = 1: the mean, the total scatter, every label 0 */
	{
		enum
		{
		N = 101, D = 5};
		float		x[N * D], c[D];
		int32_t		lab[N];
		double		mean[D] = {0}, in, total = 0;
		int			nonzero = 0;

		for (int i = 0; i < N * D; i++)
			x[i] = (float) (3.0 * gauss() + (i % D));
		for (int i = 0; i < N; i++)
			for (int d = 0; d < D; d++)
				mean[d] += x[i * D + d];
		for (int d = 0; d < D; d++)
			mean[d] /= N;
		for (int i = 0; i < N; i++)
			for (int d = 0; d < D; d++)
				total += (x[i * D + d] - mean[d]) * (x[i * D + d] - mean[d]);
		CHECK(clad_kmeans(x, N, D, 1, 2, 10, 3, c, lab, &in) == CLAD_OK);
		for (int d = 0; d < D; d++)
			CHECK_MSG(fabs(c[d] - mean[d]) < 1e-5 * (1 + fabs(mean[d])), "K=1: centre[%d] %.9g, mean %.9g",
					  d, c[d], mean[d]);
		for (int i = 0; i < N; i++)
			nonzero += lab[i] != 0;
		CHECK(nonzero == 0);
		CHECK_MSG(fabs(in - total) <= 1e-6 * total, "K=1: inertia %.10g, scatter %.10g", in, total);
		check_lloyd_state("K=1", x, N, D, 1, c, lab, in, 1);
	}
	/* n = K: every point its own centre, inertia 0 */
	{
		const float x[8] = {0, 0, 1, 0, 0, 1, 5, 5};
		float		c[8];
		int32_t		lab[4];
		double		in;
		int			seen[4] = {0}, ok = 1;

		CHECK(clad_kmeans(x, 4, 2, 4, 1, 10, 11, c, lab, &in) == CLAD_OK);
		CHECK_MSG(in == 0.0, "n=K: inertia %g", in);
		for (int i = 0; i < 4; i++)
		{
			ok &= lab[i] >= 0 && lab[i] < 4 && !seen[lab[i]];
			if (lab[i] >= 0 && lab[i] < 4)
			{
				seen[lab[i]] = 1;
				ok &= c[lab[i] * 2] == x[i * 2] && c[lab[i] * 2 + 1] == x[i * 2 + 1];
			}
		}
		CHECK_MSG(ok, "n=K: the centres are not the points");
	}
}

/* ------------------------------------------------------------ duplicates */

static void
test_duplicates(void)
{
	/* three distinct points, each 10 times: the centres are those points, inertia 0 */
	{
		static const float p[3][2] = {{1, 2}, {-3, 0.5f}, {4, -4}};
		float		x[30 * 2], c[3 * 2];
		int32_t		lab[30];
		double		in;
		int			ok = 1;

		for (int i = 0; i < 30; i++)
		{
			x[i * 2] = p[(i * 7) % 3][0];
			x[i * 2 + 1] = p[(i * 7) % 3][1];
		}
		for (uint64_t seed = 0; seed < 10; seed++)
		{
			CHECK(clad_kmeans(x, 30, 2, 3, 1, 20, seed, c, lab, &in) == CLAD_OK);
			CHECK_MSG(in == 0.0, "duplicates (seed %llu): inertia %g", (unsigned long long) seed, in);
			for (int i = 0; i < 30; i++)
				ok &= lab[i] >= 0 && lab[i] < 3 && c[lab[i] * 2] == x[i * 2]
					&& c[lab[i] * 2 + 1] == x[i * 2 + 1] && lab[i] == lab[i % 3];
			check_lloyd_state("duplicates", x, 30, 2, 3, c, lab, in, 1);
		}
		CHECK_MSG(ok, "duplicates: a point is not at its centre, or copies split");
	}
	/* one point 12 times, K = 3: every centre that point (empty clusters refilled), inertia 0 */
	{
		float		x[12 * 2], c[3 * 2];
		int32_t		lab[12];
		double		in;
		int			ok = 1;

		for (int i = 0; i < 12; i++)
		{
			x[i * 2] = 0.25f;
			x[i * 2 + 1] = -7;
		}
		CHECK(clad_kmeans(x, 12, 2, 3, 2, 20, 5, c, lab, &in) == CLAD_OK);
		CHECK_MSG(in == 0.0, "one point: inertia %g", in);
		for (int k = 0; k < 3; k++)
			ok &= c[k * 2] == 0.25f && c[k * 2 + 1] == -7;
		CHECK_MSG(ok, "one point: a centre elsewhere");
		check_lloyd_state("one point", x, 12, 2, 3, c, lab, in, 1);
	}
}

/* ------------------------------------------------------------ restarts, max_iter */

static void
test_restarts_and_max_iter(void)
{
	enum
	{
	N = 300, D = 2, K = 7};
	float	   *x = malloc(sizeof(float) * N * D), c[K * D];
	int32_t		lab[N];
	double		one, many, in;

	/* uniform points: many local minima, so restarts matter */
	for (int i = 0; i < N * D; i++)
		x[i] = (float) uniform01();
	for (uint64_t seed = 100; seed < 110; seed++)
	{
		CHECK(clad_kmeans(x, N, D, K, 1, 300, seed, c, lab, &one) == CLAD_OK);
		check_lloyd_state("uniform, 1 run", x, N, D, K, c, lab, one, 1);
		CHECK(clad_kmeans(x, N, D, K, 6, 300, seed, c, lab, &many) == CLAD_OK);
		check_lloyd_state("uniform, 6 runs", x, N, D, K, c, lab, many, 1);
		/* the first of the restarts is the single run: the best of 6 is no worse */
		CHECK_MSG(many <= one, "seed %llu: 6 restarts %.10g, 1 run %.10g",
				  (unsigned long long) seed, many, one);
	}
	/*
	 * Stopped by max_iter before converging: the labels are still each point's
	 * nearest of the centres returned, and the inertia theirs.
	 */
	for (int it = 1; it <= 3; it++)
	{
		char		what[64];

		snprintf(what, sizeof(what), "uniform, max_iter %d", it);
		CHECK(clad_kmeans(x, N, D, K, 3, it, 9, c, lab, &in) == CLAD_OK);
		check_lloyd_state(what, x, N, D, K, c, lab, in, 0);
	}
	free(x);
}

/* ------------------------------------------------------------ refusals */

static void
test_refusals(void)
{
	const float x[6] = {0, 1, 2, 3, 4, 5};
	float		c[8];
	int32_t		lab[6];
	double		in;

	CHECK(clad_kmeans(x, 3, 2, 4, 1, 10, 1, c, lab, &in) == CLAD_ERR_INVALID);	/* n < K */
	CHECK_MSG(strstr(clad_last_error(), "K = 4") != NULL, "message \"%s\"", clad_last_error());
	CHECK(clad_kmeans(x, 3, 2, 0, 1, 10, 1, c, lab, &in) == CLAD_ERR_INVALID);
	CHECK(clad_kmeans(x, 3, 0, 2, 1, 10, 1, c, lab, &in) == CLAD_ERR_INVALID);
	CHECK(clad_kmeans(x, 3, 2, 2, 0, 10, 1, c, lab, &in) == CLAD_ERR_INVALID);
	CHECK(clad_kmeans(x, 3, 2, 2, 1, 0, 1, c, lab, &in) == CLAD_ERR_INVALID);
	CHECK(clad_kmeans(x, 0, 2, 1, 1, 10, 1, c, lab, &in) == CLAD_ERR_INVALID);
}

int
main(void)
{
	test_blobs();
	test_exact();
	test_duplicates();
	test_restarts_and_max_iter();
	test_refusals();
	printf("test_kmeans: 4 blobs found (labels up to a permutation, centres, inertia), 1-D and K=1 "
		   "exact, duplicates, n=K, determinism, restarts, max_iter, refusals\n");
	return test_summary("test_kmeans");
}
