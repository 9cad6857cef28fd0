/* core/bigalloc.c: zeroed blocks, big ones in their own huge-page mapping. */
#include "bigalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void *
clad_big_alloc(size_t bytes)
{
	void	   *p;

	if (bytes == 0)
		bytes = 1;
	if (bytes < CLAD_BIG_BYTES)
	{
		size_t		rounded = (bytes + 63) & ~(size_t) 63;

		if ((p = aligned_alloc(64, rounded)))
			memset(p, 0, rounded);
		return p;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void) madvise(p, bytes, MADV_HUGEPAGE);
#endif
	return p;
}

void
clad_big_free(void *p, size_t bytes)
{
	if (!p)
		return;
	if (bytes == 0)
		bytes = 1;
	if (bytes < CLAD_BIG_BYTES)
		free(p);
	else
		munmap(p, bytes);
}
