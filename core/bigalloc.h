/* core/bigalloc.h: zeroed, 64-byte aligned blocks, big ones in huge pages.
 *
 * A block of at least CLAD_BIG_BYTES gets its own mapping with transparent
 * huge pages asked for (a hint; fine if refused): filling it (loading a
 * model's weights, packing them) then takes one page fault per 2 MB instead
 * of one per 4 kB.  Smaller blocks come from the C heap.  Free with the size
 * the block was allocated with.
 */
#ifndef CLAD_BIGALLOC_H
#define CLAD_BIGALLOC_H

#include <stddef.h>

#define CLAD_BIG_BYTES ((size_t) 4 << 20)

void	   *clad_big_alloc(size_t bytes);
void		clad_big_free(void *p, size_t bytes);

#endif
