# t/010_queue_crash.pl -- a crash in the middle of
#   CALL anonymize.process_requests(batch_size => 100)
# loses the batch in progress as a whole and nothing of the batches
# committed before: after the restart every customer is either fully
# anonymized (customer, billing address and history erased, audit row,
# request done) or untouched with its request still pending and never
# attempted.  A last run then completes the queue.
#
# The crash is placed without timing: the queue never waits for a row lock
# (a locked customer is left busy), so a trigger that counts deleted sent
# emails waits for an advisory lock held by another session when it deletes
# an email of one customer.  The run commits the batches before that
# customer's, and in that customer's batch purges history rows (the counter
# shows it) and then waits.  The server is stopped ('immediate') while the
# run waits.  Two rounds:
#   1. the default, set-based path: the run waits at customer 150 (batch
#      101-200), while purging the sent emails of the whole batch;
#   2. anonymize.set_based_batches = off (one customer at a time): the run
#      waits at customer 350 (batch 301-400), after erasing customers
#      301-349 completely and while purging the emails of customer 350.
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

my $n_customers = 3000;
my $batch_size = 100;

my $node = PostgreSQL::Test::Cluster->new('queue_crash');
$node->init;
$node->start;

my $billing_sql = slurp_file(dirname(__FILE__) . '/../examples/billing.sql');
$node->safe_psql('postgres', $billing_sql);
$node->safe_psql('postgres', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'postgres');

# Customers 1..3000 ('Customer <n>'): every third one a company; each with
# a billing address and some history, eligible (terminated and initialized
# subscriptions, a paid invoice, a balance of zero).
$node->safe_psql(
	'postgres', qq{
INSERT INTO billing.customers (id, name, email)
SELECT format('00000000-0000-0000-0000-%s', lpad(i::text, 12, '0'))::uuid,
       'Customer ' || i, 'customer' || i || '\@example.com'
  FROM generate_series(1, $n_customers) i;
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
       last_name, phone, address_line1, address_line2, city, postal_code,
       region, country)
SELECT id, CASE WHEN n % 3 = 0 THEN 'Company ' || n END, 'First ' || n,
       'Last ' || n, '+31 20 ' || n, n || ' Main St', 'Floor ' || n % 7,
       'Town', lpad(n::text, 5, '0'), 'Region', 'NL'
  FROM (SELECT id, split_part(name, ' ', 2)::int AS n FROM billing.customers) c;
INSERT INTO billing.sent_emails (customer_id, recipient, subject)
SELECT id, email, 'Mail ' || i FROM billing.customers, generate_series(1, 2) i;
INSERT INTO billing.customer_activity (customer_id, kind)
SELECT id, 'login' FROM billing.customers, generate_series(1, 3);
INSERT INTO billing.webhook_notifications (customer_id, event)
SELECT id, 'customer.created' FROM billing.customers;
INSERT INTO billing.subscriptions (customer_id, state)
SELECT id, s FROM billing.customers, unnest('{terminated,initialized}'::text[]) s;
INSERT INTO billing.invoices (customer_id, status, amount)
SELECT id, 'paid', 25 FROM billing.customers;
INSERT INTO billing.balance_entries (customer_id, amount)
SELECT id, a FROM billing.customers, unnest('{25,-25}'::numeric[]) a;

-- what an untouched customer looks like
CREATE TABLE public.original AS
SELECT c.id, c.name, c.email, a.company, a.first_name, a.last_name, a.phone,
       a.address_line1, a.address_line2, a.city, a.postal_code, a.region,
       a.country
  FROM billing.customers c JOIN billing.billing_addresses a ON a.customer_id = c.id;

-- Test instrument: counts the sent emails deleted, committed or not (a
-- sequence is not transactional).
-- It waits for advisory lock 4242 at an email of the customer in wait_at.
CREATE SEQUENCE public.emails_deleted;
CREATE TABLE public.wait_at (customer_id uuid);
CREATE FUNCTION public.count_delete() RETURNS trigger LANGUAGE plpgsql AS
\$\$
BEGIN
	PERFORM nextval('public.emails_deleted');
	IF OLD.customer_id IN (SELECT customer_id FROM public.wait_at) THEN
		PERFORM pg_advisory_xact_lock(4242);
	END IF;
	RETURN OLD;
END
\$\$;
CREATE TRIGGER count_delete BEFORE DELETE ON billing.sent_emails
	FOR EACH ROW EXECUTE FUNCTION public.count_delete();
});
# Requests in the order of the customers: request i for customer i, due a
# millisecond after request i - 1, so that runs claim them in that order.
$node->safe_psql(
	'postgres', q{
DO $$
DECLARE c record;
BEGIN
	FOR c IN SELECT id, row_number() OVER (ORDER BY id) AS i
	           FROM billing.customers ORDER BY id LOOP
		PERFORM anonymize.request(c.id, 'crash test',
			now() + interval '1 month' + c.i * interval '1 millisecond');
	END LOOP;
END $$;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM anonymize.pending_requests}),
	$n_customers, "$n_customers pending requests");
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM anonymize.pending_requests WHERE blockers IS NOT NULL}),
	'0',
	'every customer is eligible');

# The per-customer state: 'done' (fully anonymized, with the right audit
# row), 'pending' (untouched) or 'HALF' (anything else).
my $classify = q{
WITH s AS (
SELECT c.id, o.company IS NOT NULL AS is_company, r.state, r.outcome,
       r.last_attempt_at, r.closed_at,
       (SELECT count(*) FROM anonymize.audit_log x WHERE x.customer_id = c.id) AS audit,
       (SELECT x.customer_kind = CASE WHEN o.company IS NOT NULL THEN 'company' ELSE 'individual' END
               AND x.rows_deleted = '{"sent_emails": 2, "customer_activity": 3,
                   "webhook_notifications": 1, "initialized_subscriptions": 1}'
          FROM anonymize.audit_log x WHERE x.customer_id = c.id) AS audit_right,
       (SELECT count(*) FROM billing.sent_emails x WHERE x.customer_id = c.id) AS emails,
       (SELECT count(*) FROM billing.customer_activity x WHERE x.customer_id = c.id) AS activity,
       (SELECT count(*) FROM billing.webhook_notifications x WHERE x.customer_id = c.id) AS webhooks,
       (SELECT string_agg(x.state, ',' ORDER BY x.state) FROM billing.subscriptions x WHERE x.customer_id = c.id) AS subscriptions,
       (SELECT count(*) FROM billing.invoices x WHERE x.customer_id = c.id) AS invoices,
       (SELECT count(*) FROM billing.balance_entries x WHERE x.customer_id = c.id) AS balance_lines,
       (c.id, c.name, c.email, a.company, a.first_name, a.last_name, a.phone,
        a.address_line1, a.address_line2, a.city, a.postal_code, a.region,
        a.country) IS NOT DISTINCT FROM
       (o.id, o.name, o.email, o.company, o.first_name, o.last_name, o.phone,
        o.address_line1, o.address_line2, o.city, o.postal_code, o.region,
        o.country) AS untouched,
       CASE WHEN o.company IS NOT NULL THEN
            (c.name, c.email, a.company, a.first_name, a.last_name, a.phone,
             a.address_line1, a.address_line2, a.city, a.postal_code,
             a.region, a.country) IS NOT DISTINCT FROM
            (o.company, NULL, o.company, NULL, NULL, NULL,
             o.address_line1, o.address_line2, o.city, o.postal_code,
             o.region, o.country)
       ELSE
            (c.name, c.email, a.company, a.first_name, a.last_name, a.phone,
             a.address_line1, a.address_line2, a.city, a.postal_code,
             a.region, a.country) IS NOT DISTINCT FROM
            (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, o.country)
       END AS erased
  FROM billing.customers c
  JOIN billing.billing_addresses a ON a.customer_id = c.id
  JOIN public.original o ON o.id = c.id
  JOIN anonymize.requests r ON r.customer_id = c.id
)
SELECT CASE
       WHEN state = 'done' AND outcome = 'anonymized' AND closed_at IS NOT NULL
            AND audit = 1 AND audit_right AND erased AND emails = 0 AND activity = 0
            AND webhooks = 0 AND subscriptions = 'terminated' AND invoices = 1
            AND balance_lines = 2
         THEN 'done'
       WHEN state = 'pending' AND outcome IS NULL AND last_attempt_at IS NULL
            AND closed_at IS NULL AND audit = 0 AND untouched AND emails = 2
            AND activity = 3 AND webhooks = 1
            AND subscriptions = 'initialized,terminated' AND invoices = 1
            AND balance_lines = 2
         THEN 'pending'
       ELSE 'HALF'
       END AS class, count(*)
  FROM s GROUP BY 1 ORDER BY 1
};

# crash_round(name, settings, customer to wait at, requests done after it)
sub crash_round
{
	my ($name, $settings, $wait_at, $expect_done) = @_;

	# The run will wait at the sent emails of customer $wait_at.
	$node->safe_psql('postgres',
		qq{DELETE FROM public.wait_at; INSERT INTO public.wait_at
SELECT id FROM billing.customers WHERE name = 'Customer $wait_at'});
	my $locker = $node->background_psql('postgres', on_error_stop => 1);
	$locker->query_safe('SELECT pg_advisory_lock(4242)');

	# The run, in the background.
	my ($stdout, $stderr) = ('', '');
	my $run = IPC::Run::start(
		[
			'psql', '-X', '-d', $node->connstr('postgres'),
			'-c', $settings,
			'-c', "CALL anonymize.process_requests(batch_size => $batch_size)"
		],
		'>', \$stdout, '2>', \$stderr);

	ok( $node->poll_query_until(
			'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE 'CALL anonymize.process_requests%'
   AND wait_event_type = 'Lock'}),
		"$name: the run waits at the emails of customer $wait_at");
	my ($done, $deleted) = split /\|/, $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM anonymize.requests WHERE state = 'done'),
       (SELECT last_value FROM public.emails_deleted)});
	is($done, $expect_done, "$name: the batches before it committed");
	cmp_ok($deleted, '>', 2 * $done,
		"$name: the batch in progress deleted history ($deleted emails deleted, "
		  . (2 * $done) . ' of them committed)');

	# Crash.
	$node->stop('immediate');
	eval { $run->finish; };
	eval { $locker->quit; };
	note "$name: the run printed: $stderr";
	unlike($stderr, qr/anonymize: processed erasure requests/,
		"$name: the run did not finish before the crash");
	$node->start;

	my ($n_done, $n_pending, $n_other, $claimed_in_order, $n_audit,
		$n_emails, $n_unended)
	  = split /\|/, $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE state = 'done'),
       count(*) FILTER (WHERE state = 'pending'),
       count(*) FILTER (WHERE state NOT IN ('done', 'pending')),
       coalesce(max(due_at) FILTER (WHERE state = 'done')
                < min(due_at) FILTER (WHERE state = 'pending'), true),
       (SELECT count(*) FROM anonymize.audit_log),
       (SELECT count(*) FROM billing.sent_emails),
       (SELECT count(*) FROM anonymize.runs WHERE ended_at IS NULL)
  FROM anonymize.requests});
	note "$name: after the crash: $n_done done, $n_pending pending";
	is($n_done, $expect_done,
		"$name: the committed batches are done, the one in progress is not");
	is($n_done + $n_pending, $n_customers,
		"$name: every request is done or pending");
	is($n_other, '0', "$name: no request in another state");
	is($claimed_in_order, 't',
		"$name: the batches were claimed in the order of the queue");
	cmp_ok($n_unended, '>=', 1,
		"$name: the interrupted run is recorded without an end");
	is($n_audit, $n_done, "$name: one audit row per done request");
	is($n_emails, 2 * $n_pending,
		"$name: the history deleted in the lost batch is back");
	is( $node->safe_psql('postgres', $classify),
		"done|$n_done\npending|$n_pending",
		"$name: every customer is fully anonymized or untouched, none in between"
	);
	return;
}

# The run must wait at the trigger: no lock timeout of the queue's own.
crash_round('set-based',
	'SET anonymize.set_based_batches = on; SET anonymize.queue_lock_timeout = 0',
	150, 100);
ok( $node->log_contains(
		'database system was not properly shut down; automatic recovery in progress'
	),
	'the restart recovered from a crash');
crash_round('one at a time',
	'SET anonymize.set_based_batches = off; SET anonymize.queue_lock_timeout = 0',
	350, 300);

# The queue completes after the crashes.
my ($ret, $out, $err) = $node->psql('postgres',
	'CALL anonymize.process_requests(batch_size => 500)');
is($ret, 0, 'a last run succeeds');
my $left = $n_customers - 300;
like(
	$err,
	qr/anonymize: processed erasure requests in \d+ batches: $left anonymized, 0 already erased, 0 of unknown customers, 0 blocked, 0 busy, 0 failed/,
	"the last run anonymizes the $left remaining customers");
ok( $node->log_contains(
		"LOG:  anonymize: processed erasure requests in \\d+ batches: $left anonymized, 0 already erased, 0 of unknown customers, 0 blocked, 0 busy, 0 failed"
	),
	'the run is reported in the server log too');

is( $node->safe_psql('postgres', $classify),
	"done|$n_customers",
	'after the last run every customer is fully anonymized');
is( $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM anonymize.requests WHERE state = 'done'),
       (SELECT count(*) FROM anonymize.audit_log),
       (SELECT count(*) FROM billing.sent_emails)
       + (SELECT count(*) FROM billing.customer_activity)
       + (SELECT count(*) FROM billing.webhook_notifications)}),
	"$n_customers|$n_customers|0",
	'all requests done, one audit row each, no history left');

$node->stop;
done_testing();
