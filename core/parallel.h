/* core/parallel.h: the trainer's threads for core's loops (private to core).
 *
 * A fork-join pool: clad_parallel_for splits [0, n) into one contiguous
 * range per thread and runs them at once, the caller taking the first.
 * With one thread (the default, and always inside a database backend) it is
 * a plain call: no thread is ever started.  Ranges are fixed by n and the
 * thread count alone, and every loop that uses the pool writes disjoint
 * outputs per index, so results do not depend on timing (nor, for the loops
 * here, on the thread count).  Between jobs workers spin for up to about a
 * millisecond, then sleep (parallel.c says why).
 */
#ifndef CLAD_PARALLEL_H
#define CLAD_PARALLEL_H

#include <stddef.h>

/* body(lo, hi, arg) handles indices lo <= i < hi */
typedef void (*clad_range_fn) (size_t lo, size_t hi, void *arg);

/*
 * Threads the loops may use from now on (clad_blas_init sets it with the
 * BLAS thread count).  Starting threads is deferred to the first loop that
 * needs them; if that fails, loops run on the caller's thread.
 */
void		clad_parallel_set_threads(int threads);
int			clad_parallel_threads(void);

/*
 * Run body over [0, n), split among the threads when n is at least
 * 2 * min_each (each thread then gets at least min_each indices); inside
 * another clad_parallel_for (a nested call) it runs on the calling thread.
 */
void		clad_parallel_for(size_t n, size_t min_each, clad_range_fn body, void *arg);

/*
 * The min_each for items of per_item values each, so that a thread gets at
 * least `values` of them (enough work to pay for waking it).
 */
static inline size_t
clad_parallel_items_each(size_t per_item, size_t values)
{
	return per_item >= values ? 1 : values / (per_item ? per_item : 1);
}

#endif
