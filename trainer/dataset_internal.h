/* trainer/dataset_internal.h: the helpers dataset.c lends dataset_files.c (not part of the API). */
#ifndef CLAD_TRAINER_DATASET_INTERNAL_H
#define CLAD_TRAINER_DATASET_INTERNAL_H

#include "dataset.h"

#include <stddef.h>
#include <stdint.h>

/* out = a "/" b, refusing paths that do not fit. */
clad_status dataset_join(char *out, size_t cap, const char *a, const char *b);
int			dataset_is_dir(const char *path);
int			dataset_is_file(const char *path);
/* A whole regular file (at most 1 GiB) into *buf (malloc'd, one spare byte); *len its size. */
clad_status dataset_read_file(const char *path, uint8_t **buf, size_t *len);
/* n images of (C, H, W) with labels, all sizes checked; *d zeroed first. */
clad_status dataset_alloc(clad_dataset *d, size_t n, int C, int H, int W);
/* n_classes = the largest label + 1. */
void		dataset_set_n_classes(clad_dataset *d);

#endif
