# t/030_pg_cron_queue.pl -- the erasure-request queue run by pg_cron, for real
# (formerly test/pg_cron.test.sh).
#
# The README's way to drain the queue is a pg_cron job running
#   CALL anonymize.process_requests(batch_size => 100)
# pg_cron runs each job through libpq in a connection of its own, outside
# any transaction block, and the procedure commits after every batch: this
# only works if nothing in the procedure needs the caller's transaction
# (a COMMIT inside a procedure called from a transaction block fails).  So
# the job is run by pg_cron itself, not by a psql CALL that would stand in
# for it.
#
# One node with shared_preload_libraries = 'pg_cron', cron.database_name =
# 'postgres' and cron.host = the node's socket directory (local connections
# are trusted).  examples/billing.sql is loaded, and after CREATE EXTENSION
# its mapping examples/billing_mapping.sql; 250 eligible customers
# (billing address, sent email, terminated subscription) and one blocked
# customer (active subscription) get an erasure request each, and the job is
# scheduled.  Asserted:
#   - the job's run is recorded 'succeeded' in cron.job_run_details (and no
#     run 'failed');
#   - the 250 eligible requests are done with outcome 'anonymized', each with
#     one audit row, their customers erased and their sent emails deleted;
#   - the blocked request stays pending with outcome 'blocked';
#   - the server log has the procedure's LOG line of that run:
#     "processed erasure requests in 3 batches: 250 anonymized, 0 already
#     erased, 0 of unknown customers, 1 blocked, 0 busy, 0 failed" (250 + 1
#     requests in batches of 100).
# Then a failing night: one more request whose erasure fails (a trigger
# raises), and the blocked request overdue.  The next run of a new job
# commits, then ends with an error, so that:
#   - pg_cron records the run 'failed', with the error naming the counts;
#   - the failed request is pending with outcome 'failed' and its error as
#     jsonb; the run is in anonymize.runs with 1 failed and 1 overdue;
#   - the server log names the failed request (request id, customer id,
#     error) in a LOG line and the overdue one in a WARNING.
# Debian 12's pg_cron is 1.4.2, which has no schedules in seconds: the job
# runs every minute ('* * * * *') and the test waits for its first run, at
# most 150 s.  Skipped when pg_cron (Debian package postgresql-15-cron) is not
# installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use BillingMapping;

my $wait_seconds = 150;
my $n_eligible = 250;
my $job = 'anonymize-requests';
my $blocked_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

my $node = PostgreSQL::Test::Cluster->new('pg_cron_queue');
$node->init;

my $pkglibdir = $node->config_data('--pkglibdir');
if (!-f "$pkglibdir/pg_cron.so")
{
	plan skip_all =>
	  'pg_cron is not installed (Debian: apt-get install postgresql-15-cron)';
}

# pg_cron connects through libpq: to the node's socket directory, trusted.
my $sockdir = $node->host;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '$sockdir'
});
like(
	slurp_file($node->data_dir . '/pg_hba.conf'),
	qr/^local\s+all\s+all\s+trust/m,
	'pg_hba.conf trusts local connections, so pg_cron can connect');
$node->start;

my $billing_sql = slurp_file(dirname(__FILE__) . '/../examples/billing.sql');
$node->safe_psql('postgres', $billing_sql);
$node->safe_psql('postgres', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'postgres');
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION pg_cron;

INSERT INTO billing.customers (id, name, email)
SELECT format('00000000-0000-0000-0000-%s', lpad(i::text, 12, '0'))::uuid,
       'Customer ' || i, 'customer' || i || '\@example.com'
  FROM generate_series(1, $n_eligible) i;
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name,
       address_line1, city, country)
SELECT id, 'First', 'Last', '1 Main St', 'Town', 'NL' FROM billing.customers;
INSERT INTO billing.sent_emails (customer_id, recipient)
SELECT id, email FROM billing.customers;
INSERT INTO billing.subscriptions (customer_id, state)
SELECT id, 'terminated' FROM billing.customers;

-- one blocked customer: its request stays pending
INSERT INTO billing.customers (id, name, email)
VALUES ('$blocked_id', 'Active Customer', 'active\@example.com');
INSERT INTO billing.subscriptions (customer_id, state)
VALUES ('$blocked_id', 'active');
});
is( $node->safe_psql(
		'postgres',
		q{SELECT count(anonymize.request(id, 'pg_cron test')) FROM billing.customers}),
	$n_eligible + 1,
	'one erasure request per customer');

my $jobid = $node->safe_psql(
	'postgres', qq{
SELECT cron.schedule('$job', '* * * * *',
                     'CALL anonymize.process_requests(batch_size => 100)')});
like($jobid, qr/^\d+$/, "job $job scheduled every minute");
note "waiting for pg_cron (at most $wait_seconds s)";

# Until a run finished and the eligible requests are done (a failed run
# ends the wait at once).
my $status_query = qq{
SELECT (SELECT count(*) FROM cron.job_run_details
         WHERE jobid = $jobid AND status = 'succeeded'),
       (SELECT count(*) FROM cron.job_run_details
         WHERE jobid = $jobid AND status = 'failed'),
       (SELECT count(*) FROM anonymize.requests WHERE state = 'done'),
       (SELECT count(*) FROM anonymize.requests WHERE state = 'pending')};
my ($succeeded, $failed, $n_done, $n_pending);
my $deadline = time() + $wait_seconds;
while (1)
{
	($succeeded, $failed, $n_done, $n_pending) = split /\|/,
	  $node->safe_psql('postgres', $status_query);
	last if $failed > 0;
	last if $succeeded > 0 && $n_done == $n_eligible && $n_pending == 1;
	last if time() >= $deadline;
	sleep 1;
}
$node->safe_psql('postgres', "SELECT cron.unschedule($jobid)");
note $node->safe_psql(
	'postgres', qq{
SELECT status || ': ' || coalesce(return_message, '')
  FROM cron.job_run_details WHERE jobid = $jobid ORDER BY runid});

cmp_ok($succeeded, '>', 0,
	"a run of the job is recorded 'succeeded' within $wait_seconds s");
is($failed, '0', "no run of the job is recorded 'failed'");
is($n_done, $n_eligible, "the $n_eligible eligible requests are done");
is($n_pending, '1', 'one request is still pending');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM anonymize.requests
 WHERE state = 'done' AND outcome = 'anonymized'}),
	$n_eligible,
	"the $n_eligible done requests have outcome 'anonymized'");
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*) || '|' || count(DISTINCT customer_id)
       || '|' || count(*) FILTER (WHERE customer_id = '$blocked_id')
  FROM anonymize.audit_log}),
	"$n_eligible|$n_eligible|0",
	'one audit row per erased customer, none for the blocked one');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM billing.customers WHERE name IS NULL AND email IS NULL}),
	$n_eligible,
	"the $n_eligible eligible customers are erased");
is($node->safe_psql('postgres', 'SELECT count(*) FROM billing.sent_emails'),
	'0', 'no sent emails are left');
is( $node->safe_psql(
		'postgres', qq{
SELECT state || '|' || coalesce(outcome, '') FROM anonymize.requests
 WHERE customer_id = '$blocked_id'}),
	'pending|blocked',
	"the blocked customer's request stays pending with outcome 'blocked'");

like(
	slurp_file($node->logfile),
	qr/anonymize: processed erasure requests in 3 batches: $n_eligible anonymized, 0 already erased, 0 of unknown customers, 1 blocked, 0 busy, 0 failed/,
	'the LOG line of the run is in the server log');

# A failing night.
my $held_id = 'eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee';
$node->safe_psql(
	'postgres', qq{
INSERT INTO billing.customers (id, name, email)
VALUES ('$held_id', 'Held Customer', 'held\@example.com');
INSERT INTO billing.sent_emails (customer_id, recipient)
VALUES ('$held_id', 'held\@example.com');
CREATE FUNCTION billing.legal_hold() RETURNS trigger LANGUAGE plpgsql AS
\$\$ BEGIN RAISE EXCEPTION 'emails on legal hold'; END \$\$;
CREATE TRIGGER legal_hold BEFORE DELETE ON billing.sent_emails
	FOR EACH ROW EXECUTE FUNCTION billing.legal_hold();
UPDATE anonymize.requests SET due_at = now() - interval '1 day'
 WHERE customer_id = '$blocked_id';
});
my $held_request = $node->safe_psql('postgres',
	qq{SELECT anonymize.request('$held_id', 'legal hold')});
$jobid = $node->safe_psql(
	'postgres', qq{
SELECT cron.schedule('$job-2', '* * * * *',
                     'CALL anonymize.process_requests(batch_size => 100, quiet => true)')});
note "waiting for the failing run (at most $wait_seconds s)";
my $failed_message = '';
$deadline = time() + $wait_seconds;
while (time() < $deadline)
{
	$failed_message = $node->safe_psql(
		'postgres', qq{
SELECT coalesce(string_agg(return_message, ' '), '') FROM cron.job_run_details
 WHERE jobid = $jobid AND status = 'failed'});
	last if $failed_message ne '';
	sleep 1;
}
$node->safe_psql('postgres', "SELECT cron.unschedule($jobid)");
like(
	$failed_message,
	qr/anonymize: the erasure queue holds 1 failed request and 1 overdue request/,
	"pg_cron records the run 'failed', with the counts in its message");
is( $node->safe_psql(
		'postgres', qq{
SELECT state || '|' || outcome || '|' || (details ->> 'sqlstate') || '|'
       || (details ->> 'message')
  FROM anonymize.requests WHERE customer_id = '$held_id'}),
	'pending|failed|P0001|emails on legal hold',
	'the failed request is pending with its error as jsonb');
is( $node->safe_psql(
		'postgres', q{
SELECT failed || '|' || overdue || '|' || (ended_at IS NOT NULL)
  FROM anonymize.runs ORDER BY started_at DESC LIMIT 1}),
	'1|1|true',
	'the run is recorded in anonymize.runs with 1 failed and 1 overdue');
my $log = slurp_file($node->logfile);
like(
	$log,
	qr/LOG:  anonymize: erasure request $held_request of customer $held_id failed: emails on legal hold/,
	'the server log names the failed request, its customer and its error');
like(
	$log,
	qr/WARNING:  anonymize: the erasure request of customer $blocked_id is overdue/,
	'the server log names the overdue request');

$node->stop;
done_testing();

