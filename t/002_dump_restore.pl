# t/002_dump_restore.pl -- a customised mapping and the audit log survive
# pg_dump and restore: plain format, custom format, a restore in one
# transaction, and a data-only restore with --disable-triggers.
#
# CREATE EXTENSION installs no mapping (version 1.2); the source database
# loads examples/billing_mapping.sql and then customises it: the purge rule
# initialized_subscriptions gets another condition, the purge rule
# webhook_notifications is dropped, the reason of the blocker rule
# unsettled_invoices changes, a new scope and blocker rule open_dispute are
# added, and a placeholder is set.  The configuration tables
# (anonymize.customer_relation, scopes, rules) are dumped whole, so:
#   - the dump holds every row of each of them;
#   - after each restore the mapping tables, the audit log and the request
#     queue are identical to the source (same SELECT text), and the billing
#     data too;
#   - the restored database anonymizes with exactly that mapping: the dropped
#     rule does not come back, the new blocker blocks, the changed reason is
#     reported, a customer who owes 30.00 is refused by the balance rule, an
#     anonymized customer stays anonymized;
#   - a data-only restore (pg_restore --data-only --disable-triggers) into a
#     database where CREATE EXTENSION has just run gives back exactly that
#     mapping, nothing of another one (the issue's failure: a preset blocker
#     rule came back in place of the customised one, and a customer who owed
#     30.00 was anonymized); into a database that already has a mapping it
#     fails on the duplicate keys instead of mixing the two.
# And DROP EXTENSION anonymize leaves every billing table and row in place
# and nothing of its own (the schema anonymize itself stays, empty); created
# again, the extension has no mapping and says so.
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
	olga => 'd2000000-0000-0000-0000-000000000005',    # owes 30.00
);

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('src', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'src');
$node->safe_psql(
	'src', qq{
INSERT INTO billing.customers (id, name, email) VALUES
	('$c{anna}', 'Anna Alt', 'anna\@example.com'),
	('$c{acme}', 'Bert Boss', 'bert\@acme.example'),
	('$c{dora}', 'Dora Dispute', 'dora\@example.com'),
	('$c{mara}', 'Mara Active', 'mara\@example.com'),
	('$c{olga}', 'Olga Owing', 'olga\@example.com');
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
	('$c{acme}', 10), ('$c{acme}', -10), ('$c{mara}', -10),
	('$c{olga}', 40.00), ('$c{olga}', -10.00);
});

# The customised mapping.
$node->safe_psql(
	'src', q{
SELECT anonymize.set_purge_rule('initialized_subscriptions', 'subscriptions',
	$$state IN ('initialized')$$);
SELECT anonymize.drop_rule('webhook_notifications');
SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices',
	$$status NOT IN ('paid', 'cancelled')$$, 'invoice still open');
SELECT anonymize.set_scope('disputes', 'billing.customer_activity', 'customer_id',
	condition => $$kind = 'dispute'$$);
SELECT anonymize.set_blocker_rule('open_dispute', 'disputes',
	$$details IS DISTINCT FROM 'settled'$$, 'open dispute');
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
	mapping_queries(),
	'SELECT * FROM anonymize.audit_log ORDER BY customer_id',
	'SELECT * FROM anonymize.requests ORDER BY request_id',
	'SELECT * FROM anonymize.request_history ORDER BY request_id, event_at',
	'SELECT * FROM anonymize.runs ORDER BY run_id',
);
my @config_tables = qw(customer_relation scopes rules);
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
my %source_rows = map {
	$_ => $node->safe_psql('src', "SELECT count(*) FROM anonymize.$_")
} @config_tables;

my ($q_relation, $q_scopes, $q_rules) = mapping_queries();
like($before->{$q_rules},
	qr/^initialized_subscriptions\|purge\|subscriptions\|state IN \('initialized'\)\|/m,
	'source: the purge rule with its changed condition');
unlike($before->{$q_rules}, qr/^webhook_notifications\|/m,
	'source: the dropped purge rule is gone, not kept aside');
like($before->{$q_rules},
	qr/^unsettled_invoices\|blocker\|invoices\|.*\|invoice still open\|/m,
	'source: the blocker rule with its changed reason');
like($before->{$q_scopes},
	qr/^disputes\|billing\|customer_activity\|customer_id\|customer\|\|kind = 'dispute'$/m,
	'source: the new scope');
like($before->{$q_rules}, qr/^open_dispute\|blocker\|disputes\|.*\|open dispute\|/m,
	'source: the new blocker rule');
like($before->{$q_relation}, qr/^t\|billing\|customers\|id\|name\|email\|\[erased\]\|/,
	'source: the placeholder');
like($before->{$q_rules}, qr/^balance\|balance\|balance_entries\|\|amount\|/m,
	'source: the balance rule');

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

# The restored database works with the restored mapping, and only with it.
sub check_restored
{
	my ($what, $db) = @_;
	my ($ret, $out, $err);

	is( $node->safe_psql(
			$db,
			"SELECT count(*) FROM anonymize.rules WHERE rule_name = 'webhook_notifications'"),
		'0',
		"$what: the dropped purge rule did not come back");
	is( $node->safe_psql(
			$db,
			"SELECT anonymized, customer_kind, rows_deleted
			   FROM anonymize.anonymize_customer('$c{acme}')"),
		't|company|{"sent_emails": 1, "customer_activity": 1, "initialized_subscriptions": 1}',
		"$what: acme anonymized, webhooks not purged (rule dropped)");
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
	like($err, qr/Blocked by 1 row of .*\(open dispute\)/,
		"$what: the new blocker rule blocks dora");
	($ret, $out, $err) = $node->psql($db,
		"SELECT * FROM anonymize.anonymize_customer('$c{mara}')");
	like($err, qr/\(invoice still open\)/,
		"$what: the changed reason of a blocker rule");
	($ret, $out, $err) = $node->psql($db,
		"SELECT * FROM anonymize.anonymize_customer('$c{olga}')");
	like($err, qr/cannot be anonymized\nDETAIL:  Blocked by a balance of 30\.00 /,
		"$what: olga, who owes 30.00, is refused by the balance rule");
	is( $node->safe_psql(
			$db,
			"SELECT count(*) FROM billing.customers WHERE id = '$c{olga}' AND name = 'Olga Owing'"),
		'1', "$what: and keeps her name");
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
}

{
	my ($ret, $out, $err) = $node->psql('src',
		"SELECT * FROM anonymize.anonymize_customer('$c{olga}')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err,
		qr/ERROR:  55000: customer \S+ cannot be anonymized\nDETAIL:  Blocked by a balance of 30\.00 /,
		'source: olga, who owes 30.00, is refused by the balance rule (55000)');
}

#
# Plain format.
#
$node->command_ok(
	[ 'pg_dump', '-d', $node->connstr('src'), '-f', "$tmp/src.sql" ],
	'pg_dump, plain format');
{
	# The data of each configuration table: its COPY block, whole.
	my $dump = slurp_file("$tmp/src.sql");
	for my $t (@config_tables)
	{
		my ($rows) = $dump =~ /^COPY anonymize\.$t \(.*?\) FROM stdin;\n(.*?)^\\\.$/ms;
		is( defined $rows ? scalar(() = $rows =~ /\n/g) : 'no COPY',
			$source_rows{$t},
			"the plain dump holds all $source_rows{$t} rows of anonymize.$t");
	}
}
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
# Data only, with --disable-triggers, into a database with the schema and
# a fresh CREATE EXTENSION: exactly the source's mapping comes back.
#
$node->safe_psql('postgres', 'CREATE DATABASE dst4');
$node->safe_psql('dst4', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('dst4', 'CREATE EXTENSION anonymize');
is($node->safe_psql('dst4', join(' UNION ALL ',
			map { "SELECT count(*) FROM anonymize.$_" } @config_tables)),
	"0\n0\n0", 'data-only target: CREATE EXTENSION installed no mapping');
$node->command_ok(
	[
		'pg_restore', '--exit-on-error', '--single-transaction',
		'--data-only', '--disable-triggers', '-d', $node->connstr('dst4'),
		"$tmp/src.dump"
	],
	'pg_restore --data-only --disable-triggers');
compare('data-only restore', snapshot('dst4'));
check_restored('data-only restore', 'dst4');
# pg_restore --disable-triggers runs ALTER TABLE ... DISABLE TRIGGER ALL and
# then ENABLE TRIGGER ALL on each table: the triggers that invalidate the
# plans must still fire as before (ALWAYS, so that replicated changes count).
my $mapping_triggers = q{
SELECT string_agg(format('%s %s %s', t.tgrelid::regclass, t.tgname, t.tgenabled), ', '
				  ORDER BY t.tgrelid::regclass::text, t.tgname)
  FROM pg_trigger t
 WHERE t.tgrelid IN ('anonymize.customer_relation'::regclass,
					 'anonymize.scopes'::regclass, 'anonymize.rules'::regclass)
   AND NOT t.tgisinternal};
is($node->safe_psql('dst4', $mapping_triggers),
	$node->safe_psql('src', $mapping_triggers),
	'data-only restore: the triggers of the mapping tables are enabled as before');

# Data only into a database that has a mapping already: refused on the
# duplicate keys, the mapping there stays as it was, not mixed with the
# source's.
$node->safe_psql('postgres', 'CREATE DATABASE dst5');
$node->safe_psql('dst5', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('dst5', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'dst5');
{
	my $mapping_before = mapping_of($node, 'dst5');
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[
			'pg_restore', '--exit-on-error', '--single-transaction',
			'--data-only', '--disable-triggers', '-d',
			$node->connstr('dst5'), "$tmp/src.dump"
		],
		'>', \$stdout, '2>', \$stderr);
	ok(!$ok, 'data-only restore over an existing mapping fails');
	like($stderr, qr/duplicate key value violates unique constraint "(customer_relation|scopes|rules)_pkey"/,
		'on a duplicate key of a mapping table');
	is(mapping_of($node, 'dst5'), $mapping_before,
		'and the mapping there is unchanged');
}

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
			 SELECT (SELECT count(*) FROM anonymize.customer_relation)
			      + (SELECT count(*) FROM anonymize.scopes)
			      + (SELECT count(*) FROM anonymize.rules)"),
		"0\n0",
		'created again: no audit row, no mapping');
	my ($ret, $out, $err) = $node->psql('src',
		"SELECT anonymize.can_anonymize('$c{acme}')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:  55000: /,
		'created again: without a mapping, a call fails with 55000');
}

$node->stop;
done_testing();
