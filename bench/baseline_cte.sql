-- bench/baseline_cte.sql
--
-- Benchmark baseline (never installed): anonymize_customer() for the
-- mapping of examples/billing.sql (examples/billing_mapping.sql) as ONE
-- SQL statement with
-- data-modifying CTEs, wrapped in a SQL function.  Same rules and locks as
-- the extension, folded into the statement:
--
--   cust   the customer row, FOR UPDATE, unless already anonymized (a row in
--          bench.audit_cte)
--   subs, inv, bal
--          every subscription / invoice / balance line of that customer,
--          FOR SHARE (they join cust, so they run after the customer lock)
--   ok     the customer, only if nothing blocks: no subscription outside
--          ('initialized', 'terminated'), no invoice outside ('paid',
--          'cancelled'), balance lines summing to 0; with is_company =
--          the billing address's company holds a non-blank character
--   then   delete the purge rows, erase the billing address (company keeps
--          its address, an individual keeps only the country), erase the
--          customer (name := company or NULL, email := NULL) and insert the
--          audit row into bench.audit_cte (rows deleted per purge rule, rows
--          updated per erase rule, as anonymize.audit_log).
--
-- Simplification of this baseline: when the customer is unknown, already
-- anonymized or blocked, it does nothing and returns no row (no error).
-- '\S' is the regular expression [^[:space:]] (a non-blank character),
-- written without a colon so that pgbench does not take ":space" for a
-- variable in bench/ctestmt_*.pgbench.
-- Note: a LANGUAGE sql function is planned anew on every call (PostgreSQL
-- 15 caches no plan for it across calls), which is part of what it costs.
--
-- Load: psql -f bench/baseline_cte.sql   (after examples/billing.sql)

CREATE SCHEMA IF NOT EXISTS bench;

CREATE TABLE IF NOT EXISTS bench.audit_cte (
	customer_id		uuid PRIMARY KEY,
	anonymized_at	timestamptz NOT NULL,
	anonymized_by	name NOT NULL,
	customer_kind	text NOT NULL CHECK (customer_kind IN ('company', 'individual')),
	rows_deleted	jsonb NOT NULL,
	rows_updated	jsonb NOT NULL
);

CREATE OR REPLACE FUNCTION bench.anonymize_cte(p_customer_id uuid)
RETURNS TABLE (anonymized boolean, customer_kind text, rows_deleted jsonb)
LANGUAGE sql VOLATILE AS
$$
WITH cust AS MATERIALIZED (
	SELECT c.id
	  FROM billing.customers c
	 WHERE c.id = p_customer_id
	   AND NOT EXISTS (SELECT FROM bench.audit_cte a WHERE a.customer_id = c.id)
	   FOR UPDATE OF c
), subs AS MATERIALIZED (
	SELECT s.state FROM billing.subscriptions s JOIN cust ON s.customer_id = cust.id
	   FOR SHARE OF s
), inv AS MATERIALIZED (
	SELECT i.status FROM billing.invoices i JOIN cust ON i.customer_id = cust.id
	   FOR SHARE OF i
), bal AS MATERIALIZED (
	SELECT b.amount FROM billing.balance_entries b JOIN cust ON b.customer_id = cust.id
	   FOR SHARE OF b
), ok AS MATERIALIZED (
	SELECT cust.id, a.company,
		   coalesce(a.company ~ '\S', false) AS is_company
	  FROM cust LEFT JOIN billing.billing_addresses a ON a.customer_id = cust.id
	 WHERE NOT EXISTS (SELECT FROM subs WHERE state NOT IN ('initialized', 'terminated'))
	   AND NOT EXISTS (SELECT FROM inv WHERE status NOT IN ('paid', 'cancelled'))
	   AND (SELECT coalesce(sum(amount), 0) FROM bal) = 0
), d_emails AS (
	DELETE FROM billing.sent_emails t USING ok WHERE t.customer_id = ok.id RETURNING 1
), d_activity AS (
	DELETE FROM billing.customer_activity t USING ok WHERE t.customer_id = ok.id RETURNING 1
), d_webhooks AS (
	DELETE FROM billing.webhook_notifications t USING ok WHERE t.customer_id = ok.id RETURNING 1
), d_subs AS (
	DELETE FROM billing.subscriptions t USING ok
	 WHERE t.customer_id = ok.id AND t.state = 'initialized' RETURNING 1
), u_address AS (
	UPDATE billing.billing_addresses t
	   SET first_name = NULL, last_name = NULL, phone = NULL,
		   address_line1 = CASE WHEN ok.is_company THEN t.address_line1 END,
		   address_line2 = CASE WHEN ok.is_company THEN t.address_line2 END,
		   city = CASE WHEN ok.is_company THEN t.city END,
		   postal_code = CASE WHEN ok.is_company THEN t.postal_code END,
		   region = CASE WHEN ok.is_company THEN t.region END
	  FROM ok WHERE t.customer_id = ok.id
	RETURNING 1
), u_customer AS (
	UPDATE billing.customers t
	   SET name = CASE WHEN ok.is_company THEN ok.company END, email = NULL
	  FROM ok WHERE t.id = ok.id
	RETURNING 1
), audit AS (
	INSERT INTO bench.audit_cte
		(customer_id, anonymized_at, anonymized_by, customer_kind, rows_deleted,
		 rows_updated)
	SELECT ok.id, now(), current_user,
		   CASE WHEN ok.is_company THEN 'company' ELSE 'individual' END,
		   jsonb_build_object(
			   'sent_emails', (SELECT count(*) FROM d_emails),
			   'customer_activity', (SELECT count(*) FROM d_activity),
			   'webhook_notifications', (SELECT count(*) FROM d_webhooks),
			   'initialized_subscriptions', (SELECT count(*) FROM d_subs)),
		   jsonb_build_object(
			   'billing_address_contact', (SELECT count(*) FROM u_address),
			   'billing_address_street',
			   CASE WHEN ok.is_company THEN 0 ELSE (SELECT count(*) FROM u_address) END)
	  FROM ok
	RETURNING customer_kind, rows_deleted
)
SELECT true, audit.customer_kind, audit.rows_deleted FROM audit
$$;

COMMENT ON FUNCTION bench.anonymize_cte(uuid) IS
'Benchmark baseline: anonymize_customer() as one statement with data-modifying CTEs (does nothing when not eligible).';
