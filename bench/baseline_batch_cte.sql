-- bench/baseline_batch_cte.sql
--
-- Benchmark baseline (never installed) for the request queue: the best
-- hand-written set-based statement, one statement with data-modifying CTEs
-- that anonymizes every eligible customer of a batch at once (the rules of
-- bench/baseline_cte.sql, for an array of ids): the customers locked FOR
-- UPDATE, the rows of the blocker relations FOR SHARE, the blocked, the
-- unknown and the already anonymized left alone, one DELETE per purged
-- relation, two UPDATEs, one audit row per customer (bench.audit_cte).  No
-- verification, no residue check, no request bookkeeping.
--
-- bench.process_with_statement(first, last, batch) runs it over the
-- targets numbered first..last of bench.targets, batch by batch,
-- committing each, as CALL anonymize.process_requests() does.
--
-- Load: psql -f bench/baseline_batch_cte.sql   (after bench/baseline_cte.sql)

CREATE OR REPLACE FUNCTION bench.anonymize_batch_cte(p_ids uuid[])
RETURNS bigint LANGUAGE sql VOLATILE AS
$$
WITH cust AS MATERIALIZED (
	SELECT c.id
	  FROM billing.customers c
	 WHERE c.id = ANY (p_ids)
	   AND NOT EXISTS (SELECT FROM bench.audit_cte a WHERE a.customer_id = c.id)
	   FOR UPDATE OF c
), subs AS MATERIALIZED (
	SELECT s.customer_id, s.state FROM billing.subscriptions s
	  JOIN cust ON s.customer_id = cust.id FOR SHARE OF s
), inv AS MATERIALIZED (
	SELECT i.customer_id, i.status FROM billing.invoices i
	  JOIN cust ON i.customer_id = cust.id FOR SHARE OF i
), bal AS MATERIALIZED (
	SELECT b.customer_id, b.amount FROM billing.balance_entries b
	  JOIN cust ON b.customer_id = cust.id FOR SHARE OF b
), blocked AS MATERIALIZED (
	SELECT customer_id FROM subs WHERE state NOT IN ('initialized', 'terminated')
	UNION SELECT customer_id FROM inv WHERE status NOT IN ('paid', 'cancelled')
	UNION SELECT customer_id FROM bal GROUP BY customer_id HAVING sum(amount) <> 0
), ok AS MATERIALIZED (
	SELECT cust.id, a.company, coalesce(a.company ~ '\S', false) AS is_company
	  FROM cust LEFT JOIN billing.billing_addresses a ON a.customer_id = cust.id
	 WHERE cust.id NOT IN (SELECT customer_id FROM blocked)
), d_emails AS (
	DELETE FROM billing.sent_emails t USING ok WHERE t.customer_id = ok.id
	RETURNING t.customer_id
), d_activity AS (
	DELETE FROM billing.customer_activity t USING ok WHERE t.customer_id = ok.id
	RETURNING t.customer_id
), d_webhooks AS (
	DELETE FROM billing.webhook_notifications t USING ok WHERE t.customer_id = ok.id
	RETURNING t.customer_id
), d_subs AS (
	DELETE FROM billing.subscriptions t USING ok
	 WHERE t.customer_id = ok.id AND t.state = 'initialized'
	RETURNING t.customer_id
), u_address AS (
	UPDATE billing.billing_addresses t
	   SET first_name = NULL, last_name = NULL, phone = NULL,
		   address_line1 = CASE WHEN ok.is_company THEN t.address_line1 END,
		   address_line2 = CASE WHEN ok.is_company THEN t.address_line2 END,
		   city = CASE WHEN ok.is_company THEN t.city END,
		   postal_code = CASE WHEN ok.is_company THEN t.postal_code END,
		   region = CASE WHEN ok.is_company THEN t.region END
	  FROM ok WHERE t.customer_id = ok.id
	RETURNING t.customer_id
), u_customer AS (
	UPDATE billing.customers t
	   SET name = CASE WHEN ok.is_company THEN ok.company END, email = NULL
	  FROM ok WHERE t.id = ok.id
	RETURNING t.id
), changed AS (
	SELECT customer_id, count(*) FILTER (WHERE k = 1) AS emails,
		   count(*) FILTER (WHERE k = 2) AS activity,
		   count(*) FILTER (WHERE k = 3) AS webhooks,
		   count(*) FILTER (WHERE k = 4) AS subs,
		   count(*) FILTER (WHERE k = 5) AS addresses
	  FROM (SELECT customer_id, 1 AS k FROM d_emails
			UNION ALL SELECT customer_id, 2 FROM d_activity
			UNION ALL SELECT customer_id, 3 FROM d_webhooks
			UNION ALL SELECT customer_id, 4 FROM d_subs
			UNION ALL SELECT customer_id, 5 FROM u_address) c
	 GROUP BY customer_id
), counts AS (
	SELECT ok.id, ok.is_company, coalesce(c.emails, 0) AS emails,
		   coalesce(c.activity, 0) AS activity, coalesce(c.webhooks, 0) AS webhooks,
		   coalesce(c.subs, 0) AS subs, coalesce(c.addresses, 0) AS addresses
	  FROM ok LEFT JOIN changed c ON c.customer_id = ok.id
	 WHERE EXISTS (SELECT FROM u_customer u WHERE u.id = ok.id)
), audit AS (
	INSERT INTO bench.audit_cte
		(customer_id, anonymized_at, anonymized_by, customer_kind, rows_deleted,
		 rows_updated)
	SELECT id, now(), current_user,
		   CASE WHEN is_company THEN 'company' ELSE 'individual' END,
		   jsonb_build_object('sent_emails', emails, 'customer_activity', activity,
							  'webhook_notifications', webhooks,
							  'initialized_subscriptions', subs),
		   jsonb_build_object('billing_address_contact', addresses,
							  'billing_address_street',
							  CASE WHEN is_company THEN 0 ELSE addresses END)
	  FROM counts
	RETURNING 1
)
SELECT count(*) FROM audit
$$;

CREATE OR REPLACE PROCEDURE bench.process_with_statement(p_first bigint,
	p_last bigint, p_batch int DEFAULT 500)
LANGUAGE plpgsql AS
$$
DECLARE
	lo bigint := p_first;
BEGIN
	WHILE lo <= p_last LOOP
		PERFORM bench.anonymize_batch_cte(ARRAY(
			SELECT id FROM bench.targets
			 WHERE n BETWEEN lo AND least(lo + p_batch - 1, p_last)));
		COMMIT;
		lo := lo + p_batch;
	END LOOP;
END
$$;
