/* trainer/kmeans.h: k-means (k-means++ seeding, Lloyd iterations, best of several restarts). */
#ifndef CLAD_KMEANS_H
#define CLAD_KMEANS_H

#include "status.h"

/*
 * Cluster x (n, D) into K groups: restarts runs from different seeds,
 * keeping the lowest inertia; each run stops after max_iter iterations or
 * when no assignment changes.  centers (K, D) and labels (n) (may be NULL)
 * receive the result; *inertia (may be NULL) the sum of squared distances.
 */
clad_status clad_kmeans(const float *x, int n, int D, int K, int restarts, int max_iter,
						uint64_t seed, float *centers, int32_t *labels, double *inertia);

#endif
