# t/002_dump_restore.pl -- a non-default mapping and the audit log survive
# pg_dump and restore, plain and custom format:
#   - mapping: a preset purge rule with another condition, a preset disabled
#     with drop_rule(), a preset blocker's reason changed, a new blocker
#     rule, a placeholder; the mapping tables (every row, with the enabled
#     and preset flags), the audit log and the request queue come back
#     identical (same SELECT text);
#   - the restored database anonymizes with the restored mapping (the
#     disabled rule stays off, the new blocker blocks, an anonymized
#     customer stays anonymized);
#   - the billing data comes back identical;
# and DROP EXTENSION anonymize leaves every billing table and row in place
# and nothing of its own (the schema anonymize itself stays, empty).
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;

my $root = dirname(__FILE__) . '/..';
my $tmp = PostgreSQL::Test::Utils::tempdir;

my %c = (
	anna => 'd2000000-0000-0000-0000-000000000001',    # eligible individual
	acme => 'd2000000-0000-0000-0000-000000000002',    # eligible company
	dora => 'd2000000-0000-0000-0000-000000000003',    # open dispute
	mara => 'd2000000-0000-0000-0000-000000000004',    # active subscription
);

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('src', 'CREATE EXTENSION anonymize');
$node->safe_psql(
	'src', qq{
INSERT INTO billing.customers (id, name, email) VALUES
	('$c{anna}', 'Anna Alt', 'anna\@example.com'),
	('$c{acme}', 'Bert Boss', 'bert\@acme.example'),
	('$c{dora}', 'Dora Dispute', 'dora\@example.com'),
	('$c{mara}', 'Mara Active', 'mara\@example.com');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, phone, address_line1, city, country) VALUES
	('$c{anna}', NULL, 'Anna', 'Alt', '+1', 'Weg 1', 'Bonn', 'DE'),
	('$c{acme}', 'Acme', 'Bert', 'Boss', '+2', 'Weg 2', 'Bonn', 'DE'),
	('$c{dora}', NULL, 'Dora', 'Dispute', '+3', 'Weg 3', 'Bonn', 'DE');
INSERT INTO billing.sent_emails (customer_id, recipient, subject)
SELECT id, email, 'Welcome' FROM billing.customers;
INSERT INTO billing.webhook_notifications (customer_id, event)
SELECT id, 'customer.created' FROM billing.customers;
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	('$c{anna}', 'login'), ('$c{acme}', 'login'), ('$c{dora}', 'dispute');
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	('$c{anna}', 'initialized'), ('$c{acme}', 'initialized'),
	('$c{acme}', 'terminated'), ('$c{mara}', 'active');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES
	('$c{acme}', 'paid', 10), ('$c{mara}', 'due', 10);
INSERT INTO billing.balance_entries (customer_id, amount) VALUES
	('$c{acme}', 10), ('$c{acme}', -10), ('$c{mara}', -10);
});

# The non-default mapping.
$node->safe_psql(
	'src', q{
SELECT anonymize.set_purge_rule('initialized_subscriptions', 'billing.subscriptions',
	'customer_id', $$state IN ('initialized')$$);
SELECT anonymize.drop_rule('webhook_notifications');
SELECT anonymize.set_blocker_rule('unsettled_invoices', 'billing.invoices',
	'customer_id', $$status NOT IN ('paid', 'cancelled')$$, 'invoice still open');
SELECT anonymize.set_blocker_rule('open_dispute', 'billing.customer_activity',
	'customer_id', $$kind = 'dispute'$$, 'open dispute');
SELECT anonymize.set_placeholder('[erased]');
});
is( $node->safe_psql(
		'src',
		"SELECT anonymized FROM anonymize.anonymize_customer('$c{anna}')"),
	't',
	'anna anonymized in the source database');
is( $node->safe_psql(
		'src',
		"SELECT anonymize.request('$c{mara}', 'ticket 42') IS NOT NULL"),
	't',
	'an erasure request of mara pending in the source database');

# What must come back: every row of the extension's tables, and of billing.
my @ext_queries = (
	'SELECT * FROM anonymize.customer_mapping',
	'SELECT * FROM anonymize.purge_rules ORDER BY rule_name',
	'SELECT * FROM anonymize.blocker_rules ORDER BY rule_name',
	'SELECT * FROM anonymize.balance_rules ORDER BY rule_name',
	'SELECT * FROM anonymize.audit_log ORDER BY customer_id',
	'SELECT * FROM anonymize.requests ORDER BY request_id',
	'SELECT last_value, is_called FROM anonymize.requests_request_id_seq',
);
my @billing_tables = qw(customers billing_addresses subscriptions invoices
  balance_entries sent_emails customer_activity webhook_notifications);

sub snapshot
{
	my ($db) = @_;
	my %s;
	$s{$_} = $node->safe_psql($db, $_) for @ext_queries;
	$s{"billing.$_"} = $node->safe_psql($db,
		"SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM billing.$_ t"
	) for @billing_tables;
	return \%s;
}

my $before = snapshot('src');

like($before->{'SELECT * FROM anonymize.purge_rules ORDER BY rule_name'},
	qr/^initialized_subscriptions\|billing\|subscriptions\|customer_id\|state IN \('initialized'\)\|t\|f$/m,
	'source: the changed preset purge rule is no longer a preset');
like($before->{'SELECT * FROM anonymize.purge_rules ORDER BY rule_name'},
	qr/^webhook_notifications\|billing\|webhook_notifications\|customer_id\|\|f\|f$/m,
	'source: the dropped preset is disabled, not deleted');
like($before->{'SELECT * FROM anonymize.purge_rules ORDER BY rule_name'},
	qr/^sent_emails\|billing\|sent_emails\|customer_id\|\|t\|t$/m,
	'source: an untouched preset is still a preset');
like($before->{'SELECT * FROM anonymize.blocker_rules ORDER BY rule_name'},
	qr/^open_dispute\|.*\|open dispute\|t\|f$/m,
	'source: the new blocker rule');
like($before->{'SELECT * FROM anonymize.customer_mapping'},
	qr/\|\[erased\]\|f$/, 'source: the placeholder');

sub compare
{
	my ($what, $after) = @_;
	for my $q (@ext_queries)
	{
		is($after->{$q}, $before->{$q}, "$what: same result of $q");
	}
	for my $t (@billing_tables)
	{
		is($after->{"billing.$t"}, $before->{"billing.$t"},
			"$what: same rows in billing.$t");
	}
}

# The restored database works with the restored mapping.
sub check_restored
{
	my ($what, $db) = @_;
	my ($ret, $out, $err);

	is( $node->safe_psql(
			$db,
			"SELECT anonymized, customer_kind, rows_deleted
			   FROM anonymize.anonymize_customer('$c{acme}')"),
		't|company|{"sent_emails": 1, "customer_activity": 1, "initialized_subscriptions": 1}',
		"$what: acme anonymized, webhooks not purged (rule disabled)");
	is( $node->safe_psql(
			$db,
			"SELECT c.name, c.email, a.first_name, a.address_line1,
			        (SELECT count(*) FROM billing.webhook_notifications w WHERE w.customer_id = c.id),
			        (SELECT string_agg(state, ',') FROM billing.subscriptions s WHERE s.customer_id = c.id)
			   FROM billing.customers c JOIN billing.billing_addresses a ON a.customer_id = c.id
			  WHERE c.id = '$c{acme}'"),
		'Acme|||Weg 2|1|terminated',
		"$what: acme erased by the rules");

	($ret, $out, $err) = $node->psql($db,
		"SELECT * FROM anonymize.anonymize_customer('$c{dora}')");
	like($err, qr/Blocked by 1 row of relation "billing.customer_activity" \(open dispute\)/,
		"$what: the new blocker rule blocks dora");
	($ret, $out, $err) = $node->psql($db,
		"SELECT * FROM anonymize.anonymize_customer('$c{mara}')");
	like($err, qr/\(invoice still open\)/,
		"$what: the changed reason of a preset blocker");
	is( $node->safe_psql(
			$db,
			"SELECT anonymized FROM anonymize.anonymize_customer('$c{anna}')"),
		'f',
		"$what: anna is still anonymized (audit log restored)");
	is( $node->safe_psql(
			$db,
			"SELECT anonymize.request('$c{mara}') = (SELECT request_id FROM anonymize.requests WHERE customer_id = '$c{mara}')"),
		't',
		"$what: mara's pending request is the restored one");
	is( $node->safe_psql(
			$db,
			"SELECT count(*) FROM anonymize.purge_rules WHERE preset"),
		'2', "$what: presets that were not changed are presets again");
}

#
# Plain format.
#
$node->command_ok(
	[ 'pg_dump', '-d', $node->connstr('src'), '-f', "$tmp/src.sql" ],
	'pg_dump, plain format');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
{
	my ($ret, $out, $err) = $node->psql('dst', '',
		extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', "$tmp/src.sql" ]);
	is($ret, 0, 'the plain dump restores without error');
	is($err, '', 'and without a message on stderr');
}
compare('plain dump', snapshot('dst'));
check_restored('plain dump', 'dst');

#
# Custom format, pg_restore.
#
$node->command_ok(
	[ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', "$tmp/src.dump" ],
	'pg_dump, custom format');
$node->safe_psql('postgres', 'CREATE DATABASE dst2');
$node->command_ok(
	[
		'pg_restore', '--exit-on-error', '-d', $node->connstr('dst2'),
		"$tmp/src.dump"
	],
	'pg_restore of the custom format');
compare('custom dump', snapshot('dst2'));
check_restored('custom dump', 'dst2');

# A restore into one transaction, as people do with -1.
$node->safe_psql('postgres', 'CREATE DATABASE dst3');
$node->command_ok(
	[
		'pg_restore', '--exit-on-error', '--single-transaction', '-d',
		$node->connstr('dst3'), "$tmp/src.dump"
	],
	'pg_restore --single-transaction');
compare('single-transaction restore', snapshot('dst3'));

#
# DROP EXTENSION keeps the application's tables and rows.
#
{
	my $counts = join(' UNION ALL ',
		map { "SELECT '$_', count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM billing.$_ t" }
		  @billing_tables);
	my $tables = q{SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
		WHERE relnamespace = 'billing'::regnamespace};
	my $data_before = $node->safe_psql('src', $counts);
	my $tables_before = $node->safe_psql('src', $tables);
	$node->safe_psql('src',
		'SET anonymize.allow_drop_with_data = on; DROP EXTENSION anonymize');
	is($node->safe_psql('src', $counts), $data_before,
		'DROP EXTENSION: every billing row is still there');
	is($node->safe_psql('src', $tables), $tables_before,
		'DROP EXTENSION: every billing table, index and sequence is still there');
	# The schema that CREATE EXTENSION created (from the control file) is
	# not a member of the extension: PostgreSQL leaves it, empty.
	is( $node->safe_psql(
			'src', q{
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'anonymize'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'anonymize'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'anonymize'::regnamespace)}),
		'0',
		'DROP EXTENSION leaves nothing in the schema anonymize');
	is( $node->safe_psql(
			'src',
			"CREATE EXTENSION anonymize; SELECT count(*) FROM anonymize.audit_log;
			 SELECT count(*) FROM anonymize.purge_rules WHERE NOT preset"),
		"0\n0",
		'created again: no audit row, the default mapping');
}

$node->stop;
done_testing();
