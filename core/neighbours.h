/* core/neighbours.h: the neighbour confidence, a classifier's features compared with normal images'.
 *
 * A classifier trained on orientation self-labels (orientation.h) learns
 * features that describe what the normal images look like in each turn.  The
 * neighbour confidence of an image x compares them with a bank of normal
 * training images' features: for each feature tap t of the classifier (a
 * mid-level map and the penultimate features, marked by the architecture,
 * each average-pooled to a pool_t x pool_t grid, flattened and scaled to unit
 * length) and each turn r, the cosine distance to the nearest bank image in
 * the same turn,
 *     d_t(x) = (1/R) sum_r min_n (1 - <f_t(rot_r x), bank_t[r][n]>),
 * then standardised with the mean and spread of d_t over held-out normal
 * images and summed:
 *     conf(x) = - sum_t (d_t(x) - mean_t) / std_t.
 * Higher is more normal; 0 is a typical held-out normal image.
 *
 * The bank is stored as floats or as bfloat16 (bf16.h: half the bytes, which
 * each score streams once; the cosines are still summed in float).
 */
#ifndef CLAD_NEIGHBOURS_H
#define CLAD_NEIGHBOURS_H

#include "bf16.h"
#include "orientation.h"

#define CLAD_NEIGHBOUR_MAX_TAPS CLAD_NET_MAX_FEATURES

typedef struct clad_neighbours
{
	int			R;				/* turns */
	int			ntaps;			/* the classifier's feature taps */
	int			n;				/* bank images (each in every turn) */
	int			pool[CLAD_NEIGHBOUR_MAX_TAPS];	/* tap t pooled to pool x pool cells */
	int			dim[CLAD_NEIGHBOUR_MAX_TAPS];	/* C * pool * pool */
	int			bf16;			/* bank rows are bfloat16 (clad_bf16), else float */
	const void *bank[CLAD_NEIGHBOUR_MAX_TAPS];	/* (R, n, dim) unit rows */
	void	   *owned[CLAD_NEIGHBOUR_MAX_TAPS];	/* bank[t] when allocated here, else NULL */
	float		mean[CLAD_NEIGHBOUR_MAX_TAPS];	/* of d_t over held-out normal images */
	float		std[CLAD_NEIGHBOUR_MAX_TAPS];	/* likewise, > 0 */

	/* scratch reused between calls */
	int			cap_rows;
	float	   *feat[CLAD_NEIGHBOUR_MAX_TAPS];	/* (rows, dim) features of one pass */
	float	   *sim;			/* (block) cosine similarities of one image */
	float	   *best;			/* (rows / R) the largest so far per image */
	double	   *dist;			/* (rows / R, ntaps) */
} clad_neighbours;

/*
 * Set up nb for clf's feature taps (pool[t] cells a side each, 1..the tap's
 * height and width) with a bank of n images in R turns (1, 2 or 4), stored
 * as bfloat16 when bf16 is non-zero, else as floats, its memory allocated
 * and zeroed; mean 0 and std 1 until set.
 */
clad_status clad_neighbours_init(clad_neighbours *nb, const clad_net *clf, int R, const int *pool, int n,
								 int bf16);

/* Bytes of one bank element (2 or 4). */
size_t		clad_neighbours_elem_size(const clad_neighbours *nb);

/* Element k of tap t's bank (R, n, dim), as a float. */
float		clad_neighbours_bank_value(const clad_neighbours *nb, int t, size_t k);
void		clad_neighbours_free(clad_neighbours *nb);

/*
 * Score against data (R, n, dim, in the bank's element type) instead of tap
 * t's own bank memory, which is freed: the caller keeps data alive and
 * unchanged until clad_neighbours_free.
 */
void		clad_neighbours_borrow(clad_neighbours *nb, int t, const void *data);

/*
 * Fill the bank with the features of n normalised images x (n, C,H,W) in
 * every turn (rounded to bfloat16 for such a bank).
 */
clad_status clad_neighbours_fill(clad_neighbours *nb, clad_net *clf, const float *x, int max_rows,
								 clad_orientation_work *w);

/* dist (B, ntaps): d_t of B normalised images x (B, C,H,W), at most max(R, max_rows) rows a pass. */
clad_status clad_neighbour_distances(clad_neighbours *nb, clad_net *clf, const float *x, int B,
									 int max_rows, float *dist, clad_orientation_work *w);

/* conf (B): the neighbour confidence of B normalised images (see above). */
clad_status clad_neighbour_confidence(clad_neighbours *nb, clad_net *clf, const float *x, int B,
									  int max_rows, float *conf, clad_orientation_work *w);

/* mean and std of each tap from the distances dist (n, ntaps) of held-out normal images. */
void		clad_neighbours_set_stats(clad_neighbours *nb, const float *dist, int n);

#endif
