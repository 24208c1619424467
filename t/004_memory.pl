# t/004_memory.pl -- the memory of a backend stays flat over many calls.
#
# In ONE session, after a warm-up, each series below makes its calls and
# measures SELECT sum(total_bytes) FROM pg_backend_memory_contexts before,
# half-way and after, inside the same block (so that memory held until the
# end of the statement or transaction counts too), then once more in a
# statement of its own (what stays for the rest of the session).  The growth
# over the second half shows a per-call leak without the noise of the first
# allocations:
#   can_anonymize     eligible and blocked customers, alternately
#   blockers          the same
#   anonymize_fresh   anonymize_customer() on fresh customers, a COMMIT
#                     every 500 calls (a procedure, as a batch job does)
#   anonymize_rolled  anonymize_customer() of one customer in a
#                     subtransaction rolled back each time
#   errors            anonymize_customer() failing (blocked: 55000, unknown:
#                     P0002), each caught
#   baseline          a loop that calls nothing: the noise floor
# Each growth must stay under 1 MB.  The figures are printed (diag).
#
# By default: 20,000 calls of can_anonymize and of blockers, and 20,000 of
# anonymize_customer (10,000 fresh, 5,000 rolled back, 5,000 failing), to
# stay well under two minutes.  ANON_MEMORY_CALLS=100000 makes every series
# 100,000 calls: the longer measurement that docs/memory-and-valgrind.md
# reports (under a minute on 2 cores).
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use BillingMapping;

my $calls = $ENV{ANON_MEMORY_CALLS} || 20_000;
my $long = defined $ENV{ANON_MEMORY_CALLS};
my %calls = (
	can_anonymize => $calls,
	blockers => $calls,
	anonymize_fresh => $long ? $calls : $calls / 2,
	anonymize_rolled => $long ? $calls : $calls / 4,
	errors => $long ? $calls : $calls / 4,);
my $bound = 1024 * 1024;
my $warmup = 500;

my $node = PostgreSQL::Test::Cluster->new('memory');
$node->init;
$node->start;

my $root = dirname(__FILE__) . '/..';
$node->safe_psql('postgres', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('postgres', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'postgres');

my $eligible = 'e4000000-0000-0000-0000-000000000001';
my $blocked = 'b4000000-0000-0000-0000-000000000001';
my $n_fresh = $calls{anonymize_fresh} + $warmup;

# Fresh customers f(1..n_fresh), each with an address and some history.
$node->safe_psql(
	'postgres', qq{
INSERT INTO billing.customers (id, name, email) VALUES
	('$eligible', 'Eli Gible', 'eli\@example.com'),
	('$blocked', 'Bea Blocked', 'bea\@example.com');
INSERT INTO billing.customers (id, name, email)
SELECT format('f4000000-0000-0000-0000-%s', lpad(i::text, 12, '0'))::uuid,
	   'Fresh ' || i, 'fresh' || i || '\@example.com'
  FROM generate_series(1, $n_fresh) i;
INSERT INTO billing.billing_addresses (customer_id, company, first_name, last_name,
	phone, address_line1, city, country)
SELECT id, CASE WHEN name LIKE '%0' THEN 'Company' END, 'First', 'Last', '+1',
	   'Street 1', 'Town', 'DE'
  FROM billing.customers;
INSERT INTO billing.sent_emails (customer_id, recipient, subject)
SELECT id, email, 'Welcome' FROM billing.customers;
INSERT INTO billing.customer_activity (customer_id, kind)
SELECT id, 'login' FROM billing.customers;
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	('$eligible', 'terminated'), ('$blocked', 'active');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES
	('$eligible', 'paid', 5), ('$blocked', 'due', 5);
INSERT INTO billing.balance_entries (customer_id, amount) VALUES
	('$eligible', 5), ('$eligible', -5), ('$blocked', -5);
VACUUM ANALYZE;
});

my $session = $node->background_psql('postgres',
	timeout => $calls > 20_000 ? 4 * 3600 : undef);
$session->set_query_timer_restart();
$session->query_safe(q{
CREATE TEMP TABLE memory (series text PRIMARY KEY, calls bigint,
	before bigint, half bigint, after bigint, after_statement bigint);
CREATE FUNCTION pg_temp.backend_bytes() RETURNS bigint LANGUAGE sql AS
	'SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts';
});

# Runs $body $warmup times, then $calls{$series} times in two halves, in one
# DO block that measures after the warm-up, half-way and at the end; then
# measures again in a statement of its own.  The same statements run for
# the warm-up and the measured calls, and one statement measures, so that
# PL/pgSQL's preparing of a statement on its first run is not counted.
sub measure_do
{
	my ($series, $body) = @_;
	my $n = $calls{$series};
	my $half = int($n / 2);
	$session->query_safe(qq{
DO \$do\$
DECLARE
	m bigint[] := '{}';
	n int;
	dummy bigint;
BEGIN
	FOR phase IN 0 .. 2 LOOP
		n := CASE phase WHEN 0 THEN $warmup WHEN 1 THEN $half ELSE $n - $half END;
		FOR i IN 1 .. n LOOP
			$body
		END LOOP;
		m := m || pg_temp.backend_bytes();
	END LOOP;
	INSERT INTO memory VALUES ('$series', $n, m[1], m[2], m[3]);
END
\$do\$;
UPDATE memory SET after_statement = pg_temp.backend_bytes() WHERE series = '$series';
});
}

# The noise floor: a loop that calls nothing.
$calls{baseline} = $calls;
measure_do('baseline', q{dummy := i;});

measure_do(
	'can_anonymize', qq{
		IF anonymize.can_anonymize(CASE WHEN i % 2 = 0 THEN '$eligible'::uuid ELSE '$blocked'::uuid END)
			IS NULL THEN RAISE 'null'; END IF;});

measure_do(
	'blockers', qq{
		SELECT count(*) INTO dummy FROM anonymize.blockers(
			CASE WHEN i % 2 = 0 THEN '$eligible'::uuid ELSE '$blocked'::uuid END);});

measure_do(
	'anonymize_rolled', qq{
		BEGIN
			PERFORM anonymize.anonymize_customer('$eligible');
			RAISE SQLSTATE 'XX999';
		EXCEPTION WHEN SQLSTATE 'XX999' THEN NULL;
		END;});

measure_do(
	'errors', qq{
		BEGIN
			PERFORM anonymize.anonymize_customer(
				CASE WHEN i % 2 = 0 THEN '$blocked'::uuid
				ELSE '00000000-0000-0000-0000-000000000000'::uuid END);
			RAISE 'no error';
		EXCEPTION WHEN object_not_in_prerequisite_state OR no_data_found THEN NULL;
		END;});

# Fresh customers: a procedure that commits every 500 calls, measuring the
# same way (customers 1 .. $warmup for the warm-up).
$session->query_safe(qq{
CREATE PROCEDURE pg_temp.anonymize_fresh(n int)
LANGUAGE plpgsql AS \$p\$
DECLARE
	m bigint[] := '{}';
	first int := 1;
	last int;
BEGIN
	FOR phase IN 0 .. 2 LOOP
		last := CASE phase WHEN 0 THEN $warmup WHEN 1 THEN $warmup + n / 2
				ELSE $warmup + n END;
		FOR i IN first .. last LOOP
			PERFORM anonymize.anonymize_customer(
				format('f4000000-0000-0000-0000-%s', lpad(i::text, 12, '0'))::uuid);
			IF i % 500 = 0 THEN
				COMMIT;
			END IF;
		END LOOP;
		COMMIT;
		first := last + 1;
		m := m || pg_temp.backend_bytes();
	END LOOP;
	INSERT INTO memory VALUES ('anonymize_fresh', n, m[1], m[2], m[3]);
END
\$p\$;
});
$session->query_safe(
	"CALL pg_temp.anonymize_fresh($calls{anonymize_fresh});
	 UPDATE memory SET after_statement = pg_temp.backend_bytes() WHERE series = 'anonymize_fresh';"
);
is( $session->query_safe(
		"SELECT count(*) FROM anonymize.audit_log WHERE customer_id::text LIKE 'f4%'"),
	$n_fresh,
	"all $n_fresh fresh customers anonymized");

my $report = $session->query_safe(q{
SELECT series, calls, before, after - before, after - half, after_statement - before
  FROM memory ORDER BY series});
diag 'series | calls | bytes before | growth in the block | growth over its '
  . 'second half | growth for the session';
for my $line (split /\n/, $report)
{
	diag $line;
	my ($series, $n, $before, $growth, $second_half, $growth_after) =
	  split /\|/, $line;
	cmp_ok($growth, '<', $bound,
		"$series: $n calls, memory grows $growth bytes in the block");
	cmp_ok($second_half, '<', $bound,
		"$series: $second_half bytes over the second half");
	cmp_ok($growth_after, '<', $bound,
		"$series: $growth_after bytes for the session");
}
my @lines = split /\n/, $report;
is(scalar @lines, 6, 'six series measured');

$session->quit;
$node->stop;
done_testing();
