# t/003_stale_mapping.pl -- the plans a session keeps follow the schema and
# the mapping:
#   - in one session that has built its plans: a mapped table renamed is
#     reported by name (42P01 'relation "billing.sent_emails" does not
#     exist'), and renamed back it works again in the same session; same
#     for a mapped column renamed or dropped (42703 naming it), the key
#     column of a purge relation, a column used by a rule condition, a
#     mapped table dropped and created again, the schema renamed;
#   - across sessions: session 1 keeps its plans, session 2 renames a
#     column, sets a column NOT NULL, drops a purge rule and sets it again,
#     narrows a scope by a condition and widens it again, adds a blocker
#     rule; session 1's next call follows each change;
#   - many mapping changes in a row, from the same and from another
#     session, are each seen by the next call.
# The mapping is examples/billing_mapping.sql, loaded after CREATE EXTENSION
# (which installs none).
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use BillingMapping;

my $node = PostgreSQL::Test::Cluster->new('stale');
$node->init;
# Dropping the purge rule of sent emails keeps their recipients: the residue
# check would say so in a WARNING, which these steps would take for an
# error.  It has a test of its own (sql/residue_check.sql).
$node->append_conf('postgresql.conf', 'anonymize.residue_check = off');
$node->start;

my $root = dirname(__FILE__) . '/..';
$node->safe_psql('postgres', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('postgres', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'postgres');

my $x = 'e3000000-0000-0000-0000-000000000001';
$node->safe_psql(
	'postgres', qq{
INSERT INTO billing.customers (id, name, email) VALUES ('$x', 'Xaver X', 'x\@example.com');
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name, phone,
	address_line1, region, country) VALUES ('$x', 'Xaver', 'X', '+1', 'Weg 1', 'Bayern', 'DE');
INSERT INTO billing.sent_emails (customer_id, recipient) VALUES ('$x', 'x\@example.com');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES ('$x', 'login');
INSERT INTO billing.webhook_notifications (customer_id, event) VALUES ('$x', 'customer.created');
INSERT INTO billing.subscriptions (customer_id, state) VALUES ('$x', 'initialized');
});

# Session 1 keeps its plans between the calls; errors do not end it.
my $s1 = $node->background_psql('postgres', on_error_stop => 0);
$s1->query_safe('\set VERBOSITY verbose');
my $pid = $s1->query_safe('SELECT pg_backend_pid()');

sub s1
{
	my ($sql) = @_;
	$s1->{stderr} = '';
	my $out = $s1->query($sql);
	my $err = $s1->{stderr};
	$s1->{stderr} = '';
	return ($out, $err);
}

# An anonymization in session 1, rolled back: its summary, or the error.
sub s1_try
{
	my ($out, $err) = s1(
		"BEGIN; SELECT anonymized, customer_kind, rows_deleted FROM anonymize.anonymize_customer('$x'); ROLLBACK;"
	);
	return $err ne '' ? $err : $out;
}

my $works = qr/^t\|individual\|\{"sent_emails": 1, "customer_activity": 1, "webhook_notifications": 1, "initialized_subscriptions": 1\}$/;

like(s1_try(), $works, 'session 1 builds its plans and anonymizes');
is((s1("SELECT anonymize.can_anonymize('$x')"))[0], 't', 'can_anonymize');

# Changes $ddl in session 1, expects every function to fail with $error,
# undoes it with $undo and expects the next call to work.
sub stale_in_session
{
	my ($what, $ddl, $error, $undo) = @_;
	my ($out, $err) = s1($ddl);
	is($err, '', "$what: done");
	like(s1_try(), $error, "$what: anonymize_customer reports it");
	($out, $err) = s1("SELECT anonymize.can_anonymize('$x')");
	like($err, $error, "$what: can_anonymize reports it");
	($out, $err) = s1("SELECT * FROM anonymize.blockers('$x')");
	like($err, $error, "$what: blockers reports it");
	($out, $err) = s1($undo);
	is($err, '', "$what: undone");
	like(s1_try(), $works, "$what: undone, the same session works again");
}

stale_in_session(
	'mapped table renamed',
	'ALTER TABLE billing.sent_emails RENAME TO sent_emails_old',
	qr/ERROR:  42P01: relation "billing.sent_emails" does not exist/,
	'ALTER TABLE billing.sent_emails_old RENAME TO sent_emails');
stale_in_session(
	'customer email column renamed',
	'ALTER TABLE billing.customers RENAME COLUMN email TO e_mail',
	qr/ERROR:  42703: column "email" of relation "billing.customers" does not exist/,
	'ALTER TABLE billing.customers RENAME COLUMN e_mail TO email');
stale_in_session(
	'address column dropped',
	'ALTER TABLE billing.billing_addresses DROP COLUMN region',
	qr/ERROR:  42703: column "region" of relation "billing.billing_addresses" does not exist/,
	'ALTER TABLE billing.billing_addresses ADD COLUMN region text');
stale_in_session(
	'key column of a purge relation renamed',
	'ALTER TABLE billing.customer_activity RENAME COLUMN customer_id TO cust_id',
	qr/ERROR:  42703: column "customer_id" of relation "billing.customer_activity" does not exist/,
	'ALTER TABLE billing.customer_activity RENAME COLUMN cust_id TO customer_id');
stale_in_session(
	'column of a rule condition renamed',
	'ALTER TABLE billing.subscriptions RENAME COLUMN state TO st',
	qr/ERROR:  42703: column "state" does not exist.*anonymize rule "(initialized_subscriptions|subscriptions_not_terminated)"/s,
	'ALTER TABLE billing.subscriptions RENAME COLUMN st TO state');
stale_in_session(
	'mapped table dropped',
	'CREATE TABLE billing.wn_copy AS SELECT * FROM billing.webhook_notifications; '
	  . 'DROP TABLE billing.webhook_notifications',
	qr/ERROR:  42P01: relation "billing.webhook_notifications" does not exist/,
	'CREATE TABLE billing.webhook_notifications (LIKE billing.wn_copy); '
	  . 'INSERT INTO billing.webhook_notifications SELECT * FROM billing.wn_copy; '
	  . 'DROP TABLE billing.wn_copy');
stale_in_session(
	'schema renamed',
	'ALTER SCHEMA billing RENAME TO billing_renamed',
	qr/ERROR:  42P01: relation "billing\.\w+" does not exist/,
	'ALTER SCHEMA billing_renamed RENAME TO billing');

#
# Session 2 changes things under session 1's plans.
#
like(s1_try(), $works, 'session 1 has fresh plans');

$node->safe_psql('postgres',
	'ALTER TABLE billing.customers RENAME COLUMN email TO email_address');
like(s1_try(),
	qr/ERROR:  42703: column "email" of relation "billing.customers" does not exist/,
	'session 2 renamed a column: session 1 reports it');
$node->safe_psql('postgres',
	'ALTER TABLE billing.customers RENAME COLUMN email_address TO email');
like(s1_try(), $works, 'session 2 renamed it back: session 1 works');

$node->safe_psql('postgres',
	'ALTER TABLE billing.customers RENAME COLUMN email TO email_address');
$node->safe_psql('postgres',
	"SELECT anonymize.set_customer_relation('billing.customers', 'id', 'name', 'email_address')"
);
like(s1_try(), $works,
	'session 2 renamed a column and remapped it: session 1 works');
is( (   s1(
			"BEGIN; SELECT count(*) FROM anonymize.anonymize_customer('$x'); SELECT email_address IS NULL FROM billing.customers WHERE id = '$x'; ROLLBACK;"
		))[0],
	"1\nt",
	'and erases the remapped column');

$node->safe_psql('postgres',
	'ALTER TABLE billing.billing_addresses ALTER COLUMN phone SET NOT NULL');
is( (   s1(
			"BEGIN; SELECT count(*) FROM anonymize.anonymize_customer('$x'); SELECT quote_literal(phone) FROM billing.billing_addresses WHERE customer_id = '$x'; ROLLBACK;"
		))[0],
	"1\n''",
	'session 2 set phone NOT NULL: session 1 writes the placeholder');
$node->safe_psql('postgres',
	'ALTER TABLE billing.billing_addresses ALTER COLUMN phone DROP NOT NULL');

$node->safe_psql('postgres', "SELECT anonymize.drop_rule('sent_emails')");
like(s1_try(),
	qr/^t\|individual\|\{"customer_activity": 1, "webhook_notifications": 1, "initialized_subscriptions": 1\}$/,
	'session 2 dropped a purge rule: session 1 does not purge it');
$node->safe_psql('postgres',
	"SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails')");
like(s1_try(), $works,
	'session 2 set it again: session 1 purges it');

# A scope is part of the plans too: narrowed to no row of the customer, its
# purge rule deletes nothing; widened again, it deletes the row.
$node->safe_psql('postgres',
	q{SELECT anonymize.set_scope('sent_emails', 'billing.sent_emails', 'customer_id', condition => $$recipient <> 'x@example.com'$$)}
);
like(s1_try(),
	qr/^t\|individual\|\{"sent_emails": 0, "customer_activity": 1, "webhook_notifications": 1, "initialized_subscriptions": 1\}$/,
	'session 2 narrowed the scope sent_emails: session 1 deletes no sent email');
$node->safe_psql('postgres',
	"SELECT anonymize.set_scope('sent_emails', 'billing.sent_emails', 'customer_id')");
like(s1_try(), $works,
	'session 2 widened it again: session 1 deletes the sent email');

$node->safe_psql('postgres',
	q{SELECT anonymize.set_blocker_rule('no_login', 'customer_activity', $$kind = 'login'$$, 'logged in')}
);
like(s1_try(),
	qr/ERROR:  55000: customer \S+ cannot be anonymized\nDETAIL:  Blocked by 1 row of relation "billing.customer_activity" \(logged in\)/,
	'session 2 added a blocker rule: session 1 is blocked');
$node->safe_psql('postgres', "SELECT anonymize.drop_rule('no_login')");
like(s1_try(), $works, 'session 2 dropped it: session 1 works');

#
# Many mapping changes in a row: each is seen by the next call.  Every
# round adds the blocker rule in one session and drops it in the other
# (drop_rule() of a rule that does not exist is an error), the sessions
# taking turns, so that each session makes a real change every round.
#
sub toggle_blocker
{
	my ($on) = @_;
	return $on
	  ? q{SELECT anonymize.set_blocker_rule('toggle', 'customer_activity', $$kind = 'login'$$, 'toggled')}
	  : q{SELECT anonymize.drop_rule('toggle')};
}
my ($same_ok, $other_ok) = (0, 0);
my $rounds = 40;
for my $i (1 .. $rounds)
{
	my $s1_adds = $i % 2;
	for my $on (1, 0)
	{
		if ($on == $s1_adds)
		{
			my ($out, $err) = s1(toggle_blocker($on));
			die "toggle failed: $err" if $err ne '';
		}
		else
		{
			$node->safe_psql('postgres', toggle_blocker($on));
		}
		my ($out, $err) = s1("SELECT anonymize.can_anonymize('$x')");
		if ($out eq ($on ? 'f' : 't'))
		{
			$on == $s1_adds ? $same_ok++ : $other_ok++;
		}
	}
}
is($same_ok, $rounds,
	"$rounds blocker rule changes in session 1: each seen by its next call");
is($other_ok, $rounds,
	"$rounds blocker rule changes in session 2: each seen by session 1's next call");

is($s1->query_safe('SELECT pg_backend_pid()'), $pid,
	'all of it in one session, never reconnected');
$s1->quit;
$node->stop;
done_testing();
