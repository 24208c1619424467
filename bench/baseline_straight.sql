-- bench/baseline_straight.sql
--
-- Benchmark baseline (never installed): what a user who does not adopt
-- anonymize writes by hand for examples/billing.sql, the function issue 10
-- describes: lock the customer, check the blockers with EXISTS (no row
-- locks on them), one DELETE per purged table, two UPDATEs, an audit
-- insert.  Fewer guarantees than the extension and than
-- bench/baseline_plpgsql.sql: a subscription activated, or an invoice
-- added, while it runs is not seen; nothing is verified afterwards; a
-- second call erases again and writes a second audit row (no idempotency
-- check).  Same rules and results otherwise, so that bench/check.sql can
-- compare it.
--
-- Load: psql -f bench/baseline_straight.sql   (after examples/billing.sql)

CREATE SCHEMA IF NOT EXISTS bench;

CREATE TABLE IF NOT EXISTS bench.audit_straight (
	customer_id		uuid NOT NULL,
	anonymized_at	timestamptz NOT NULL,
	anonymized_by	name NOT NULL,
	customer_kind	text NOT NULL,
	rows_deleted	jsonb NOT NULL
);

CREATE OR REPLACE FUNCTION bench.anonymize_straight(p_customer_id uuid,
	OUT anonymized boolean, OUT customer_kind text, OUT rows_deleted jsonb)
LANGUAGE plpgsql VOLATILE AS
$$
DECLARE
	v_company		text;
	v_is_company	boolean;
	v_emails		bigint;
	v_activity		bigint;
	v_webhooks		bigint;
	v_init_subs		bigint;
BEGIN
	PERFORM 1 FROM billing.customers WHERE id = p_customer_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', p_customer_id
			USING ERRCODE = 'no_data_found';
	END IF;

	IF EXISTS (SELECT FROM billing.subscriptions
				WHERE customer_id = p_customer_id
				  AND state NOT IN ('initialized', 'terminated'))
	   OR EXISTS (SELECT FROM billing.invoices
				   WHERE customer_id = p_customer_id
					 AND status NOT IN ('paid', 'cancelled'))
	   OR coalesce((SELECT sum(amount) FROM billing.balance_entries
					 WHERE customer_id = p_customer_id), 0) <> 0 THEN
		RAISE EXCEPTION 'customer % cannot be anonymized', p_customer_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;

	DELETE FROM billing.sent_emails WHERE customer_id = p_customer_id;
	GET DIAGNOSTICS v_emails = ROW_COUNT;
	DELETE FROM billing.customer_activity WHERE customer_id = p_customer_id;
	GET DIAGNOSTICS v_activity = ROW_COUNT;
	DELETE FROM billing.webhook_notifications WHERE customer_id = p_customer_id;
	GET DIAGNOSTICS v_webhooks = ROW_COUNT;
	DELETE FROM billing.subscriptions
	 WHERE customer_id = p_customer_id AND state = 'initialized';
	GET DIAGNOSTICS v_init_subs = ROW_COUNT;

	UPDATE billing.billing_addresses
	   SET first_name = NULL, last_name = NULL, phone = NULL,
		   address_line1 = CASE WHEN company ~ '[^[:space:]]' THEN address_line1 END,
		   address_line2 = CASE WHEN company ~ '[^[:space:]]' THEN address_line2 END,
		   city = CASE WHEN company ~ '[^[:space:]]' THEN city END,
		   postal_code = CASE WHEN company ~ '[^[:space:]]' THEN postal_code END,
		   region = CASE WHEN company ~ '[^[:space:]]' THEN region END
	 WHERE customer_id = p_customer_id
	RETURNING company INTO v_company;
	v_is_company := coalesce(v_company ~ '[^[:space:]]', false);
	UPDATE billing.customers
	   SET name = CASE WHEN v_is_company THEN v_company END, email = NULL
	 WHERE id = p_customer_id;

	anonymized := true;
	customer_kind := CASE WHEN v_is_company THEN 'company' ELSE 'individual' END;
	rows_deleted := jsonb_build_object(
		'sent_emails', v_emails,
		'customer_activity', v_activity,
		'webhook_notifications', v_webhooks,
		'initialized_subscriptions', v_init_subs);
	INSERT INTO bench.audit_straight VALUES
		(p_customer_id, now(), current_user, customer_kind, rows_deleted);
END
$$;

COMMENT ON FUNCTION bench.anonymize_straight(uuid) IS
'Benchmark baseline: the straightforward hand-written PL/pgSQL (customer locked, blockers checked with EXISTS, no verification).';
