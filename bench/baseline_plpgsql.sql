-- bench/baseline_plpgsql.sql
--
-- Benchmark baseline (never installed): a PL/pgSQL implementation of
-- anonymize.anonymize_customer() with the same guarantees, for the mapping of
-- examples/billing.sql (examples/billing_mapping.sql, which the extension
-- is given after CREATE EXTENSION), with the same rules, the same locking
-- and the same verification, written out by hand for this one schema
-- (bench/baseline_straight.sql is the one with fewer guarantees):
--
--   1. SELECT ... FOR UPDATE on the customer row (P0002 when unknown).
--   2. Already anonymized (a row in bench.audit_plpgsql): return
--      anonymized = false, change nothing.
--   3. Blockers (blocker rules subscriptions_not_terminated and
--      unsettled_invoices, balance rule balance), with every subscription,
--      invoice and balance line of the customer locked FOR SHARE: a
--      subscription not in ('initialized', 'terminated'), an invoice not in
--      ('paid', 'cancelled'), balance lines not summing to 0.  Any of them:
--      SQLSTATE 55000, the detail lists each.
--   4. Purge (purge rules sent_emails, customer_activity,
--      webhook_notifications, initialized_subscriptions): delete the
--      customer's sent_emails, customer_activity, webhook_notifications and
--      'initialized' subscriptions.
--   5. Billing address (scope billing_address; the company test: company
--      holds a non-blank character; no address row: an individual): erase
--      rule billing_address_contact, for everyone, erases first_name,
--      last_name, phone; erase rule billing_address_street, for an
--      individual only, also address_line1, address_line2, city,
--      postal_code, region (country stays).  One UPDATE of the row.
--   6. Customer: email := NULL; name := company for a company, else NULL.
--   7. Verification, as the extension does it: no row left in a purged
--      table, no value left in an erased column (27000 otherwise).
--   8. Audit row into bench.audit_plpgsql (same shape as anonymize.audit_log:
--      rows_deleted per purge rule, rows_updated per erase rule).
--
-- Returns the same columns as the extension: (anonymized, customer_kind,
-- rows_deleted jsonb keyed by the mapping's purge rule names).
--
-- Load: psql -f bench/baseline_plpgsql.sql   (after examples/billing.sql)

CREATE SCHEMA IF NOT EXISTS bench;

CREATE TABLE IF NOT EXISTS bench.audit_plpgsql (
	customer_id		uuid PRIMARY KEY,
	anonymized_at	timestamptz NOT NULL,
	anonymized_by	name NOT NULL,
	customer_kind	text NOT NULL CHECK (customer_kind IN ('company', 'individual')),
	rows_deleted	jsonb NOT NULL,
	rows_updated	jsonb NOT NULL
);

CREATE OR REPLACE FUNCTION bench.anonymize_plpgsql(p_customer_id uuid,
	OUT anonymized boolean, OUT customer_kind text, OUT rows_deleted jsonb)
LANGUAGE plpgsql VOLATILE AS
$$
DECLARE
	v_kind			text;
	v_company		text;
	v_is_company	boolean;
	v_subs_blocking	bigint;
	v_inv_blocking	bigint;
	v_balance		numeric;
	v_problems		text[] := '{}';
	v_emails		bigint;
	v_activity		bigint;
	v_webhooks		bigint;
	v_init_subs		bigint;
	v_addresses		bigint;
BEGIN
	IF p_customer_id IS NULL THEN
		RAISE EXCEPTION 'customer id must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;

	-- 1. lock the customer
	PERFORM 1 FROM billing.customers c WHERE c.id = p_customer_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', p_customer_id
			USING ERRCODE = 'no_data_found';
	END IF;

	-- 2. already anonymized?
	SELECT a.customer_kind INTO v_kind
	  FROM bench.audit_plpgsql a WHERE a.customer_id = p_customer_id;
	IF FOUND THEN
		anonymized := false;
		customer_kind := v_kind;
		rows_deleted := '{}';
		RETURN;
	END IF;

	-- 3. blockers, every row of the customer locked FOR SHARE
	SELECT count(*) FILTER (WHERE s.state NOT IN ('initialized', 'terminated'))
	  INTO v_subs_blocking
	  FROM (SELECT state FROM billing.subscriptions
			 WHERE customer_id = p_customer_id FOR SHARE) s;
	SELECT count(*) FILTER (WHERE i.status NOT IN ('paid', 'cancelled'))
	  INTO v_inv_blocking
	  FROM (SELECT status FROM billing.invoices
			 WHERE customer_id = p_customer_id FOR SHARE) i;
	SELECT coalesce(sum(b.amount), 0)
	  INTO v_balance
	  FROM (SELECT amount FROM billing.balance_entries
			 WHERE customer_id = p_customer_id FOR SHARE) b;

	IF v_subs_blocking > 0 THEN
		v_problems := v_problems || format('subscription not terminated (%s rows)', v_subs_blocking);
	END IF;
	IF v_inv_blocking > 0 THEN
		v_problems := v_problems || format('invoice not paid or cancelled (%s rows)', v_inv_blocking);
	END IF;
	IF v_balance <> 0 THEN
		v_problems := v_problems || format('non-zero balance (%s)', v_balance);
	END IF;
	IF cardinality(v_problems) > 0 THEN
		RAISE EXCEPTION 'customer % cannot be anonymized', p_customer_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = array_to_string(v_problems, '; ');
	END IF;

	-- 4. purge
	DELETE FROM billing.sent_emails WHERE customer_id = p_customer_id;
	GET DIAGNOSTICS v_emails = ROW_COUNT;
	DELETE FROM billing.customer_activity WHERE customer_id = p_customer_id;
	GET DIAGNOSTICS v_activity = ROW_COUNT;
	DELETE FROM billing.webhook_notifications WHERE customer_id = p_customer_id;
	GET DIAGNOSTICS v_webhooks = ROW_COUNT;
	DELETE FROM billing.subscriptions
	 WHERE customer_id = p_customer_id AND state = 'initialized';
	GET DIAGNOSTICS v_init_subs = ROW_COUNT;

	-- 5. billing address: the company test, then its erase rules
	SELECT a.company INTO v_company
	  FROM billing.billing_addresses a WHERE a.customer_id = p_customer_id;
	v_is_company := coalesce(v_company ~ '[^[:space:]]', false);
	IF v_is_company THEN
		UPDATE billing.billing_addresses
		   SET first_name = NULL, last_name = NULL, phone = NULL
		 WHERE customer_id = p_customer_id;
		GET DIAGNOSTICS v_addresses = ROW_COUNT;
	ELSE
		UPDATE billing.billing_addresses
		   SET first_name = NULL, last_name = NULL, phone = NULL,
			   address_line1 = NULL, address_line2 = NULL, city = NULL,
			   postal_code = NULL, region = NULL
		 WHERE customer_id = p_customer_id;
		GET DIAGNOSTICS v_addresses = ROW_COUNT;
	END IF;

	-- 6. customer
	UPDATE billing.customers
	   SET name = CASE WHEN v_is_company THEN v_company END, email = NULL
	 WHERE id = p_customer_id;

	-- 7. verification, as the extension's: nothing the rules erase is left
	IF EXISTS (SELECT FROM billing.sent_emails WHERE customer_id = p_customer_id)
	   OR EXISTS (SELECT FROM billing.customer_activity WHERE customer_id = p_customer_id)
	   OR EXISTS (SELECT FROM billing.webhook_notifications WHERE customer_id = p_customer_id)
	   OR EXISTS (SELECT FROM billing.subscriptions
				   WHERE customer_id = p_customer_id AND state = 'initialized')
	   OR EXISTS (SELECT FROM billing.customers
				   WHERE id = p_customer_id
					 AND (email IS NOT NULL
						  OR name IS DISTINCT FROM CASE WHEN v_is_company THEN v_company END))
	   OR EXISTS (SELECT FROM billing.billing_addresses
				   WHERE customer_id = p_customer_id
					 AND (first_name IS NOT NULL OR last_name IS NOT NULL OR phone IS NOT NULL
						  OR (NOT v_is_company
							  AND (address_line1 IS NOT NULL OR address_line2 IS NOT NULL
								   OR city IS NOT NULL OR postal_code IS NOT NULL
								   OR region IS NOT NULL)))) THEN
		RAISE EXCEPTION 'personal data of customer % is still there after the erasure',
			p_customer_id USING ERRCODE = 'invalid_transaction_state';
	END IF;

	-- 8. audit
	anonymized := true;
	customer_kind := CASE WHEN v_is_company THEN 'company' ELSE 'individual' END;
	rows_deleted := jsonb_build_object(
		'sent_emails', v_emails,
		'customer_activity', v_activity,
		'webhook_notifications', v_webhooks,
		'initialized_subscriptions', v_init_subs);
	INSERT INTO bench.audit_plpgsql
		(customer_id, anonymized_at, anonymized_by, customer_kind, rows_deleted,
		 rows_updated)
	VALUES (p_customer_id, now(), current_user, customer_kind, rows_deleted,
			jsonb_build_object(
				'billing_address_contact', v_addresses,
				'billing_address_street', CASE WHEN v_is_company THEN 0 ELSE v_addresses END));
END
$$;

COMMENT ON FUNCTION bench.anonymize_plpgsql(uuid) IS
'Benchmark baseline: anonymize_customer() in PL/pgSQL with the same guarantees (same rules, same locks, the verification).';
