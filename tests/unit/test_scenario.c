/* tests/unit/test_scenario.c: scenario presets, id lists and ranges, errors, words.txt mapping. */
#include "scenario.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parse spec and compare its ids with want (n). */
static void
check_ids(const char *spec, const int32_t *want, int n, const char *label)
{
	clad_scenario sc;
	clad_status st = clad_scenario_parse(spec, &sc);

	CHECK_MSG(st == CLAD_OK, "%s: %s", spec, clad_last_error());
	if (st == CLAD_OK)
	{
		CHECK_MSG(sc.n_classes == n, "%s: %d classes, want %d", spec, sc.n_classes, n);
		for (int i = 0; i < n && i < sc.n_classes; i++)
			CHECK_MSG(sc.classes[i] == want[i], "%s: class %d is %d, want %d", spec, i,
					  sc.classes[i], want[i]);
		if (label)
			CHECK_MSG(strcmp(sc.label, label) == 0, "%s: label \"%s\", want \"%s\"", spec, sc.label,
					  label);
	}
	clad_scenario_free(&sc);
}

/* spec must be refused, with a message containing needle. */
static void
check_refused(const char *spec, const char *needle)
{
	clad_scenario sc;
	clad_status st = clad_scenario_parse(spec, &sc);

	CHECK_MSG(st != CLAD_OK, "\"%s\" was accepted", spec);
	CHECK_MSG(st != CLAD_OK && strstr(clad_last_error(), needle) != NULL,
			  "\"%s\": message \"%s\" lacks \"%s\"", spec, clad_last_error(), needle);
	CHECK(sc.classes == NULL && sc.n_classes == 0);
	clad_scenario_free(&sc);
}

static void
test_presets(void)
{
	static const int32_t cur[] = {0, 3, 8}, str[] = {1, 4, 7}, mix[] = {2, 5, 6, 9};
	static const int32_t thg[] = {0, 1, 8, 9}, liv[] = {2, 3, 4, 5, 6, 7};
	static const int32_t spdl[] = {0, 1, 2, 3, 4, 5, 7, 8}, inst[] = {9, 10, 15, 16};
	static const int32_t warn[] = {11, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
	static const int32_t dirc[] = {33, 34, 35, 36, 37, 38, 39, 40};
	static const int32_t spec[] = {12, 13, 14, 17}, regn[] = {6, 32, 41, 42};
	clad_scenario sc;
	clad_train_config cfg;

	check_ids("mnist:CUR", cur, 3, "mnist:CUR");
	check_ids("mnist:cur", cur, 3, "mnist:CUR");
	check_ids("MNIST:Str", str, 3, "mnist:STR");
	check_ids("mnist:MIX", mix, 4, "mnist:MIX");
	check_ids("cifar10:THG", thg, 4, "cifar10:THG");
	check_ids("CIFAR-10:liv", liv, 6, "cifar10:LIV");
	check_ids("gtsrb:SPDL", spdl, 8, "gtsrb:SPDL");
	check_ids("gtsrb:INST", inst, 4, NULL);
	check_ids("gtsrb:warn", warn, 15, "gtsrb:WARN");
	check_ids("gtsrb:DIRC", dirc, 8, NULL);
	check_ids("gtsrb:SPEC", spec, 4, NULL);
	check_ids("gtsrb:REGN", regn, 4, NULL);
	check_ids("  mnist:CUR  ", cur, 3, "mnist:CUR");

	/* Tiny-ImageNet presets hold names until resolved */
	CHECK(clad_scenario_parse("tiny:ANML", &sc) == CLAD_OK);
	CHECK(sc.n_names == 8 && sc.n_classes == 0 && strcmp(sc.names[0], "golden retriever") == 0);
	CHECK(strcmp(sc.dataset, "tiny") == 0 && sc.settings.image_size == 64);
	clad_scenario_free(&sc);
	for (int i = 0; i < 5; i++)
	{
		static const char *const t[] = {"tiny:ISCT", "tiny:istm", "Tiny-ImageNet:STRT", "tiny:VHCL", "tiny:anml"};

		CHECK_MSG(clad_scenario_parse(t[i], &sc) == CLAD_OK && sc.n_names == 8, "%s", t[i]);
		clad_scenario_free(&sc);
	}

	/* settings: MNIST keeps the defaults; CIFAR-10 and GTSRB differ as the reference */
	CHECK(clad_scenario_parse("mnist:CUR", &sc) == CLAD_OK);
	clad_train_defaults(&cfg);
	clad_scenario_apply(&sc, &cfg);
	CHECK(strcmp(cfg.autoencoder, "cvae") == 0 && cfg.K == 10 && cfg.latent == 10);
	CHECK(fabsf(cfg.eps - 0.0161f) < 1e-6f);
	clad_scenario_free(&sc);

	CHECK(clad_scenario_parse("cifar10:THG", &sc) == CLAD_OK);
	clad_train_defaults(&cfg);
	clad_scenario_apply(&sc, &cfg);
	CHECK(strcmp(cfg.autoencoder, "cvae_large") == 0 && cfg.K == 10 && cfg.latent == 200);
	/* reference eps 0.01 in clad's convention: 0.01 * 50 / (79/255) */
	CHECK_MSG(fabsf(cfg.eps - 1.61392405f) < 1e-5f, "cifar10 eps %g", cfg.eps);
	clad_scenario_free(&sc);

	CHECK(clad_scenario_parse("cifar10:LIV", &sc) == CLAD_OK);
	clad_train_defaults(&cfg);
	clad_scenario_apply(&sc, &cfg);
	CHECK(cfg.latent == 100 && strcmp(cfg.autoencoder, "cvae_large") == 0);
	clad_scenario_free(&sc);

	CHECK(clad_scenario_parse("gtsrb:WARN", &sc) == CLAD_OK);
	clad_train_defaults(&cfg);
	clad_scenario_apply(&sc, &cfg);
	CHECK(cfg.K == 20 && cfg.latent == 10 && strcmp(cfg.autoencoder, "cvae") == 0);
	CHECK(sc.settings.image_size == 32 && sc.max_classes == 43);
	clad_scenario_free(&sc);

	/* the reference's MNIST eps converts to the default */
	CHECK(fabs(1e-4 * CLAD_REFERENCE_EPS_FACTOR - 0.0161) < 1e-4);
}

static void
test_lists(void)
{
	static const int32_t a[] = {0, 3, 8}, r[] = {18, 19, 20, 21};
	static const int32_t m[] = {11, 18, 19, 20}, one[] = {3}, b[] = {1, 2, 5};
	int32_t    *ids;
	int			n;

	check_ids("0,3,8", a, 3, "0,3,8");
	check_ids("8,0,3", a, 3, "0,3,8");
	check_ids(" 0 , 3 ,8 ", a, 3, NULL);
	check_ids("18-21", r, 4, "18-21");
	check_ids("18 - 21", r, 4, NULL);
	check_ids("11,18-20", m, 4, "11,18-20");
	check_ids("3", one, 1, "3");
	check_ids("03", one, 1, "3");
	check_ids("5,1-2", b, 3, "1,2,5");
	check_ids("mnist:3", one, 1, "mnist:3");		/* one-class scenario */
	check_ids("gtsrb:11,18-20", m, 4, "gtsrb:11,18-20");
	check_ids("3-3", one, 1, NULL);

	check_refused("", "empty");
	check_refused("   ", "empty");
	check_refused("0,,3", "empty item");
	check_refused("0,3,", "empty item");
	check_refused(",0", "empty item");
	check_refused("0;3", "bad class id");
	check_refused("a", "bad class id");
	check_refused("-1", "bad range");
	check_refused("+1", "bad class id");
	check_refused("3-1", "backwards");
	check_refused("1-", "bad range");
	check_refused("1-2-3", "bad range");
	check_refused("0,3,3", "listed twice");
	check_refused("0-5,4", "listed twice");
	check_refused("99999999999999999999", "bad class id");
	check_refused("65536", "bad class id");
	check_refused("mnist:10", "mnist has classes 0-9");
	check_refused("cifar10:3-12", "cifar10 has classes 0-9");
	check_refused("gtsrb:43", "0-42");
	check_refused("mnist:XYZ", "unknown scenario");
	check_refused("mnist:THG", "presets: CUR, STR, MIX");
	check_refused("imagenet:CUR", "unknown dataset");
	check_refused("mnist:", "names no classes");
	check_refused(":CUR", "unknown dataset");

	CHECK(clad_parse_id_list("0-65535", CLAD_SCENARIO_MAX_ID, &ids, &n) == CLAD_OK && n == 65536);
	free(ids);
	CHECK(clad_parse_id_list("7", 6, &ids, &n) != CLAD_OK && ids == NULL && n == 0);
}

static void
test_resolve_ids(void)
{
	clad_scenario sc;

	CHECK(clad_scenario_parse("0,3,8", &sc) == CLAD_OK);
	CHECK(clad_scenario_resolve(&sc, NULL, 10, NULL) == CLAD_OK);
	CHECK(clad_scenario_resolve(&sc, NULL, 8, NULL) != CLAD_OK &&
		  strstr(clad_last_error(), "class 8") != NULL);
	clad_scenario_free(&sc);
}

/* A words.txt in the real layout; its set of classes is a subset, as the 200 of Tiny-ImageNet. */
static const char words_txt[] =
	"n00001740\tentity\n"
	"n02099601\tgolden retriever\n"
	"n02085620\tChihuahua\n"
	"n02106662\tGerman shepherd, German shepherd dog, German police dog, alsatian\n"
	"n02099712\tLabrador retriever\n"
	"n02113799\tstandard poodle\n"
	"n02094433\tYorkshire terrier\n"
	"n02125311\tcougar, puma, catamount, mountain lion, painter, panther, Felis concolor\n"
	"n02123394\tPersian cat\r\n"
	"n02279972\tmonarch, monarch butterfly, milkweed butterfly, Danaus plexippus\n"
	"n10327987\tmonarch, sovereign\n"	/* not a class of the set: no ambiguity */
	"n04487081\ttrolleybus, trolley coach, trackless trolley\n"
	"\n"
	"n09999991\tpanther\n"
	"n09999992\tpanther\n";

static char *
write_words(const char *dir, const char *name, const char *text)
{
	size_t		n = strlen(dir) + strlen(name) + 2;
	char	   *path = malloc(n);
	FILE	   *fp;

	snprintf(path, n, "%s/%s", dir, name);
	fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp)
	{
		CHECK(fputs(text, fp) >= 0);
		CHECK(fclose(fp) == 0);
	}
	return path;
}

static void
test_words(void)
{
	char		dir[] = "/tmp/clad_test_scenario_XXXXXX";
	char	   *words, *bad, *amb;
	/* the set's classes: wnids, sorted as the folder loader gives them */
	char	   *wnids[] = {"n01443537", "n02085620", "n02094433", "n02099601", "n02099712",
		"n02106662", "n02113799", "n02123394", "n02125311", "n02279972", "n04487081"};
	int			nw = (int) (sizeof(wnids) / sizeof(wnids[0]));
	clad_scenario sc;
	int32_t		ids[3];

	CHECK(mkdtemp(dir) != NULL);
	words = write_words(dir, "words.txt", words_txt);
	bad = write_words(dir, "bad.txt", "n02099601 golden retriever\n");
	amb = write_words(dir, "amb.txt", words_txt);

	/* tiny:ANML: every name maps to its wnid */
	CHECK(clad_scenario_parse("tiny:ANML", &sc) == CLAD_OK);
	CHECK_MSG(clad_scenario_resolve(&sc, wnids, nw, words) == CLAD_OK, "%s", clad_last_error());
	CHECK(sc.n_names == 0 && sc.n_classes == 8);
	{
		static const int32_t want[] = {1, 2, 3, 4, 5, 6, 7, 8};

		for (int i = 0; i < 8 && i < sc.n_classes; i++)
			CHECK_MSG(sc.classes[i] == want[i], "ANML class %d = %d", i, sc.classes[i]);
	}
	clad_scenario_free(&sc);

	/* no words.txt and wnid class names: a clear error */
	CHECK(clad_scenario_parse("tiny:ANML", &sc) == CLAD_OK);
	CHECK(clad_scenario_resolve(&sc, wnids, nw, NULL) != CLAD_OK &&
		  strstr(clad_last_error(), "words.txt") != NULL);
	clad_scenario_free(&sc);

	/* no class names at all */
	CHECK(clad_scenario_parse("tiny:ANML", &sc) == CLAD_OK);
	CHECK(clad_scenario_resolve(&sc, NULL, 10, words) != CLAD_OK &&
		  strstr(clad_last_error(), "no class names") != NULL);
	clad_scenario_free(&sc);

	/* names that are not in words.txt among the set's classes */
	CHECK(clad_scenario_parse("tiny:ISCT", &sc) == CLAD_OK);
	CHECK(clad_scenario_resolve(&sc, wnids, nw, words) != CLAD_OK &&
		  strstr(clad_last_error(), "\"dragonfly\" is not a name of any class") != NULL);
	clad_scenario_free(&sc);

	/* the helper directly: synonyms, case, a name outside the set's classes */
	{
		const char *names[] = {"  PUMA ", "monarch butterfly", "trackless trolley"};

		CHECK_MSG(clad_words_match(words, names, 3, wnids, nw, ids) == CLAD_OK, "%s", clad_last_error());
		CHECK(ids[0] == 8 && ids[1] == 9 && ids[2] == 10);
	}
	{
		const char *names[] = {"monarch"};	/* n10327987 is not a class: unique */

		CHECK(clad_words_match(words, names, 1, wnids, nw, ids) == CLAD_OK && ids[0] == 9);
	}
	{
		const char *names[] = {"entity"};	/* n00001740 is not a class of the set */

		CHECK(clad_words_match(words, names, 1, wnids, nw, ids) != CLAD_OK && ids[0] == -1);
	}
	{
		/* "panther" names n02125311 and, with these classes, n09999991 too */
		char	   *more[] = {"n02125311", "n09999991"};
		const char *names[] = {"panther"};

		CHECK(clad_words_match(amb, names, 1, more, 2, ids) != CLAD_OK &&
			  strstr(clad_last_error(), "ambiguous") != NULL &&
			  strstr(clad_last_error(), "n09999991") != NULL);
	}
	{
		const char *names[] = {"golden retriever"};

		CHECK(clad_words_match(bad, names, 1, wnids, nw, ids) != CLAD_OK &&
			  strstr(clad_last_error(), "line 1") != NULL);
		CHECK(clad_words_match("/nonexistent/words.txt", names, 1, wnids, nw, ids) == CLAD_ERR_IO);
	}

	/* a user's folder set named by the words themselves resolves without words.txt */
	{
		char	   *named[] = {"Chihuahua", "German shepherd", "Labrador retriever", "Persian cat",
			"Yorkshire terrier", "cougar", "golden retriever", "other", "standard poodle"};

		CHECK(clad_scenario_parse("tiny:anml", &sc) == CLAD_OK);
		CHECK_MSG(clad_scenario_resolve(&sc, named, 9, NULL) == CLAD_OK, "%s", clad_last_error());
		CHECK(sc.n_classes == 8 && sc.classes[6] == 6 && sc.classes[7] == 8);
		clad_scenario_free(&sc);
	}

	unlink(words);
	unlink(bad);
	unlink(amb);
	rmdir(dir);
	free(words);
	free(bad);
	free(amb);
}

int
main(void)
{
	test_presets();
	test_lists();
	test_resolve_ids();
	test_words();
	return test_summary("test_scenario");
}
