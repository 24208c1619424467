#!/bin/bash
# examples/demo.sh -- show the anonymize extension at work:  bash examples/demo.sh
#
# As root, from any directory: installs the packages, builds and installs the
# extension, starts a throwaway cluster (port 54330, private socket), loads
# examples/billing.sql and examples/sample_customers.sql, then erases the
# company and the individual customer and shows the refusal for the customer
# that still has an active subscription, a due invoice and an open balance.
# The cluster is stopped and removed at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib.sh"

work=
cleanup() { anon_stop_cluster; [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

anon_install_deps
anon_build_install "$repo"
work=$(anon_tmpdir)
anon_start_cluster "$work/cluster" 54330
export PGDATABASE=demo

anon_as_postgres createdb demo
# The repository may not be readable by postgres: feed the files on stdin.
cat "$repo/examples/billing.sql" "$repo/examples/sample_customers.sql" |
	anon_as_postgres psql -X -q -v ON_ERROR_STOP=1 -f -

anon_as_postgres psql -X -e -v ON_ERROR_STOP=1 -f - <<'SQL' 2>&1
\set company    11111111-1111-1111-1111-111111111111
\set individual 22222222-2222-2222-2222-222222222222
\set active     33333333-3333-3333-3333-333333333333
\pset null '(null)'

CREATE EXTENSION anonymize;

-- rows per customer, for the comparison before and after
CREATE TEMP VIEW rows_per_customer AS
SELECT c.id,
       (SELECT count(*) FROM billing.sent_emails x WHERE x.customer_id = c.id) AS sent_emails,
       (SELECT count(*) FROM billing.customer_activity x WHERE x.customer_id = c.id) AS activity,
       (SELECT count(*) FROM billing.webhook_notifications x WHERE x.customer_id = c.id) AS webhooks,
       (SELECT count(*) FROM billing.subscriptions x WHERE x.customer_id = c.id) AS subscriptions,
       (SELECT count(*) FROM billing.invoices x WHERE x.customer_id = c.id) AS invoices,
       (SELECT sum(x.amount) FROM billing.balance_entries x WHERE x.customer_id = c.id) AS balance
FROM billing.customers c;

\echo '=== Before'
SELECT * FROM billing.customers ORDER BY id;
SELECT * FROM billing.billing_addresses ORDER BY customer_id;
SELECT * FROM rows_per_customer ORDER BY id;

\echo '=== What stands in the way of an erasure?'
SELECT * FROM anonymize.blockers(:'company');
SELECT * FROM anonymize.blockers(:'individual');
SELECT * FROM anonymize.blockers(:'active');
SELECT anonymize.can_anonymize(:'company') AS company,
       anonymize.can_anonymize(:'individual') AS individual,
       anonymize.can_anonymize(:'active') AS active;

\echo '=== Erase the company and the individual'
SELECT * FROM anonymize.anonymize_customer(:'company');
SELECT * FROM anonymize.anonymize_customer(:'individual');

\echo '=== The customer with an active subscription is refused (the ERROR is expected)'
\set ON_ERROR_STOP 0
SELECT * FROM anonymize.anonymize_customer(:'active');
\set ON_ERROR_STOP 1

\echo '=== Erasing an erased customer again changes nothing'
SELECT * FROM anonymize.anonymize_customer(:'company');

\echo '=== After'
SELECT * FROM billing.customers ORDER BY id;
SELECT * FROM billing.billing_addresses ORDER BY customer_id;
SELECT * FROM rows_per_customer ORDER BY id;
SELECT * FROM anonymize.audit_log ORDER BY customer_id;
SQL
