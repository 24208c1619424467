/* anonymize--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION anonymize" to load this file. \quit

/*
 * Configuration: where the personal data of a customer lives.
 *
 * Relations and columns are stored by name (schema and relation apart) and
 * resolved when the plans are built, so a mapping survives dump and restore
 * and a stale entry is reported by name.  Rows inserted by this script are
 * marked "preset" and left out of dumps; changing one clears the mark, so
 * the change is dumped, and restoring it replaces the preset row.
 */
CREATE TABLE anonymize.customer_mapping (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	customer_schema	name NOT NULL,
	customer_table	name NOT NULL,
	key_column		name NOT NULL,
	name_column		name NOT NULL,
	email_column	name NOT NULL,
	address_schema	name NOT NULL,
	address_table	name NOT NULL,
	address_key_column name NOT NULL,
	company_column	name NOT NULL,
	first_name_column name NOT NULL,
	last_name_column name NOT NULL,
	phone_column	name NOT NULL,
	address_columns	name[] NOT NULL,
	country_column	name NOT NULL,
	placeholder		text NOT NULL DEFAULT '',
	preset			boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE anonymize.customer_mapping IS
'Where the customer and its billing address live; one row.  Change it with anonymize.set_customer_relation() and anonymize.set_billing_address().';

CREATE TABLE anonymize.purge_rules (
	rule_name		text PRIMARY KEY,
	relation_schema	name NOT NULL,
	relation_name	name NOT NULL,
	key_column		name NOT NULL,
	condition		text,
	enabled			boolean NOT NULL DEFAULT true,
	preset			boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE anonymize.purge_rules IS
'Rows deleted when a customer is anonymized: those of the relation whose key column holds the customer id and that match the optional condition.';

CREATE TABLE anonymize.blocker_rules (
	rule_name		text PRIMARY KEY,
	relation_schema	name NOT NULL,
	relation_name	name NOT NULL,
	key_column		name NOT NULL,
	condition		text NOT NULL,
	reason			text NOT NULL,
	enabled			boolean NOT NULL DEFAULT true,
	preset			boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE anonymize.blocker_rules IS
'A customer with a row of the relation that matches the condition cannot be anonymized.';

CREATE TABLE anonymize.balance_rules (
	rule_name		text PRIMARY KEY,
	relation_schema	name NOT NULL,
	relation_name	name NOT NULL,
	key_column		name NOT NULL,
	amount_expression text NOT NULL,
	reason			text NOT NULL DEFAULT 'non-zero balance',
	enabled			boolean NOT NULL DEFAULT true,
	preset			boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE anonymize.balance_rules IS
'A customer whose amounts in the relation do not sum to zero cannot be anonymized.';

/* The audit log holds no personal data: who, when, which rule, how many rows. */
CREATE TABLE anonymize.audit_log (
	customer_id		uuid PRIMARY KEY,
	anonymized_at	timestamptz NOT NULL,
	anonymized_by	name NOT NULL,
	customer_kind	text NOT NULL CHECK (customer_kind IN ('company', 'individual')),
	rows_deleted	jsonb NOT NULL
);
COMMENT ON TABLE anonymize.audit_log IS
'One row per anonymized customer, written by anonymize.anonymize_customer().';

/* The mapping of examples/billing.sql. */
INSERT INTO anonymize.customer_mapping
	(customer_schema, customer_table, key_column, name_column, email_column,
	 address_schema, address_table, address_key_column, company_column,
	 first_name_column, last_name_column, phone_column, address_columns,
	 country_column, preset)
VALUES
	('billing', 'customers', 'id', 'name', 'email',
	 'billing', 'billing_addresses', 'customer_id', 'company',
	 'first_name', 'last_name', 'phone',
	 '{address_line1,address_line2,city,postal_code,region}', 'country', true);

INSERT INTO anonymize.purge_rules
	(rule_name, relation_schema, relation_name, key_column, condition, preset)
VALUES
	('sent_emails', 'billing', 'sent_emails', 'customer_id', NULL, true),
	('customer_activity', 'billing', 'customer_activity', 'customer_id', NULL, true),
	('webhook_notifications', 'billing', 'webhook_notifications', 'customer_id', NULL, true),
	('initialized_subscriptions', 'billing', 'subscriptions', 'customer_id',
	 $$state = 'initialized'$$, true);

INSERT INTO anonymize.blocker_rules
	(rule_name, relation_schema, relation_name, key_column, condition, reason, preset)
VALUES
	('subscriptions_not_terminated', 'billing', 'subscriptions', 'customer_id',
	 $$state NOT IN ('initialized', 'terminated')$$, 'subscription not terminated', true),
	('unsettled_invoices', 'billing', 'invoices', 'customer_id',
	 $$status NOT IN ('paid', 'cancelled')$$, 'invoice not paid or cancelled', true);

INSERT INTO anonymize.balance_rules
	(rule_name, relation_schema, relation_name, key_column, amount_expression, preset)
VALUES
	('balance', 'billing', 'balance_entries', 'customer_id', 'amount', true);

SELECT pg_catalog.pg_extension_config_dump('anonymize.customer_mapping', 'WHERE NOT preset');
SELECT pg_catalog.pg_extension_config_dump('anonymize.purge_rules', 'WHERE NOT preset');
SELECT pg_catalog.pg_extension_config_dump('anonymize.blocker_rules', 'WHERE NOT preset');
SELECT pg_catalog.pg_extension_config_dump('anonymize.balance_rules', 'WHERE NOT preset');
SELECT pg_catalog.pg_extension_config_dump('anonymize.audit_log', '');

/*
 * Triggers on the configuration tables: a changed row is no longer a preset;
 * a restored row replaces the preset of the same key; and every change makes
 * each backend rebuild its plans.
 */
CREATE FUNCTION anonymize.mapping_row_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	IF TG_OP = 'INSERT' AND NOT NEW.preset THEN
		EXECUTE pg_catalog.format('DELETE FROM %I.%I WHERE preset AND %I::pg_catalog.text OPERATOR(pg_catalog.=) $1',
								  TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0])
		USING (pg_catalog.row_to_json(NEW) OPERATOR(pg_catalog.->>) TG_ARGV[0]);
	ELSIF TG_OP = 'UPDATE' THEN
		NEW.preset := false;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION anonymize.mapping_row_changed() IS
'Trigger: clears the preset mark of a changed mapping row; a restored row replaces its preset.';

CREATE FUNCTION anonymize.mapping_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'anonymize_mapping_changed' LANGUAGE C;
COMMENT ON FUNCTION anonymize.mapping_changed() IS
'Trigger: makes every backend rebuild its anonymization plans after the mapping changed.';

CREATE TRIGGER preset_row BEFORE INSERT OR UPDATE ON anonymize.customer_mapping
	FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_row_changed('singleton');
CREATE TRIGGER preset_row BEFORE INSERT OR UPDATE ON anonymize.purge_rules
	FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_row_changed('rule_name');
CREATE TRIGGER preset_row BEFORE INSERT OR UPDATE ON anonymize.blocker_rules
	FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_row_changed('rule_name');
CREATE TRIGGER preset_row BEFORE INSERT OR UPDATE ON anonymize.balance_rules
	FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_row_changed('rule_name');

CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON anonymize.customer_mapping FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON anonymize.purge_rules FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON anonymize.blocker_rules FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON anonymize.balance_rules FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();

/*
 * The work: eligibility and erasure of one customer.  They run with the
 * caller's rights, so table privileges and row-level security apply.
 */
CREATE FUNCTION anonymize.can_anonymize(customer_id uuid) RETURNS boolean
AS 'MODULE_PATHNAME', 'anonymize_can_anonymize'
LANGUAGE C STRICT STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.can_anonymize(uuid) IS
'True when the customer exists, is not anonymized yet and nothing blocks its anonymization.  Takes no row locks.';

CREATE FUNCTION anonymize.blockers(customer_id uuid)
RETURNS TABLE (rule_name text, reason text, relation regclass, rows bigint, amount numeric)
AS 'MODULE_PATHNAME', 'anonymize_blockers'
LANGUAGE C STRICT STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.blockers(uuid) IS
'One row per reason why the customer cannot be anonymized now; empty when it can.';

CREATE FUNCTION anonymize.anonymize_customer(customer_id uuid,
	OUT anonymized boolean, OUT customer_kind text, OUT rows_deleted jsonb)
AS 'MODULE_PATHNAME', 'anonymize_anonymize_customer'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.anonymize_customer(uuid) IS
'Erases the personal data of an eligible customer in the current transaction; anonymized is false when it already was.';
REVOKE EXECUTE ON FUNCTION anonymize.anonymize_customer(uuid) FROM PUBLIC;

/*
 * Changing the mapping.  Each function validates its row at once (relation
 * and columns exist, key is uuid, conditions are boolean expressions) and
 * saves nothing when the row is wrong.  Only the extension's owner may.
 */
CREATE FUNCTION anonymize.check_relation(relation regclass, key_column name,
	columns name[] DEFAULT '{}', expression text DEFAULT NULL,
	expression_kind text DEFAULT 'condition')
RETURNS void
AS 'MODULE_PATHNAME', 'anonymize_check_relation'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.check_relation(regclass, name, name[], text, text) IS
'Raises an error unless the caller owns the extension, the key column is a uuid, the columns exist and the expression is a valid condition (boolean) or amount (numeric) on the relation.';

CREATE FUNCTION anonymize.check_distinct_columns(columns name[])
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	twice name;
BEGIN
	SELECT c INTO twice FROM pg_catalog.unnest(columns) c
	 GROUP BY c HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1 LIMIT 1;
	IF twice IS NOT NULL THEN
		RAISE EXCEPTION 'column "%" is mapped more than once', twice
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Every column erased from a relation, and its country column, must be mapped once.';
	END IF;
END
$$;
COMMENT ON FUNCTION anonymize.check_distinct_columns(name[]) IS
'Raises an error if a column appears twice among the columns erased from one relation.';

CREATE FUNCTION anonymize.set_customer_relation(relation regclass,
	key_column name, name_column name, email_column name)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	rel_schema name;
	rel_name name;
BEGIN
	PERFORM anonymize.check_relation(relation, key_column,
									 ARRAY[name_column, email_column]);
	SELECT n.nspname, c.relname INTO rel_schema, rel_name
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = relation;
	/* The billing address may sit on the customer relation. */
	PERFORM anonymize.check_distinct_columns(ARRAY[set_customer_relation.name_column,
												   set_customer_relation.email_column]
		|| CASE WHEN m.address_schema OPERATOR(pg_catalog.=) rel_schema
				 AND m.address_table OPERATOR(pg_catalog.=) rel_name
			THEN ARRAY[m.first_name_column, m.last_name_column, m.phone_column,
					   m.country_column] || m.address_columns
			ELSE '{}' END)
	   FROM anonymize.customer_mapping m;
	UPDATE anonymize.customer_mapping
	   SET customer_schema = rel_schema, customer_table = rel_name,
		   key_column = set_customer_relation.key_column,
		   name_column = set_customer_relation.name_column,
		   email_column = set_customer_relation.email_column;
END
$$;
COMMENT ON FUNCTION anonymize.set_customer_relation(regclass, name, name, name) IS
'Maps the customer relation: its uuid key, the name and the email columns.';

CREATE FUNCTION anonymize.set_billing_address(relation regclass,
	key_column name, company_column name, first_name_column name,
	last_name_column name, phone_column name, address_columns name[],
	country_column name)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	rel_schema name;
	rel_name name;
BEGIN
	PERFORM anonymize.check_relation(relation, key_column,
		ARRAY[company_column, first_name_column, last_name_column,
			  phone_column, country_column] || address_columns);
	IF country_column = ANY (address_columns) THEN
		RAISE EXCEPTION 'country column "%" cannot be erased', country_column
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The country of the billing address is kept for accounting.';
	END IF;
	SELECT n.nspname, c.relname INTO rel_schema, rel_name
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = relation;
	PERFORM anonymize.check_distinct_columns(ARRAY[set_billing_address.first_name_column,
			set_billing_address.last_name_column, set_billing_address.phone_column,
			set_billing_address.country_column] || set_billing_address.address_columns
		|| CASE WHEN m.customer_schema OPERATOR(pg_catalog.=) rel_schema
				 AND m.customer_table OPERATOR(pg_catalog.=) rel_name
			THEN ARRAY[m.name_column, m.email_column] ELSE '{}' END)
	   FROM anonymize.customer_mapping m;
	UPDATE anonymize.customer_mapping
	   SET address_schema = rel_schema, address_table = rel_name,
		   address_key_column = set_billing_address.key_column,
		   company_column = set_billing_address.company_column,
		   first_name_column = set_billing_address.first_name_column,
		   last_name_column = set_billing_address.last_name_column,
		   phone_column = set_billing_address.phone_column,
		   address_columns = set_billing_address.address_columns,
		   country_column = set_billing_address.country_column;
END
$$;
COMMENT ON FUNCTION anonymize.set_billing_address(regclass, name, name, name, name, name, name[], name) IS
'Maps the billing address relation (which may be the customer relation itself): its uuid key, company, names, phone, the address columns erased for individuals and the country column that is kept.';

CREATE FUNCTION anonymize.set_placeholder(placeholder text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	IF placeholder IS NULL THEN
		RAISE EXCEPTION 'placeholder cannot be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Use an empty string to write nothing into NOT NULL columns.';
	END IF;
	UPDATE anonymize.customer_mapping SET placeholder = set_placeholder.placeholder;
END
$$;
COMMENT ON FUNCTION anonymize.set_placeholder(text) IS
'Sets the value written instead of NULL into erased columns that are NOT NULL (default: empty string).';

CREATE FUNCTION anonymize.set_purge_rule(rule_name text, relation regclass,
	key_column name, condition text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.check_relation(relation, key_column, '{}', condition, 'condition');
	INSERT INTO anonymize.purge_rules AS r
		(rule_name, relation_schema, relation_name, key_column, condition)
	SELECT set_purge_rule.rule_name, n.nspname, c.relname,
		   set_purge_rule.key_column, set_purge_rule.condition
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = relation
	ON CONFLICT ON CONSTRAINT purge_rules_pkey DO UPDATE
	   SET relation_schema = EXCLUDED.relation_schema,
		   relation_name = EXCLUDED.relation_name,
		   key_column = EXCLUDED.key_column,
		   condition = EXCLUDED.condition,
		   enabled = true;
END
$$;
COMMENT ON FUNCTION anonymize.set_purge_rule(text, regclass, name, text) IS
'Adds or replaces a purge rule: the customer''s rows of the relation matching the optional condition are deleted.';

CREATE FUNCTION anonymize.set_blocker_rule(rule_name text, relation regclass,
	key_column name, condition text, reason text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	IF condition IS NULL OR reason IS NULL THEN
		RAISE EXCEPTION 'blocker rule "%" needs a condition and a reason', rule_name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM anonymize.check_relation(relation, key_column, '{}', condition, 'condition');
	INSERT INTO anonymize.blocker_rules AS r
		(rule_name, relation_schema, relation_name, key_column, condition, reason)
	SELECT set_blocker_rule.rule_name, n.nspname, c.relname,
		   set_blocker_rule.key_column, set_blocker_rule.condition,
		   set_blocker_rule.reason
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = relation
	ON CONFLICT ON CONSTRAINT blocker_rules_pkey DO UPDATE
	   SET relation_schema = EXCLUDED.relation_schema,
		   relation_name = EXCLUDED.relation_name,
		   key_column = EXCLUDED.key_column,
		   condition = EXCLUDED.condition,
		   reason = EXCLUDED.reason,
		   enabled = true;
END
$$;
COMMENT ON FUNCTION anonymize.set_blocker_rule(text, regclass, name, text, text) IS
'Adds or replaces a blocker rule: a row of the customer matching the condition refuses its anonymization, for the given reason.';

CREATE FUNCTION anonymize.set_balance_rule(rule_name text, relation regclass,
	key_column name, amount_expression text,
	reason text DEFAULT 'non-zero balance')
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	IF amount_expression IS NULL OR reason IS NULL THEN
		RAISE EXCEPTION 'balance rule "%" needs an amount expression and a reason', rule_name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM anonymize.check_relation(relation, key_column, '{}', amount_expression, 'amount');
	INSERT INTO anonymize.balance_rules AS r
		(rule_name, relation_schema, relation_name, key_column, amount_expression, reason)
	SELECT set_balance_rule.rule_name, n.nspname, c.relname,
		   set_balance_rule.key_column, set_balance_rule.amount_expression,
		   set_balance_rule.reason
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = relation
	ON CONFLICT ON CONSTRAINT balance_rules_pkey DO UPDATE
	   SET relation_schema = EXCLUDED.relation_schema,
		   relation_name = EXCLUDED.relation_name,
		   key_column = EXCLUDED.key_column,
		   amount_expression = EXCLUDED.amount_expression,
		   reason = EXCLUDED.reason,
		   enabled = true;
END
$$;
COMMENT ON FUNCTION anonymize.set_balance_rule(text, regclass, name, text, text) IS
'Adds or replaces a balance rule: the customer''s amounts in the relation must sum to zero.';

CREATE FUNCTION anonymize.drop_rule(rule_name text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	found_rows bigint := 0;
	n bigint;
BEGIN
	/* A preset is disabled rather than deleted, so that dumps remember it. */
	UPDATE anonymize.purge_rules r SET enabled = false WHERE r.rule_name = drop_rule.rule_name;
	GET DIAGNOSTICS n = ROW_COUNT; found_rows := found_rows + n;
	UPDATE anonymize.blocker_rules r SET enabled = false WHERE r.rule_name = drop_rule.rule_name;
	GET DIAGNOSTICS n = ROW_COUNT; found_rows := found_rows + n;
	UPDATE anonymize.balance_rules r SET enabled = false WHERE r.rule_name = drop_rule.rule_name;
	GET DIAGNOSTICS n = ROW_COUNT; found_rows := found_rows + n;
	IF found_rows = 0 THEN
		RAISE EXCEPTION 'rule "%" does not exist', rule_name
			USING ERRCODE = 'undefined_object';
	END IF;
END
$$;
COMMENT ON FUNCTION anonymize.drop_rule(text) IS
'Disables the purge, blocker or balance rule of that name; set_*_rule() enables it again.';

REVOKE EXECUTE ON FUNCTION anonymize.check_relation(regclass, name, name[], text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.check_distinct_columns(name[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_customer_relation(regclass, name, name, name) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_billing_address(regclass, name, name, name, name, name, name[], name) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_placeholder(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_purge_rule(text, regclass, name, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_blocker_rule(text, regclass, name, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_balance_rule(text, regclass, name, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.drop_rule(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.mapping_row_changed() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.mapping_changed() FROM PUBLIC;
