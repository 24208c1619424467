# t/040_plproxy.pl -- sharded billing databases behind a PL/Proxy router,
# for real (examples/plproxy/).
#
# Two shard nodes (shard0, shard1: examples/billing.sql, CREATE EXTENSION
# anonymize, examples/billing_mapping.sql, the README's role gdpr_operator
# and its grants) and a router node set up by examples/plproxy/setup_router.sh
# with the shards' connection strings (unix sockets).  50 eligible customers
# and one blocked customer (active subscription) are each inserted on the
# shard PL/Proxy picks for them, hashtext(id::text) & 1.  Asserted, through
# the router's functions (schema anonymize_router):
#   - routing: each of the 50 customers goes to the shard that holds it (the
#     shard's cluster_name, by a proxy function with the same RUN ON), and
#     can_anonymize is true for each (a wrong shard raises P0002);
#   - result types: can_anonymize boolean, blockers with relation as text
#     ('billing.subscriptions'), preview rows, anonymize_customer's boolean,
#     text and jsonb (one sent email deleted), request's uuid, cancel_request's boolean;
#   - SQLSTATE and DETAIL of a blocked customer (55000, "Blocked by ...",
#     which PL/Proxy prefixes with "Remote detail: ") and
#     of an unknown one (P0002);
#   - NULL input: the STRICT functions return NULL; anonymize_customer and
#     request return the shard's 22004, not PL/Proxy's XX000;
#   - privileges: a role without the grant cannot erase through the router
#     (42501); gdpr_operator can, and a ROLLBACK on the router does not undo
#     it (the shard committed);
#   - the queue: requests recorded through the router on both shards, one
#     cancelled, fleet-wide queue_status (one row per shard), and
#     process_request_batch RUN ON ALL processing both shards' queues;
#   - fingerprints: equal on both shards, then different after one shard's
#     mapping changes.
# Skipped when PL/Proxy (Debian package postgresql-15-plproxy) is not
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

my $n_customers = 50;
my $blocked_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
my $unknown_id = 'eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee';

my $router = PostgreSQL::Test::Cluster->new('router');
$router->init;
my $pkglibdir = $router->config_data('--pkglibdir');
if (!-f "$pkglibdir/plproxy.so")
{
	plan skip_all =>
	  'PL/Proxy is not installed (Debian: apt-get install postgresql-15-plproxy)';
}
$router->start;

my $billing_sql = slurp_file(dirname(__FILE__) . '/../examples/billing.sql');
my $operator_grants = q{
CREATE ROLE gdpr_operator LOGIN;
GRANT USAGE ON SCHEMA anonymize, billing TO gdpr_operator;
GRANT EXECUTE ON FUNCTION anonymize.anonymize_customer(uuid) TO gdpr_operator;
GRANT SELECT, UPDATE ON billing.customers, billing.billing_addresses TO gdpr_operator;
GRANT SELECT, UPDATE (id) ON billing.subscriptions, billing.invoices,
      billing.balance_entries TO gdpr_operator;
GRANT SELECT, DELETE ON billing.sent_emails, billing.customer_activity,
      billing.webhook_notifications, billing.subscriptions TO gdpr_operator;
GRANT EXECUTE ON FUNCTION anonymize.request(uuid, text, timestamptz),
      anonymize.cancel_request(uuid), anonymize.queue_status(),
      anonymize.process_request_batch(integer, timestamptz) TO gdpr_operator;
};

my @shards;
for my $i (0, 1)
{
	my $shard = PostgreSQL::Test::Cluster->new("shard$i");
	$shard->init;
	$shard->start;
	$shard->safe_psql('postgres', $billing_sql);
	$shard->safe_psql('postgres', 'CREATE EXTENSION anonymize');
	load_billing_mapping($shard, 'postgres');
	$shard->safe_psql('postgres', $operator_grants);
	push @shards, $shard;
}

# The router, by the example script.
{
	local $ENV{PGHOST} = $router->host;
	local $ENV{PGPORT} = $router->port;
	local $ENV{PGDATABASE} = 'postgres';
	local $ENV{PGUSER} = $ENV{USER} // scalar getpwuid($<);
	system_or_bail(
		'bash',
		dirname(__FILE__) . '/../examples/plproxy/setup_router.sh',
		map { 'dbname=postgres host=' . $_->host . ' port=' . $_->port } @shards);
}
is( $router->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_proc WHERE pronamespace = 'anonymize_router'::regnamespace}),
	'9',
	'setup_router.sh created the 9 proxy functions');

# Customers, each on the shard PL/Proxy picks: hash & (2 - 1).
my @customers = split /\n/, $router->safe_psql(
	'postgres', qq{
SELECT md5('customer ' || i)::uuid || '|' || (hashtext(md5('customer ' || i)::uuid::text) & 1)
  FROM generate_series(1, $n_customers) i ORDER BY i});
my %on_shard = map { split /\|/ } @customers;
my @ids = map { (split /\|/)[0] } @customers;
my @per_shard = (0, 0);
$per_shard[$_]++ for values %on_shard;
cmp_ok($per_shard[0] * $per_shard[1], '>', 0,
	"the $n_customers customers hash to both shards ($per_shard[0], $per_shard[1])");
my $blocked_shard = $router->safe_psql('postgres',
	"SELECT hashtext('$blocked_id'::uuid::text) & 1");

for my $i (0, 1)
{
	my $values = join(', ',
		map { "('$_'::uuid)" } grep { $on_shard{$_} == $i } @ids);
	$shards[$i]->safe_psql(
		'postgres', qq{
INSERT INTO billing.customers (id, name, email)
SELECT id, 'Customer ' || id, id || '\@example.com' FROM (VALUES $values) v(id);
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name,
       address_line1, city, country)
SELECT id, 'First', 'Last', '1 Main St', 'Town', 'NL' FROM billing.customers;
INSERT INTO billing.sent_emails (customer_id, recipient)
SELECT id, email FROM billing.customers;
INSERT INTO billing.subscriptions (customer_id, state)
SELECT id, 'terminated' FROM billing.customers;
});
}
$shards[$blocked_shard]->safe_psql(
	'postgres', qq{
INSERT INTO billing.customers (id, name, email)
VALUES ('$blocked_id', 'Active Customer', 'active\@example.com');
INSERT INTO billing.subscriptions (customer_id, state) VALUES ('$blocked_id', 'active');
});

# Routing.
$router->safe_psql(
	'postgres', q{
CREATE FUNCTION public.shard_of(customer_id uuid) RETURNS text LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON hashtext(customer_id::text);
	SELECT current_setting('cluster_name');
$$;});
my $id_values = join(', ', map { "('$_'::uuid)" } @ids);
my $expected_routes = join("\n", map { "$_|shard$on_shard{$_}" } sort @ids);
is( $router->safe_psql(
		'postgres',
		"SELECT id || '|' || public.shard_of(id) FROM (VALUES $id_values) v(id) ORDER BY id::text"),
	$expected_routes,
	"each of the $n_customers customers is routed to the shard that holds it");
is( $router->safe_psql(
		'postgres', qq{
SELECT count(*) FILTER (WHERE anonymize_router.can_anonymize(id))
  FROM (VALUES $id_values) v(id)}),
	$n_customers,
	"can_anonymize through the router is true for each of the $n_customers customers");

# Result types.
my $c1 = $ids[0];
my $c2 = $ids[1];
my $c3 = $ids[2];
is( $router->safe_psql(
		'postgres',
		"SELECT pg_typeof(anonymize_router.can_anonymize('$blocked_id')) || '|'
		        || anonymize_router.can_anonymize('$blocked_id')"),
	'boolean|false',
	'can_anonymize: boolean, false for the blocked customer');
is( $router->safe_psql(
		'postgres', qq{
SELECT rule_name || '|' || pg_typeof(relation) || '|' || relation || '|'
       || pg_typeof(rows) || '|' || rows
  FROM anonymize_router.blockers('$blocked_id')}),
	'subscriptions_not_terminated|text|billing.subscriptions|bigint|1',
	'blockers: the relation as text, rows as bigint');
is( $router->safe_psql(
		'postgres', qq{
SELECT count(*) > 0 AND bool_and(pg_typeof(relation) = 'text'::regtype)
       AND bool_or(relation = 'billing.sent_emails')
  FROM anonymize_router.preview('$c1')}),
	't',
	'preview: rows with the relation as text');

# Errors of a blocked and an unknown customer.
my ($ret, $stdout, $stderr) = $router->psql(
	'postgres',
	"\\set VERBOSITY verbose\nSELECT * FROM anonymize_router.anonymize_customer('$blocked_id')");
like($stderr, qr/ERROR:\s+55000:/, 'a blocked customer: SQLSTATE 55000 through the router');
like(
	$stderr,
	qr/DETAIL:\s+Remote detail: Blocked by 1 row of relation "billing.subscriptions"/,
	'a blocked customer: its DETAIL through the router (prefixed "Remote detail: ")');
($ret, $stdout, $stderr) = $router->psql(
	'postgres',
	"\\set VERBOSITY verbose\nSELECT * FROM anonymize_router.anonymize_customer('$unknown_id')");
like($stderr, qr/ERROR:\s+P0002:.*does not exist/,
	'an unknown customer: SQLSTATE P0002 through the router');

# NULL input.
is( $router->safe_psql(
		'postgres', q{
SELECT concat_ws('|', anonymize_router.can_anonymize(NULL) IS NULL,
       anonymize_router.cancel_request(NULL) IS NULL,
       (SELECT count(*) FROM anonymize_router.blockers(NULL)),
       (SELECT count(*) FROM anonymize_router.preview(NULL)))}),
	't|t|0|0',
	'the STRICT functions return NULL (no rows) for a NULL id');
for my $call ('SELECT * FROM anonymize_router.anonymize_customer(NULL)',
	'SELECT anonymize_router.request(NULL)')
{
	($ret, $stdout, $stderr) =
	  $router->psql('postgres', "\\set VERBOSITY verbose\n$call");
	like($stderr, qr/ERROR:\s+22004:.*must not be null/,
		"$call: the shard's 22004, not PL/Proxy's XX000");
}

# Privileges, and what a proxied call commits.
$router->safe_psql('postgres', 'CREATE ROLE reader LOGIN');
($ret, $stdout, $stderr) = $router->psql(
	'postgres',
	"\\set VERBOSITY verbose\nSET ROLE reader;\nSELECT * FROM anonymize_router.anonymize_customer('$c1')");
like($stderr, qr/ERROR:\s+42501:/,
	'a role without the grant cannot erase through the router');
is( $router->safe_psql(
		'postgres', qq{
SET ROLE gdpr_operator;
SELECT pg_typeof(anonymized) || '|' || anonymized || '|' || pg_typeof(customer_kind)
       || '|' || pg_typeof(rows_deleted) || '|' || (rows_deleted ->> 'sent_emails')
  FROM anonymize_router.anonymize_customer('$c1')}),
	'boolean|true|text|jsonb|1',
	'gdpr_operator erases through the router: boolean, text, jsonb');
$router->safe_psql(
	'postgres', qq{
SET ROLE gdpr_operator;
BEGIN;
SELECT * FROM anonymize_router.anonymize_customer('$c2');
ROLLBACK;});
is( $shards[ $on_shard{$c2} ]->safe_psql(
		'postgres',
		"SELECT name IS NULL AND email IS NULL FROM billing.customers WHERE id = '$c2'"),
	't',
	'a ROLLBACK on the router does not undo the erasure: the shard committed it');

# The queue, both shards, from the router.
my $requests = $router->safe_psql(
	'postgres', qq{
SET ROLE gdpr_operator;
SELECT count(DISTINCT r) || '|' || pg_typeof(min(r::text)::uuid)
  FROM (SELECT anonymize_router.request(id, 'TAP') r
          FROM (VALUES $id_values, ('$blocked_id'::uuid)) v(id)
         WHERE id NOT IN ('$c1', '$c2')) q});
is($requests, ($n_customers - 1) . '|uuid',
	'request through the router: one uuid per request, on both shards');
is( $router->safe_psql(
		'postgres',
		"SET ROLE gdpr_operator; SELECT pg_typeof(c) || '|' || c FROM anonymize_router.cancel_request('$c3') c"),
	'boolean|true',
	'cancel_request through the router: boolean, true');
is( $router->safe_psql(
		'postgres', q{
SET ROLE gdpr_operator;
SELECT string_agg(shard || ':' || (pending > 0), ',' ORDER BY shard) || '|' || sum(pending)
  FROM anonymize_router.queue_status()}),
	'shard0:true,shard1:true|' . ($n_customers - 2),
	'queue_status: one row per shard, the pending requests of both');
is( $router->safe_psql(
		'postgres', q{
SET ROLE gdpr_operator;
SELECT string_agg(shard, ',' ORDER BY shard) || '|' || sum(claimed) || '|'
       || sum(anonymized) || '|' || sum(blocked) || '|' || sum(failed) || '|'
       || count(DISTINCT run_id)
  FROM anonymize_router.process_request_batch(100)}),
	'shard0,shard1|' . ($n_customers - 2) . '|' . ($n_customers - 3) . '|1|0|2',
	'process_request_batch RUN ON ALL: one run per shard, both queues processed');
is( join(
		',',
		map {
			$_->safe_psql('postgres',
				"SELECT count(*) FROM billing.customers WHERE name IS NOT NULL")
		} @shards),
	join(',',
		map { ($_ == $blocked_shard ? 1 : 0) + ($_ == $on_shard{$c3} ? 1 : 0) } (0, 1)),
	'on the shards: only the blocked and the cancelled customer keep their names');
is( $router->safe_psql(
		'postgres', q{
SET ROLE gdpr_operator;
SELECT sum(pending) || '|' || sum(last_run_anonymized) FROM anonymize_router.queue_status()}),
	'1|' . ($n_customers - 3),
	'queue_status after the batch: the blocked request pending, the runs counted');

# Fingerprints.
is( $router->safe_psql(
		'postgres', q{
SELECT count(*) || '|' || count(DISTINCT (extversion, fingerprint)) || '|' || min(extversion)
  FROM anonymize_router.fingerprints()}),
	'2|1|1.3',
	'fingerprints: both shards at 1.3 with the same mapping');
$shards[1]->safe_psql('postgres', q{SELECT anonymize.set_placeholder('[erased]')});
is( $router->safe_psql(
		'postgres', q{
SELECT count(DISTINCT fingerprint) || '|' || string_agg(shard, ',' ORDER BY shard)
  FROM anonymize_router.fingerprints()}),
	'2|shard0,shard1',
	'fingerprints: a mapping changed on one shard shows as two fingerprints');

done_testing();
