/* trainer/scenario.h: which classes are normal, from the paper's presets or a list of ids.
 *
 * A scenario string is one of:
 *   DATASET:NAME   a preset of the paper (REFERENCE.md), names case-insensitive:
 *                  mnist:CUR (0,3,8)  mnist:STR (1,4,7)  mnist:MIX (2,5,6,9)
 *                  cifar10:THG (0,1,8,9)  cifar10:LIV (2-7)
 *                  gtsrb:SPDL (0-5,7,8)  gtsrb:INST (9,10,15,16)  gtsrb:WARN (11,18-31)
 *                  gtsrb:DIRC (33-40)  gtsrb:SPEC (12,13,14,17)  gtsrb:REGN (6,32,41,42)
 *                  tiny:ANML  tiny:ISCT  tiny:ISTM  tiny:STRT  tiny:VHCL
 *                  (Tiny-ImageNet presets are class names such as "golden retriever";
 *                  clad_scenario_resolve maps them to the set's classes);
 *   DATASET:IDS    ids of that dataset, checked against its class count, e.g.
 *                  mnist:3 (the one-class scenario of digit 3) or gtsrb:11,18-31;
 *   IDS            a plain list of ids and ranges: "0,3,8", "18-31", "11,18-31".
 * DATASET is mnist, cifar10 (cifar-10), gtsrb or tiny (tiny-imagenet), any case.
 * Ids come out sorted and unique; an id listed twice is an error.
 *
 * Each dataset's preset also carries the reference settings that differ
 * from clad_train_defaults (the MNIST ones): the CLI applies them unless
 * the user set the option.
 */
#ifndef CLAD_SCENARIO_H
#define CLAD_SCENARIO_H

#include "train.h"

/*
 * The reference applies ODIN's step as eps * 50 / (79/255) on the normalised
 * input; clad applies eps as given (core/odin.h).  So a reference eps e is
 * clad eps e * CLAD_REFERENCE_EPS_FACTOR (about 161.39): the reference's
 * MNIST 1e-4 is 0.0161 here, its CIFAR-10 0.01 is 1.614 here.
 */
#define CLAD_REFERENCE_EPS_FACTOR (50.0 * 255.0 / 79.0)

/* Largest id a plain list may name. */
#define CLAD_SCENARIO_MAX_ID 65535

/* Settings a scenario suggests; zero / NULL / negative = keep the default. */
typedef struct clad_scenario_settings
{
	const char *autoencoder;	/* cifar10: "cvae_large" */
	int			K;				/* cifar10: 10, gtsrb: 20 */
	int			latent;			/* cifar10:THG 200, cifar10:LIV 100 */
	float		eps;			/* clad's convention; < 0: keep */
	int			channels;		/* images as the dataset has them (for folder sets) */
	int			image_size;		/* side of the square images (gtsrb 32, tiny 64) */
} clad_scenario_settings;

typedef struct clad_scenario
{
	char		label[64];		/* canonical form: "mnist:CUR", "gtsrb:11,18-31", "0,3,8" */
	char		dataset[16];	/* "mnist", "cifar10", "gtsrb", "tiny", or "" for a plain list */
	int			max_classes;	/* the dataset's class count, 0 when unknown */
	int32_t    *classes;		/* (n_classes) sorted, unique; empty until names are resolved */
	int			n_classes;
	const char *const *names;	/* (n_names) class names still to resolve (Tiny-ImageNet), static */
	int			n_names;
	clad_scenario_settings settings;
} clad_scenario;

/*
 * Parse a scenario string.  On failure *out is left empty (free it anyway)
 * and clad_last_error() says what is wrong.
 */
clad_status clad_scenario_parse(const char *spec, clad_scenario *out);

void		clad_scenario_free(clad_scenario *sc);

/*
 * Tie the scenario to a loaded set's classes.  Ids must be below n_classes
 * (when n_classes > 0).  Names (Tiny-ImageNet presets) are matched, case-
 * insensitively, first against class_names themselves, then through
 * words_path (may be NULL) when class_names are wnids; each must name
 * exactly one class.  Afterwards sc->classes holds the ids and
 * sc->n_names is 0.
 */
clad_status clad_scenario_resolve(clad_scenario *sc, char *const *class_names, int n_classes,
								  const char *words_path);

/*
 * Parse a list of ids and ranges ("0,3,8", "18-31", "11,18-31"): ids in
 * 0..max_id, sorted and unique into a malloc'd *ids (*n of them).
 */
clad_status clad_parse_id_list(const char *s, int max_id, int32_t **ids, int *n);

/*
 * Tiny-ImageNet's words.txt: lines "wnid<TAB>name, name, ...".  For each
 * names[i], the index into wnids[0..n_wnids) of the one class that has it
 * among its comma-separated names (ASCII case-insensitive, surrounding
 * spaces ignored).  Lines for wnids outside wnids are skipped (the real file
 * lists all of ImageNet).  A name matching no class or more than one is an
 * error naming it.
 */
clad_status clad_words_match(const char *words_path, const char *const *names, int n_names,
							 char *const *wnids, int n_wnids, int32_t *ids);

/* Apply the scenario's suggested settings to cfg (the caller re-applies user options). */
void		clad_scenario_apply(const clad_scenario *sc, clad_train_config *cfg);

/* The names of the presets, for help texts: "mnist:CUR mnist:STR ...". */
const char *clad_scenario_preset_list(void);

#endif
