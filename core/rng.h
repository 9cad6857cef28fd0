/* core/rng.h: a seeded random generator (xoshiro256**) and the initialisations. */
#ifndef CLAD_RNG_H
#define CLAD_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct clad_rng
{
	uint64_t	s[4];
	int			has_spare;		/* Box-Muller keeps its second value */
	float		spare;
} clad_rng;

void		clad_rng_seed(clad_rng *r, uint64_t seed);
/* uniform in [0, 1) with 24 random bits */
float		clad_rng_uniform(clad_rng *r);
/* standard normal */
float		clad_rng_normal(clad_rng *r);
/* uniform integer in [0, n) */
uint64_t	clad_rng_below(clad_rng *r, uint64_t n);
/* Fisher-Yates shuffle of idx (n) */
void		clad_rng_shuffle(clad_rng *r, int32_t *idx, size_t n);

/* w (n) ~ N(0, std^2) */
void		clad_init_normal(float *w, size_t n, float std, clad_rng *r);
/* Xavier-uniform: bound = sqrt(6 / (fan_in + fan_out)) */
void		clad_init_xavier_uniform(float *w, size_t n, int fan_in, int fan_out, clad_rng *r);
/* Kaiming-normal, mode fan_out, ReLU gain (torchvision's ResNet convs): std = sqrt(2 / fan_out) */
void		clad_init_kaiming_normal_fan_out(float *w, size_t n, int fan_out, clad_rng *r);
/* PyTorch's default for Linear/Conv (kaiming_uniform with a = sqrt(5)): bound = 1/sqrt(fan_in) */
void		clad_init_torch_default(float *w, size_t n, int fan_in, clad_rng *r);

#endif
