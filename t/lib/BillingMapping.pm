# t/lib/BillingMapping.pm -- the mapping of examples/billing.sql, for the TAP
# tests.
#
# CREATE EXTENSION anonymize installs no mapping (version 1.2): a database
# that should erase the customers of examples/billing.sql loads
# examples/billing_mapping.sql after it, as the extension owner, the way
# the README and the demo do.  The tests read that same file rather than a
# copy, so that they test the mapping users are given.
#
#   use FindBin;
#   use lib "$FindBin::RealBin/lib";
#   use BillingMapping;
#   load_billing_mapping($node, 'postgres');   # dies if any statement fails
#   my $text = mapping_of($node, 'postgres');  # every row of the mapping tables
package BillingMapping;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use PostgreSQL::Test::Utils qw(slurp_file);

our @EXPORT = qw(billing_mapping_sql load_billing_mapping mapping_queries mapping_of);

my $mapping_file = dirname(__FILE__) . '/../../examples/billing_mapping.sql';

# The text of examples/billing_mapping.sql.
sub billing_mapping_sql
{
	return slurp_file($mapping_file);
}

# Runs examples/billing_mapping.sql in database $dbname of $node (as the
# node's superuser, who owns the extension); safe_psql stops at the first
# error and dies.
sub load_billing_mapping
{
	my ($node, $dbname) = @_;
	$node->safe_psql($dbname, billing_mapping_sql());
	return;
}

# One query per configuration table of the mapping, every row and column
# in a fixed order.
sub mapping_queries
{
	return (
		'SELECT * FROM anonymize.customer_relation',
		'SELECT * FROM anonymize.scopes ORDER BY scope_name',
		'SELECT * FROM anonymize.rules ORDER BY rule_name');
}

# The whole mapping of database $dbname as one text, for comparisons.
sub mapping_of
{
	my ($node, $dbname) = @_;
	return join("\n---\n", map { $node->safe_psql($dbname, $_) } mapping_queries());
}

1;
