/* trainer/dataset_pg.h: training images from PostgreSQL through libpq.
 *
 * clad_load_pg connects with conninfo (a libpq connection string or URI;
 * PG* environment variables and ~/.pgpass apply as in psql), runs query in
 * a READ ONLY transaction, always rolled back, with binary results, and
 * reads the rows as they arrive (libpq's single-row mode: the whole result
 * is never held in memory at once).  The query is one statement; it has no
 * parameters.
 *
 * The rows must have:
 *   column 1  bytea: the image file's bytes, PNG, JPEG or PGM/PPM, decoded
 *             with clad_image_decode (core/image.h) and resized (bilinear)
 *             to H x W with C channels (1 luminance, 3 RGB); images larger
 *             than CLAD_PG_MAX_PIXELS (width * height) are refused;
 *   column 2  (optional) int2, int4 or int8: the class label, 0 to
 *             CLAD_PG_MAX_LABEL.
 * No other columns.  Types are checked by OID (a domain over bytea or an
 * integer type is reported as its base type, so it is accepted).  A NULL
 * image or label, an undecodable image, a label out of range, or a query
 * returning no rows is an error naming the row (1-based, in the order the
 * query returned them).
 *
 * out: n images (C, H, W) in [0,1]; labels from column 2, or -1 for every
 * image when the query has one column; n_classes = 1 + the largest label
 * with a label column (so >= 1), 0 without one; no class names.
 *
 * Nothing is printed (libpq's notices are swallowed); problems are reported
 * through clad_fail (core/status.h) with the server's message where there is
 * one.  The connection string is never repeated in a message (it may hold a
 * password).
 */
#ifndef CLAD_DATASET_PG_H
#define CLAD_DATASET_PG_H

#include "dataset.h"

/* Largest image decoded (width * height), as the file loaders. */
#define CLAD_PG_MAX_PIXELS ((size_t) 1 << 26)

/* Largest class label accepted (the scenarios' largest id). */
#define CLAD_PG_MAX_LABEL 65535

clad_status clad_load_pg(const char *conninfo, const char *query, int C, int H, int W,
						 clad_dataset *out);

#endif
