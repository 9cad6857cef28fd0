/* core/vectorize.h: loops worth compiling for the CPU's widest vectors (private to core).
 *
 * CLAD_VECTOR_LOOP before a function definition builds it three times
 * (AVX-512, AVX2, baseline x86-64) at -O3, whose vectoriser takes loops that
 * -O2's cheap cost model leaves scalar; the loader picks the clone the CPU
 * runs at the first call.  No FP contraction is allowed (-std=c11), so every
 * clone computes the same floats (the Makefile's -fno-math-errno lets sqrtf
 * be a vector instruction: the same correctly rounded result).  Elsewhere
 * it is empty.
 */
#ifndef CLAD_VECTORIZE_H
#define CLAD_VECTORIZE_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLAD_VECTOR_LOOP __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#else
#define CLAD_VECTOR_LOOP
#endif

#endif
