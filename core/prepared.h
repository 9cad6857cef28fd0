/* core/prepared.h: a prepared model as one file that scoring maps as it is.
 *
 * Loading a model file means parsing and checking every weight, then packing
 * the convolution weights for the batch-1 kernels (tapconv.h): tens of
 * milliseconds for a ResNet-18, paid by every process that scores.  A
 * prepared file holds the result: the model's settings (a small safetensors
 * file without the nets), each net's parameters (but the convolution weights
 * the panels replace) and buffers, and the packed panels of every inference
 * plan (net.h), each section 64-byte aligned behind a header:
 *
 *   magic "CLADPREP", layout version, byte-order mark, total length,
 *   an XXH3-64 hash of the whole file (header included), the SHA-256 of the model
 *   file it was prepared from, max_B, the panels' precision (fp32 or bf16),
 *   and the (offset, length) of the
 *   sections: settings, encoder params, buffers, panels, classifier params,
 *   buffers, panels.
 *
 * clad_prepared_open builds a scoring-only model over the bytes where they
 * are (a read-only shared mapping, so that every process shares one copy in
 * the page cache).  It checks the header, the hash, the settings as strictly
 * as a model file's, and that every section has exactly the size the nets
 * built from the settings need.  A file of another layout version, byte
 * order or source is refused, never misread: the caller then prepares the
 * model from its file again.
 */
#ifndef CLAD_PREPARED_H
#define CLAD_PREPARED_H

#include "model.h"

#include <stdint.h>

/* Bump it whenever the bytes written change meaning: the sections, the header, the
 * panel layout of tapconv.c (PANEL) or which plans share one copy of their
 * panels (tapconv.h), which weights the panels replace. */
#define CLAD_PREPARED_LAYOUT 4

/*
 * Whether m has a prepared form: every method but the ensemble (its members'
 * nets would need sections of their own; it is loaded from its file).
 */
int			clad_prepared_supported(const clad_model *m);

/*
 * Write the prepared form of m to the file descriptor fd (from its current
 * position on; the file should be empty).  m must be prepared
 * (clad_model_prepare(m, max_B)); its weights may have been released since
 * (the file does not hold those the panels replace).  sha256: the
 * SHA-256 of the model file m was loaded from, recorded for the reader.
 */
clad_status clad_prepared_write(const clad_model *m, const uint8_t sha256[32], int max_B, int fd);

/*
 * A model that scores batches up to max_B in precision p from buf (len
 * bytes, a prepared file), which must stay mapped and unchanged until
 * clad_model_free(*out).  Refused unless the file's layout, byte order,
 * hash, max_B, precision and source SHA-256 (when sha256 is not NULL) are
 * the expected ones.  The precision written is the model's
 * (clad_model_prepare_in).
 */
clad_status clad_prepared_open(const uint8_t *buf, size_t len, const uint8_t sha256[32], int max_B,
							   clad_precision p, clad_model **out);

#endif
