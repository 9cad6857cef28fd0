/* core/tapconv_kernels.c: the panel kernels of both kinds of plan (tapconv_internal.h),
 * compiled per instruction set and chosen at run time. */
#include "tapconv_internal.h"
#include "vectorize.h"

/*
 * Y (N, M) += X (N, K) @ W, W given as M/16 panels of (K, 16), where row n
 * of Y is Y + yrow[n] * M and row n of X is X + xrow[n] * K (rows where the
 * caller keeps them; no two rows of Y the same).  Rows of Y go
 * RB, then four at a time, over two vectors of columns: 2 RB (eight)
 * independent accumulators keep both FMA units busy through the FMA latency
 * (four accumulators left half of them idle), and each weight read serves
 * RB (four) positions.  RB is eight with AVX-512's 32 vector registers, six
 * with the 16 of AVX2 and SSE (eight rows there kept four of the sixteen
 * accumulators on the stack, a load and a store per multiply-add).  Each
 * element sums its products in the same order whatever block its row falls
 * in.  Column c of W lies in panel c/16 at lane c%16,
 * so a pair of vectors is two panels for 16-wide vectors and two halves of
 * one panel for 8-wide ones.  The last one to three rows go by twos and
 * ones, skipping the inputs that are zero (ReLU outputs, often half of
 * them) through a list of their indices, so only the weights they need are
 * read.
 * The body is compiled for AVX-512, AVX2+FMA and baseline x86-64, chosen by
 * CPU features at run time.
 */
#define COL_W(Wp, c, K) ((Wp) + (size_t) ((c) / PANEL) * (K) * PANEL + (c) % PANEL)
#define PANEL_GEMM_ROWS(VEC, VW, R, WT, LD) \
	for (; n + R <= N; n += R) \
	{ \
		const float *x[R]; \
		float	   *y[R]; \
		int			c = 0; \
		for (int r = 0; r < R; r++) \
		{ \
			x[r] = X + (size_t) xrow[n + r] * K; \
			y[r] = Y + (size_t) yrow[n + r] * M; \
		} \
		for (; c + 2 * VW <= M; c += 2 * VW) \
		{ \
			const WT   *w0 = COL_W(Wp, c, K), *w1 = COL_W(Wp, c + VW, K); \
			VEC			a[R][2]; \
			for (int r = 0; r < R; r++) \
			{ \
				a[r][0] = *(const VEC *) (y[r] + c); \
				a[r][1] = *(const VEC *) (y[r] + c + VW); \
			} \
			for (int k = 0; k < K; k++, w0 += PANEL, w1 += PANEL) \
			{ \
				VEC			v0 = LD(w0), v1 = LD(w1); \
				for (int r = 0; r < R; r++) \
				{ \
					a[r][0] += x[r][k] * v0; \
					a[r][1] += x[r][k] * v1; \
				} \
			} \
			for (int r = 0; r < R; r++) \
			{ \
				*(VEC *) (y[r] + c) = a[r][0]; \
				*(VEC *) (y[r] + c + VW) = a[r][1]; \
			} \
		} \
		for (; c < M; c += VW) \
		{ \
			const WT   *w0 = COL_W(Wp, c, K); \
			VEC			a[R]; \
			for (int r = 0; r < R; r++) \
				a[r] = *(const VEC *) (y[r] + c); \
			for (int k = 0; k < K; k++, w0 += PANEL) \
			{ \
				VEC			v0 = LD(w0); \
				for (int r = 0; r < R; r++) \
					a[r] += x[r][k] * v0; \
			} \
			for (int r = 0; r < R; r++) \
				*(VEC *) (y[r] + c) = a[r]; \
		} \
	}

#define PANEL_GEMM_BODY(VEC, VW, WT, LD, RB) \
	int			n = 0; \
	PANEL_GEMM_ROWS(VEC, VW, RB, WT, LD) \
	PANEL_GEMM_ROWS(VEC, VW, 4, WT, LD) \
	for (; n + 2 <= N; n += 2) \
	{ \
		/* two rows: the inputs nonzero in either, listed once */ \
		const float *x0 = X + (size_t) xrow[n] * K, *x1 = X + (size_t) xrow[n + 1] * K; \
		float	   *y0 = Y + (size_t) yrow[n] * M, *y1 = Y + (size_t) yrow[n + 1] * M; \
		int			nnz = 0; \
		for (int k = 0; k < K; k++) \
			if (x0[k] != 0.0f || x1[k] != 0.0f) \
				nz[nnz++] = k; \
		for (int p = 0; p < M / PANEL; p++) \
			for (int h = 0; h < PANEL; h += VW) \
			{ \
				const WT   *w = Wp + (size_t) p * K * PANEL + h; \
				VEC			a0 = *(const VEC *) (y0 + p * PANEL + h), a1 = *(const VEC *) (y1 + p * PANEL + h); \
				for (int t = 0; t < nnz; t++) \
				{ \
					VEC			wv = LD(w + (size_t) nz[t] * PANEL); \
					a0 += x0[nz[t]] * wv; \
					a1 += x1[nz[t]] * wv; \
				} \
				*(VEC *) (y0 + p * PANEL + h) = a0; \
				*(VEC *) (y1 + p * PANEL + h) = a1; \
			} \
	} \
	for (; n < N; n++) \
	{ \
		const float *x = X + (size_t) xrow[n] * K; \
		int			nnz = 0; \
		for (int k = 0; k < K; k++) \
			if (x[k] != 0.0f) \
				nz[nnz++] = k; \
		for (int p = 0; p < M / PANEL; p++) \
			for (int h = 0; h < PANEL; h += VW) \
			{ \
				float	   *y = Y + (size_t) yrow[n] * M + p * PANEL + h; \
				const WT   *w = Wp + (size_t) p * K * PANEL + h; \
				VEC			a0 = *(const VEC *) y, a1 = {0}; \
				int			t = 0; \
				for (; t + 2 <= nnz; t += 2) \
				{ \
					a0 += x[nz[t]] * LD(w + (size_t) nz[t] * PANEL); \
					a1 += x[nz[t + 1]] * LD(w + (size_t) nz[t + 1] * PANEL); \
				} \
				if (t < nnz) \
					a0 += x[nz[t]] * LD(w + (size_t) nz[t] * PANEL); \
				*(VEC *) y = a0 + a1; \
			} \
	}

/*
 * Y (N, M) += X (N, K) @ W^T, rows through yrow and xrow as above, W^T
 * (K, M) given as K/16 panels of (M, 16):
 * the forward panels of a conv read for its input gradient (K = OC, M = C),
 * so that a shared plan keeps one copy of its weights.  Each output is a
 * dot product over K: rows go R at a time over CW/R columns, each (row,
 * column) accumulating in a vector of lanes over k, one pass over the
 * panels; the CW partial vectors of a block are then summed into one
 * vector (SVEC) of CW results by a shuffle tree (REDUCE).  Weights are read
 * in order inside each panel row block, R positions per read.  CW is VW
 * with AVX-512 (16 accumulators of its 32 registers); AVX2 takes four
 * columns a step (16 accumulators would be all of its 16 registers, and
 * the compiler kept several on the stack), its tree adding each vector's
 * lanes in the same order as the full one, so every result is the same
 * float either way.
 */
#define PANEL_GEMM_T_ROWS(VEC, VW, CW, SVEC, R, REDUCE, WT, LD) \
	for (; n + R <= N; n += R) \
	{ \
		const float *x[R]; \
		float	   *y[R]; \
		for (int r = 0; r < R; r++) \
		{ \
			x[r] = X + (size_t) xrow[n + r] * K; \
			y[r] = Y + (size_t) yrow[n + r] * M; \
		} \
		for (int m = 0; m < M; m += CW / R) \
		{ \
			VEC			a[R][CW / R][PANEL / VW], s[CW]; \
			SVEC		sums; \
			for (int r = 0; r < R; r++) \
				for (int j = 0; j < CW / R; j++) \
					for (int h = 0; h < PANEL / VW; h++) \
						a[r][j][h] = (VEC) {0}; \
			for (int pk = 0; pk < K / PANEL; pk++) \
			{ \
				const WT   *w = Wp + ((size_t) pk * M + m) * PANEL; \
				VEC			xv[R][PANEL / VW]; \
				for (int r = 0; r < R; r++) \
					for (int h = 0; h < PANEL / VW; h++) \
						xv[r][h] = *(const VEC *) (x[r] + pk * PANEL + h * VW); \
				for (int j = 0; j < CW / R; j++) \
					for (int h = 0; h < PANEL / VW; h++) \
					{ \
						VEC			wv = LD(w + j * PANEL + h * VW); \
						for (int r = 0; r < R; r++) \
							a[r][j][h] += wv * xv[r][h]; \
					} \
			} \
			for (int r = 0; r < R; r++) \
				for (int j = 0; j < CW / R; j++) \
				{ \
					s[r * (CW / R) + j] = a[r][j][0]; \
					for (int h = 1; h < PANEL / VW; h++) \
						s[r * (CW / R) + j] += a[r][j][h]; \
				} \
			REDUCE(s, sums); \
			for (int r = 0; r < R; r++) \
				for (int j = 0; j < CW / R; j++) \
					y[r][m + j] += sums[r * (CW / R) + j]; \
		} \
	}

/*
 * The same products over the same weights laid out by column (Wc: M rows of
 * K floats, tapconv_panels_to_columns), for taps with many rows (a batch):
 * VW rows at a time, one column at a time, each weight vector read once
 * for the VW rows (the blocks above read every panel once per four rows,
 * down a stride of M * PANEL floats that maps a column's panels onto the
 * same few L1 sets) and the rows' inputs read from L1 as the multiply-adds'
 * second operands.  Each output accumulates the same lanes over pk in the
 * same order, adds its PANEL / VW partial vectors in the same order and sums
 * the lanes by the same tree (REDUCE_FULL: VW vectors into VW sums, each
 * vector's lanes added as REDUCE adds them), so every result is the float
 * panel_gemm_t gives it (test_tapconv).  A last block of fewer than VW rows
 * repeats its last row's pointers and stores only its own rows.
 */
#define PANEL_GEMM_T_COLUMNS_BODY(VEC, VW, REDUCE_FULL) \
	for (int n = 0; n < N; n += VW) \
	{ \
		const float *x[VW]; \
		float	   *y[VW]; \
		int			nr = N - n < VW ? N - n : VW; \
		for (int r = 0; r < VW; r++) \
		{ \
			x[r] = X + (size_t) xrow[n + (r < nr ? r : nr - 1)] * K; \
			y[r] = Y + (size_t) yrow[n + (r < nr ? r : nr - 1)] * M; \
		} \
		for (int m = 0; m < M; m++) \
		{ \
			VEC			s[VW], sums; \
			for (int h = 0; h < PANEL / VW; h++) \
			{ \
				const float *w = Wc + (size_t) m * K + h * VW; \
				VEC			a[VW]; \
				for (int r = 0; r < VW; r++) \
					a[r] = (VEC) {0}; \
				for (int pk = 0; pk < K / PANEL; pk++) \
				{ \
					VEC			wv = *(const VEC *) (w + pk * PANEL); \
					for (int r = 0; r < VW; r++) \
						a[r] += wv * *(const VEC *) (x[r] + pk * PANEL + h * VW); \
				} \
				for (int r = 0; r < VW; r++) \
					s[r] = h ? s[r] + a[r] : a[r]; \
			} \
			REDUCE_FULL(s, sums); \
			for (int r = 0; r < nr; r++) \
				y[r][m] += sums[r]; \
		} \
	}

#define PANEL_GEMM_T_BODY(VEC, VW, CW, SVEC, REDUCE, WT, LD) \
	int			n = 0; \
	PANEL_GEMM_T_ROWS(VEC, VW, CW, SVEC, 4, REDUCE, WT, LD) \
	PANEL_GEMM_T_ROWS(VEC, VW, CW, SVEC, 2, REDUCE, WT, LD) \
	PANEL_GEMM_T_ROWS(VEC, VW, CW, SVEC, 1, REDUCE, WT, LD)

/*
 * out[i] = the sum of the lanes of s[i], for VW vectors s of VW lanes: each
 * level adds pairs of vectors after interleaving their halves, so lane
 * order follows s's order at the end.
 */
#define SHUF __builtin_shufflevector
#define REDUCE_4(s, out) \
	do { \
		v4f			t_[2]; \
		for (int i_ = 0; i_ < 2; i_++) \
			t_[i_] = SHUF(s[2 * i_], s[2 * i_ + 1], 0, 1, 4, 5) + SHUF(s[2 * i_], s[2 * i_ + 1], 2, 3, 6, 7); \
		(out) = SHUF(t_[0], t_[1], 0, 2, 4, 6) + SHUF(t_[0], t_[1], 1, 3, 5, 7); \
	} while (0)
#define REDUCE_8(s, out) \
	do { \
		v8f			t_[4], u_[2]; \
		for (int i_ = 0; i_ < 4; i_++) \
			t_[i_] = SHUF(s[2 * i_], s[2 * i_ + 1], 0, 1, 2, 3, 8, 9, 10, 11) + \
				SHUF(s[2 * i_], s[2 * i_ + 1], 4, 5, 6, 7, 12, 13, 14, 15); \
		for (int i_ = 0; i_ < 2; i_++) \
			u_[i_] = SHUF(t_[2 * i_], t_[2 * i_ + 1], 0, 1, 4, 5, 8, 9, 12, 13) + \
				SHUF(t_[2 * i_], t_[2 * i_ + 1], 2, 3, 6, 7, 10, 11, 14, 15); \
		(out) = SHUF(u_[0], u_[1], 0, 2, 4, 6, 8, 10, 12, 14) + SHUF(u_[0], u_[1], 1, 3, 5, 7, 9, 11, 13, 15); \
	} while (0)
/*
 * The same tree over four vectors of eight lanes (s[0..3]), out: a v4f of
 * their four sums; each lane is added in REDUCE_8's order.
 */
#define REDUCE_8_HALF(s, out) \
	do { \
		v8f			t_[2], u_; \
		for (int i_ = 0; i_ < 2; i_++) \
			t_[i_] = SHUF(s[2 * i_], s[2 * i_ + 1], 0, 1, 2, 3, 8, 9, 10, 11) + \
				SHUF(s[2 * i_], s[2 * i_ + 1], 4, 5, 6, 7, 12, 13, 14, 15); \
		u_ = SHUF(t_[0], t_[1], 0, 1, 4, 5, 8, 9, 12, 13) + SHUF(t_[0], t_[1], 2, 3, 6, 7, 10, 11, 14, 15); \
		(out) = SHUF(u_, u_, 0, 2, 4, 6) + SHUF(u_, u_, 1, 3, 5, 7); \
	} while (0)
#define REDUCE_16(s, out) \
	do { \
		v16f		t_[8], u_[4], w_[2]; \
		for (int i_ = 0; i_ < 8; i_++) \
			t_[i_] = SHUF(s[2 * i_], s[2 * i_ + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) + \
				SHUF(s[2 * i_], s[2 * i_ + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
		for (int i_ = 0; i_ < 4; i_++) \
			u_[i_] = SHUF(t_[2 * i_], t_[2 * i_ + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) + \
				SHUF(t_[2 * i_], t_[2 * i_ + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31); \
		for (int i_ = 0; i_ < 2; i_++) \
			w_[i_] = SHUF(u_[2 * i_], u_[2 * i_ + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) + \
				SHUF(u_[2 * i_], u_[2 * i_ + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31); \
		(out) = SHUF(w_[0], w_[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) + \
			SHUF(w_[0], w_[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31); \
	} while (0)

/*
 * The weight gradient of one tap on channel-last data, one tile at a time:
 *     dweight[oc, c, k] += sum over images b and pairs i of
 *                          dy_cl[b, out_pos[i], oc] * x_cl[b, in_pos[i], c]
 * for R output channels from oc0 by NV vectors of input channels from c0,
 * the R x NV accumulators held in registers through every row (each row
 * read where it lies: no gathered copy) and added into the (OC, C, KH, KW)
 * gradient at the end.  Each sum runs over the rows in one order, whoever
 * computes the tile.
 */
#define WGRAD_TILE(VEC, VW, R, NV) \
	do { \
		VEC			acc[R][NV]; \
		for (int r = 0; r < R; r++) \
			for (int v = 0; v < NV; v++) \
				acc[r][v] = (VEC) {0}; \
		for (int b = 0; b < a->B; b++) \
		{ \
			const float *xb = a->x_cl + (size_t) b * a->S * a->C + c0; \
			const float *db = a->dy_cl + (size_t) b * a->P * a->OC + oc0; \
			for (int i = 0; i < tap->npairs; i++) \
			{ \
				const float *x = xb + (size_t) tap->in_pos[i] * a->C; \
				const float *d = db + (size_t) tap->out_pos[i] * a->OC; \
				VEC			xv[NV]; \
				for (int v = 0; v < NV; v++) \
					xv[v] = *(const VEC *) (x + v * VW); \
				for (int r = 0; r < R; r++) \
					for (int v = 0; v < NV; v++) \
						acc[r][v] += d[r] * xv[v]; \
			} \
		} \
		for (int r = 0; r < R; r++) \
			for (int v = 0; v < NV; v++) \
				for (int l = 0; l < VW; l++) \
					a->dweight[((size_t) (oc0 + r) * a->C + c0 + v * VW + l) * a->kk + k] += acc[r][v][l]; \
	} while (0)

/*
 * The panel kernels of one instruction set (ATTR: its target attribute,
 * VEC/VW: its vectors) over weights of type WT read by LD:
 * Y[yrow] += X[xrow] @ panels (panel_gemm_NAME) and the transposed reading
 * of the forward panels (panel_gemm_t_NAME).  PANEL_KERNELS makes those of
 * one instruction set over floats (LDF) and over bfloat16 (LDH).
 */
#define PANEL_KERNEL_PAIR(NAME, ATTR, VEC, VW, RB, CW, SVEC, REDUCE, WT, LD) \
	ATTR static void \
	panel_gemm_##NAME(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow, \
					  const WT *restrict Wp, int N, int K, int M, int32_t *restrict nz) \
	{ \
		PANEL_GEMM_BODY(VEC, VW, WT, LD, RB) \
	} \
	ATTR static void \
	panel_gemm_t_##NAME(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow, \
						const WT *restrict Wp, int N, int K, int M, int32_t *restrict nz) \
	{ \
		PANEL_GEMM_T_BODY(VEC, VW, CW, SVEC, REDUCE, WT, LD) \
	}
#define PANEL_KERNELS(ISA, ATTR, VEC, VW, RB, CW, SVEC, REDUCE, REDUCE_FULL, LDF, LDH) \
	PANEL_KERNEL_PAIR(ISA, ATTR, VEC, VW, RB, CW, SVEC, REDUCE, float, LDF) \
	PANEL_KERNEL_PAIR(bf16_##ISA, ATTR, VEC, VW, RB, CW, SVEC, REDUCE, clad_bf16, LDH) \
	ATTR static void \
	panel_gemm_t_columns_##ISA(float *restrict Y, const float *restrict X, const int32_t *yrow, const int32_t *xrow, \
						const float *restrict Wc, int N, int K, int M, int32_t *restrict nz) \
	{ \
		PANEL_GEMM_T_COLUMNS_BODY(VEC, VW, REDUCE_FULL) \
	}

#define ATTR_AVX512 __attribute__((target("avx512f,avx512vl,fma"), optimize("O3", "fp-contract=fast")))
#define ATTR_AVX2 __attribute__((target("avx2,fma"), optimize("O3", "fp-contract=fast")))
#define ATTR_PLAIN

typedef float v4f __attribute__((vector_size(16), aligned(4)));

/*
 * Weight loads: a vector of floats, or as many bfloat16 (bf16.h) widened to
 * the floats they stand for (exact: each is the upper half of its float).
 */
typedef uint16_t v4h __attribute__((vector_size(8), aligned(2)));
typedef uint32_t v4u __attribute__((vector_size(16)));
#define LD_V4F(p) (*(const v4f *) (p))
static inline v4f
widen_v4(const clad_bf16 *p)
{
	return (v4f) (__builtin_convertvector(*(const v4h *) p, v4u) << 16);
}
#define LD_V4H(p) widen_v4(p)

/* The layouts' channels c0 .. C-1, one at a time (the tails of the blocked loops below) */
static inline void
layout_to_cl_tail(float *restrict d, const float *restrict s, int c0, int C, int S)
{
	for (; c0 < C; c0++)
		for (int i = 0; i < S; i++)
			d[(size_t) i * C + c0] = s[(size_t) c0 * S + i];
}

static inline void
layout_from_cl_tail(float *restrict d, const float *restrict s, const float *restrict bias,
					int accumulate, int c0, int C, int S)
{
	for (; c0 < C; c0++)
	{
		float		b0 = bias ? bias[c0] : 0.0f;

		for (int i = 0; i < S; i++)
		{
			float		v = s[(size_t) i * C + c0];

			d[(size_t) c0 * S + i] = accumulate ? d[(size_t) c0 * S + i] + v : v + b0;
		}
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
typedef float v16f __attribute__((vector_size(64), aligned(4)));
typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef uint16_t v8h __attribute__((vector_size(16), aligned(2)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef uint16_t v16h __attribute__((vector_size(32), aligned(2)));
typedef uint32_t v16u __attribute__((vector_size(64)));
#define LD_V16F(p) (*(const v16f *) (p))
#define LD_V8F(p) (*(const v8f *) (p))

__attribute__((target("avx512f,avx512vl")))
static inline v16f
widen_v16(const clad_bf16 *p)
{
	return (v16f) (__builtin_convertvector(*(const v16h *) p, v16u) << 16);
}
#define LD_V16H(p) widen_v16(p)

__attribute__((target("avx2")))
static inline v8f
widen_v8(const clad_bf16 *p)
{
	return (v8f) (__builtin_convertvector(*(const v8h *) p, v8u) << 16);
}
#define LD_V8H(p) widen_v8(p)

PANEL_KERNELS(avx512, ATTR_AVX512, v16f, 16, 8, 16, v16f, REDUCE_16, REDUCE_16, LD_V16F, LD_V16H)
PANEL_KERNELS(avx2, ATTR_AVX2, v8f, 8, 6, 4, v4f, REDUCE_8_HALF, REDUCE_8, LD_V8F, LD_V8H)

/* tiles of 8 output channels x 32 input channels (16 at the edge): 16 of the 32 vector registers */
__attribute__((target("avx512f,avx512vl,fma"), optimize("O3", "fp-contract=fast")))
static void
wgrad_tile_avx512(const wgrad_args *a, const clad_tap *tap, int k, int oc0, int c0)
{
	if (c0 + 32 <= a->C)
		WGRAD_TILE(v16f, 16, 8, 2);
	else
		WGRAD_TILE(v16f, 16, 8, 1);
}

/* tiles of 4 x 16 (8 at the edge): 8 of the 16 vector registers */
__attribute__((target("avx2,fma"), optimize("O3", "fp-contract=fast")))
static void
wgrad_tile_avx2(const wgrad_args *a, const clad_tap *tap, int k, int oc0, int c0)
{
	if (c0 + 16 <= a->C)
		WGRAD_TILE(v8f, 8, 4, 2);
	else
		WGRAD_TILE(v8f, 8, 4, 1);
}

/*
 * The layout changes of tapconv.c's passes, in blocks of 8 channels by 8
 * positions (4 on 2x2 maps) transposed in registers: the plain loops read
 * or write one float every S or C.  They only move floats and add the same
 * two numbers as the plain ones (bias or the accumulated value), so the
 * results are the same bit for bit.
 */
#define TRANSPOSE_8X8(r) \
	do { \
		v8f			t_[8], u_[8]; \
		for (int j_ = 0; j_ < 8; j_ += 2) \
		{ \
			t_[j_] = SHUF(r[j_], r[j_ + 1], 0, 8, 1, 9, 4, 12, 5, 13); \
			t_[j_ + 1] = SHUF(r[j_], r[j_ + 1], 2, 10, 3, 11, 6, 14, 7, 15); \
		} \
		for (int j_ = 0; j_ < 8; j_ += 4) \
			for (int h_ = 0; h_ < 2; h_++) \
			{ \
				u_[j_ + 2 * h_] = SHUF(t_[j_ + h_], t_[j_ + h_ + 2], 0, 1, 8, 9, 4, 5, 12, 13); \
				u_[j_ + 2 * h_ + 1] = SHUF(t_[j_ + h_], t_[j_ + h_ + 2], 2, 3, 10, 11, 6, 7, 14, 15); \
			} \
		for (int j_ = 0; j_ < 4; j_++) \
		{ \
			r[j_] = SHUF(u_[j_], u_[j_ + 4], 0, 1, 2, 3, 8, 9, 10, 11); \
			r[j_ + 4] = SHUF(u_[j_], u_[j_ + 4], 4, 5, 6, 7, 12, 13, 14, 15); \
		} \
	} while (0)
#define TRANSPOSE_4X4(r) \
	do { \
		v4f			t_[4]; \
		t_[0] = SHUF(r[0], r[1], 0, 4, 1, 5); \
		t_[1] = SHUF(r[0], r[1], 2, 6, 3, 7); \
		t_[2] = SHUF(r[2], r[3], 0, 4, 1, 5); \
		t_[3] = SHUF(r[2], r[3], 2, 6, 3, 7); \
		r[0] = SHUF(t_[0], t_[2], 0, 1, 4, 5); \
		r[1] = SHUF(t_[0], t_[2], 2, 3, 6, 7); \
		r[2] = SHUF(t_[1], t_[3], 0, 1, 4, 5); \
		r[3] = SHUF(t_[1], t_[3], 2, 3, 6, 7); \
	} while (0)

/* (C, S) -> (S, C) of one image (see layout_to_cl_plain) */
__attribute__((target("avx2"), optimize("O3")))
static void
layout_to_cl_avx2(float *restrict d, const float *restrict s, int C, int S)
{
	int			c0 = 0;

	for (; c0 + 8 <= C; c0 += 8)
	{
		int			i = 0;

		for (; i + 8 <= S; i += 8)
		{
			v8f			r[8];

			for (int j = 0; j < 8; j++)
				r[j] = *(const v8f *) (s + (size_t) (c0 + j) * S + i);
			TRANSPOSE_8X8(r);
			for (int j = 0; j < 8; j++)
				*(v8f *) (d + (size_t) (i + j) * C + c0) = r[j];
		}
		for (; i + 4 <= S; i += 4)
			for (int h = 0; h < 8; h += 4)
			{
				v4f			r[4];

				for (int j = 0; j < 4; j++)
					r[j] = *(const v4f *) (s + (size_t) (c0 + h + j) * S + i);
				TRANSPOSE_4X4(r);
				for (int j = 0; j < 4; j++)
					*(v4f *) (d + (size_t) (i + j) * C + c0 + h) = r[j];
			}
		for (; i < S; i++)
			for (int j = 0; j < 8; j++)
				d[(size_t) i * C + c0 + j] = s[(size_t) (c0 + j) * S + i];
	}
	layout_to_cl_tail(d, s, c0, C, S);
}

/* (S, C) -> (C, S) of one image, d = s + bias (0 without one) or d += s (see layout_from_cl_plain) */
__attribute__((target("avx2"), optimize("O3")))
static void
layout_from_cl_avx2(float *restrict d, const float *restrict s, const float *restrict bias,
					int accumulate, int C, int S)
{
	int			c0 = 0;

	for (; c0 + 8 <= C; c0 += 8)
	{
		float		bv[8];
		int			i = 0;

		for (int j = 0; j < 8; j++)
			bv[j] = bias ? bias[c0 + j] : 0.0f;
		for (; i + 8 <= S; i += 8)
		{
			v8f			r[8];

			for (int j = 0; j < 8; j++)
				r[j] = *(const v8f *) (s + (size_t) (i + j) * C + c0);
			TRANSPOSE_8X8(r);
			for (int j = 0; j < 8; j++)
			{
				v8f		   *o = (v8f *) (d + (size_t) (c0 + j) * S + i);

				*o = accumulate ? *o + r[j] : r[j] + bv[j];
			}
		}
		for (; i + 4 <= S; i += 4)
			for (int h = 0; h < 8; h += 4)
			{
				v4f			r[4];

				for (int j = 0; j < 4; j++)
					r[j] = *(const v4f *) (s + (size_t) (i + j) * C + c0 + h);
				TRANSPOSE_4X4(r);
				for (int j = 0; j < 4; j++)
				{
					v4f		   *o = (v4f *) (d + (size_t) (c0 + h + j) * S + i);

					*o = accumulate ? *o + r[j] : r[j] + bv[h + j];
				}
			}
		for (; i < S; i++)
			for (int j = 0; j < 8; j++)
			{
				float		v = s[(size_t) i * C + c0 + j];
				float	   *o = d + (size_t) (c0 + j) * S + i;

				*o = accumulate ? *o + v : v + bv[j];
			}
	}
	layout_from_cl_tail(d, s, bias, accumulate, c0, C, S);
}
#endif

/*
 * One image's (C, S) -> (S, C), 16 channels at a time so that every write is
 * a contiguous run (a plain loop would write one float every C).
 */
CLAD_VECTOR_LOOP
static void
layout_to_cl_plain(float *restrict d, const float *restrict s, int C, int S)
{
	int			c0 = 0;

	for (; c0 + 16 <= C; c0 += 16)
		for (int i = 0; i < S; i++)
			for (int cc = 0; cc < 16; cc++)
				d[(size_t) i * C + c0 + cc] = s[(size_t) (c0 + cc) * S + i];
	layout_to_cl_tail(d, s, c0, C, S);
}

/*
 * One image's (S, C) -> (C, S): d = s (+ bias[c]), or d += s with accumulate;
 * 16 channels at a time, each read a contiguous run.
 */
CLAD_VECTOR_LOOP
static void
layout_from_cl_plain(float *restrict d, const float *restrict s, const float *restrict bias,
						 int accumulate, int C, int S)
{
	int			c0 = 0;

	for (; c0 + 16 <= C; c0 += 16)
	{
		float		bv[16];

		for (int cc = 0; cc < 16; cc++)
			bv[cc] = bias ? bias[c0 + cc] : 0.0f;
		if (accumulate)
			for (int i = 0; i < S; i++)
				for (int cc = 0; cc < 16; cc++)
					d[(size_t) (c0 + cc) * S + i] += s[(size_t) i * C + c0 + cc];
		else
			for (int i = 0; i < S; i++)
				for (int cc = 0; cc < 16; cc++)
					d[(size_t) (c0 + cc) * S + i] = s[(size_t) i * C + c0 + cc] + bv[cc];
	}
	layout_from_cl_tail(d, s, bias, accumulate, c0, C, S);
}

PANEL_KERNELS(plain, ATTR_PLAIN, v4f, 4, 6, 4, v4f, REDUCE_4, REDUCE_4, LD_V4F, LD_V4H)

/* One register tile of a tap's weight gradient, without vector extensions. */
static void
wgrad_tile_plain(const wgrad_args *a, const clad_tap *tap, int k, int oc0, int c0)
{
	if (c0 + 8 <= a->C)
		WGRAD_TILE(v4f, 4, 4, 2);
	else
		WGRAD_TILE(v4f, 4, 4, 1);
}

static const panel_kernels kernels_by_isa[] = {
	[CLAD_TAPCONV_ISA_BASELINE] = {panel_gemm_plain, panel_gemm_t_plain, panel_gemm_t_columns_plain, panel_gemm_bf16_plain, panel_gemm_t_bf16_plain, wgrad_tile_plain, 4, 8, layout_to_cl_plain, layout_from_cl_plain},
#if defined(__x86_64__) && defined(__GNUC__)
	[CLAD_TAPCONV_ISA_AVX2] = {panel_gemm_avx2, panel_gemm_t_avx2, panel_gemm_t_columns_avx2, panel_gemm_bf16_avx2, panel_gemm_t_bf16_avx2, wgrad_tile_avx2, 4, 16, layout_to_cl_avx2, layout_from_cl_avx2},
	[CLAD_TAPCONV_ISA_AVX512] = {panel_gemm_avx512, panel_gemm_t_avx512, panel_gemm_t_columns_avx512, panel_gemm_bf16_avx512, panel_gemm_t_bf16_avx512, wgrad_tile_avx512, 8, 32, layout_to_cl_avx2, layout_from_cl_avx2},
#endif
};

/* the kernels' instruction set, chosen at first use (cpu_isa.h); -1 until then */
static int	isa_chosen = -1;

int
clad_tapconv_limit_isa(int isa)
{
	return clad_cpu_isa_limit(&isa_chosen, isa);
}

const panel_kernels *
tapconv_kernels(void)
{
	return &kernels_by_isa[clad_cpu_isa_chosen(&isa_chosen)];
}
