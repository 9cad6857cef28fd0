/* core/deepsvdd.h: the Deep SVDD confidence (Ruff et al. 2018).
 *
 * Deep SVDD maps normal images near a centre c of its code space: an encoder
 * trained to pull the codes of the normal training images toward c.  Its
 * anomaly score is the squared distance of an image's code to c; clad's
 * confidence (higher = more normal, as every method's) is its negative:
 *     conf(x) = - ||z(x) - c||^2.
 */
#ifndef CLAD_DEEPSVDD_H
#define CLAD_DEEPSVDD_H

/* conf (B) = - ||z_b - c||^2 for codes z (B, latent) and the centre c (latent), summed in double. */
void		clad_svdd_confidence(const float *z, const float *c, int B, int latent, float *conf);

#endif
