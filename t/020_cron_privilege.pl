# t/020_cron_privilege.pl -- a pg_cron job must not lend the scheduler's
# rights to the owner of a mapped table.
#
# The attack: the README's pg_cron job
#   CALL anonymize.process_requests()
# runs as the superuser who scheduled it.  The application's migration role
# app_owner (LOGIN, not superuser) owns schema billing and every table in
# it, and may record erasure requests (EXECUTE on anonymize.request(uuid,
# text), as the README grants an application).  It puts a BEFORE DELETE
# trigger on a mapped table that runs
#   ALTER ROLE app_owner SUPERUSER
# and requests the erasure of a customer with rows in that table.  If the
# erasure ran its statements with the caller's rights, the trigger would
# run as the superuser at the next cron minute and app_owner would become
# superuser.  Every statement that anonymize runs on a mapped relation must
# therefore run as that relation's owner in a security-restricted operation
# when the caller has the owner's privileges (as VACUUM does): the trigger
# runs as app_owner, the ALTER ROLE fails, the
# erasure of that customer fails (its request stays pending, outcome
# 'failed', the error in anonymize.requests.details), and the role stays
# NOT superuser.
#
# Scenario 1 (database postgres, job 'anon-su' scheduled by the superuser
# with cron.schedule):
#   customer A: sent emails only; a trigger on billing.sent_emails records
#     current_user in billing.trigger_log -> A is erased, the log shows
#     'app_owner' and never the superuser;
#   customer B: activity rows only; a trigger on billing.customer_activity
#     runs ALTER ROLE app_owner SUPERUSER -> it fails, B stays pending with
#     outcome 'failed', app_owner is not superuser.
#   (A and B are separate so that B's error does not roll back A's log rows.)
# Scenario 2 (database opdb, job 'anon-op' scheduled the README's way for
# the role gdpr_operator with cron.schedule_in_database, with the README's
# grants): customer C with sent emails -> the run succeeds, C is erased with
# an audit row naming gdpr_operator, and the logging trigger ran with the
# operator's own rights (it does not have the privileges of app_owner, so
# its statements are not run as the owner: sql/owner_rights.sql shows why).
#
# The two scenarios use two databases so that both jobs run in the same
# cron minute without claiming each other's requests (process_requests
# claims with SKIP LOCKED from one queue per database).  pg_cron 1.4 has no
# schedules in seconds: the test waits for the next minute (at most 150 s).
# Skipped when pg_cron (Debian package postgresql-15-cron) is not installed.
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

my $node = PostgreSQL::Test::Cluster->new('cron_privilege');
$node->init;

my $pkglibdir = $node->config_data('--pkglibdir');
if (!-f "$pkglibdir/pg_cron.so")
{
	plan skip_all =>
	  'pg_cron is not installed (Debian: apt-get install postgresql-15-cron)';
}

# pg_cron runs each job through libpq in a connection of its own: point it
# at the node's socket directory (local connections are trusted).
my $sockdir = $node->host;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '$sockdir'
});
$node->start;

my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

# examples/billing.sql without its CREATE SCHEMA: the schema is created
# for app_owner, and app_owner creates the tables, so owns them.
my $billing_sql = slurp_file(dirname(__FILE__) . '/../examples/billing.sql');
my $n_stripped = ($billing_sql =~ s/^CREATE SCHEMA billing;\s*$//m);
ok($n_stripped, 'the CREATE SCHEMA line of examples/billing.sql is stripped');

$node->safe_psql(
	'postgres', q{
CREATE ROLE app_owner LOGIN NOSUPERUSER;
CREATE ROLE gdpr_operator LOGIN;
CREATE DATABASE opdb;
});

# The application schema, owned by app_owner, and the extension.  The
# trigger functions are app_owner's; they qualify every name because
# anonymize pins search_path = pg_catalog, pg_temp.
sub setup_database
{
	my ($db) = @_;
	$node->safe_psql(
		$db, qq{
CREATE SCHEMA billing AUTHORIZATION app_owner;
SET ROLE app_owner;
$billing_sql
CREATE TABLE billing.trigger_log (
	who			name NOT NULL,
	on_table	text NOT NULL,
	customer_id	uuid NOT NULL
);
-- the logging trigger must be able to write whoever it runs as
GRANT INSERT ON billing.trigger_log TO PUBLIC;
CREATE FUNCTION billing.log_current_user() RETURNS trigger
LANGUAGE plpgsql AS \$\$
BEGIN
	INSERT INTO billing.trigger_log (who, on_table, customer_id)
	VALUES (current_user, TG_TABLE_NAME, OLD.customer_id);
	RETURN OLD;
END \$\$;
CREATE TRIGGER log_current_user BEFORE DELETE ON billing.sent_emails
	FOR EACH ROW EXECUTE FUNCTION billing.log_current_user();
CREATE FUNCTION billing.escalate() RETURNS trigger
LANGUAGE plpgsql AS \$\$
BEGIN
	ALTER ROLE app_owner SUPERUSER;
	RETURN OLD;
END \$\$;
CREATE TRIGGER escalate BEFORE DELETE ON billing.customer_activity
	FOR EACH ROW EXECUTE FUNCTION billing.escalate();
RESET ROLE;
CREATE EXTENSION anonymize;
});
	# The mapping, loaded by the superuser who created (so owns) the extension.
	load_billing_mapping($node, $db);
	return;
}
setup_database('postgres');
setup_database('opdb');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');

is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(DISTINCT pg_get_userbyid(c.relowner), ',')
  FROM pg_class c WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind = 'r'}
	)
	  . '|'
	  . $node->safe_psql('postgres',
		q{SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'billing'}),
	'app_owner|app_owner',
	'app_owner owns schema billing and all its tables');

# An eligible customer: billing address, terminated subscription, paid
# invoice, balance zero; plus the history given.
sub eligible_customer
{
	my ($id, $name, $emails, $activity) = @_;
	return qq{
INSERT INTO billing.customers (id, name, email)
VALUES ('$id', '$name', lower('$name') || '\@example.com');
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name,
       address_line1, city, country)
VALUES ('$id', '$name', 'Last', '1 Main St', 'Town', 'NL');
INSERT INTO billing.subscriptions (customer_id, state) VALUES ('$id', 'terminated');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES ('$id', 'paid', 25);
INSERT INTO billing.balance_entries (customer_id, amount)
VALUES ('$id', 25), ('$id', -25);
INSERT INTO billing.sent_emails (customer_id, recipient, subject)
SELECT '$id', lower('$name') || '\@example.com', 'Mail ' || i
  FROM generate_series(1, $emails) i;
INSERT INTO billing.customer_activity (customer_id, kind)
SELECT '$id', 'login' FROM generate_series(1, $activity) i;
};
}

my $cust_a = 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa';
my $cust_b = 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb';
my $cust_c = 'cccccccc-cccc-cccc-cccc-cccccccccccc';

# Scenario 1: the application (app_owner) records the requests, with only
# the grants the README gives an application; the superuser schedules the
# README's job.
$node->safe_psql(
	'postgres', qq{
GRANT USAGE ON SCHEMA anonymize TO app_owner;
GRANT EXECUTE ON FUNCTION anonymize.request(uuid, text, timestamptz) TO app_owner;
SET ROLE app_owner;
} . eligible_customer($cust_a, 'Alice', 2, 0)
	  . eligible_customer($cust_b, 'Bob', 0, 2) . qq{
SELECT anonymize.request('$cust_a', 'logs current_user');
SELECT anonymize.request('$cust_b', 'tries ALTER ROLE');
RESET ROLE;
});

# Scenario 2: the README's operator role and grants, in database opdb.
$node->safe_psql(
	'opdb', qq{
GRANT USAGE ON SCHEMA anonymize, billing TO gdpr_operator;
GRANT EXECUTE ON FUNCTION anonymize.anonymize_customer(uuid) TO gdpr_operator;
GRANT SELECT, UPDATE ON billing.customers, billing.billing_addresses TO gdpr_operator;
GRANT SELECT, UPDATE (id) ON billing.subscriptions, billing.invoices,
      billing.balance_entries TO gdpr_operator;
GRANT SELECT, DELETE ON billing.sent_emails, billing.customer_activity,
      billing.webhook_notifications, billing.subscriptions TO gdpr_operator;
GRANT EXECUTE ON FUNCTION anonymize.request(uuid, text, timestamptz),
      anonymize.cancel_request(uuid) TO gdpr_operator;
GRANT EXECUTE ON PROCEDURE anonymize.process_requests(integer, integer, interval, boolean, boolean)
      TO gdpr_operator;
GRANT SELECT ON anonymize.pending_requests TO gdpr_operator;
} . eligible_customer($cust_c, 'Carol', 2, 0) . qq{
SET ROLE gdpr_operator;
SELECT anonymize.request('$cust_c', 'operator job');
RESET ROLE;
});

is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM anonymize.pending_requests WHERE blockers IS NULL}),
	'2',
	'scenario 1: two pending requests, both customers eligible');
is( $node->safe_psql(
		'opdb', q{SELECT count(*) FROM anonymize.pending_requests WHERE blockers IS NULL}),
	'1',
	'scenario 2: one pending request, the customer eligible');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'app_owner'}),
	'f', 'app_owner is not superuser before the cron run');

# Both jobs, every minute: the first run of each is what the test checks.
my $job_su = $node->safe_psql('postgres',
	q{SELECT cron.schedule('anon-su', '* * * * *', 'CALL anonymize.process_requests()')});
my $job_op = $node->safe_psql(
	'postgres', q{
SELECT cron.schedule_in_database('anon-op', '* * * * *',
       'CALL anonymize.process_requests()', 'opdb', 'gdpr_operator')});
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(jobname || ':' || database || ':' || username, ' '
  ORDER BY jobname) FROM cron.job}),
	"anon-op:opdb:gdpr_operator anon-su:postgres:$superuser",
	'the superuser job runs in postgres as the superuser, the operator job in opdb as gdpr_operator'
);
note 'waiting for pg_cron (at most ' . $wait_seconds . ' s)';

# Wait until both jobs have a finished run.
# (cron.job_run_details keeps the runs of unscheduled jobs: ask it by job id)
my $finished_query = qq{
SELECT count(DISTINCT jobid) FROM cron.job_run_details
 WHERE jobid IN ($job_su, $job_op) AND status IN ('succeeded', 'failed')};
my $deadline = time() + $wait_seconds;
my $finished = 0;
while (1)
{
	$finished = $node->safe_psql('postgres', $finished_query);
	last if $finished == 2 || time() >= $deadline;
	sleep 1;
}
# (by id: unschedule by name finds only the jobs of the current user)
$node->safe_psql('postgres', q{SELECT cron.unschedule(jobid) FROM cron.job});
is($finished, '2', "both jobs ran within $wait_seconds s");
note $node->safe_psql(
	'postgres', qq{
SELECT CASE jobid WHEN $job_su THEN 'anon-su' ELSE 'anon-op' END || ': '
       || status || ': ' || coalesce(return_message, '')
  FROM cron.job_run_details WHERE jobid IN ($job_su, $job_op) ORDER BY jobid});

# --- Scenario 1: the escalation.
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'app_owner'}),
	'f', 'app_owner is still not superuser after the superuser cron run');

my ($b_state, $b_outcome, $b_error) = split /\|/, $node->safe_psql(
	'postgres', qq{
SELECT state, coalesce(outcome, ''), coalesce(anonymize.describe_outcome(details), '')
  FROM anonymize.requests WHERE customer_id = '$cust_b'});
isnt($b_state, 'done', "the request whose trigger tries ALTER ROLE is not done (state $b_state)");
is("$b_state|$b_outcome", 'pending|failed',
	'it stays pending with outcome failed');
like($b_error, qr/superuser|permission denied/i,
	"the error of the ALTER ROLE is stored with the request: $b_error");
is( $node->safe_psql(
		'postgres', qq{
SELECT (SELECT count(*) FROM billing.customer_activity WHERE customer_id = '$cust_b')
       || '|' || (SELECT count(*) FROM anonymize.audit_log WHERE customer_id = '$cust_b')
       || '|' || (SELECT coalesce(name, '(erased)') FROM billing.customers
                   WHERE id = '$cust_b')}),
	'2|0|Bob',
	'that customer is untouched: activity kept, no audit row, name kept');

my $log = $node->safe_psql('postgres',
	q{SELECT string_agg(DISTINCT who, ',') FROM billing.trigger_log});
is($log, 'app_owner', 'the logging trigger ran as app_owner (the table owner)');
is( $node->safe_psql(
		'postgres',
		qq{SELECT count(*) FROM billing.trigger_log WHERE who = '$superuser'}),
	'0',
	"the logging trigger never ran as the superuser $superuser");

is( $node->safe_psql(
		'postgres', qq{
SELECT r.state || '|' || r.outcome || '|' || a.anonymized_by || '|'
       || (SELECT count(*) FROM billing.sent_emails WHERE customer_id = '$cust_a') || '|'
       || (c.name IS NULL AND c.email IS NULL)
  FROM anonymize.requests r
  JOIN anonymize.audit_log a USING (customer_id)
  JOIN billing.customers c ON c.id = r.customer_id
 WHERE r.customer_id = '$cust_a'}),
	"done|anonymized|$superuser|0|true",
	'the other request is done: customer erased, audit row by the superuser');
is( $node->safe_psql(
		'postgres',
		qq{SELECT count(*) FROM billing.trigger_log WHERE customer_id = '$cust_a'}),
	'2',
	'the logging trigger fired once per sent email');

# --- Scenario 2: the operator's job, the README's way.
is( $node->safe_psql(
		'postgres', qq{
SELECT string_agg(status, ',') FROM cron.job_run_details WHERE jobid = $job_op}),
	'succeeded',
	'the gdpr_operator job run is recorded as succeeded');
is( $node->safe_psql(
		'opdb', qq{
SELECT r.state || '|' || r.outcome || '|' || a.anonymized_by || '|'
       || (SELECT count(*) FROM billing.sent_emails WHERE customer_id = '$cust_c') || '|'
       || (c.name IS NULL AND c.email IS NULL)
  FROM anonymize.requests r
  JOIN anonymize.audit_log a USING (customer_id)
  JOIN billing.customers c ON c.id = r.customer_id
 WHERE r.customer_id = '$cust_c'}),
	'done|anonymized|gdpr_operator|0|true',
	'its request is done: customer erased, audit row by gdpr_operator');
is( $node->safe_psql('opdb', q{SELECT string_agg(DISTINCT who, ',') FROM billing.trigger_log}),
	'gdpr_operator',
	'in the operator job the logging trigger ran with the operator\'s own rights');

$node->stop;
done_testing();
