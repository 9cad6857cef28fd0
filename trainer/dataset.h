/* trainer/dataset.h: labelled image sets in memory, and the loaders for each on-disk format.
 *
 * Every loader produces the same thing: n images of (C,H,W) float pixels in
 * [0,1] (NCHW, contiguous) with an integer class label each (-1 when the
 * source has none).  Loaders check what they read as strictly as the format
 * demands and report problems through clad_fail (core/status.h); they never
 * print or exit.
 */
#ifndef CLAD_DATASET_H
#define CLAD_DATASET_H

#include "status.h"

typedef struct clad_dataset
{
	int			n;				/* images */
	int			C, H, W;
	float	   *pixels;			/* (n, C, H, W) in [0,1] */
	int32_t    *labels;			/* (n), -1 when unknown */
	int			n_classes;		/* 1 + largest label, 0 when none */
	char	  **class_names;	/* (n_classes) or NULL: names for folder / Tiny-ImageNet sets */
} clad_dataset;

void		clad_dataset_free(clad_dataset *d);

/*
 * Per-channel mean and std (population, 1 when the variance is ~0) of n
 * images (n, C, plane) in [0,1]: the reference's Normalize statistics.
 */
void		clad_channel_stats(const float *pixels, int n, int C, size_t plane, float *mean, float *std);

/* Which split of a set with an official train/test division. */
typedef enum clad_split
{
	CLAD_SPLIT_TRAIN,
	CLAD_SPLIT_TEST
} clad_split;

/*
 * MNIST-style idx directory: train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally gzipped
 * (".gz").  Magic numbers, dimensions and lengths are checked.
 */
clad_status clad_load_idx(const char *dir, clad_split split, clad_dataset *out);

/* CIFAR-10 binary batches (data_batch_1..5.bin / test_batch.bin) in dir. */
clad_status clad_load_cifar10(const char *dir, clad_split split, clad_dataset *out);

/*
 * GTSRB: the official layout (Final_Training/Images/NNNNN/NAME.ppm with
 * GT-NNNNN.csv per class; Final_Test/Images/NAME.ppm with GT-final_test.csv),
 * each image cropped to its ROI from the CSV and resized (bilinear) to
 * size x size.
 */
clad_status clad_load_gtsrb(const char *dir, clad_split split, int size, clad_dataset *out);

/*
 * A folder with one sub-folder per class (sorted by name; label = index),
 * images PNG, JPEG or PGM/PPM, resized (bilinear) to H x W and converted to
 * C channels (1: luminance, 3: RGB).  Tiny-ImageNet's train/ layout is read
 * the same way (its images/ sub-folder per class is looked into).
 */
clad_status clad_load_folder(const char *dir, int C, int H, int W, clad_dataset *out);

/*
 * Tiny-ImageNet's val/ folder: val_annotations.txt ("<file>\t<wnid>\t<box>"
 * per line) and images/<file>; labels are the wnids' indices in class_names
 * (the training set's, from clad_load_folder on train/), which are copied.
 */
clad_status clad_load_tinyimagenet_val(const char *dir, char *const *class_names, int n_classes,
									   int C, int H, int W, clad_dataset *out);

/*
 * Keep only images whose label is in classes[0..n_classes), in order; the
 * labels are kept as they were.
 */
clad_status clad_dataset_filter(const clad_dataset *in, const int32_t *classes, int n_classes,
								clad_dataset *out);

#endif
