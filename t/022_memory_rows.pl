# t/022_memory_rows.pl -- the memory of a backend does not grow with the
# number of rows an erasure deletes, and the request queue's batches are
# bounded.
#
# Why: a review measured one customer with 4 million sent emails peaking at
# about 870 MB in one backend (the purge statement returned a row per deleted
# row, all copied into SPI's result table), and a queue batch of 1,000,000
# requests at 6.6 GB.  Since version 1.2 a purge for one customer is one
# DELETE counted with SPI_processed, a batch counts with aggregates per
# customer, and process_requests() refuses batch_size > 10000.
#
# What it measures: the private anonymous memory of the backend (RssAnon in
# /proc/<pid>/status: palloc'd memory lives there; shared buffers do not),
# sampled every few milliseconds by a child process while a statement runs.
# The growth is the peak during the statement minus RssAnon just before it.
# VmHWM (peak resident size) counts the shared memory the backend touches
# too; with shared_buffers = 32MB the whole shared segment is about 41 MB, so
# VmHWM can grow by at most that much more than RssAnon.
#
#   1. anonymize_customer() of a customer with 1,000 sent emails (warm-up:
#      mapping and plans), then, in the same session, of a customer with
#      1,000,000 sent emails: the emails are gone, rows_deleted says
#      1000000, RssAnon grows by less than 48 MB during the call and VmHWM
#      by less than 64 MB (measured: +0 MB and +29 MB, the shared buffers;
#      the old code, which returned a row per deleted row: +149 MB and
#      +179 MB).
#   2. CALL anonymize.process_requests(batch_size => 10001) fails with
#      SQLSTATE 22023 and a message naming the limit, 10000.
#   3. 20,000 pending requests of small eligible customers (an address and
#      two sent emails each): after a warm-up batch of 100, a run with
#      batch_size => 10000 processes the rest in two batches (10000, 9900)
#      and RssAnon grows by less than 96 MB during it.  A batch of 10000
#      takes about 62 MB (some 6 KB per request, held until the batch
#      commits), so the bound holds one batch with margin and fails if the
#      second batch's memory came on top of the first's.  Per request the
#      fixed code needs about as much as the old one: the cap of 2. is what
#      bounds the batch.
#
# The figures are printed with diag().  About 30 seconds on 2 cores.
use strict;
use warnings;

use File::Basename qw(dirname);
use POSIX ();
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use BillingMapping;

my $big_emails = 1_000_000;
my $small_emails = 1_000;
my $n_requests = 20_000;
my $warmup_batch = 100;
my $max_batch = 10_000;
my $mb = 1024 * 1024;
my $customer_bound = 48 * $mb;
my $hwm_bound = 64 * $mb;
my $queue_bound = 96 * $mb;

my $big = 'b1000000-0000-0000-0000-000000000001';
my $small = '5a000000-0000-0000-0000-000000000001';

my $node = PostgreSQL::Test::Cluster->new('memory_rows');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_buffers = 32MB
autovacuum = off
});
$node->start;

my $root = dirname(__FILE__) . '/..';
$node->safe_psql('postgres', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('postgres', 'CREATE EXTENSION anonymize');
load_billing_mapping($node, 'postgres');

$node->safe_psql(
	'postgres', qq{
INSERT INTO billing.customers (id, name, email) VALUES
	('$big', 'Bill Big', 'big\@example.com'),
	('$small', 'Sam Small', 'small\@example.com');
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name, phone,
	address_line1, city, country) VALUES
	('$big', 'Bill', 'Big', '+1 555 0100', '1 Main St', 'Town', 'US'),
	('$small', 'Sam', 'Small', '+1 555 0101', '2 Main St', 'Town', 'US');
INSERT INTO billing.sent_emails (customer_id, recipient, subject, body)
SELECT '$big', 'big\@example.com', 'Your invoice ' || i, 'Dear Bill Big, ...'
  FROM generate_series(1, $big_emails) i;
INSERT INTO billing.sent_emails (customer_id, recipient, subject, body)
SELECT '$small', 'small\@example.com', 'Your invoice ' || i, 'Dear Sam Small, ...'
  FROM generate_series(1, $small_emails) i;
});
$node->safe_psql('postgres', 'VACUUM ANALYZE billing.sent_emails');

# Memory figures of a process, in bytes.
sub proc_status
{
	my ($pid) = @_;
	my %s;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	while (<$fh>)
	{
		$s{$1} = $2 * 1024 if /^(\w+):\s+(\d+) kB/;
	}
	close $fh;
	return \%s;
}

# Starts a child that samples RssAnon of $pid until stop_sampler(); returns
# a handle.
sub start_sampler
{
	my ($pid) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $child = fork();
	die "fork: $!" unless defined $child;
	if ($child == 0)
	{
		my ($peak, $samples) = (0, 0);
		until (-e "$dir/stop")
		{
			my $s = proc_status($pid);
			last unless $s;
			$peak = $s->{RssAnon} if $s->{RssAnon} > $peak;
			$samples++;
			usleep(2_000);
		}
		open my $out, '>', "$dir/peak.tmp" or POSIX::_exit(1);
		print $out "$peak $samples\n";
		close $out;
		rename "$dir/peak.tmp", "$dir/peak";
		# No END blocks of the test modules in the child.
		POSIX::_exit(0);
	}
	# Wait for its first sample.
	usleep(20_000);
	return { pid => $child, dir => $dir };
}

# Stops the sampler; returns (peak RssAnon, number of samples).
sub stop_sampler
{
	my ($sampler) = @_;
	open my $fh, '>', "$sampler->{dir}/stop" or die "stop: $!";
	close $fh;
	waitpid($sampler->{pid}, 0);
	my ($peak, $samples) = split ' ', slurp_file("$sampler->{dir}/peak");
	return ($peak, $samples);
}

# Runs $sql in $session and returns (output, RssAnon before, peak RssAnon
# during, samples, VmHWM before, VmHWM after) of its backend $pid.
sub measure
{
	my ($session, $pid, $sql) = @_;
	my $before = proc_status($pid);
	my $sampler = start_sampler($pid);
	my $output = $session->query_safe($sql);
	my ($peak, $samples) = stop_sampler($sampler);
	my $after = proc_status($pid);
	$peak = $after->{RssAnon} if $after->{RssAnon} > $peak;
	return ($output, $before->{RssAnon}, $peak, $samples, $before->{VmHWM},
		$after->{VmHWM});
}

sub in_mb { return sprintf('%.1f MB', $_[0] / $mb); }

# 1. One customer with many rows.
my $session = $node->background_psql('postgres');
my $pid = $session->query_safe('SELECT pg_backend_pid()');
my $start = proc_status($pid);
ok($start && defined $start->{RssAnon} && defined $start->{VmHWM},
	"RssAnon and VmHWM of backend $pid readable");

my ($out_small, $anon_before_small, $peak_small, $samples_small,
	$hwm_before_small, $hwm_after_small)
  = measure($session, $pid,
	"SELECT (rows_deleted->>'sent_emails') FROM anonymize.anonymize_customer('$small')"
  );
is($out_small, $small_emails, "small customer: rows_deleted says $small_emails");

my ($out_big, $anon_before_big, $peak_big, $samples_big, $hwm_before_big,
	$hwm_after_big)
  = measure($session, $pid,
	"SELECT anonymized, (rows_deleted->>'sent_emails') FROM anonymize.anonymize_customer('$big')"
  );
is($out_big, "t|$big_emails", "big customer: anonymized, rows_deleted says $big_emails");
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM billing.sent_emails WHERE customer_id IN ('$big', '$small')"
	),
	0,
	'the emails of both customers are gone');

my $growth_small = $peak_small - $anon_before_small;
my $growth_big = $peak_big - $anon_before_big;
diag "one customer, backend $pid:";
diag sprintf(
	'  %7d emails: RssAnon %s before, peak %s (+%s, %d samples); VmHWM %s -> %s',
	$small_emails, in_mb($anon_before_small), in_mb($peak_small),
	in_mb($growth_small), $samples_small, in_mb($hwm_before_small),
	in_mb($hwm_after_small));
diag sprintf(
	'  %7d emails: RssAnon %s before, peak %s (+%s, %d samples); VmHWM %s -> %s (+%s)',
	$big_emails, in_mb($anon_before_big), in_mb($peak_big),
	in_mb($growth_big), $samples_big, in_mb($hwm_before_big),
	in_mb($hwm_after_big), in_mb($hwm_after_big - $hwm_before_big));
cmp_ok($samples_big, '>', 10, 'the big erasure was sampled');
cmp_ok($growth_big, '<', $customer_bound,
	"big customer: RssAnon grows less than " . in_mb($customer_bound));
cmp_ok($hwm_after_big - $hwm_before_big, '<', $hwm_bound,
	"big customer: VmHWM grows less than " . in_mb($hwm_bound));
$session->quit;

# 2. The batch size is capped.
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', q{\set VERBOSITY verbose
CALL anonymize.process_requests(batch_size => 10001)});
isnt($ret, 0, 'batch_size => 10001 fails');
like(
	$stderr,
	qr/ERROR:\s+22023: batch_size must be at most $max_batch\b/,
	'batch_size => 10001: SQLSTATE 22023, the message names the limit');

# 3. A long queue in batches of 10000.
$node->safe_psql(
	'postgres', qq{
INSERT INTO billing.customers (id, name, email)
SELECT format('0e000000-0000-0000-0000-%s', lpad(i::text, 12, '0'))::uuid,
	   'Queued ' || i, 'queued' || i || '\@example.com'
  FROM generate_series(1, $n_requests) i;
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name, phone,
	address_line1, city, country)
SELECT id, 'First', 'Last', '+1 555 0199', '3 Main St', 'Town', 'US'
  FROM billing.customers WHERE name LIKE 'Queued %';
INSERT INTO billing.sent_emails (customer_id, recipient, subject)
SELECT id, email, 'Welcome ' || i
  FROM billing.customers, generate_series(1, 2) i WHERE name LIKE 'Queued %';
SELECT count(anonymize.request(id)) FROM billing.customers WHERE name LIKE 'Queued %';
VACUUM ANALYZE;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM anonymize.pending_requests'),
	$n_requests, "$n_requests requests pending");

$session = $node->background_psql('postgres', timeout => 600);
$session->query_safe('SET client_min_messages = warning');
$pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe(
	"CALL anonymize.process_requests(batch_size => $warmup_batch, max_batches => 1)"
);
my (undef, $anon_before_queue, $peak_queue, $samples_queue, $hwm_before_queue,
	$hwm_after_queue)
  = measure($session, $pid,
	"CALL anonymize.process_requests(batch_size => $max_batch)");
my $growth_queue = $peak_queue - $anon_before_queue;
$session->quit;

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE state = 'done'), count(*) FROM anonymize.requests}),
	"$n_requests|$n_requests",
	'every request done');
is( $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM billing.sent_emails),
	   (SELECT count(*) FROM billing.customers WHERE email IS NOT NULL OR name IS NOT NULL)}),
	'0|0',
	'no customer keeps an email, a name or sent emails');
diag sprintf(
	'queue, %d requests after a warm-up batch of %d, batch_size %d, backend %d:',
	$n_requests - $warmup_batch, $warmup_batch, $max_batch, $pid);
diag sprintf(
	'  RssAnon %s before, peak %s (+%s, %d samples); VmHWM %s -> %s (+%s)',
	in_mb($anon_before_queue), in_mb($peak_queue), in_mb($growth_queue),
	$samples_queue, in_mb($hwm_before_queue), in_mb($hwm_after_queue),
	in_mb($hwm_after_queue - $hwm_before_queue));
cmp_ok($growth_queue, '<', $queue_bound,
	"queue: RssAnon grows less than " . in_mb($queue_bound));

$node->stop;
done_testing();
