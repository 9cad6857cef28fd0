/* tests/unit/testutil.h: tiny assertion helpers and a seeded generator for the C tests.
 * A failed check prints where and why and makes the program exit non-zero. */
#ifndef CLAD_TESTUTIL_H
#define CLAD_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int	test_failures = 0;
static int	test_checks = 0;

#define CHECK(cond) \
	do { test_checks++; if (!(cond)) { test_failures++; \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_MSG(cond, ...) \
	do { test_checks++; if (!(cond)) { test_failures++; \
		fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* Call at the end of main: prints a summary, returns the exit status. */
static inline int
test_summary(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
	return test_failures == 0 ? 0 : 1;
}

/*
 * Worst relative error of got against want: the largest |g - w| / (|w| + 1e-3 max|w|)
 * over the elements (the 1e-3 max|w| term keeps elements near zero from
 * dominating); NaN in got counts as infinite.
 */
static inline double
max_rel_err(const float *got, const float *want, size_t n)
{
	double		wmax = 0, worst = 0;

	for (size_t i = 0; i < n; i++)
		if (fabs(want[i]) > wmax)
			wmax = fabs(want[i]);
	for (size_t i = 0; i < n; i++)
	{
		double		d = fabs((double) got[i] - want[i]);
		double		den = fabs(want[i]) + 1e-3 * wmax + 1e-12;

		if (!(d / den <= worst))
			worst = isnan(d) ? INFINITY : d / den;
	}
	return worst;
}

/* splitmix64: the tests' own seeded generator, independent of core's */
static inline uint64_t
test_rand(uint64_t *s)
{
	uint64_t	z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
