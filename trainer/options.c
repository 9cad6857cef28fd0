/* trainer/options.c: clad-train's command line: the settings table, value parsing, --help, the option checks. */
#include "options.h"

#include "cli.h"
#include "baselines.h"
#include "model.h"
#include "scenario.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG(f) offsetof(clad_train_config, f)

const knob knobs[] = {
	{"autoencoder", KNOB_AUTOENCODER, CFG(autoencoder), 0, 0, 0, 0, "autoencoder"},
	{"classifier", KNOB_CLASSIFIER, CFG(classifier), 0, 0, 0, 0, "classifier"},
	{"clusters", KNOB_INT, CFG(K), 2, 256, 0, 0, "clusters"},
	{"latent", KNOB_INT, CFG(latent), 1, 4096, 0, 0, "latent"},
	{"ae-epochs", KNOB_INT, CFG(ae_epochs), 0, 1000000, 0, 0, "ae_epochs"},
	{"ae-batch", KNOB_INT, CFG(ae_batch), 2, 65536, 0, 0, "ae_batch"},
	{"ae-lr", KNOB_FLOAT, CFG(ae_lr), 0, 100, 1, 0, "ae_lr"},
	{"ae-target", KNOB_AE_TARGET, CFG(ae_target), 0, 0, 0, 0, "ae_target"},
	{"kmeans-restarts", KNOB_INT, CFG(kmeans_restarts), 1, 100000, 0, 0, "kmeans_restarts"},
	{"dec-epochs", KNOB_INT, CFG(dec_epochs), 0, 1000000, 0, 0, "dec_epochs"},
	{"dec-batch", KNOB_INT, CFG(dec_batch), 2, 65536, 0, 0, "dec_batch"},
	{"dec-lr", KNOB_FLOAT, CFG(dec_lr), 0, 100, 1, 0, "dec_lr"},
	{"dec-momentum", KNOB_FLOAT, CFG(dec_momentum), 0, 1, 0, 1, "dec_momentum"},
	{"dec-tol", KNOB_FLOAT, CFG(dec_tol), 0, 1, 0, 0, "dec_tol"},
	{"clf-epochs", KNOB_INT, CFG(clf_epochs), 1, 1000000, 0, 0, "clf_epochs"},
	{"clf-batch", KNOB_INT, CFG(clf_batch), 2, 65536, 0, 0, "clf_batch"},
	{"clf-lr", KNOB_FLOAT, CFG(clf_lr), 0, 100, 1, 0, "clf_lr"},
	{"rotations", KNOB_INT, CFG(rotations), 1, 4, 0, 0, "rotations"},
	{"bank", KNOB_INT, CFG(bank), 0, 1 << 20, 0, 0, "bank"},
	{"bank-precision", KNOB_BANK_PRECISION, CFG(bank_precision), 0, 0, 0, 0, "bank_precision"},
	{"temperature", KNOB_FLOAT, CFG(T), 0, 1e6, 1, 0, "temperature"},
	{"epsilon", KNOB_FLOAT, CFG(eps), 0, 100, 0, 0, "epsilon"},
	{"reference-epsilon", KNOB_REFERENCE_EPS, CFG(eps), 0, 100 / CLAD_REFERENCE_EPS_FACTOR, 0, 0, NULL},
	{"tpr", KNOB_DOUBLE, CFG(tpr), 0, 1, 1, 1, "tpr"},
	{"holdout", KNOB_DOUBLE, CFG(holdout), 0, 1, 1, 1, "holdout"},
	{"seed", KNOB_U64, CFG(seed), 0, 0, 0, 0, "seed"},
	{"threads", KNOB_INT, CFG(threads), 1, 1024, 0, 0, "threads"},
	/* where training runs: not a property of the model, so not in its summary */
	{"device", KNOB_DEVICE, CFG(device), 0, 0, 0, 0, NULL},
	/* the baselines' (no key: a CLAD model's summary does not record them) */
	{"ocsvm-nu", KNOB_DOUBLE, CFG(ocsvm_nu), 0, 1, 1, 0, NULL},
	{"ocsvm-gamma", KNOB_DOUBLE, CFG(ocsvm_gamma), 0, 1e6, 0, 0, NULL},
	{"svdd-epochs", KNOB_INT, CFG(svdd_epochs), 0, 1000000, 0, 0, NULL},
	{"svdd-batch", KNOB_INT, CFG(svdd_batch), 2, 1000000, 0, 0, NULL},
	{"svdd-lr", KNOB_FLOAT, CFG(svdd_lr), 0, 100, 1, 0, NULL},
	{"svdd-weight-decay", KNOB_FLOAT, CFG(svdd_weight_decay), 0, 100, 0, 0, NULL},
};
_Static_assert(sizeof(knobs) / sizeof(knobs[0]) == N_KNOBS, "N_KNOBS is the number of knobs");

/* Other options (getopt values above any character). */
enum
{
	OPT_KNOB = 1000,			/* OPT_KNOB + i: knobs[i] */
	OPT_DATA = 2000,
	OPT_FORMAT,
	OPT_NORMAL,
	OPT_OUT,
	OPT_MODEL,
	OPT_NO_EVAL,
	OPT_JSON,
	OPT_WORDS,
	OPT_CHANNELS,
	OPT_IMAGE_SIZE,
	OPT_RECORD_TIMES,
	OPT_DB,
	OPT_QUERY,
	OPT_TEST_QUERY,
	OPT_MODEL_NAME,
	OPT_ACTIVATE,
	OPT_SHARD,
	OPT_VERSION_ID,
	OPT_METHOD,
	OPT_VALIDATION,
	OPT_VALIDATE_QUERY,
	OPT_VALIDATION_ANOMALIES,
	OPT_VALIDATION_SCORES,
	OPT_RECIPE,
	OPT_REPORT,
	OPT_PRECISION
};

/* room for the options other than the knobs (checked when they are listed) */
#define MAX_FIXED_OPTIONS 40

/* A full-string decimal integer in [lo, hi]: 0, -1 not a number, 1 out of range. */
static int
parse_int(const char *s, long long lo, long long hi, long long *out)
{
	char	   *end;
	long long	v;

	if (!s[0] || !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return -1;
	if (errno == ERANGE || v < lo || v > hi)
		return 1;
	*out = v;
	return 0;
}

/* A full-string finite decimal number (no hex, inf or nan): 0, or -1. */
static int
parse_real(const char *s, double *out)
{
	char	   *end;
	double		v;

	if (!s[0])
		return -1;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '-' || *p == '+'))
			return -1;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || end == s || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
		return -1;
	*out = v;
	return 0;
}

/* The accepted range of knob k as text: ">= 2 and <= 256". */
static void
range_text(char *buf, size_t size, const knob *k)
{
	snprintf(buf, size, "%s %g and %s %g", k->lo_open ? ">" : ">=", k->lo, k->hi_open ? "<" : "<=", k->hi);
}

/* Parse arg for knob k into cfg, or exit with a usage error. */
void
apply_knob(const knob *k, const char *arg, clad_train_config *cfg)
{
	char	   *base = (char *) cfg + k->offset;
	char		range[96];

	switch (k->type)
	{
		case KNOB_AUTOENCODER:
		case KNOB_CLASSIFIER:
			{
				int			ok = k->type == KNOB_AUTOENCODER ? clad_is_autoencoder_arch(arg)
					: clad_is_classifier_arch(arg);

				if (!ok || strlen(arg) >= sizeof(cfg->autoencoder))
					die_usage("--%s: unknown architecture \"%s\" (%s)", k->name, arg,
							  k->type == KNOB_AUTOENCODER ? "cvae, cvae_large, linear"
							  : "resnet18, cnn, cnn_large, fc3, linear");
				snprintf(base, sizeof(cfg->autoencoder), "%s", arg);
				return;
			}
		case KNOB_DEVICE:
			{
				long long	n;

				if (strlen(arg) >= sizeof(cfg->device) ||
					!(strcmp(arg, "cpu") == 0 || strcmp(arg, "cuda") == 0 || strcmp(arg, "emulated") == 0 ||
					  (strncmp(arg, "cuda:", 5) == 0 && parse_int(arg + 5, 0, 1024, &n) == 0)))
					die_usage("--device: \"%s\" is not cpu, cuda, cuda:N or emulated", arg);
				snprintf(base, sizeof(cfg->device), "%s", arg);
				return;
			}
		case KNOB_AE_TARGET:
			if (!clad_is_ae_target(arg))
				die_usage("--ae-target: \"%s\" is not normalised or pixels", arg);
			snprintf(base, sizeof(cfg->ae_target), "%s", arg);
			return;
		case KNOB_BANK_PRECISION:
			if (!clad_is_bank_precision(arg))
				die_usage("--bank-precision: \"%s\" is not bf16 or f32", arg);
			snprintf(base, sizeof(cfg->bank_precision), "%s", arg);
			return;
		case KNOB_INT:
			{
				long long	v;
				int			r = parse_int(arg, (long long) k->lo, (long long) k->hi, &v);

				if (r < 0)
					die_usage("--%s: \"%s\" is not an integer", k->name, arg);
				if (r > 0)
					die_usage("--%s must be between %.0f and %.0f, not %s", k->name, k->lo, k->hi, arg);
				if (k->offset == CFG(rotations) && v == 3)
					die_usage("--rotations must be 1, 2 or 4, not 3");
				*(int *) base = (int) v;
				return;
			}
		case KNOB_U64:
			{
				char	   *end;
				unsigned long long v;

				if (!arg[0] || arg[0] < '0' || arg[0] > '9')
					die_usage("--%s: \"%s\" is not a non-negative integer", k->name, arg);
				errno = 0;
				v = strtoull(arg, &end, 10);
				if (*end != '\0')
					die_usage("--%s: \"%s\" is not a non-negative integer", k->name, arg);
				if (errno == ERANGE)
					die_usage("--%s: %s does not fit in 64 bits", k->name, arg);
				*(uint64_t *) base = (uint64_t) v;
				return;
			}
		case KNOB_FLOAT:
		case KNOB_DOUBLE:
		case KNOB_REFERENCE_EPS:
			{
				double		v;

				if (parse_real(arg, &v) != 0)
					die_usage("--%s: \"%s\" is not a finite number", k->name, arg);
				range_text(range, sizeof(range), k);
				if (v < k->lo || (k->lo_open && v == k->lo) || v > k->hi || (k->hi_open && v == k->hi))
					die_usage("--%s must be %s, not %s", k->name, range, arg);
				if (k->type == KNOB_DOUBLE)
					*(double *) base = v;
				else
				{
					float		f = (float) (k->type == KNOB_REFERENCE_EPS ? v * CLAD_REFERENCE_EPS_FACTOR : v);

					if (k->lo_open && !(f > 0.0f))
						die_usage("--%s: %s is too small for single precision", k->name, arg);
					*(float *) base = f;
				}
				return;
			}
	}
}

static const char *const formats[] = {"idx", "cifar10", "gtsrb", "folder"};

/* The --help text. */
static void
print_help(void)
{
	printf("Usage:\n"
		   "  clad-train [train] --data PATH --normal SCENARIO --out MODEL.safetensors [options]\n"
		   "  clad-train [train] --db CONNINFO --query SQL [--test-query SQL] [--normal IDS]\n"
		   "                     --out MODEL.safetensors [options]\n"
		   "  clad-train [train] --db CONNINFO --query SQL [--test-query SQL] [--normal IDS]\n"
		   "                     --model-name NAME [--activate] [--out MODEL.safetensors] [options]\n"
		   "  clad-train eval --model MODEL.safetensors --data PATH --normal SCENARIO [--json]\n"
		   "  clad-train info MODEL.safetensors [--json]\n"
		   "  clad-train push --db CONNINFO [--shard CONNINFO ...] [--version-id ID]\n"
		   "                  --model-name NAME [--activate] MODEL.safetensors\n"
		   "  clad-train score MODEL.safetensors IMAGE...\n"
		   "\n"
		   "Trains CLAD (autoencoder, k-means + DEC self-labelling, a classifier on the\n"
		   "self-labels, a confidence score: by default the neighbour confidence, ODIN with\n"
		   "--recipe paper) on the normal classes of a set's training split, saves the model,\n"
		   "and evaluates it on the test split (normal classes = normal, every other class =\n"
		   "anomaly).\n"
		   "push validates a model file and stores it in the database as a new version of\n"
		   "model NAME (the clad extension); it prints the version id on stdout.  With\n"
		   "--shard, the same version is stored under the same id on each further server\n"
		   "(postgres_fdw shards, Citus nodes); --version-id chooses the id.  A server that\n"
		   "holds other bytes under that id refuses, and push fails naming it.\n"
		   "score prints, for each image file (PNG, JPEG, PGM/PPM, resized to the model's\n"
		   "input), \"FILE<TAB>confidence<TAB>score\": the model's confidence (neighbour,\n"
		   "orientation or ODIN) and the calibrated anomaly score in [0,1], as clad_confidence and\n"
		   "clad_score compute them in SQL.\n"
		   "\n"
		   "Data:\n"
		   "  --data PATH           the data set; also KIND:PATH (idx:, mnist:, cifar10:, gtsrb:,\n"
		   "                        folder:, tiny:), or just \"mnist\" for the digits `make data`\n"
		   "                        prepares in " MNIST_PREPARED "\n"
		   "  --format FORMAT       idx (MNIST-style files), cifar10 (binary batches), gtsrb\n"
		   "                        (PPM + CSV), folder (one sub-folder per class; train/ and\n"
		   "                        test/ or val/ when present).  Default: the scenario's\n"
		   "                        dataset's format, else idx\n"
		   "  --normal SCENARIO     normal classes: a preset (case-insensitive)\n"
		   "                        %s,\n"
		   "                        DATASET:IDS (mnist:3, gtsrb:11,18-31) or ids (0,3,8 / 18-31)\n"
		   "  --words FILE          Tiny-ImageNet's words.txt (default: PATH/words.txt or beside PATH)\n"
		   "  --channels 1|3        folder and --db sets: channels (default: the scenario's\n"
		   "                        dataset, else 3; --db 1)\n"
		   "  --image-size N        folder, GTSRB and --db sets: side of the square images\n"
		   "                        (default 32; mnist 28, tiny 64; --db 28)\n"
		   "  --db CONNINFO         training images from PostgreSQL (a libpq connection string\n"
		   "                        or URI) instead of --data; with --query\n"
		   "  --query SQL           rows of (image bytea [, label smallint/integer/bigint]):\n"
		   "                        PNG, JPEG or PGM/PPM bytes, resized to --image-size (28)\n"
		   "                        with --channels (1); run read-only.  With a label column\n"
		   "                        --normal picks the normal rows; without one every row is\n"
		   "                        normal\n"
		   "  --test-query SQL      the test split, rows of (image, label), scored after\n"
		   "                        training (needs --normal); without it --db skips evaluation\n"
		   "\n"
		   "Database (the clad extension, CREATE EXTENSION clad):\n"
		   "  --model-name NAME     with --db: store the trained model as a new version of the\n"
		   "                        clad model NAME (clad_load_model, one transaction; the\n"
		   "                        training summary as its metrics); --out is then optional.\n"
		   "                        The run is recorded in clad.training_runs (rows read,\n"
		   "                        version, metrics, or the error of a failed run); one run\n"
		   "                        of a model at a time: another one is refused before any\n"
		   "                        row is read.  Needs EXECUTE on the lifecycle functions\n"
		   "                        (clad_grant_writer)\n"
		   "  --activate            make the new version the active one (default: only a\n"
		   "                        model's first version is activated)\n"
		   "  --shard CONNINFO      push: also store the version, under the same id, on this\n"
		   "                        server (repeat for each shard)\n"
		   "  --version-id ID       push: store it under this id on every server (default:\n"
		   "                        the next id of the --db server)\n"
		   "\n"
		   "Model (defaults: the reference's MNIST settings; cifar10 presets use cvae_large,\n"
		   "K 10, latent 200 (THG) / 100 (LIV), eps 1.614; gtsrb presets K 20):\n"
		   "  --autoencoder ARCH    cvae, cvae_large, linear (cvae)\n"
		   "  --classifier ARCH     resnet18, cnn, cnn_large, fc3, linear (resnet18)\n"
		   "  -K, --clusters K      clusters = classifier outputs, 2-256 (10)\n"
		   "  --latent H            latent size (10)\n"
		   "\n"
		   "Training:\n"
		   "  --ae-epochs N  --ae-batch N  --ae-lr LR          autoencoder, Adam (100, 512, 0.001)\n"
		   "  --ae-target normalised|pixels                    what it reconstructs: the normalised\n"
		   "                        input, as the reference does (default), or the pixels in\n"
		   "                        [0,1] (Deep SVDD's pretraining always reconstructs pixels)\n"
		   "  --kmeans-restarts N                              k-means restarts (20)\n"
		   "  --dec-epochs N  --dec-batch N  --dec-lr LR       DEC, SGD (100, 512, 0.01)\n"
		   "  --dec-momentum M  --dec-tol F                    (0.9; stop below 0.001 labels changed)\n"
		   "  --clf-epochs N  --clf-batch N  --clf-lr LR       classifier, Adam (10, 128, 0.0001;\n"
		   "                        an epoch shows every image in every orientation)\n"
		   "  --rotations R         orientation self-labels: the classifier learns cluster and\n"
		   "                        turn of every image turned 0, 90, 180, 270 degrees (4), or\n"
		   "                        0 and 180 (2); 1: plain self-labels scored by ODIN (4)\n"
		   "  --bank N              with --rotations 2 or 4: score by the neighbour confidence,\n"
		   "                        the classifier's features of an image against those of up\n"
		   "                        to N normal training images in each turn (stored in the\n"
		   "                        model); 0: by the orientation confidence (2048)\n"
		   "  --bank-precision P    bf16 (half the bytes each score reads) or f32 (bf16)\n"
		   "  --recipe NAME         clad (default: --rotations 4 --clf-epochs 10 --bank 2048)\n"
		   "                        or paper (the reference's: --rotations 1 --clf-epochs 100,\n"
		   "                        ODIN); options given after it still apply\n"
		   "  --temperature T       ODIN temperature (1000; --rotations 1 only)\n"
		   "  --epsilon E           ODIN step on the normalised input, x' = x - E sign(grad)\n"
		   "                        (0.0161)\n"
		   "  --reference-epsilon E the step in the reference code's convention: E x 50/(79/255)\n"
		   "                        (its 1e-4 is --epsilon 0.0161)\n"
		   "  --tpr F               threshold at this TPR on held-out normal images (0.95)\n"
		   "  --holdout F           share of normal training images held out (0.1)\n"
		   "  --seed N              random seed (1); same seed and threads, same model bytes\n"
		   "  --threads N           BLAS threads (1)\n"
		   "  --device D            where the nets train: cpu (default), cuda, cuda:N (a GPU, in\n"
		   "                        builds with the CUDA backend), emulated (the GPU code on the CPU)\n"
		   "\n"
		   "Baselines (the paper's one-class methods: trained, evaluated, saved and stored as CLAD):\n"
		   "  --method M            clad (default), ocsvm, deepsvdd, ensemble (the three, their\n"
		   "                        calibrated scores averaged) or auto (the four, the best on\n"
		   "                        labelled images kept)\n"
		   "  --validation PATH     auto: labelled images (a data set in the forms of --data; its\n"
		   "                        test split, labelled by --normal: other classes are anomalies)\n"
		   "  --validate-query SQL  auto, with --db: rows of (image bytea, is_anomaly boolean)\n"
		   "  --validation-anomalies N  auto: use a seeded N of the labelled anomalies (all)\n"
		   "  --validation-scores FILE  auto: write every candidate's anomaly score of each\n"
		   "                        labelled image (CSV; the anomalies left out by\n"
		   "                        --validation-anomalies too, marked as not chosen with)\n"
		   "  --ocsvm-nu F  --ocsvm-gamma G                    one-class SVM (libsvm), RBF kernel on\n"
		   "                        the normalised pixels (0.1; 0 = 1/(pixels x variance))\n"
		   "  --svdd-epochs N  --svdd-lr LR  --svdd-weight-decay W  --svdd-batch B\n"
		   "                        Deep SVDD after --ae-epochs of autoencoder pretraining on a\n"
		   "                        bias-free cvae encoder, both in batches of B (50, 0.0001,\n"
		   "                        5e-7, 200)\n"
		   "\n"
		   "Output:\n"
		   "  -o, --out FILE        the model file to write (train)\n"
		   "  --model FILE          the model to evaluate (eval)\n"
		   "  --no-eval             train only; skip the test split\n"
		   "  --json                print the metrics as one JSON object\n"
		   "  --precision P         eval, score: score with the convolution weights in fp32 (the\n"
		   "                        default) or bf16 (as SQL's clad.precision); eval in bf16 also\n"
		   "                        prints how far its confidences and AUROC are from fp32's\n"
		   "  --report DIR          write DIR/index.html: loss curves, a t-SNE map of the latent\n"
		   "                        codes, images per cluster, ROC curves, score histograms and the\n"
		   "                        most anomalous test images (self-contained, no network)\n"
		   "  --record-times        store stage timings in the model's summary (the bytes then\n"
		   "                        differ from run to run)\n"
		   "  -q, --quiet           no progress or notes on stderr\n"
		   "  -h, --help            this text\n"
		   "  -V, --version         the version\n"
		   "\n"
		   "Exit status: 0 success, 1 runtime error, 2 usage error.\n",
		   clad_scenario_preset_list());
}

/* Parse and check the command line into o, or exit (0 after --help and --version). */
void
parse_options(int argc, char **argv, const char *version, options *o)
{
	struct option *longopts;
	int			n = 0, c;
	int			first = 1, precision_given = 0;

	memset(o, 0, sizeof(*o));
	o->version_id = -1;
	o->validation_anomalies = -1;
	o->version = version;
	o->command = "train";
	if (argc > 1 && (strcmp(argv[1], "train") == 0 || strcmp(argv[1], "eval") == 0 ||
					 strcmp(argv[1], "info") == 0 || strcmp(argv[1], "push") == 0 ||
					 strcmp(argv[1], "score") == 0))
	{
		o->command = argv[1];
		first = 2;
	}
	if (!(o->set_knob = malloc(sizeof(int) * (argc + 1))) ||
		!(o->set_arg = malloc(sizeof(char *) * (argc + 1))) ||
		!(longopts = calloc(N_KNOBS + MAX_FIXED_OPTIONS + 1, sizeof(struct option))))
		die("out of memory");
	for (int i = 0; i < N_KNOBS; i++)
		longopts[n++] = (struct option) {knobs[i].name, required_argument, NULL, OPT_KNOB + i};
	longopts[n++] = (struct option) {"data", required_argument, NULL, OPT_DATA};
	longopts[n++] = (struct option) {"format", required_argument, NULL, OPT_FORMAT};
	longopts[n++] = (struct option) {"normal", required_argument, NULL, OPT_NORMAL};
	longopts[n++] = (struct option) {"out", required_argument, NULL, OPT_OUT};
	longopts[n++] = (struct option) {"model", required_argument, NULL, OPT_MODEL};
	longopts[n++] = (struct option) {"no-eval", no_argument, NULL, OPT_NO_EVAL};
	longopts[n++] = (struct option) {"json", no_argument, NULL, OPT_JSON};
	longopts[n++] = (struct option) {"words", required_argument, NULL, OPT_WORDS};
	longopts[n++] = (struct option) {"channels", required_argument, NULL, OPT_CHANNELS};
	longopts[n++] = (struct option) {"image-size", required_argument, NULL, OPT_IMAGE_SIZE};
	longopts[n++] = (struct option) {"record-times", no_argument, NULL, OPT_RECORD_TIMES};
	longopts[n++] = (struct option) {"db", required_argument, NULL, OPT_DB};
	longopts[n++] = (struct option) {"query", required_argument, NULL, OPT_QUERY};
	longopts[n++] = (struct option) {"test-query", required_argument, NULL, OPT_TEST_QUERY};
	longopts[n++] = (struct option) {"model-name", required_argument, NULL, OPT_MODEL_NAME};
	longopts[n++] = (struct option) {"activate", no_argument, NULL, OPT_ACTIVATE};
	longopts[n++] = (struct option) {"shard", required_argument, NULL, OPT_SHARD};
	longopts[n++] = (struct option) {"version-id", required_argument, NULL, OPT_VERSION_ID};
	longopts[n++] = (struct option) {"method", required_argument, NULL, OPT_METHOD};
	longopts[n++] = (struct option) {"validation", required_argument, NULL, OPT_VALIDATION};
	longopts[n++] = (struct option) {"validate-query", required_argument, NULL, OPT_VALIDATE_QUERY};
	longopts[n++] = (struct option) {"validation-anomalies", required_argument, NULL, OPT_VALIDATION_ANOMALIES};
	longopts[n++] = (struct option) {"validation-scores", required_argument, NULL, OPT_VALIDATION_SCORES};
	longopts[n++] = (struct option) {"recipe", required_argument, NULL, OPT_RECIPE};
	longopts[n++] = (struct option) {"report", required_argument, NULL, OPT_REPORT};
	longopts[n++] = (struct option) {"precision", required_argument, NULL, OPT_PRECISION};
	longopts[n++] = (struct option) {"quiet", no_argument, NULL, 'q'};
	longopts[n++] = (struct option) {"help", no_argument, NULL, 'h'};
	longopts[n++] = (struct option) {"version", no_argument, NULL, 'V'};
	assert(n <= N_KNOBS + MAX_FIXED_OPTIONS);
	longopts[n] = (struct option) {NULL, 0, NULL, 0};

	/* our own messages: getopt's would carry argv[0] as the prefix */
	opterr = 0;
	optind = first;
	while ((c = getopt_long(argc, argv, ":K:o:qhV", longopts, NULL)) != -1)
	{
		const char *opt = argv[optind - 1];
		long long	v;

		switch (c)
		{
			case 'h':
				print_help();
				exit(0);
			case 'V':
				printf("clad-train (clad) %s\n", o->version);
				exit(0);
			case 'q':
				o->quiet = 1;
				break;
			case 'K':
				for (int i = 0; i < N_KNOBS; i++)
					if (strcmp(knobs[i].name, "clusters") == 0)
						o->set_knob[o->n_set] = i;
				o->set_arg[o->n_set++] = optarg;
				break;
			case 'o':
			case OPT_OUT:
				o->out = optarg;
				break;
			case OPT_DATA:
				o->data = optarg;
				break;
			case OPT_FORMAT:
				o->format = NULL;
				for (int i = 0; i < (int) (sizeof(formats) / sizeof(formats[0])); i++)
					if (strcmp(optarg, formats[i]) == 0)
						o->format = formats[i];
				if (!o->format)
					die_usage("--format: unknown format \"%s\" (idx, cifar10, gtsrb, folder)", optarg);
				break;
			case OPT_NORMAL:
				o->normal = optarg;
				break;
			case OPT_MODEL:
				o->model = optarg;
				break;
			case OPT_NO_EVAL:
				o->no_eval = 1;
				break;
			case OPT_JSON:
				o->json = 1;
				break;
			case OPT_WORDS:
				o->words = optarg;
				break;
			case OPT_CHANNELS:
				if (parse_int(optarg, 1, 3, &v) != 0 || v == 2)
					die_usage("--channels must be 1 or 3, not \"%s\"", optarg);
				o->channels = (int) v;
				break;
			case OPT_IMAGE_SIZE:
				if (parse_int(optarg, 8, 4096, &v) != 0)
					die_usage("--image-size must be an integer from 8 to 4096, not \"%s\"", optarg);
				o->image_size = (int) v;
				break;
			case OPT_RECORD_TIMES:
				o->record_times = 1;
				break;
			case OPT_VALIDATION:
				o->validation = optarg;
				break;
			case OPT_VALIDATE_QUERY:
				o->validate_query = optarg;
				break;
			case OPT_VALIDATION_ANOMALIES:
				if (parse_int(optarg, 1, 1000000, &v) != 0)
					die_usage("--validation-anomalies must be an integer from 1 to 1000000, not \"%s\"", optarg);
				o->validation_anomalies = (int) v;
				break;
			case OPT_VALIDATION_SCORES:
				o->validation_scores = optarg;
				break;
			case OPT_DB:
				o->db = optarg;
				break;
			case OPT_QUERY:
				o->query = optarg;
				break;
			case OPT_TEST_QUERY:
				o->test_query = optarg;
				break;
			case OPT_MODEL_NAME:
				o->model_name = optarg;
				break;
			case OPT_ACTIVATE:
				o->activate = 1;
				break;
			case OPT_SHARD:
				{
					const char **more = realloc(o->shards, sizeof(*more) * (o->n_shards + 1));

					if (!more)
						die("out of memory");
					o->shards = more;
					o->shards[o->n_shards++] = optarg;
				}
				break;
			case OPT_REPORT:
				o->report = optarg;
				break;
			case OPT_PRECISION:
				if (!clad_precision_parse(optarg, &o->precision))
					die_usage("--precision must be fp32 or bf16, not \"%s\"", optarg);
				precision_given = 1;
				break;
			case OPT_METHOD:
				if (strcmp(optarg, "clad") != 0 && strcmp(optarg, "auto") != 0 && !clad_is_baseline(optarg))
					die_usage("--method must be clad, ocsvm, deepsvdd, ensemble or auto, not \"%s\"", optarg);
				o->method = strcmp(optarg, "clad") == 0 ? NULL : optarg;
				break;
			case OPT_RECIPE:
				{
					clad_train_config scratch;

					if (!clad_train_recipe(&scratch, optarg))
						die_usage("--recipe must be clad or paper, not \"%s\"", optarg);
					o->recipe = optarg;
				}
				break;
			case OPT_VERSION_ID:
				if (parse_int(optarg, 1, INT64_MAX, &v) != 0)
					die_usage("--version-id must be a positive integer, not \"%s\"", optarg);
				o->version_id = v;
				break;
			case ':':
				die_usage("option '%s' needs a value", opt);
			case '?':
				if (optopt && optopt < OPT_KNOB)
					die_usage("unknown option '-%c'", optopt);
				die_usage("unknown or ambiguous option '%s'", opt);
			default:
				if (c >= OPT_KNOB && c < OPT_KNOB + N_KNOBS)
				{
					o->set_knob[o->n_set] = c - OPT_KNOB;
					o->set_arg[o->n_set++] = optarg;
					break;
				}
				die_usage("unexpected option '%s'", opt);
		}
	}
	free(longopts);

	/* check every knob's value now: a typo fails before any data is read */
	{
		clad_train_config scratch;

		clad_train_defaults(&scratch);
		for (int i = 0; i < o->n_set; i++)
		{
			apply_knob(&knobs[o->set_knob[i]], o->set_arg[i], &scratch);
			o->knob_given[o->set_knob[i]] = 1;
		}
	}

	if (strcmp(o->command, "push") == 0)
	{
		if (optind < argc && !o->model)
			o->model = argv[optind++];
		if (optind < argc)
			die_usage("unexpected argument \"%s\"", argv[optind]);
		if (!o->model)
			die_usage("push needs a model file");
		if (!o->db)
			die_usage("push needs --db CONNINFO");
		if (!o->model_name)
			die_usage("push needs --model-name NAME");
		if (o->data || o->normal || o->out || o->n_set || o->format || o->no_eval || o->query ||
			o->test_query || o->json || o->words || o->channels || o->image_size || o->record_times)
			die_usage("push takes only --db, --shard, --version-id, --model-name, --activate, --quiet "
					  "and a model file");
		return;
	}
	if (o->n_shards || o->version_id >= 0)
		die_usage("%s applies to push only", o->n_shards ? "--shard" : "--version-id");
	if (o->method && strcmp(o->command, "train") != 0)
		die_usage("--method applies to training only");
	if (precision_given && strcmp(o->command, "eval") != 0 && strcmp(o->command, "score") != 0)
		die_usage("--precision applies to eval and score (a model is trained and stored in fp32)");
	if (o->report && strcmp(o->command, "train") != 0)
		die_usage("--report applies to training (not eval, info or score)");
	if ((o->validation || o->validate_query || o->validation_anomalies > 0 || o->validation_scores) &&
		!(o->method && strcmp(o->method, "auto") == 0))
		die_usage("--%s applies to --method auto", o->validation ? "validation" :
				  o->validate_query ? "validate-query" :
				  o->validation_anomalies > 0 ? "validation-anomalies" : "validation-scores");
	if (o->validation_scores && !o->validation && !o->validate_query)
		die_usage("--validation-scores needs --validation or --validate-query");
	if (o->validate_query && !o->db)
		die_usage("--validate-query needs --db CONNINFO");
	if (o->validation && o->validate_query)
		die_usage("--validation and --validate-query cannot be used together");
	if (o->method && o->no_eval && !o->out && !o->model_name)
		die_usage("--method %s --no-eval needs --out or --model-name: the model would be lost", o->method);
	if (strcmp(o->command, "score") == 0)
	{
		if (optind < argc && !o->model)
			o->model = argv[optind++];
		if (!o->model)
			die_usage("score needs a model file and image files");
		if (optind >= argc)
			die_usage("score needs image files after the model");
		o->files = argv + optind;
		o->n_files = argc - optind;
		for (int i = 0; i < o->n_set; i++)
			if (strcmp(knobs[o->set_knob[i]].name, "threads") != 0)
				die_usage("--%s does not apply to score (the model holds its settings)",
						  knobs[o->set_knob[i]].name);
		if (o->data || o->normal || o->out || o->format || o->no_eval || o->db || o->query ||
			o->test_query || o->json || o->words || o->channels || o->image_size ||
			o->record_times || o->model_name || o->activate)
			die_usage("score takes only a model file, image files, --precision, --threads and --quiet");
		return;
	}
	if (strcmp(o->command, "info") == 0)
	{
		if (optind < argc && !o->model)
			o->model = argv[optind++];
		if (optind < argc)
			die_usage("unexpected argument \"%s\"", argv[optind]);
		if (!o->model)
			die_usage("info needs a model file");
		if (o->data || o->normal || o->out || o->n_set || o->format || o->no_eval || o->db ||
			o->query || o->test_query || o->model_name || o->activate)
			die_usage("info takes only a model file and --json");
		return;
	}
	if (optind < argc)
		die_usage("unexpected argument \"%s\"", argv[optind]);
	if (strcmp(o->command, "eval") == 0 && (o->model_name || o->activate))
		die_usage("%s does not apply to eval", o->model_name ? "--model-name" : "--activate");
	if (o->activate && !o->model_name)
		die_usage("--activate needs --model-name NAME (the model whose new version it activates)");
	if (o->model_name && !o->db)
		die_usage("--model-name needs --db CONNINFO (the database to store the model in)");
	if (o->db || o->query || o->test_query)
	{
		/* training images from PostgreSQL */
		if (strcmp(o->command, "eval") == 0)
			die_usage("eval reads its test split with --data; --db/--query train from PostgreSQL");
		if (!o->db)
			die_usage("--%s needs --db CONNINFO", o->query ? "query" : "test-query");
		if (!o->query)
			die_usage("--db needs --query SQL (the rows of training images)");
		if (o->data)
			die_usage("--data and --db cannot be used together: the training images come from "
					  "one or the other");
		if (o->format || o->words)
			die_usage("%s does not apply to --db", o->format ? "--format" : "--words");
		if (o->test_query && !o->normal)
			die_usage("--test-query needs --normal (the labels of the normal test rows)");
		if (!o->out && !o->model_name)
			die_usage("--out is required (or --model-name NAME to store the model in the database)");
		if (o->model)
			die_usage("--model does not apply to train (did you mean --out?)");
		return;
	}
	if (!o->data)
		die_usage("--data is required");
	if (!o->normal)
		die_usage("--normal is required (a scenario such as mnist:CUR, or class ids such as 0,3,8)");
	if (strcmp(o->command, "eval") == 0)
	{
		if (!o->model)
			die_usage("eval needs --model");
		if (o->out)
			die_usage("--out does not apply to eval");
		if (o->no_eval || o->record_times)
			die_usage("%s does not apply to eval", o->no_eval ? "--no-eval" : "--record-times");
		for (int i = 0; i < o->n_set; i++)
			if (strcmp(knobs[o->set_knob[i]].name, "threads") != 0)
				die_usage("--%s does not apply to eval (the model holds its settings)",
						  knobs[o->set_knob[i]].name);
		if (o->channels || o->image_size)
			die_usage("%s does not apply to eval (the model holds its input size)",
					  o->channels ? "--channels" : "--image-size");
	}
	else
	{
		if (!o->out && !o->method)
			die_usage("--out is required");
		if (o->model)
			die_usage("--model does not apply to train (did you mean --out?)");
	}
}
