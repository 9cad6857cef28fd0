/* extension/prepared_files.c: prepared models shared by every backend through files.
 *
 * A backend that loads a model version (parsing and checking the file,
 * packing the weights: tens of milliseconds for a ResNet-18) writes the
 * result once as a prepared file (core/prepared.h) under the data directory,
 * pg_clad/<sha256 of the model bytes>.prep; every later backend, of any
 * database, maps that file read-only instead: no TOAST read, no parse, no
 * packing, and one copy of the weights in the page cache for all of them.
 * Sessions that score in bf16 (clad.precision) share pg_clad/<sha256>.bf16.prep
 * the same way: one file per precision, under the same markers.
 *
 * The file is only a cache.  It is named by the hash of the model bytes it
 * was prepared from, written under a temporary name and renamed into place
 * (readers see a whole file or none), and checked when mapped (layout, byte
 * order, source hash, batch size, a hash of every byte: core/prepared.c).
 * clad_load_model and clad_load_model_version write it when they store a
 * version (clad._prepared_prepare), so that no scoring session pays for it.
 * Anything wrong with it (missing, stale, damaged, unwritable directory) only
 * means the model is prepared from its bytes as without it; the problem is
 * logged, never raised.  Deleting pg_clad/ is always safe.
 * clad.prepared_files = off turns it all off.
 *
 * Every database of the cluster may hold versions with the same bytes, and
 * shares their file.  A database that uses a file leaves a marker beside it,
 * pg_clad/<sha256>.<database oid>.ref; when a transaction that dropped the
 * last version of some bytes in its database commits (never before: a
 * concurrent scorer may still write the file, and a rollback keeps the
 * version), it removes its marker, and the file goes with the last marker.
 * Markers are added and counted, and files removed, under an flock of
 * pg_clad/lock.  What a crash or a two-phase commit may leave behind (a
 * file nobody holds, a marker of a dropped database, an unfinished
 * temporary file) is reported and removed by clad_prepared_files().
 */
#include "clad_ext.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "prepared.h"

#define PREPARED_DIR "pg_clad"

#define PREPARED_LOCK PREPARED_DIR "/lock"

static void
sha_hex(char *hex, const uint8 *sha)
{
	for (int j = 0; j < 32; j++)
		snprintf(hex + 2 * j, 3, "%02x", sha[j]);
}

/* what comes between "<hex>." and "prep" in the name of a prepared file of each precision (clad_precision) */
static const char *const precision_infix[] = {"", "bf16."};

#define N_PRECISIONS lengthof(precision_infix)

/* pg_clad/<hex>.prep or <hex>.bf16.prep (relative to the data directory, the backend's working directory) */
static void
prepared_path(char *buf, size_t cap, const uint8 *sha, int precision)
{
	char		hex[65];

	Assert(precision >= 0 && precision < (int) N_PRECISIONS);
	sha_hex(hex, sha);
	snprintf(buf, cap, "%s/%s.%sprep", PREPARED_DIR, hex, precision_infix[precision]);
}

/* pg_clad/<hex>.<database oid>.ref: database db uses the file of these bytes */
static void
marker_path(char *buf, size_t cap, const uint8 *sha, Oid db)
{
	char		hex[65];

	sha_hex(hex, sha);
	snprintf(buf, cap, "%s/%s.%u.ref", PREPARED_DIR, hex, db);
}

/*
 * The directory's lock, held while markers are added or counted and files
 * removed (a few system calls).  Plain system calls and no ereport above LOG:
 * it is also taken at commit, where nothing may fail.  -1 when the lock
 * cannot be had (no directory yet, say): callers go on without it, at worst a
 * file is prepared again.
 */
static int
dir_lock(void)
{
	int			fd = open(PREPARED_LOCK, O_RDWR | O_CREAT | PG_BINARY, pg_file_create_mode);

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) != 0)
	{
		if (errno != EINTR)
		{
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void
dir_unlock(int fd)
{
	if (fd >= 0)
		close(fd);				/* releases the flock */
}

/* Leave this database's marker beside the file of sha (the lock held). */
static void
marker_add(const uint8 *sha)
{
	char		path[MAXPGPATH];
	int			fd;

	marker_path(path, sizeof(path), sha, MyDatabaseId);
	if ((fd = open(path, O_WRONLY | O_CREAT | PG_BINARY, pg_file_create_mode)) >= 0)
		close(fd);
	else
		ereport(LOG, (errcode_for_file_access(), errmsg("clad: could not create \"%s\": %m", path)));
}

/*
 * Whether any database's marker of sha is left (the lock held).  Plain
 * readdir: called at commit.  A directory it cannot read counts as marked
 * (the file stays: clad_prepared_files() can remove it later).
 */
static bool
marker_any(const uint8 *sha)
{
	char		hex[65];
	DIR		   *dir;
	struct dirent *de;
	bool		found = false;

	sha_hex(hex, sha);
	if ((dir = opendir(PREPARED_DIR)) == NULL)
		return errno != ENOENT;
	while (!found && (de = readdir(dir)) != NULL)
	{
		size_t		len = strlen(de->d_name);

		found = len > 69 && strncmp(de->d_name, hex, 64) == 0 && de->d_name[64] == '.' &&
			strcmp(de->d_name + len - 4, ".ref") == 0;
	}
	closedir(dir);
	return found;
}

/*
 * This database no longer holds the bytes of sha: remove its marker, and the
 * prepared file when no other database's marker is left.  Runs at commit:
 * problems are logged, never raised.
 */
static void
prepared_release(const uint8 *sha)
{
	char		path[MAXPGPATH];
	int			lock = dir_lock();

	marker_path(path, sizeof(path), sha, MyDatabaseId);
	if (unlink(path) != 0 && errno != ENOENT)
		ereport(LOG, (errcode_for_file_access(), errmsg("clad: could not remove \"%s\": %m", path)));
	if (!marker_any(sha))
		for (int p = 0; p < (int) N_PRECISIONS; p++)
		{
			prepared_path(path, sizeof(path), sha, p);
			if (unlink(path) != 0 && errno != ENOENT)
				ereport(LOG, (errcode_for_file_access(), errmsg("clad: could not remove \"%s\": %m", path)));
		}
	dir_unlock(lock);
}

bool
clad_prepared_map(const uint8 *sha, int precision, clad_model **model, void **map, Size *map_len)
{
	char		path[MAXPGPATH];
	struct stat sb;
	void	   *p;
	int			fd,
				lock;
	clad_status st;

	*model = NULL;
	*map = NULL;
	*map_len = 0;
	if (!clad_setting_prepared_files)
		return false;
	prepared_path(path, sizeof(path), sha, precision);
	/* open and mark at once: a release in another database cannot fall between */
	lock = dir_lock();
	if ((fd = OpenTransientFile(path, O_RDONLY | PG_BINARY)) < 0)
	{
		int			save_errno = errno;

		dir_unlock(lock);
		errno = save_errno;
		if (errno != ENOENT)
			ereport(LOG, (errcode_for_file_access(),
						  errmsg("clad: could not open prepared model \"%s\": %m", path)));
		return false;
	}
	marker_add(sha);
	dir_unlock(lock);
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
	st = clad_prepared_open(p, (size_t) sb.st_size, sha, CLAD_EXT_BATCH, (clad_precision) precision, model);
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

	if (!clad_setting_prepared_files || !clad_prepared_supported(m))
		return false;
	if (MakePGDirectory(PREPARED_DIR) != 0 && errno != EEXIST)
	{
		ereport(LOG, (errcode_for_file_access(),
					  errmsg("clad: could not create directory \"%s\": %m", PREPARED_DIR)));
		return false;
	}
	prepared_path(path, sizeof(path), sha, (int) m->precision);
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
	if (st == CLAD_OK)
	{
		int			lock = dir_lock();

		if (rename(tmp, path) != 0)
			st = clad_fail(CLAD_ERR_IO, "renaming it into place failed: %s", strerror(errno));
		else
			marker_add(sha);
		dir_unlock(lock);
	}
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
 * already, clad.prepared_files is off, the model has no prepared form (an
 * ensemble: clad_prepared_supported) or it could not be written (logged).
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
	/* in fp32, the default: a bf16 file is written by the first session that scores in bf16 */
	prepared_path(path, sizeof(path), (const uint8 *) VARDATA_ANY(sha), CLAD_PRECISION_FP32);
	if (!clad_setting_prepared_files)
		PG_RETURN_BOOL(false);
	if (stat(path, &sb) == 0)
	{
		/* prepared by another database or an earlier version: this one holds it too */
		int			lock = dir_lock();

		if (stat(path, &sb) == 0)
			marker_add((const uint8 *) VARDATA_ANY(sha));
		dir_unlock(lock);
		if (sb.st_size > 0)
			PG_RETURN_BOOL(false);
	}
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

/*
 * Releases wait for the commit of the transaction that dropped the versions:
 * until then a concurrent scorer may still see a version and write its file
 * again, and a rollback keeps it.  The list lives in TopTransactionContext;
 * each entry remembers the subtransaction that asked, so that rolling one
 * back forgets its entries.
 */
typedef struct pending_release
{
	uint8		sha[32];
	int			nest_level;
	struct pending_release *next;
} pending_release;

static pending_release *pending_releases = NULL;

static void
prepared_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			for (pending_release *r = pending_releases; r; r = r->next)
				prepared_release(r->sha);
			pending_releases = NULL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:	/* COMMIT PREPARED may run anywhere: clad_prepared_files() tidies */
			pending_releases = NULL;
			break;
		default:
			break;
	}
}

static void
prepared_subxact_callback(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	pending_release **link = &pending_releases;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	while (*link)
	{
		pending_release *r = *link;

		if (r->nest_level >= level && event == SUBXACT_EVENT_ABORT_SUB)
		{
			*link = r->next;	/* its memory goes with the transaction's */
			continue;
		}
		if (r->nest_level >= level)
			r->nest_level = level - 1;
		link = &r->next;
	}
}

PG_FUNCTION_INFO_V1(clad_prepared_forget);

/*
 * clad._prepared_forget(sha256 bytea): this database's last version of those
 * model bytes was dropped; release their prepared file when the transaction
 * commits (prepared_release).
 */
Datum
clad_prepared_forget(PG_FUNCTION_ARGS)
{
	static bool registered = false;
	bytea	   *sha = PG_GETARG_BYTEA_PP(0);
	pending_release *r;

	if (VARSIZE_ANY_EXHDR(sha) != 32)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("a clad model version's sha256 has 32 bytes, not %zu",
							   (size_t) VARSIZE_ANY_EXHDR(sha))));
	if (!registered)
	{
		RegisterXactCallback(prepared_xact_callback, NULL);
		RegisterSubXactCallback(prepared_subxact_callback, NULL);
		registered = true;
	}
	r = MemoryContextAlloc(TopTransactionContext, sizeof(*r));
	memcpy(r->sha, VARDATA_ANY(sha), 32);
	r->nest_level = GetCurrentTransactionNestLevel();
	r->next = pending_releases;
	pending_releases = r;
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------ clad_prepared_files() */

/* one file of pg_clad/ as its name tells */
typedef enum
{
	FILE_PREPARED,				/* <hex>.prep, <hex>.bf16.prep */
	FILE_TEMPORARY,				/* <hex>.prep.tmp.<pid>, <hex>.bf16.prep.tmp.<pid> */
	FILE_MARKER,				/* <hex>.<oid>.ref */
	FILE_OTHER
} file_kind;

static bool
sha_from_hex(const char *hex, uint8 *sha)
{
	for (int j = 0; j < 32; j++)
	{
		unsigned	v = 0;

		for (int k = 0; k < 2; k++)
		{
			char		c = hex[2 * j + k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned) (c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned) (c - 'a' + 10);
			else
				return false;
		}
		sha[j] = (uint8) v;
	}
	return true;
}

static file_kind
file_parse(const char *name, uint8 *sha, unsigned long *number)
{
	char	   *end;

	if (strlen(name) < 65 || name[64] != '.' || !sha_from_hex(name, sha))
		return FILE_OTHER;
	name += 65;
	/* every precision's file and its temporaries, as the fp32 ones */
	for (int p = 1; p < (int) N_PRECISIONS; p++)
		if (strncmp(name, precision_infix[p], strlen(precision_infix[p])) == 0)
			name += strlen(precision_infix[p]);
	if (strcmp(name, "prep") == 0)
		return FILE_PREPARED;
	if (strncmp(name, "prep.tmp.", 9) == 0 && name[9] >= '0' && name[9] <= '9')
	{
		*number = strtoul(name + 9, &end, 10);
		return *end == '\0' ? FILE_TEMPORARY : FILE_OTHER;
	}
	if (name[0] >= '0' && name[0] <= '9')
	{
		*number = strtoul(name, &end, 10);
		return strcmp(end, ".ref") == 0 && *number <= PG_UINT32_MAX ? FILE_MARKER : FILE_OTHER;
	}
	return FILE_OTHER;
}

/* the SHA-256s (32 bytes each, concatenated) or oids one query returns, in the SPI connection */
static void *
spi_column(const char *query, bool is_sha, int *n)
{
	void	   *out;

	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "clad: \"%s\" failed", query);
	*n = (int) SPI_processed;
	out = SPI_palloc(Max(SPI_processed, 1) * (is_sha ? 32 : sizeof(Oid)));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (is_sha)
		{
			bytea	   *b = DatumGetByteaPP(d);

			if (isnull || VARSIZE_ANY_EXHDR(b) != 32)
				elog(ERROR, "clad: a model version has a malformed sha256");
			memcpy((uint8 *) out + 32 * i, VARDATA_ANY(b), 32);
		}
		else
			((Oid *) out)[i] = DatumGetObjectId(d);
	}
	return out;
}

static bool
sha_in(const uint8 *shas, int n, const uint8 *sha)
{
	for (int i = 0; i < n; i++)
		if (memcmp(shas + 32 * i, sha, 32) == 0)
			return true;
	return false;
}

static bool
oid_in(const Oid *oids, int n, Oid oid)
{
	for (int i = 0; i < n; i++)
		if (oids[i] == oid)
			return true;
	return false;
}

/* names in pg_clad/, read whole under the lock (the list is short: a few per version) */
static List *
dir_names(void)
{
	List	   *names = NIL;
	DIR		   *dir = AllocateDir(PREPARED_DIR);
	struct dirent *de;

	if (dir == NULL && errno == ENOENT)
		return NIL;
	while ((de = ReadDir(dir, PREPARED_DIR)) != NULL)
		if (de->d_name[0] != '.')
			names = lappend(names, pstrdup(de->d_name));
	FreeDir(dir);
	return names;
}

static void
remove_file(const char *name)
{
	char		path[MAXPGPATH];

	snprintf(path, sizeof(path), "%s/%s", PREPARED_DIR, name);
	if (unlink(path) != 0 && errno != ENOENT)
		ereport(WARNING, (errcode_for_file_access(), errmsg("clad: could not remove \"%s\": %m", path)));
}

PG_FUNCTION_INFO_V1(clad_prepared_files);

/*
 * clad_prepared_files(remove_orphans boolean): one row per prepared or
 * temporary file of pg_clad/ with the databases whose markers it has and
 * its status:
 *   in use           a version of this database has these bytes
 *   other databases  only other databases' markers (of databases that exist)
 *   orphan           neither: nothing will map it again
 *   being written    a temporary file of a backend that is still running
 *   unfinished       a temporary file whose writer is gone
 * With remove_orphans, orphans and unfinished files are removed (status
 * "removed"), markers this database left for bytes it no longer holds and
 * markers of dropped databases are removed, and the files in use here get
 * this database's marker.  Markers of other databases are judged there: run
 * it in each database.  Removing is always safe: at worst a version's file is
 * prepared again by the next backend that scores it.
 */
Datum
clad_prepared_files(PG_FUNCTION_ARGS)
{
	bool		remove = PG_GETARG_BOOL(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint8	   *here;
	Oid		   *databases;
	int			n_here,
				n_databases,
				lock;
	List	   *names,
			   *standing = NIL;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "clad: SPI_connect failed");
	here = spi_column("SELECT DISTINCT v.sha256 FROM clad.model_versions v", true, &n_here);
	databases = spi_column("SELECT d.oid FROM pg_catalog.pg_database d", false, &n_databases);

	lock = dir_lock();
	PG_TRY();
	{
		names = dir_names();
		/* markers first: which stand (and, removing, tidy the ones that do not) */
		foreach(lc, names)
		{
			const char *name = lfirst(lc);
			uint8		sha[32];
			unsigned long db;

			if (file_parse(name, sha, &db) != FILE_MARKER)
				continue;
			if (oid_in(databases, n_databases, (Oid) db) &&
				((Oid) db != MyDatabaseId || sha_in(here, n_here, sha)))
				standing = lappend(standing, (void *) name);
			else if (remove)
				remove_file(name);
		}
		foreach(lc, names)
		{
			const char *name = lfirst(lc);
			char		path[MAXPGPATH];
			uint8		sha[32];
			unsigned long number;
			struct stat sb;
			file_kind	kind = file_parse(name, sha, &number);
			const char *status;
			Datum		values[6];
			bool		nulls[6] = {0};
			Datum	   *dbs;
			int			n_dbs = 0;
			char		hex[65];
			ListCell   *lm;

			if (kind != FILE_PREPARED && kind != FILE_TEMPORARY)
				continue;
			snprintf(path, sizeof(path), "%s/%s", PREPARED_DIR, name);
			if (stat(path, &sb) != 0)
				continue;
			/* the markers that stand for these bytes */
			dbs = palloc(sizeof(Datum) * (list_length(standing) + 1));
			foreach(lm, standing)
			{
				uint8		msha[32];
				unsigned long db;

				if (file_parse(lfirst(lm), msha, &db) == FILE_MARKER && memcmp(msha, sha, 32) == 0)
					dbs[n_dbs++] = ObjectIdGetDatum((Oid) db);
			}
			if (kind == FILE_TEMPORARY)
			{
				bool		alive = kill((pid_t) number, 0) == 0 || errno == EPERM;

				status = alive ? "being written" : remove ? "removed" : "unfinished";
				if (!alive && remove)
					remove_file(name);
			}
			else if (sha_in(here, n_here, sha))
			{
				status = "in use";
				if (remove)
				{
					bool		marked = false;

					for (int i = 0; i < n_dbs; i++)
						marked |= DatumGetObjectId(dbs[i]) == MyDatabaseId;
					if (!marked)
					{
						marker_add(sha);
						dbs[n_dbs++] = ObjectIdGetDatum(MyDatabaseId);
					}
				}
			}
			else if (n_dbs > 0)
				status = "other databases";
			else
			{
				status = remove ? "removed" : "orphan";
				if (remove)
					remove_file(name);
			}
			sha_hex(hex, sha);
			values[0] = CStringGetTextDatum(name);
			values[1] = CStringGetTextDatum(hex);
			values[2] = Int64GetDatum((int64) sb.st_size);
			values[3] = TimestampTzGetDatum(time_t_to_timestamptz(sb.st_mtime));
			values[4] = PointerGetDatum(construct_array(dbs, n_dbs, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
			values[5] = CStringGetTextDatum(status);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_FINALLY();
	{
		dir_unlock(lock);
	}
	PG_END_TRY();
	SPI_finish();
	return (Datum) 0;
}
