/* core/parallel.c: the fork-join pool of parallel.h.
 *
 * A training step runs hundreds of short loops, so waking a sleeping thread
 * for each (a futex and, on a VM, an inter-processor interrupt: tens of
 * microseconds) would cost more than the loops gain.  Workers therefore
 * spin for up to about a millisecond after each job, watching for the next, and only
 * then sleep on a condition variable; the caller likewise spins briefly
 * before sleeping until the parts are done.  A worker that is spinning
 * holds a core the trainer asked for (--threads), nothing else.
 */
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_THREADS 64
/* polls before sleeping: up to about a millisecond (a pause is ~140 cycles on recent x86) */
#define SPIN_POLLS 20000

static int	wanted = 1;			/* threads the loops may use */
static int	started = 0;		/* workers running (wanted - 1 at most) */
static int	start_failed = 0;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t job_done = PTHREAD_COND_INITIALIZER;

/*
 * The job being run.  Its fields are written before generation is
 * increased (release), and read after it is seen increased (acquire).
 */
static atomic_ulong generation = 0;
static clad_range_fn job_body;
static void *job_arg;
static size_t job_n;
static int	job_parts;
static atomic_int pending = 0;	/* parts still running */
static int	busy = 0;			/* a job is running (jobs never overlap) */

static _Thread_local int in_parallel = 0;

/* the generation when each worker was started: its first job is the next one */
static unsigned long born_at[MAX_THREADS];

/* A spin-wait hint to the CPU. */
static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* [lo, hi) of part of n split into parts, sizes differing by at most one. */
static void
part_range(int part, int parts, size_t n, size_t *lo, size_t *hi)
{
	*lo = n / parts * part + ((size_t) part < n % parts ? (size_t) part : n % parts);
	*hi = *lo + n / parts + ((size_t) part < n % parts ? 1 : 0);
}

/* A pool thread: runs its part of every job. */
static void *
worker(void *p)
{
	int			part = (int) (size_t) p;	/* 1 .. MAX_THREADS - 1 */
	unsigned long seen = born_at[part];	/* written before the thread was created */

	in_parallel = 1;
	for (;;)
	{
		unsigned long now = atomic_load_explicit(&generation, memory_order_acquire);

		for (long i = 0; now == seen && i < SPIN_POLLS; i++)
		{
			cpu_relax();
			now = atomic_load_explicit(&generation, memory_order_acquire);
		}
		if (now == seen)
		{
			pthread_mutex_lock(&lock);
			while ((now = atomic_load_explicit(&generation, memory_order_acquire)) == seen)
				pthread_cond_wait(&job_ready, &lock);
			pthread_mutex_unlock(&lock);
		}
		{
			int			parts = job_parts;
			clad_range_fn body = job_body;
			void	   *arg = job_arg;
			size_t		n = job_n, lo, hi;

			/*
			 * A newer job published while the fields were read means job `now`
			 * is over (it had no part for this worker, or it could not have
			 * ended): look again, at the newest.
			 */
			if (atomic_load_explicit(&generation, memory_order_acquire) != now)
				continue;
			seen = now;
			if (part >= parts)
				continue;
			part_range(part, parts, n, &lo, &hi);
			body(lo, hi, arg);
			if (atomic_fetch_sub_explicit(&pending, 1, memory_order_acq_rel) == 1)
			{
				/* the caller may be asleep: wake it under the lock it checks under */
				pthread_mutex_lock(&lock);
				pthread_cond_signal(&job_done);
				pthread_mutex_unlock(&lock);
			}
		}
	}
	return NULL;
}

/* Start workers up to wanted - 1 (under lock). */
static void
start_workers(void)
{
	while (started < wanted - 1 && !start_failed)
	{
		pthread_t	t;
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		born_at[started + 1] = atomic_load_explicit(&generation, memory_order_relaxed);
		if (pthread_create(&t, &attr, worker, (void *) (size_t) (started + 1)) != 0)
			start_failed = 1;
		else
			started++;
		pthread_attr_destroy(&attr);
	}
}

void
clad_parallel_set_threads(int threads)
{
	pthread_mutex_lock(&lock);
	wanted = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
	pthread_mutex_unlock(&lock);
}

int
clad_parallel_threads(void)
{
	return wanted;
}

void
clad_parallel_for(size_t n, size_t min_each, clad_range_fn body, void *arg)
{
	int			parts;
	size_t		lo, hi;

	if (n == 0)
		return;
	if (min_each < 1)
		min_each = 1;
	parts = wanted;
	if ((size_t) parts > n / min_each)
		parts = (int) (n / min_each);
	if (parts < 2 || in_parallel)
	{
		body(0, n, arg);
		return;
	}
	pthread_mutex_lock(&lock);
	start_workers();
	if (parts > started + 1)
		parts = started + 1;
	/* a second thread of the host calling while a job runs works alone */
	if (parts < 2 || busy)
	{
		pthread_mutex_unlock(&lock);
		body(0, n, arg);
		return;
	}
	busy = 1;
	job_body = body;
	job_arg = arg;
	job_n = n;
	job_parts = parts;
	atomic_store_explicit(&pending, parts - 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&generation, 1, memory_order_release);
	pthread_cond_broadcast(&job_ready);
	pthread_mutex_unlock(&lock);

	in_parallel = 1;
	part_range(0, parts, n, &lo, &hi);
	body(lo, hi, arg);
	in_parallel = 0;

	for (long i = 0; atomic_load_explicit(&pending, memory_order_acquire) > 0 && i < SPIN_POLLS; i++)
		cpu_relax();
	pthread_mutex_lock(&lock);
	while (atomic_load_explicit(&pending, memory_order_acquire) > 0)
		pthread_cond_wait(&job_done, &lock);
	busy = 0;
	pthread_mutex_unlock(&lock);
}
