# t/021_logical_replication.pl -- the mapping replicates by logical
# replication, and changes that arrive that way make every backend of the
# subscriber rebuild its plans.
#
# Each backend keeps prepared plans built from the configuration tables
# (anonymize.customer_relation, scopes, rules) and rebuilds them when a
# change of those tables sends a relcache invalidation.  When the
# configuration tables are replicated, the changes are written on the
# subscriber by the logical replication apply worker, which runs with
# session_replication_role = replica: it fires only row-level triggers, and
# only those enabled REPLICA or ALWAYS.  If the invalidation does not fire
# there, an existing session on the subscriber keeps erasing by the old
# mapping: a purge rule set again on the publisher stays off, and personal
# data survives an erasure that reports success.
#
# Publisher and subscriber both hold examples/billing.sql and the extension;
# CREATE EXTENSION installs no mapping, so the mapping tables of both are
# empty.  examples/billing_mapping.sql is loaded on the publisher only; the
# publisher publishes the three configuration tables, the billing data is
# local to each node.  The subscription copies the mapping (copy_data =
# true): the subscriber's mapping tables then equal the publisher's, row for
# row, and the subscriber erases by that mapping.
#
# One long-lived session on the subscriber builds its plans first; then,
# changed on the publisher and replicated:
#   - purge rule sent_emails dropped (DELETE): the session's next erasure
#     leaves the customer's sent emails and does not report them;
#   - the same rule set again (INSERT): the session's next erasure deletes
#     them and reports "sent_emails";
#   - scope sent_emails narrowed by a condition (UPDATE, set_scope's ON
#     CONFLICT DO UPDATE): the session's next erasure deletes none of them
#     ("sent_emails": 0); widened again (UPDATE): it deletes them;
#   - a blocker rule added (INSERT): the session refuses with 55000;
#   - that blocker rule deleted (DELETE): the session allows it again;
#   - the rules truncated (TRUNCATE): a customer blocked by an unpaid
#     invoice becomes eligible in the session.  (A TRUNCATE gives the table
#     a new relfilenode, which alone sends a relcache invalidation of the
#     configuration table; this step guards that path, whatever the
#     triggers.)
# Each step also checks that the change did reach the subscriber's table and
# a fresh session, so a failure points at the cached plans.  Before each
# step whose outcome could otherwise follow from an earlier step not having
# propagated, the session's plans are rebuilt by a local ALTER TABLE of a
# mapped relation (which invalidates them by another path), so each step
# tests its own change.
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use BillingMapping;

my $root = dirname(__FILE__) . '/..';

my $publisher = PostgreSQL::Test::Cluster->new('publisher');
$publisher->init(allows_streaming => 'logical');
$publisher->start;

my $subscriber = PostgreSQL::Test::Cluster->new('subscriber');
$subscriber->init;
# Dropping the purge rule of sent emails keeps their recipients: the residue
# check would say so in a WARNING, which these steps would take for an
# error.  It has a test of its own (sql/residue_check.sql).
$subscriber->append_conf('postgresql.conf', 'anonymize.residue_check = off');
$subscriber->start;

for my $node ($publisher, $subscriber)
{
	$node->safe_psql('postgres', slurp_file("$root/examples/billing.sql"));
	$node->safe_psql('postgres', 'CREATE EXTENSION anonymize');
}
note 'extension version: '
  . $subscriber->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 'anonymize'");

is(mapping_of($subscriber, 'postgres'), "\n---\n\n---\n",
	'the subscriber has no mapping before the subscription');
load_billing_mapping($publisher, 'postgres');

$publisher->safe_psql(
	'postgres', q{
CREATE PUBLICATION anon_config FOR TABLE anonymize.customer_relation,
	anonymize.scopes, anonymize.rules});
my $subname = 'anon_sub';
my $pubconn = $publisher->connstr . ' dbname=postgres';
$subscriber->safe_psql('postgres',
	"CREATE SUBSCRIPTION $subname CONNECTION '$pubconn' PUBLICATION anon_config WITH (copy_data = true)"
);
$subscriber->wait_for_subscription_sync($publisher, $subname);
is(mapping_of($subscriber, 'postgres'), mapping_of($publisher, 'postgres'),
	"the initial copy gives the subscriber the publisher's mapping, row for row");

# Customers, on the subscriber only.
my ($ca, $cb, $cc, $cd, $ce) =
  map { sprintf('e2100000-0000-0000-0000-%012d', $_) } 1 .. 5;
my $setup = '';
for my $id ($ca, $cb, $cc, $cd, $ce)
{
	$setup .= qq{
INSERT INTO billing.customers (id, name, email) VALUES ('$id', 'Name $id', 'c\@example.com');
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name, country)
	VALUES ('$id', 'First', 'Last', 'DE');};
}
for my $id ($ca, $cb, $cc)
{
	$setup .= qq{
INSERT INTO billing.sent_emails (customer_id, recipient)
	VALUES ('$id', 'c\@example.com'), ('$id', 'c\@example.com');};
}
$setup .= qq{
INSERT INTO billing.customer_activity (customer_id, kind) VALUES ('$cd', 'login');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES ('$ce', 'due', 10);};
$subscriber->safe_psql('postgres', $setup);

sub sent_emails_of
{
	my ($id) = @_;
	return $subscriber->safe_psql('postgres',
		"SELECT count(*) FROM billing.sent_emails WHERE customer_id = '$id'");
}

# Waits until the subscriber has applied everything done on the publisher.
sub replicate
{
	$publisher->wait_for_catchup($subname);
}

# The plans of the long-lived session are rebuilt at its next call: an
# ALTER TABLE of a mapped relation invalidates them whatever the triggers
# on the configuration tables do.
sub rebuild_plans_locally
{
	$subscriber->safe_psql('postgres',
		'ALTER TABLE billing.customers ALTER COLUMN name SET STATISTICS -1');
}

# An erasure in a fresh session of the subscriber, rolled back: does it
# report sent_emails?
sub fresh_session_purges_sent_emails
{
	my ($id) = @_;
	return $subscriber->safe_psql('postgres',
		"BEGIN; SELECT rows_deleted ? 'sent_emails' FROM anonymize.anonymize_customer('$id'); ROLLBACK;"
	);
}

# The long-lived session on the subscriber; errors do not end it.
my $s = $subscriber->background_psql('postgres', on_error_stop => 0);
$s->query_safe('\set VERBOSITY verbose');
my $pid = $s->query_safe('SELECT pg_backend_pid()');

sub s_query
{
	my ($sql) = @_;
	$s->{stderr} = '';
	my $out = $s->query($sql);
	my $err = $s->{stderr};
	$s->{stderr} = '';
	return $err ne '' ? $err : $out;
}

is(s_query("SELECT anonymize.can_anonymize('$ca')"),
	't', 'long-lived session on the subscriber builds its plans');

is( s_query(
		"BEGIN; SELECT rows_deleted ? 'sent_emails' FROM anonymize.anonymize_customer('$cb'); ROLLBACK;"
	),
	't',
	'with the copied mapping, the long-lived session purges sent_emails');

#
# Purge rule dropped on the publisher (a DELETE).
#
$publisher->safe_psql('postgres', "SELECT anonymize.drop_rule('sent_emails')");
replicate();
is( $subscriber->safe_psql('postgres',
		"SELECT count(*) FROM anonymize.rules WHERE rule_name = 'sent_emails'"),
	'0',
	'the dropped purge rule is gone on the subscriber');
is(fresh_session_purges_sent_emails($cb),
	'f', 'a fresh session on the subscriber does not purge sent_emails');

is( s_query(
		"SELECT anonymized, rows_deleted ? 'sent_emails' FROM anonymize.anonymize_customer('$ca')"
	),
	"t|f",
	'rule dropped by replication: the long-lived session does not report sent_emails'
);
is(sent_emails_of($ca), '2',
	'rule dropped by replication: the sent emails survive in the long-lived session'
);

# Whatever happened above, the session now has plans without the rule.
rebuild_plans_locally();
is( s_query(
		"BEGIN; SELECT rows_deleted ? 'sent_emails' FROM anonymize.anonymize_customer('$cb'); ROLLBACK;"
	),
	'f',
	'rebuilt by a local ALTER TABLE, the long-lived session has no rule sent_emails');

#
# The same rule set again on the publisher (an INSERT): the case the review
# found.
#
$publisher->safe_psql('postgres',
	"SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails')");
replicate();
is( $subscriber->safe_psql('postgres',
		"SELECT kind || ' ' || scope FROM anonymize.rules WHERE rule_name = 'sent_emails'"),
	'purge sent_emails',
	'the purge rule set again reached the subscriber');
is(fresh_session_purges_sent_emails($cb),
	't', 'a fresh session on the subscriber purges sent_emails');

like(
	s_query(
		"BEGIN; SELECT anonymized, rows_deleted ? 'sent_emails', rows_deleted FROM anonymize.anonymize_customer('$cb'); ROLLBACK;"
	),
	qr/^t\|t\|\{.*"sent_emails": 2.*\}$/,
	'rule set again by replication: the long-lived session reports sent_emails'
);

#
# The scope of the rule narrowed on the publisher, then widened again
# (UPDATEs of anonymize.scopes).
#
rebuild_plans_locally();
like(
	s_query(
		"BEGIN; SELECT rows_deleted FROM anonymize.anonymize_customer('$cb'); ROLLBACK;"),
	qr/"sent_emails": 2/,
	'rebuilt, the long-lived session deletes both sent emails of customer b');
$publisher->safe_psql('postgres',
	q{SELECT anonymize.set_scope('sent_emails', 'billing.sent_emails', 'customer_id', condition => $$recipient <> 'c@example.com'$$)}
);
replicate();
is( $subscriber->safe_psql('postgres',
		"SELECT condition FROM anonymize.scopes WHERE scope_name = 'sent_emails'"),
	q{recipient <> 'c@example.com'},
	'the narrowed scope reached the subscriber');
like(
	s_query(
		"BEGIN; SELECT rows_deleted FROM anonymize.anonymize_customer('$cb'); ROLLBACK;"),
	qr/"sent_emails": 0/,
	'scope narrowed by replication: the long-lived session deletes no sent email');
$publisher->safe_psql('postgres',
	"SELECT anonymize.set_scope('sent_emails', 'billing.sent_emails', 'customer_id')");
replicate();
is( $subscriber->safe_psql('postgres',
		"SELECT count(*) FROM anonymize.scopes WHERE scope_name = 'sent_emails' AND condition IS NULL"),
	'1',
	'the widened scope reached the subscriber');
like(
	s_query(
		"SELECT anonymized, rows_deleted FROM anonymize.anonymize_customer('$cc')"),
	qr/^t\|\{.*"sent_emails": 2.*\}$/,
	'scope widened by replication: the long-lived session reports both sent emails');
is(sent_emails_of($cc), '0',
	'scope widened by replication: the long-lived session deletes the sent emails'
);

#
# A blocker rule added on the publisher (an INSERT).
#
rebuild_plans_locally();
is(s_query("SELECT anonymize.can_anonymize('$cd')"),
	't', 'before the blocker rule, the long-lived session allows customer d');
$publisher->safe_psql('postgres',
	q{SELECT anonymize.set_blocker_rule('no_login', 'customer_activity', $$kind = 'login'$$, 'logged in')}
);
replicate();
is( $subscriber->safe_psql('postgres',
		"SELECT anonymize.can_anonymize('$cd')"),
	'f',
	'the blocker rule reached the subscriber: a fresh session is blocked');
like(
	s_query(
		"BEGIN; SELECT anonymized FROM anonymize.anonymize_customer('$cd'); ROLLBACK;"),
	qr/ERROR:  55000: customer \S+ cannot be anonymized\nDETAIL:  Blocked by 1 row of relation "billing.customer_activity" \(logged in\)/,
	'blocker rule added by replication: the long-lived session refuses with 55000'
);
is(s_query("SELECT anonymize.can_anonymize('$cd')"),
	'f',
	'blocker rule added by replication: can_anonymize in the long-lived session');

#
# That blocker rule deleted on the publisher (a DELETE).
#
rebuild_plans_locally();
is(s_query("SELECT anonymize.can_anonymize('$cd')"),
	'f', 'rebuilt, the long-lived session has the blocker rule');
$publisher->safe_psql('postgres',
	"DELETE FROM anonymize.rules WHERE rule_name = 'no_login'");
replicate();
is( $subscriber->safe_psql('postgres',
		"SELECT count(*) FROM anonymize.rules WHERE rule_name = 'no_login'"
	),
	'0',
	'the deleted blocker rule is gone on the subscriber');
is(s_query("SELECT anonymize.can_anonymize('$cd')"),
	't',
	'blocker rule deleted by replication: the long-lived session allows customer d'
);

#
# All rules truncated on the publisher (a TRUNCATE).
#
rebuild_plans_locally();
is(s_query("SELECT anonymize.can_anonymize('$ce')"),
	'f', 'the unpaid invoice blocks customer e in the long-lived session');
$publisher->safe_psql('postgres', 'TRUNCATE anonymize.rules');
replicate();
is( $subscriber->safe_psql('postgres',
		'SELECT count(*) FROM anonymize.rules'),
	'0',
	'the truncation reached the subscriber');
is(s_query("SELECT anonymize.can_anonymize('$ce')"),
	't',
	'rules truncated by replication: the long-lived session allows customer e'
);

is($s->query_safe('SELECT pg_backend_pid()'),
	$pid, 'all of it in one session, never reconnected');
$s->quit;

$subscriber->safe_psql('postgres', "DROP SUBSCRIPTION $subname");
is($publisher->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'),
	'0', 'subscription dropped, with its slot');

$subscriber->stop;
$publisher->stop;
done_testing();
