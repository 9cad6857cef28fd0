/* core/orientation.h: self-labels that pair a cluster with a quarter turn, and their confidence.
 *
 * A classifier trained on orientation self-labels sees every normal image in
 * R orientations (R = 4: rotated by 0, 90, 180 and 270 degrees) and learns
 * the label k * R + r for an image of cluster k turned r quarter turns.  To
 * tell the turn it must learn what the normal images look like upright, so
 * an image unlike them gets an uncertain answer.  The orientation confidence
 * of an image x is the geometric mean over r of the probability the
 * classifier gives to "turned r times" (summed over the clusters) when shown
 * x turned r times:
 *     conf(x) = exp( (1/R) sum_r log sum_k softmax(f(rot_r x))[k * R + r] )
 * in (0, 1]; low = anomalous.  R is 4 (quarter turns, square images) or 2
 * (half turns: 0 and 180 degrees, any shape); R = 1 is not an orientation model.
 */
#ifndef CLAD_ORIENTATION_H
#define CLAD_ORIENTATION_H

#include "net.h"

#define CLAD_MAX_ROTATIONS 4

/*
 * dst (B, C, H, W) = src turned r quarter turns counterclockwise in the
 * (H, W) plane, as torch.rot90(src, r, (2, 3)); needs H == W for odd r.
 * dst and src must not overlap.
 */
void		clad_rotate90(float *dst, const float *src, int B, int C, int H, int W, int r);

/* Buffers reused between calls. */
typedef struct clad_orientation_work
{
	int			cap_rows;
	float	   *x;				/* (rows, C*H*W) turned inputs */
	double	   *sum;			/* (rows / R) running sums of log-probabilities */
} clad_orientation_work;

void		clad_orientation_work_free(clad_orientation_work *w);

/* Images per forward pass when B images are scored in R turns each, at most max(R, max_rows) rows a pass. */
int			clad_orientation_group(int B, int R, int max_rows);

/*
 * One eval-mode forward of clf over G normalised images x (G, C,H,W), each
 * in its R orientations: row r * G + g is image g turned r * 4 / R quarter turns.
 */
clad_status clad_orientation_forward(clad_net *clf, const float *x, int G, int R,
									 clad_orientation_work *w);

/*
 * conf (B): the orientation confidence of B normalised images x (B, C,H,W)
 * under clf, whose outputs are K * R logits.  Runs clf in eval mode on
 * batches of whole groups of R turned copies, at most max(R, max_rows) rows
 * each.  Optionally log_prob (B, R): each turn's log-probability.
 */
clad_status clad_orientation_confidence(clad_net *clf, const float *x, int B, int K, int R,
										int max_rows, float *conf, float *log_prob,
										clad_orientation_work *w);

#endif
