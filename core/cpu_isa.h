/* core/cpu_isa.h: which x86 vector instruction sets the CPU runs, for clad's own kernels.
 *
 * Kernels written for several instruction sets (tapconv_kernels.c, bf16.c)
 * pick the widest of these that the CPU has, at first use; each keeps a
 * plain C kernel that every CPU runs and that tests compare the others with.
 */
#ifndef CLAD_CPU_ISA_H
#define CLAD_CPU_ISA_H

#define CLAD_ISA_BASELINE 0		/* plain C */
#define CLAD_ISA_AVX2 1			/* AVX2 and FMA */
#define CLAD_ISA_AVX512 2		/* AVX-512 F and VL */

/* The widest of CLAD_ISA_* this CPU runs (CLAD_ISA_BASELINE off x86-64 or GCC). */
int			clad_cpu_best_isa(void);

/*
 * A kernel family's choice, kept in *slot (-1 until the first use; atomic:
 * the trainer may call from threads).  clad_cpu_isa_chosen returns it,
 * choosing the best at first use; clad_cpu_isa_limit lowers it to at most
 * isa (for tests, so that every kernel runs on one machine; negative
 * restores the best) and returns the one now in use.
 */
int			clad_cpu_isa_chosen(int *slot);
int			clad_cpu_isa_limit(int *slot, int isa);

#endif
