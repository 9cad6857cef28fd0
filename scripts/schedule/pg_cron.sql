-- scripts/schedule/pg_cron.sql: prune old versions of a clad model every night
-- inside PostgreSQL, with pg_cron (Debian 12: apt-get install postgresql-15-cron,
-- pg_cron 1.4).  Retraining itself runs outside the server (clad-train:
-- clad-retrain.cron or clad-retrain.timer); what plain SQL can do, pg_cron can
-- schedule.
--
-- The server needs, in postgresql.conf (then a restart):
--   shared_preload_libraries = 'pg_cron'
--   cron.database_name = 'app'          # the one database pg_cron lives in
--   cron.use_background_workers = on    # run jobs in the server: no login
-- (pg_cron's launcher and each running job take one of max_worker_processes,
-- 8 by default, shared with parallel queries: raise it if those use them all.)
-- Without cron.use_background_workers pg_cron logs in over libpq to
-- cron.host ('localhost', TCP), which Debian's default pg_hba.conf only allows
-- with a password (~postgres/.pgpass); cron.host = '/var/run/postgresql' uses
-- the socket instead (peer: fine for jobs of the role postgres).
--
-- Run this file in cron.database_name's database, as the role the job should
-- run as: a superuser, or a role given clad_grant_writer (clad_prune_versions
-- is not PUBLIC) and GRANT USAGE ON SCHEMA cron, once a superuser has run
-- CREATE EXTENSION pg_cron.  With the model and how many versions to keep:
--   psql -d app -v model=mnist_cur -v keep=3 -f scripts/schedule/pg_cron.sql
-- It is safe to run again (a job of the same name is replaced).  When the clad
-- extension lives in another database than pg_cron, schedule with
--   SELECT cron.schedule_in_database('clad-prune-NAME', '15 3 * * *',
--          $$SELECT clad_prune_versions('NAME', 3)$$, 'otherdb');
--
-- clad_prune_versions(name, keep) drops all but the newest `keep` versions,
-- never the active one; it fails (and the job with it) when the model does
-- not exist.  pg_cron 1.4 has minute granularity (no '30 seconds' schedules)
-- and reads schedules in GMT (no cron.timezone): '15 3 * * *' is 03:15 UTC.
-- Stop it: SELECT cron.unschedule('clad-prune-mnist_cur');

\set ON_ERROR_STOP on
\if :{?model}
\else
\set model mnist_cur
\endif
\if :{?keep}
\else
\set keep 3
\endif

CREATE EXTENSION IF NOT EXISTS pg_cron;

-- every night at 03:15 UTC
SELECT cron.schedule('clad-prune-' || :'model', '15 3 * * *',
                     format('SELECT clad_prune_versions(%L, %s)', :'model', (:'keep')::integer));

-- pg_cron keeps a row per run for ever: drop the ones older than 30 days,
-- every Sunday at 04:00 UTC
SELECT cron.schedule('cron-history-cleanup', '0 4 * * 0',
                     $$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '30 days'$$);

-- the jobs, and the last runs (status 'succeeded' or 'failed', and the error
-- in return_message):
SELECT jobid, jobname, schedule, command, username, active FROM cron.job ORDER BY jobid;
-- SELECT j.jobname, d.status, d.return_message, d.start_time, d.end_time
-- FROM cron.job_run_details d JOIN cron.job j USING (jobid)
-- ORDER BY d.start_time DESC LIMIT 20;
