-- bench/queue_contention_setup.sql -- data of bench/queue_contention.sh.
--
-- Run after bench/generate.sql (profile 'history'), which gives every
-- customer a history (subscriptions, invoices, balance lines, sent emails,
-- activity, webhook notifications) but makes 10% of them ineligible.  This
-- makes every customer eligible, so that no request ends 'blocked' and every
-- skipped customer is skipped because of the concurrent billing load:
--   subscriptions  active/suspended -> terminated
--   invoices       due/draft -> paid
--   balance        a correction line brings every non-zero balance to 0
-- and builds bench.qc_targets(n, id, invoice_id): customer number n in
-- 1..count (random order) with one of its paid invoices, which the billing
-- transactions (bench/queue_contention_billing.pgbench) pick by n.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

BEGIN;

UPDATE billing.subscriptions SET state = 'terminated'
 WHERE state IN ('active', 'suspended');
UPDATE billing.invoices SET status = 'paid'
 WHERE status IN ('due', 'draft');
INSERT INTO billing.balance_entries (customer_id, amount, description)
SELECT customer_id, -sum(amount), 'correction'
  FROM billing.balance_entries
 GROUP BY customer_id HAVING sum(amount) <> 0;
UPDATE bench.population SET eligible = true WHERE NOT eligible;

CREATE TABLE bench.qc_targets (
	n			integer PRIMARY KEY,
	id			uuid NOT NULL UNIQUE,
	invoice_id	bigint NOT NULL
);
INSERT INTO bench.qc_targets (n, id, invoice_id)
SELECT row_number() OVER (ORDER BY md5('qc:' || c.id::text)), c.id,
	   (SELECT min(i.id) FROM billing.invoices i
		 WHERE i.customer_id = c.id AND i.status = 'paid')
  FROM billing.customers c;

COMMIT;

VACUUM ANALYZE;

-- The script stops when this is not 0 (every customer must be eligible).
SELECT count(*) AS not_eligible
  FROM billing.customers c
 WHERE NOT anonymize.can_anonymize(c.id);
