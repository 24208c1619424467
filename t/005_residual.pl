# t/005_residual.pl -- what anonymization leaves behind inside the cluster
# (see docs/residual-data.md):
#   - right after anonymize_customer() commits, the old email and name are
#     still readable from the dead tuple of billing.customers with
#     pg_dirtyread, and so are the old first name (billing_addresses), the
#     deleted sent emails (billing.sent_emails) and the old email in an
#     index on customers.email;
#   - after VACUUM of the mapped tables pg_dirtyread reads none of them any
#     more; but VACUUM skips the cleanup of indexes when few pages have dead
#     rows (PostgreSQL 14+), so the index still has an entry for the old
#     email until VACUUM (INDEX_CLEANUP ON); the bytes of deleted rows stay
#     in the free space of the data files until the space is reused, and a
#     VACUUM FULL writes files without them;
#   - the statistics (pg_stats) show the old first name until the next
#     ANALYZE;
#   - the WAL still holds the old email after all that;
#   - the extension itself writes no personal data to the server log (with
#     log_statement = all) nor to its audit log.
# The personal data is loaded with COPY and never appears in SQL text, so
# that the server log check means something.  Skipped when pg_dirtyread
# (Debian package postgresql-15-dirtyread) is not installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use BillingMapping;

my $node = PostgreSQL::Test::Cluster->new('residual');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
autovacuum = off
log_statement = 'all'
log_min_messages = info
});
$node->start;

if ($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_dirtyread'") eq
	'0')
{
	$node->stop;
	plan skip_all =>
	  'pg_dirtyread is not installed (Debian: apt-get install postgresql-15-dirtyread)';
}
my $have_pageinspect = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_available_extensions WHERE name = 'pageinspect'") eq
  '1';

my $root = dirname(__FILE__) . '/..';
$node->safe_psql('postgres', slurp_file("$root/examples/billing.sql"));
$node->safe_psql('postgres',
	'CREATE EXTENSION anonymize; CREATE EXTENSION pg_dirtyread;');
load_billing_mapping($node, 'postgres');
$node->safe_psql('postgres', 'CREATE EXTENSION pageinspect') if $have_pageinspect;
$node->safe_psql('postgres',
	'CREATE INDEX customers_email_idx ON billing.customers (email)');

# The personal data of the customer, each value unique in the cluster.
my $id = 'e5000000-0000-0000-0000-000000000001';
my %pii = (
	email => 'quincy.residue.7f3a9c@example.com',
	name => 'Quincy Residue-Marker',
	first_name => 'Quincymarkfirst',
	phone => '+49-30-7f3a9c',
	body => 'Dear Quincy, your secret body text 7f3a9c.',);

# 10,000 other customers around it, so that nothing is at the end of a
# table and one page of customers is less than 2% of the table.
my $copy = "COPY billing.customers (id, name, email) FROM STDIN;\n";
$copy .= sprintf("e5100000-0000-0000-0000-%012d\tOther %d\tother%d\@example.com\n", $_, $_, $_)
  for 1 .. 5000;
$copy .= "$id\t$pii{name}\t$pii{email}\n";
$copy .= sprintf("e5100000-0000-0000-0000-%012d\tOther %d\tother%d\@example.com\n", $_, $_, $_)
  for 5001 .. 10000;
$copy .= "\\.\n";
$copy .=
  "COPY billing.billing_addresses (customer_id, first_name, phone, address_line1, city, country) FROM STDIN;\n";
$copy .= "$id\t$pii{first_name}\t$pii{phone}\tStreet 1\tBerlin\tDE\n";
$copy .= sprintf("e5100000-0000-0000-0000-%012d\tFirst%d\t+1 %d\tStreet %d\tTown\tDE\n", $_, $_, $_, $_)
  for 1 .. 19;
$copy .= "\\.\n";
# sent emails: 200 of others, 60 of the customer (whole pages), 200 of others
$copy .= "COPY billing.sent_emails (customer_id, recipient, body) FROM STDIN;\n";
$copy .= sprintf("e5100000-0000-0000-0000-%012d\tother\@example.com\t%s\n", 1 + $_ % 100, 'x' x 150)
  for 1 .. 200;
$copy .= "$id\t$pii{email}\t$pii{body} $_ " . ('y' x 100) . "\n" for 1 .. 60;
$copy .= sprintf("e5100000-0000-0000-0000-%012d\tother\@example.com\t%s\n", 1 + $_ % 100, 'x' x 150)
  for 201 .. 400;
$copy .= "\\.\n";
$node->safe_psql('postgres', $copy);
$node->safe_psql('postgres', 'ANALYZE billing.billing_addresses');
my $stats = q{
SELECT histogram_bounds::text FROM pg_stats
 WHERE schemaname = 'billing' AND tablename = 'billing_addresses'
   AND attname = 'first_name'};

# Files of the cluster, read as the server's OS user.
sub relation_file
{
	my ($rel) = @_;
	return $node->data_dir . '/'
	  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$rel')");
}

sub file_holds
{
	my ($file, $needle) = @_;
	my $data = slurp_file($file);
	return index($data, $needle) >= 0 ? 1 : 0;
}

sub wal_holds
{
	my ($needle) = @_;
	my $dir = $node->data_dir . '/pg_wal';
	opendir(my $dh, $dir) or die "opendir $dir: $!";
	my @segments = grep { /^[0-9A-F]{24}$/ } readdir($dh);
	closedir($dh);
	for my $segment (@segments)
	{
		return 1 if file_holds("$dir/$segment", $needle);
	}
	return 0;
}

my $dead_customers = q{
SELECT name, email FROM pg_dirtyread('billing.customers')
	AS t(id uuid, name text, email text, created_at timestamptz)
 WHERE id = 'e5000000-0000-0000-0000-000000000001'};
my $dead_addresses = q{
SELECT first_name, phone FROM pg_dirtyread('billing.billing_addresses')
	AS t(customer_id uuid, company text, first_name text, last_name text,
		 phone text, address_line1 text, address_line2 text, city text,
		 postal_code text, region text, country text)
 WHERE customer_id = 'e5000000-0000-0000-0000-000000000001'};
my $dead_emails = q{
SELECT recipient, body FROM pg_dirtyread('billing.sent_emails')
	AS t(id bigint, customer_id uuid, recipient text, subject text, body text,
		 sent_at timestamptz)
 WHERE customer_id = 'e5000000-0000-0000-0000-000000000001'};
my $index_keys = q{
SELECT string_agg(i.data, ' | ')
  FROM generate_series(1, pg_relation_size('billing.customers_email_idx') / 8192 - 1) b,
	   bt_page_items('billing.customers_email_idx', b::int) i};

sub hex_of { return join ' ', map { sprintf '%02x', ord } split //, $_[0]; }

# A transaction that started before the anonymization, as a pg_dump or a
# long report would have: its snapshot keeps the dead rows.  (Without one,
# the next read of a full page may prune the dead rows at once, which the
# extension cannot rely on either.)
my $old = $node->background_psql('postgres');
$old->query_safe(
	'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM billing.customers;');

my $log_start = -s $node->logfile;
is( $node->safe_psql(
		'postgres',
		"SELECT anonymized, customer_kind FROM anonymize.anonymize_customer('$id')"),
	't|individual',
	'the customer is anonymized');
is( $node->safe_psql(
		'postgres',
		"SELECT concat_ws('|', name, email) FROM billing.customers WHERE id = '$id'"),
	'', 'its name and email are NULL for SQL');
# A blocked call and an unknown customer, to see their errors in the log.
$node->safe_psql('postgres',
	"INSERT INTO billing.invoices (customer_id, status, amount) VALUES ('e5100000-0000-0000-0000-000000000001', 'due', 1)");
$node->psql('postgres',
	"SELECT anonymize.anonymize_customer('e5100000-0000-0000-0000-000000000001')");
$node->psql('postgres',
	"SELECT anonymize.anonymize_customer('e5200000-0000-0000-0000-000000000001')");
$node->safe_psql('postgres', 'CHECKPOINT');
my $log_end = -s $node->logfile;

#
# Right after the anonymization.
#
my $rows = $node->safe_psql('postgres', $dead_customers);
like($rows, qr/^\Q$pii{name}|$pii{email}\E$/m,
	'pg_dirtyread: the dead tuple of billing.customers holds the old name and email');
$rows = $node->safe_psql('postgres', $dead_addresses);
like($rows, qr/^\Q$pii{first_name}|$pii{phone}\E$/m,
	'pg_dirtyread: the dead tuple of billing.billing_addresses holds the old first name and phone');
$rows = $node->safe_psql('postgres', $dead_emails);
is(scalar(() = $rows =~ /\Q$pii{body}\E/g), 60,
	'pg_dirtyread: the 60 deleted sent emails are all readable');
ok(file_holds(relation_file('billing.customers'), $pii{email}),
	'the data file of billing.customers holds the old email');
ok(file_holds(relation_file('billing.customers_email_idx'), $pii{email}),
	'the index on customers.email holds the old email');
SKIP:
{
	skip 'pageinspect not available', 1 unless $have_pageinspect;
	like($node->safe_psql('postgres', $index_keys), qr/\Q${\ hex_of($pii{email}) }\E/,
		'bt_page_items: the index has an entry for the old email');
}
like($node->safe_psql('postgres', $stats), qr/\Q$pii{first_name}\E/,
	'pg_stats: the statistics of billing_addresses.first_name still show the old first name');
is( $old->query_safe(
		"SELECT concat_ws('|', name, email) FROM billing.customers WHERE id = '$id'"),
	"$pii{name}|$pii{email}",
	'the transaction that started before still reads the old name and email with SELECT');

# VACUUM cannot remove them while that transaction runs.
$node->safe_psql('postgres',
	'VACUUM billing.customers, billing.billing_addresses, billing.sent_emails');
like($node->safe_psql('postgres', $dead_customers),
	qr/^\Q$pii{name}|$pii{email}\E$/m,
	'VACUUM during that transaction: pg_dirtyread still reads the old name and email');
$old->query_safe('COMMIT');
$old->quit;

#
# After VACUUM of the mapped tables.
#
$node->safe_psql(
	'postgres', q{
VACUUM billing.customers, billing.billing_addresses, billing.sent_emails,
	billing.customer_activity, billing.webhook_notifications, billing.subscriptions;
CHECKPOINT});
is($node->safe_psql('postgres', $dead_customers), '|',
	'after VACUUM, pg_dirtyread finds only the anonymized customer row');
is($node->safe_psql('postgres', $dead_addresses), '|',
	'and only the erased billing address');
is($node->safe_psql('postgres', $dead_emails), '',
	'and no sent email of the customer');
SKIP:
{
	skip 'pageinspect not available', 2 unless $have_pageinspect;
	like($node->safe_psql('postgres', $index_keys), qr/\Q${\ hex_of($pii{email}) }\E/,
		'bt_page_items: VACUUM bypassed the index cleanup, the entry for the old email is there');
	$node->safe_psql('postgres',
		'VACUUM (INDEX_CLEANUP ON) billing.customers; CHECKPOINT');
	unlike($node->safe_psql('postgres', $index_keys), qr/\Q${\ hex_of($pii{email}) }\E/,
		'bt_page_items: after VACUUM (INDEX_CLEANUP ON), no entry for the old email');
}
$node->safe_psql('postgres', 'ANALYZE billing.billing_addresses');
unlike($node->safe_psql('postgres', $stats), qr/\Q$pii{first_name}\E/,
	'pg_stats: after ANALYZE, no more');
note 'after VACUUM (INDEX_CLEANUP ON), the index file '
  . (file_holds(relation_file('billing.customers_email_idx'), $pii{email})
	? 'still holds' : 'no longer holds')
  . ' the bytes of the old email';
# VACUUM frees the space of the dead rows without wiping it: pages that held
# only the customer's emails are empty but keep their old bytes.
ok(file_holds(relation_file('billing.sent_emails'), $pii{body}),
	'the bytes of the deleted emails stay in the free space of billing.sent_emails');
note 'after VACUUM, the data file of billing.customers '
  . (file_holds(relation_file('billing.customers'), substr($pii{name}, 0, 6))
	? 'still holds' : 'no longer holds')
  . ' a piece of the old name';

# VACUUM FULL writes new files without them.
$node->safe_psql('postgres',
	'VACUUM FULL billing.customers, billing.sent_emails, billing.billing_addresses; CHECKPOINT'
);
ok(!file_holds(relation_file('billing.sent_emails'), $pii{body}),
	'after VACUUM FULL, billing.sent_emails holds no deleted email');
ok(!file_holds(relation_file('billing.customers_email_idx'), $pii{email}),
	'and the rebuilt index on customers.email not the old email');
ok( !file_holds(relation_file('billing.customers'), substr($pii{name}, 0, 6))
	  && !file_holds(relation_file('billing.customers'), $pii{email}),
	'and billing.customers no piece of the old name nor the email');

# The WAL still has all of it.
ok(wal_holds($pii{email}), 'the WAL still holds the old email');
ok(wal_holds($pii{body}), 'the WAL still holds the deleted emails');

#
# What the extension writes: no personal data in the server log nor in the
# audit log.
#
{
	open(my $fh, '<', $node->logfile) or die $!;
	seek($fh, $log_start, 0);
	my $log = '';
	read($fh, $log, $log_end - $log_start);
	close($fh);
	like($log, qr/anonymize_customer\('$id'\)/,
		'the server log has the call (log_statement = all)');
	like($log, qr/cannot be anonymized|does not exist/,
		'and the error of the failing call');
	my @found = grep { index($log, $pii{$_}) >= 0 } sort keys %pii;
	is("@found", '', 'but none of the personal data');
}
my $audit = $node->safe_psql('postgres',
	"SELECT a::text FROM anonymize.audit_log a WHERE customer_id = '$id'");
like($audit, qr/\Q$id\E/, 'the audit row');
my @in_audit = grep { index($audit, $pii{$_}) >= 0 } sort keys %pii;
is("@in_audit", '', 'holds none of the personal data');

$node->stop;
done_testing();
