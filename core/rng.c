/* core/rng.c: xoshiro256** seeded by splitmix64, normals by Box-Muller, initialisers. */
#include "rng.h"

#include <math.h>

/* The next value of splitmix64 (seeds xoshiro's state). */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
clad_rng_seed(clad_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
	r->has_spare = 0;
	r->spare = 0.0f;
}

/* x rotated left by k bits. */
static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits. */
static uint64_t
next_u64(clad_rng *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

float
clad_rng_uniform(clad_rng *r)
{
	return (float) (next_u64(r) >> 40) * (1.0f / 16777216.0f);
}

float
clad_rng_normal(clad_rng *r)
{
	double		u1, u2, rad;

	if (r->has_spare)
	{
		r->has_spare = 0;
		return r->spare;
	}
	do
		u1 = (double) (next_u64(r) >> 11) * (1.0 / 9007199254740992.0);
	while (u1 <= 0.0);
	u2 = (double) (next_u64(r) >> 11) * (1.0 / 9007199254740992.0);
	rad = sqrt(-2.0 * log(u1));
	r->spare = (float) (rad * sin(2.0 * M_PI * u2));
	r->has_spare = 1;
	return (float) (rad * cos(2.0 * M_PI * u2));
}

uint64_t
clad_rng_below(clad_rng *r, uint64_t n)
{
	/* rejection sampling keeps the draw unbiased */
	uint64_t	limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t	x;

	do
		x = next_u64(r);
	while (x >= limit);
	return x % n;
}

void
clad_rng_shuffle(clad_rng *r, int32_t *idx, size_t n)
{
	for (size_t i = n; i > 1; i--)
	{
		size_t		j = (size_t) clad_rng_below(r, i);
		int32_t		t = idx[i - 1];

		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}

/* w (n) ~ U(-bound, bound) */
static void
init_uniform(float *w, size_t n, float bound, clad_rng *r)
{
	for (size_t i = 0; i < n; i++)
		w[i] = (2.0f * clad_rng_uniform(r) - 1.0f) * bound;
}

void
clad_init_normal(float *w, size_t n, float std, clad_rng *r)
{
	for (size_t i = 0; i < n; i++)
		w[i] = clad_rng_normal(r) * std;
}

void
clad_init_xavier_uniform(float *w, size_t n, int fan_in, int fan_out, clad_rng *r)
{
	init_uniform(w, n, sqrtf(6.0f / (float) (fan_in + fan_out)), r);
}

void
clad_init_kaiming_normal_fan_out(float *w, size_t n, int fan_out, clad_rng *r)
{
	clad_init_normal(w, n, sqrtf(2.0f / (float) fan_out), r);
}

void
clad_init_torch_default(float *w, size_t n, int fan_in, clad_rng *r)
{
	init_uniform(w, n, 1.0f / sqrtf((float) fan_in), r);
}
