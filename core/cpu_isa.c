/* core/cpu_isa.c: the CPU's vector instruction sets (cpu_isa.h). */
#include "cpu_isa.h"

int
clad_cpu_best_isa(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
		return CLAD_ISA_AVX512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return CLAD_ISA_AVX2;
#endif
	return CLAD_ISA_BASELINE;
}

int
clad_cpu_isa_chosen(int *slot)
{
	int			isa = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (isa < 0)
	{
		isa = clad_cpu_best_isa();
		__atomic_store_n(slot, isa, __ATOMIC_RELEASE);
	}
	return isa;
}

int
clad_cpu_isa_limit(int *slot, int isa)
{
	int			best = clad_cpu_best_isa();

	if (isa < 0 || isa > best)
		isa = best;
	__atomic_store_n(slot, isa, __ATOMIC_RELEASE);
	return isa;
}
