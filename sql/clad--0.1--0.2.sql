/* sql/clad--0.1--0.2.sql: clad 0.1 to 0.2 (ALTER EXTENSION clad UPDATE).
 *
 * Prepared files are released when the drop of a database's last version of
 * their bytes commits and kept while another database holds them (the module
 * does that: nothing to change in SQL); clad_prepared_files() lists them and
 * removes orphans.
 */
\echo Use "ALTER EXTENSION clad UPDATE TO '0.2'" to load this file. \quit

-- clad_prepared_files: the files of pg_clad/ (prepared models every backend of
-- the cluster maps), with the databases that hold each and its status: in use
-- (a version of this database has those bytes), other databases, orphan
-- (nothing will map it again), being written, unfinished (its writer is gone).
-- remove_orphans removes orphans, unfinished files and stale markers; always
-- safe (at worst a version is prepared again on its next use).  Run it in each
-- database: only this one's versions are visible here.
CREATE FUNCTION clad_prepared_files(remove_orphans boolean DEFAULT false,
									OUT file text, OUT sha256 text, OUT bytes bigint,
									OUT modified timestamptz, OUT databases oid[], OUT status text)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'clad_prepared_files'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE EXECUTE ON FUNCTION clad_prepared_files(boolean) FROM PUBLIC;
