# t/023_queue_lock_timeout.pl -- what the queue's row locks cannot cover
# waits at most anonymize.queue_lock_timeout, then the customer is busy.
#
# CALL anonymize.process_requests() takes its row locks SKIP LOCKED or
# NOWAIT, but some waits are not row locks of its own: the foreign key check
# of its delete of a sent email whose click a billing transaction is
# deleting, and a table lock that blocks deletes.  While another session
# holds each of them, a run must end within a few seconds (the timeout is
# 100 ms, the server's lock_timeout is off) and leave the customers it
# would wait for pending as busy with the lock timeout's error (customer X
# for the click, both for the table lock), anonymizing the others; once the
# lock is gone, the next run anonymizes them.  A regression test
# cannot hold a lock in a second session, and an isolation spec would depend
# on whether the tester sees a 100 ms wait.
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use BillingMapping;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('queue_lock_timeout');
$node->init;
$node->start;

my $root = dirname(__FILE__) . '/..';
$node->safe_psql('postgres', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('postgres', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'postgres');

my $x = '00000000-0000-0000-0000-0000000000aa';
my $y = '00000000-0000-0000-0000-0000000000bb';

# holder: the SQL that a second session holds in an open transaction;
# busy: how many customers it holds back
sub round
{
	my ($name, $holder, $busy) = @_;
	my $done = 2 - $busy;

	$node->safe_psql(
		'postgres', qq{
TRUNCATE anonymize.requests, anonymize.audit_log;
DROP TABLE IF EXISTS billing.email_clicks;
DELETE FROM billing.sent_emails;
DELETE FROM billing.billing_addresses;
DELETE FROM billing.customers;
INSERT INTO billing.customers (id, name, email) VALUES
	('$x', 'Xavier X', 'x\@example.com'), ('$y', 'Yvonne Y', 'y\@example.com');
INSERT INTO billing.billing_addresses (customer_id, first_name, country)
SELECT id, split_part(name, ' ', 1), 'US' FROM billing.customers;
INSERT INTO billing.sent_emails (customer_id, recipient)
SELECT id, email FROM billing.customers;
CREATE TABLE billing.email_clicks (
	email_id bigint NOT NULL REFERENCES billing.sent_emails);
INSERT INTO billing.email_clicks
SELECT id FROM billing.sent_emails WHERE customer_id = '$x';
SELECT anonymize.request(id) FROM billing.customers;
});

	my $session = $node->background_psql('postgres', on_error_stop => 1);
	$session->query_safe("BEGIN; $holder");

	my $started = time;
	my ($ret, $out, $err) = $node->psql('postgres',
		'CALL anonymize.process_requests()',
		timeout => 60);
	my $seconds = time - $started;
	is($ret, 0, "$name: the run succeeds");
	cmp_ok($seconds, '<', 10,
		sprintf('%s: the run did not wait for the lock (%.1f s)', $name, $seconds));
	like($err,
		qr/$done anonymized, 0 already erased, 0 of unknown customers, 0 blocked, $busy busy, 0 failed/,
		"$name: $done anonymized, $busy busy");
	is( $node->safe_psql(
			'postgres', qq{
SELECT c.name || '|' || r.state || '|' || r.outcome || '|' || anonymize.describe_outcome(r.details)
  FROM anonymize.requests r JOIN billing.customers c ON c.id = r.customer_id
 WHERE r.customer_id = '$x'}),
		'Xavier X|pending|busy|error 55P03: canceling statement due to lock timeout',
		"$name: the held customer is left busy, untouched");

	$session->query_safe('COMMIT');
	$session->quit;
	($ret, $out, $err) = $node->psql('postgres', 'CALL anonymize.process_requests()');
	like($err,
		qr/$busy anonymized, 0 already erased, 0 of unknown customers, 0 blocked, 0 busy, 0 failed/,
		"$name: once the lock is gone, the next run anonymizes the rest");
	is($node->safe_psql('postgres',
			q{SELECT count(*) FROM anonymize.requests WHERE state = 'done'}),
		'2', "$name: both requests are done");
	return;
}

round('foreign key check', 'DELETE FROM billing.email_clicks;', 1);
round('table lock',
	'DELETE FROM billing.email_clicks; LOCK TABLE billing.sent_emails IN SHARE MODE;',
	2);

$node->stop;
done_testing();
