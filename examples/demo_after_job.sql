-- examples/demo_after_job.sql -- part 2 of the demo that examples/demo.sh
-- runs, after the scheduled-job call of anonymize.process_requests(): the
-- requests' outcome, the audit log, and the dead tuples that the erasures
-- left in the mapped tables, before and after VACUUM.

\set ON_ERROR_STOP 1
\set QUIET 1
\pset null '(null)'
\pset footer off

\echo
\echo '== 10. The requests after the job'
SELECT r.request_id AS id, w.who, r.state, r.outcome, r.attempts,
	   replace(anonymize.describe_outcome(r.details), '; ', E';\n') AS blockers_or_error,
	   r.details
  FROM anonymize.requests r JOIN demo.who w ON w.id = r.customer_id
 ORDER BY r.due_at, w.who \gx
\echo 'The active customer stays pending; a run tries it again after anonymize.retry_interval (1 day).'
\echo 'The queue and the last run, for monitoring (anonymize.queue_status()):'
SELECT pending, overdue, blocked, failed, busy, last_run_batches AS batches,
	   last_run_anonymized AS anonymized, last_run_blocked AS blocked_in_run,
	   last_run_failed AS failed_in_run
  FROM anonymize.queue_status();
\echo

\echo '== 11. The audit log (no personal data): rows deleted by the purge rules, updated by the erase rules'
SELECT w.who, a.customer_kind AS kind, a.anonymized_by AS by,
	   (SELECT sum(value::int) FROM jsonb_each_text(a.rows_deleted)) AS rows_deleted,
	   (SELECT sum(value::int) FROM jsonb_each_text(a.rows_updated)) AS rows_updated
  FROM anonymize.audit_log a JOIN demo.who w ON w.id = a.customer_id
 ORDER BY a.anonymized_at;

-- The statistics of the earlier connections reach pg_stat_user_tables when
-- they end: wait until they have, then a moment for their last flush.
DO $$
BEGIN
	WHILE EXISTS (SELECT FROM pg_stat_activity
				   WHERE datname = current_database() AND pid <> pg_backend_pid()
					 AND backend_type = 'client backend') LOOP
		PERFORM pg_sleep(0.05);
	END LOOP;
	PERFORM pg_sleep(0.2);
END
$$;

\echo '== 12. Dead tuples left by the erasures (pg_stat_user_tables; autovacuum is off here)'
SELECT relname AS "table", n_live_tup AS live, n_dead_tup AS dead
  FROM pg_stat_user_tables WHERE schemaname = 'billing' ORDER BY relname;
\echo 'anonymize.vacuum_statements() lists the VACUUM of every relation that erasures change;'
\echo 'psql runs them with \\gexec:'
\set ECHO queries
SELECT anonymize.vacuum_statements() \gexec
\set ECHO none
SELECT relname AS "table", n_live_tup AS live, n_dead_tup AS dead
  FROM pg_stat_user_tables WHERE schemaname = 'billing' ORDER BY relname;
\echo 'Until VACUUM, the old row versions stay on disk; WAL and backups keep them longer'
\echo '(see docs/residual-data.md).'
