# t/001_crash.pl -- anonymize_customer() is one transaction, whatever stops
# it half-way:
#   1. the server killed (immediate shutdown) while the call is deleting the
#      200,000 sent emails of a customer: after crash recovery the customer
#      is untouched (name, email, address, all 200,000 emails, no audit row);
#   2. the server killed while a call is running, at whatever point it is:
#      the customer is either completely anonymized or untouched;
#   3. statement_timeout in the middle of the call: everything rolled back;
#   4. pg_cancel_backend() in the middle of the call: everything rolled back,
#      and the same session anonymizes fine afterwards;
#   5. the server killed right after the call committed: everything is
#      anonymized and the audit row is there.
# "In the middle" is made certain by a second session that holds a row lock
# on the last sent email of the customer, so that the call waits there
# after having deleted every other row (WAL shows the deletions).
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use BillingMapping;

my $n_emails = 200_000;
my $victim = 'c1000000-0000-0000-0000-000000000001';    # individual
my $racer = 'c1000000-0000-0000-0000-000000000002';     # company

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;

my $root = dirname(__FILE__) . '/..';
$node->safe_psql('postgres', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('postgres', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'postgres');

$node->safe_psql(
	'postgres', qq{
INSERT INTO billing.customers (id, name, email) VALUES
	('$victim', 'Vera Victim', 'vera\@example.com'),
	('$racer', 'Rudi Racer', 'rudi\@racer.example');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, phone, address_line1, city, postal_code, country) VALUES
	('$victim', NULL, 'Vera', 'Victim', '+49 30 1', 'Weg 1', 'Berlin', '10117', 'DE'),
	('$racer', 'Racer GmbH', 'Rudi', 'Racer', '+49 30 2', 'Weg 2', 'Berlin', '10117', 'DE');
INSERT INTO billing.sent_emails (customer_id, recipient, subject, body)
SELECT c, 'someone\@example.com', 'Mail ' || i, repeat('b', 100)
  FROM unnest(ARRAY['$victim', '$racer']::uuid[]) c, generate_series(1, $n_emails) i;
INSERT INTO billing.customer_activity (customer_id, kind)
SELECT c, 'login' FROM unnest(ARRAY['$victim', '$racer']::uuid[]) c, generate_series(1, 1000);
INSERT INTO billing.webhook_notifications (customer_id, event)
SELECT c, 'customer.created' FROM unnest(ARRAY['$victim', '$racer']::uuid[]) c;
INSERT INTO billing.subscriptions (customer_id, state)
SELECT c, s FROM unnest(ARRAY['$victim', '$racer']::uuid[]) c,
	unnest('{terminated,initialized}'::text[]) s;
INSERT INTO billing.invoices (customer_id, status, amount)
SELECT c, 'paid', 10 FROM unnest(ARRAY['$victim', '$racer']::uuid[]) c;
CHECKPOINT;
});

# Everything that anonymization changes, as one line.
sub state_of
{
	my ($id) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT concat_ws('|', coalesce(c.name, 'NULL'), coalesce(c.email, 'NULL'),
	coalesce(a.company, 'NULL'), coalesce(a.first_name, 'NULL'),
	coalesce(a.last_name, 'NULL'), coalesce(a.phone, 'NULL'),
	coalesce(a.address_line1, 'NULL'), coalesce(a.city, 'NULL'),
	coalesce(a.postal_code, 'NULL'), coalesce(a.country, 'NULL'),
	(SELECT count(*) FROM billing.sent_emails x WHERE x.customer_id = c.id),
	(SELECT count(*) FROM billing.customer_activity x WHERE x.customer_id = c.id),
	(SELECT count(*) FROM billing.webhook_notifications x WHERE x.customer_id = c.id),
	(SELECT string_agg(state, ',' ORDER BY state) FROM billing.subscriptions x WHERE x.customer_id = c.id),
	(SELECT count(*) FROM anonymize.audit_log x WHERE x.customer_id = c.id))
  FROM billing.customers c LEFT JOIN billing.billing_addresses a ON a.customer_id = c.id
 WHERE c.id = '$id'});
}

my $untouched_victim = state_of($victim);
is($untouched_victim,
	"Vera Victim|vera\@example.com|NULL|Vera|Victim|+49 30 1|Weg 1|Berlin|10117|DE|$n_emails|1000|1|initialized,terminated|0",
	'the victim before');
my $untouched_racer = state_of($racer);
my $anonymized_victim =
  'NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|DE|0|0|0|terminated|1';
my $anonymized_racer =
  'Racer GmbH|NULL|Racer GmbH|NULL|NULL|NULL|Weg 2|Berlin|10117|DE|0|0|0|terminated|1';

# Starts psql running the commands (-c each) in the background; returns the harness and
# references to its stdout and stderr.
sub start_psql
{
	my @commands = map { ('-c', $_) } @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-v',
			'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), @commands
		],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($h, \$out, \$err);
}

# A session that locks the last sent email of $id and keeps it locked.
sub lock_last_email
{
	my ($id) = @_;
	my $locker = $node->background_psql('postgres');
	$locker->query_safe(
		qq{BEGIN; SELECT id FROM billing.sent_emails WHERE customer_id = '$id'
		   ORDER BY id DESC LIMIT 1 FOR UPDATE;});
	return $locker;
}

# Waits until the call of anonymize_customer run by harness $h waits for a
# row lock; returns the pid of its backend.  Dies if the call ends first.
sub wait_for_lock_wait
{
	my ($h) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $pid = $node->safe_psql(
			'postgres', q{
SELECT pid FROM pg_stat_activity
 WHERE state = 'active' AND wait_event_type = 'Lock'
   AND query LIKE '%anonymize_customer%'});
		return $pid if $pid ne '';
		if (defined $h)
		{
			$h->pump_nb;
			die 'the call ended before it waited for the lock'
			  unless $h->pumpable;
		}
		select(undef, undef, undef, 0.05);
	}
	die 'anonymize_customer() never waited for the lock';
}

sub wal_lsn
{
	return $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
}

sub wal_bytes_since
{
	my ($lsn) = @_;
	return $node->safe_psql('postgres',
		"SELECT pg_current_wal_insert_lsn() - '$lsn'::pg_lsn");
}

my $call = "SELECT anonymized FROM anonymize.anonymize_customer('$victim')";

#
# 1. Crash in the middle of the call.
#
{
	my $locker = lock_last_email($victim);
	my $lsn = wal_lsn();
	my ($h, $out, $err) = start_psql($call);
	wait_for_lock_wait($h);
	my $wal = wal_bytes_since($lsn);
	cmp_ok($wal, '>', 4_000_000,
		"the call wrote WAL before waiting: it deleted rows ($wal bytes)");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
		),
		'1',
		'pg_locks shows the call waiting');

	$node->stop('immediate');
	$h->finish;
	isnt($h->result(0), 0, 'psql of the call failed');
	like(
		$$err,
		qr/terminating connection|server closed the connection|connection to server was lost/,
		'the call lost its connection');
	eval { $locker->quit };

	$node->start;
	ok( $node->log_contains(
			'database system was not properly shut down; automatic recovery in progress'),
		'the server went through crash recovery');
	is(state_of($victim), $untouched_victim,
		'after the crash in the middle: the customer is untouched');
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM billing.sent_emails WHERE customer_id = '$victim'"),
		$n_emails,
		"all $n_emails emails are there");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM anonymize.audit_log'),
		'0', 'no audit row');
}

#
# 2. Crash while a call runs, without a lock holding it: all or nothing.
#
{
	my ($h, $out, $err) = start_psql(
		"SELECT anonymized FROM anonymize.anonymize_customer('$racer')");
	$node->poll_query_until(
		'postgres', qq{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE pid <> pg_backend_pid() AND query LIKE '%anonymize_customer%'
	OR EXISTS (SELECT FROM anonymize.audit_log WHERE customer_id = '$racer')})
	  or die 'the call did not start';
	$node->stop('immediate');
	$h->finish;
	$node->start;
	my $state = state_of($racer);
	ok( $state eq $untouched_racer || $state eq $anonymized_racer,
		'after a crash at any point: anonymized completely or not at all');
	note 'the crash found the call '
	  . ($state eq $untouched_racer ? 'not committed' : 'committed')
	  . ", psql said: $$err";
}

#
# 3. statement_timeout in the middle of the call, and before it could end.
#
{
	my $locker = lock_last_email($victim);
	my ($h, $out, $err) = start_psql("SET statement_timeout = '5s'", $call);
	wait_for_lock_wait($h);
	$h->finish;
	isnt($h->result(0), 0, 'the call with statement_timeout failed');
	like(
		$$err,
		qr/57014: canceling statement due to statement timeout/,
		'it failed with the statement timeout (57014)');
	is(state_of($victim), $untouched_victim,
		'after the statement timeout: the customer is untouched');
	$locker->query_safe('ROLLBACK');
	$locker->quit;

	# Without a lock: the 200,000 deletions take longer than the timeout.
	($h, $out, $err) = start_psql("SET statement_timeout = '50ms'", $call);
	$h->finish;
	like(
		$$err,
		qr/57014: canceling statement due to statement timeout/,
		'a 50 ms statement timeout cancels the call (57014)');
	is(state_of($victim), $untouched_victim,
		'after it: the customer is untouched');
}

#
# 4. pg_cancel_backend() in the middle of the call; then the same session
#    anonymizes (in a transaction rolled back, to keep the customer).
#
{
	my $locker = lock_last_email($victim);
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe('\set VERBOSITY verbose');
	$session->query_until(qr/started/, "\\echo started\n$call;\n");
	my $pid = wait_for_lock_wait(undef);
	is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"),
		't', 'cancel sent');
	$node->poll_query_until(
		'postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND query LIKE '%anonymize_customer%'})
	  or die 'the call did not stop';
	is(state_of($victim), $untouched_victim,
		'after pg_cancel_backend(): the customer is untouched');
	$locker->query_safe('ROLLBACK');
	$locker->quit;

	my ($result) = $session->query('SELECT 1');
	like(
		$session->{stderr},
		qr/57014: canceling statement due to user request/,
		'the call was canceled (57014)');
	$session->{stderr} = '';
	$result = $session->query_safe(
		"BEGIN; SELECT anonymized, customer_kind, rows_deleted->>'sent_emails'
		   FROM anonymize.anonymize_customer('$victim'); ROLLBACK;");
	is($result, "t|individual|$n_emails",
		'the same session anonymizes after the cancel');
	$session->quit;
	is(state_of($victim), $untouched_victim, 'rolled back: untouched');
}

#
# 5. The call commits, then the server is killed at once.
#
{
	my ($h, $out, $err) = start_psql($call);
	$h->finish;
	is($$out, "t\n", 'the call committed');
	$node->stop('immediate');
	$node->start;
	is(state_of($victim), $anonymized_victim,
		'after the crash: the committed anonymization is there');
	is( $node->safe_psql(
			'postgres',
			"SELECT anonymized_by = current_user, customer_kind, rows_deleted->>'sent_emails'
			   FROM anonymize.audit_log WHERE customer_id = '$victim'"),
		"t|individual|$n_emails",
		'and so is its audit row');
}

$node->stop;
done_testing();
