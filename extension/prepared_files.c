/* extension/prepared_files.c: prepared models shared by every backend through files.
 *
 * A backend that loads a model version (parsing and checking the file,
 * packing the weights: tens of milliseconds for a ResNet-18) writes the
 * result once as a prepared file (core/prepared.h) under the data directory,
 * pg_clad/<sha256 of the model bytes>.prep; every later backend, of any
 * database, maps that file read-only instead: no TOAST read, no parse, no
 * packing, and one copy of the weights in the page cache for all of them.
 *
 * The file is only a cache.  It is named by the hash of the model bytes it
 * was prepared from, written under a temporary name and renamed into place
 * (readers see a whole file or none), and checked when mapped (layout, byte
 * order, source hash, batch size, a hash of every byte: core/prepared.c).
 * clad_load_model and clad_load_model_version write it when they store a
 * version (clad._prepared_prepare), so that no scoring session pays for it.
 * Anything wrong with it (missing, stale, damaged, unwritable directory) only
 * means the model is prepared from its bytes as without it; the problem is
 * logged, never raised.  Files are removed when their versions are dropped or
 * pruned (clad._prepared_forget); deleting pg_clad/ is always safe.
 * clad.prepared_files = off turns it all off.
 */
#include "clad_ext.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "prepared.h"

#define PREPARED_DIR "pg_clad"

/* pg_clad/<hex>.prep (relative to the data directory, the backend's working directory) */
static void
prepared_path(char *buf, size_t cap, const uint8 *sha)
{
	char		hex[65];

	for (int j = 0; j < 32; j++)
		snprintf(hex + 2 * j, 3, "%02x", sha[j]);
	snprintf(buf, cap, "%s/%s.prep", PREPARED_DIR, hex);
}

bool
clad_prepared_map(const uint8 *sha, clad_model **model, void **map, Size *map_len)
{
	char		path[MAXPGPATH];
	struct stat sb;
	void	   *p;
	int			fd;
	clad_status st;

	*model = NULL;
	*map = NULL;
	*map_len = 0;
	if (!clad_setting_prepared_files)
		return false;
	prepared_path(path, sizeof(path), sha);
	if ((fd = OpenTransientFile(path, O_RDONLY | PG_BINARY)) < 0)
	{
		if (errno != ENOENT)
			ereport(LOG, (errcode_for_file_access(),
						  errmsg("clad: could not open prepared model \"%s\": %m", path)));
		return false;
	}
	if (fstat(fd, &sb) != 0 || sb.st_size <= 0)
	{
		CloseTransientFile(fd);
		return false;
	}
	/* the whole file at once: every page is read by the hash check anyway */
	p = mmap(NULL, (size_t) sb.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	CloseTransientFile(fd);
	if (p == MAP_FAILED)
	{
		ereport(LOG, (errmsg("clad: could not map prepared model \"%s\": %m", path)));
		return false;
	}
	clad_ext_blas_init();
	st = clad_prepared_open(p, (size_t) sb.st_size, sha, CLAD_EXT_BATCH, model);
	if (st != CLAD_OK)
	{
		/* a stale or damaged file: prepared again from the bytes, and replaced */
		ereport(LOG, (errmsg("clad: prepared model \"%s\" not used: %s", path, clad_last_error())));
		munmap(p, (size_t) sb.st_size);
		*model = NULL;
		return false;
	}
	*map = p;
	*map_len = (Size) sb.st_size;
	return true;
}

void
clad_prepared_unmap(void *map, Size map_len)
{
	if (map)
		munmap(map, map_len);
}

bool
clad_prepared_save(const clad_model *m, const uint8 *sha)
{
	char		path[MAXPGPATH], tmp[MAXPGPATH];
	int			fd;
	clad_status st;

	if (!clad_setting_prepared_files)
		return false;
	if (MakePGDirectory(PREPARED_DIR) != 0 && errno != EEXIST)
	{
		ereport(LOG, (errcode_for_file_access(),
					  errmsg("clad: could not create directory \"%s\": %m", PREPARED_DIR)));
		return false;
	}
	prepared_path(path, sizeof(path), sha);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, MyProcPid);
	if ((fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY)) < 0)
	{
		ereport(LOG, (errcode_for_file_access(), errmsg("clad: could not create \"%s\": %m", tmp)));
		return false;
	}
	st = clad_prepared_write(m, sha, CLAD_EXT_BATCH, fd);
	if (CloseTransientFile(fd) != 0 && st == CLAD_OK)
		st = clad_fail(CLAD_ERR_IO, "closing the file failed");
	/* rename: a backend mapping the name sees the old file or the new one, whole */
	if (st == CLAD_OK && rename(tmp, path) != 0)
		st = clad_fail(CLAD_ERR_IO, "renaming it into place failed: %s", strerror(errno));
	if (st != CLAD_OK)
	{
		ereport(LOG, (errmsg("clad: could not write prepared model \"%s\": %s", path, clad_last_error())));
		(void) unlink(tmp);
		return false;
	}
	return true;
}

PG_FUNCTION_INFO_V1(clad_prepared_prepare);

/*
 * clad._prepared_prepare(model bytea, sha256 bytea): write the prepared file of
 * freshly stored model bytes now (clad_load_model calls it), so that no
 * scoring session pays for preparing them.  False when the file exists
 * already, clad.prepared_files is off, or it could not be written (logged).
 */
Datum
clad_prepared_prepare(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	bytea	   *sha = PG_GETARG_BYTEA_PP(1);
	char		path[MAXPGPATH];
	struct stat sb;
	clad_model *m = NULL;
	clad_status st;
	bool		written;

	if (VARSIZE_ANY_EXHDR(sha) != 32)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("a clad model version's sha256 has 32 bytes, not %zu",
							   (size_t) VARSIZE_ANY_EXHDR(sha))));
	prepared_path(path, sizeof(path), (const uint8 *) VARDATA_ANY(sha));
	if (!clad_setting_prepared_files || stat(path, &sb) == 0)
		PG_RETURN_BOOL(false);
	clad_ext_blas_init();
	st = clad_model_load((const uint8_t *) VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes), &m);
	if (st == CLAD_OK)
		st = clad_model_prepare(m, CLAD_EXT_BATCH);
	if (st != CLAD_OK)
	{
		ereport(LOG, (errmsg("clad: could not prepare model \"%s\": %s", path, clad_last_error())));
		clad_model_free(m);
		PG_RETURN_BOOL(false);
	}
	written = clad_prepared_save(m, (const uint8 *) VARDATA_ANY(sha));
	clad_model_free(m);
	PG_RETURN_BOOL(written);
}

PG_FUNCTION_INFO_V1(clad_prepared_forget);

/* clad._prepared_forget(sha256 bytea): remove the prepared file of those model bytes, if any. */
Datum
clad_prepared_forget(PG_FUNCTION_ARGS)
{
	bytea	   *sha = PG_GETARG_BYTEA_PP(0);
	char		path[MAXPGPATH];

	if (VARSIZE_ANY_EXHDR(sha) != 32)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("a clad model version's sha256 has 32 bytes, not %zu",
							   (size_t) VARSIZE_ANY_EXHDR(sha))));
	prepared_path(path, sizeof(path), (const uint8 *) VARDATA_ANY(sha));
	if (unlink(path) != 0 && errno != ENOENT)
		ereport(LOG, (errcode_for_file_access(), errmsg("clad: could not remove \"%s\": %m", path)));
	PG_RETURN_VOID();
}
