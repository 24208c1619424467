--
-- mapping_validation: every change of the mapping validates the whole
-- mapping at once (anonymize.check_mapping(), in C, as the plans would be
-- built) and saves nothing when it is wrong.  Each error says what is wrong
-- with the entry and names it (the CONTEXT "anonymize scope ...",
-- "anonymize rule ... on scope ...", "anonymize company test on scope
-- ..."), with the SQLSTATE of the mistake: the relation exists and is a
-- table; columns exist; the customer key is a uuid and link columns can
-- link; a condition is one boolean expression, an amount one numeric
-- expression, a replacement one expression that fits its column; a NOT
-- NULL column that is no character column has a replacement; a column is
-- erased by one rule per kind of customer; scopes and rules refer to
-- scopes that exist.  A valid change is used at once by the same session
-- (a rolled back one is forgotten at once), drop_rule() removes a rule,
-- and a stale mapping is reported by name.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

-- The whole mapping, to compare before and after.
CREATE TEMP VIEW config AS
SELECT 'customer_relation' AS tab, to_jsonb(c) - 'singleton' AS entry
  FROM anonymize.customer_relation c
UNION ALL
SELECT 'scopes', to_jsonb(s) FROM anonymize.scopes s
UNION ALL
SELECT 'rules', to_jsonb(r) FROM anonymize.rules r;

-- A mistake: its SQLSTATE and message, DETAIL and HINT, and the entry the
-- CONTEXT names (not the PL/pgSQL call stack around it).
CREATE FUNCTION pg_temp.mistake(sql text) RETURNS SETOF text
LANGUAGE plpgsql AS
$$
DECLARE
	state text;
	message text;
	detail text;
	hint text;
	context text;
BEGIN
	EXECUTE sql;
	RETURN NEXT 'accepted';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT,
		context = PG_EXCEPTION_CONTEXT;
	RETURN NEXT state || ': ' || message;
	IF detail <> '' THEN RETURN NEXT 'DETAIL: ' || detail; END IF;
	IF hint <> '' THEN RETURN NEXT 'HINT: ' || hint; END IF;
	RETURN QUERY SELECT 'ENTRY: ' || line
		FROM regexp_split_to_table(context, E'\n') AS line
	   WHERE line ~ '^anonymize (scope|rule|company test)';
END
$$;

-- Whether the error of a mistake names the entry: its SQLSTATE, and true
-- when the name, in double quotes, appears in the message, DETAIL, HINT or
-- CONTEXT.  An accepted change is rolled back, so that each mistake is
-- tried on the same mapping.
CREATE FUNCTION pg_temp.names_entry(sql text, entry text,
	OUT state text, OUT names_entry boolean)
LANGUAGE plpgsql AS
$$
DECLARE
	message text;
	detail text;
	hint text;
	context text;
BEGIN
	EXECUTE sql;
	RAISE EXCEPTION 'accepted' USING ERRCODE = 'XX999';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT,
		context = PG_EXCEPTION_CONTEXT;
	IF state = 'XX999' THEN
		state := 'accepted';
	ELSE
		names_entry := strpos(concat_ws(E'\n', message, detail, hint, context),
							  '"' || entry || '"') > 0;
	END IF;
END
$$;

-- The example mapping.
SELECT * FROM anonymize.customer_relation;
SELECT * FROM anonymize.scopes ORDER BY scope_name;
SELECT * FROM anonymize.rules ORDER BY rule_name;
CREATE TEMP TABLE config_before AS SELECT * FROM config;

-- Build this session's plans with the example mapping.
SELECT anonymize.can_anonymize(:'jean');

CREATE TABLE billing.support_tickets (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_ref uuid NOT NULL,
	body		text,
	status		text NOT NULL DEFAULT 'open',
	opened		date NOT NULL DEFAULT '2024-01-01',
	payload		jsonb,
	words		integer GENERATED ALWAYS AS (length(body)) STORED
);
INSERT INTO billing.support_tickets (customer_ref, body) VALUES
	(:'jean', 'my card was charged twice'),
	(:'maria', 'please call me');
CREATE VIEW billing.ticket_view AS SELECT * FROM billing.support_tickets;
-- Replies to tickets: a scope of a scope.
CREATE TABLE billing.ticket_replies (
	ticket_id	bigint NOT NULL REFERENCES billing.support_tickets,
	body		text
);
-- A table without a primary key.
CREATE TABLE billing.ticket_log (customer_ref uuid, line text);
INSERT INTO billing.ticket_log VALUES (:'maria', 'opened');

-- Unknown relation: the regclass argument fails.
SELECT anonymize.set_scope('tickets', 'billing.no_such_table', 'customer_ref');
SELECT anonymize.set_customer_relation('no_such_schema.people', 'id', 'name', 'email');

-- Not a table.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('tickets', 'billing.ticket_view', 'customer_ref')$$);

-- Missing columns: of a scope (key, parent column), of the customer
-- relation, of an erase rule (erased or replaced), in a condition.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('tickets', 'billing.support_tickets', 'customer_id')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('tickets', 'billing.support_tickets', 'customer_ref', parent_column => 'uuid')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_customer_relation('billing.customers', 'id', 'full_name', 'email')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('billing_address_street', 'billing_address', '{address_line1,address_line3}', 'individual')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('sent_email_bodies', 'sent_emails', '{}', replacements => '{"text": "''''"}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices', 'state = ''open''', 'open invoice')$$);

-- Columns that cannot link: the customer key is a uuid; key and parent
-- columns are uuid, text, varchar, char or integer.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_customer_relation('billing.customers', 'name', 'name', 'email')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('tickets', 'billing.support_tickets', 'payload')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('tickets', 'billing.support_tickets', 'customer_ref', parent => 'invoices', parent_column => 'amount')$$);
-- A parent without a single-column primary key needs its parent column.
SELECT anonymize.set_scope('ticket_log', 'billing.ticket_log', 'customer_ref');
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('ticket_log_lines', 'billing.ticket_log', 'line', parent => 'ticket_log')$$);

-- Conditions that are not boolean: of a rule, of a scope, of the company
-- test; an amount that is not numeric.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails', 'subject')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices', '1', 'open invoice')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('invoices', 'billing.invoices', 'customer_id', condition => 'status')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_company_test('billing_address', 'company', 'company')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_balance_rule('balance', 'balance_entries', 'description')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_balance_rule('balance', 'balance_entries', 'amount > 0')$$);

-- Texts that are not a single expression: a condition, a scope condition,
-- a company name, a replacement, an amount.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails', 'true) OR (true')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails', 'true; DELETE FROM billing.invoices')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices', 'true UNION SELECT false', 'open invoice')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('invoices', 'billing.invoices', 'customer_id', condition => 'true FROM billing.invoices')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_company_test('billing_address', 'true', 'company ORDER BY 1')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('billing_address_contact', 'billing_address', '{first_name,last_name}', replacements => '{"phone": "NULL; DELETE FROM billing.invoices"}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_balance_rule('balance', 'balance_entries', 'amount LIMIT 1')$$);
-- A table in an expression must be schema-qualified (search_path is
-- pg_catalog, pg_temp).
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices', 'EXISTS (SELECT FROM invoices)', 'open invoice')$$);

-- Erase rules: a NOT NULL column that is no character column needs a
-- replacement; a replacement must fit its column and be a JSON string; a
-- generated column, the key column of the scope and the customer's name
-- cannot be set; a rule erases something; the email's replacement applies
-- to everyone.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('tickets', 'billing.support_tickets', 'customer_ref')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('ticket_dates', 'tickets', '{opened}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('ticket_dates', 'tickets', '{}', replacements => '{"opened": "pg_catalog.now()::text"}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('ticket_dates', 'tickets', '{}', replacements => '{"opened": null}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('ticket_words', 'tickets', '{words}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('ticket_refs', 'tickets', '{body,customer_ref}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('customer_names', 'customer', '{name}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('nothing', 'tickets', '{}')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('customer_email', 'customer', '{}', 'individual', '{"email": "''erased@invalid.example''"}')$$);
-- A NOT NULL character column gets the placeholder; a replacement that
-- can be assigned (now() into a date) is accepted.
SELECT anonymize.set_erase_rule('ticket_texts', 'tickets', '{body,status}',
	replacements => '{"opened": "pg_catalog.now()"}');

-- A column in two rules of one scope that can apply to the same customer,
-- or twice in one rule; one rule for companies and one for individuals is
-- fine, and so are rules on two scopes of the same relation.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('billing_address_phone', 'billing_address', '{phone}', 'company')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('billing_address_city', 'billing_address', '{region}', 'everyone')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('ticket_bodies', 'tickets', '{body}', replacements => '{"body": "''''"}')$$);
SELECT anonymize.set_erase_rule('billing_address_company_street', 'billing_address',
	'{address_line2}', 'company');
SELECT anonymize.set_scope('open_tickets', 'billing.support_tickets', 'customer_ref',
	condition => $$status = 'open'$$);
SELECT anonymize.set_erase_rule('open_ticket_texts', 'open_tickets', '{body}');

-- Scopes and rules: a scope that does not exist (of a rule, of the company
-- test, as a parent); a cycle of parents; the scope customer; a purge of
-- customers; a rule name of another kind.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_purge_rule('tickets', 'no_such_scope')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_company_test('no_such_scope', 'true', 'company')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('replies', 'billing.ticket_replies', 'ticket_id', parent => 'no_such_scope')$$);
SELECT anonymize.set_scope('replies', 'billing.ticket_replies', 'ticket_id', parent => 'tickets');
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('tickets', 'billing.support_tickets', 'id', parent => 'replies', parent_column => 'ticket_id')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_scope('customer', 'billing.support_tickets', 'customer_ref')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_purge_rule('customers', 'customer')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_blocker_rule('sent_emails', 'sent_emails', 'true', 'sent an email')$$);
-- The customer relation: name and email are two columns.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_customer_relation('billing.customers', 'id', 'email', 'email')$$);

-- Missing or invalid arguments.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_blocker_rule('tickets', 'tickets', NULL, 'open ticket')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_blocker_rule('tickets', 'tickets', 'true', NULL)$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('tickets', 'tickets', NULL)$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_erase_rule('tickets', 'tickets', '{body}', 'nobody')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.set_placeholder(NULL)$$);

-- Unknown or used entries.
SELECT * FROM pg_temp.mistake($$SELECT anonymize.drop_rule('no_such_rule')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.drop_scope('no_such_scope')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.drop_scope('tickets')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.drop_scope('billing_address')$$);
SELECT * FROM pg_temp.mistake($$SELECT anonymize.drop_scope('customer')$$);

-- The SQLSTATE of each mistake, and whether its error names the entry.
SELECT v.mistake, e.*
  FROM (VALUES
	('regclass of no relation', 'billing.no_such_table',
	 $$SELECT anonymize.set_scope('bad', 'billing.no_such_table', 'customer_ref')$$),
	('not a table', 'bad',
	 $$SELECT anonymize.set_scope('bad', 'billing.ticket_view', 'customer_ref')$$),
	('missing key column', 'bad',
	 $$SELECT anonymize.set_scope('bad', 'billing.support_tickets', 'customer_id')$$),
	('missing erased column', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'tickets', '{no_such_column}')$$),
	('customer key not uuid', 'name',
	 $$SELECT anonymize.set_customer_relation('billing.customers', 'name', 'name', 'email')$$),
	('key column of no link type', 'bad',
	 $$SELECT anonymize.set_scope('bad', 'billing.support_tickets', 'payload')$$),
	('bigint key under the uuid customer key', 'bad',
	 $$SELECT anonymize.set_scope('bad', 'billing.support_tickets', 'id')$$),
	('condition not boolean', 'bad',
	 $$SELECT anonymize.set_purge_rule('bad', 'tickets', 'body')$$),
	('scope condition not boolean', 'bad',
	 $$SELECT anonymize.set_scope('bad', 'billing.support_tickets', 'customer_ref', condition => 'body')$$),
	('company test not boolean', 'tickets',
	 $$SELECT anonymize.set_company_test('tickets', 'body', 'body')$$),
	('not one expression', 'bad',
	 $$SELECT anonymize.set_purge_rule('bad', 'tickets', 'true) OR (true')$$),
	('more than an expression', 'bad',
	 $$SELECT anonymize.set_purge_rule('bad', 'tickets', 'true; DELETE FROM billing.invoices')$$),
	('amount not numeric', 'bad',
	 $$SELECT anonymize.set_balance_rule('bad', 'tickets', 'body')$$),
	('NOT NULL date erased', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'tickets', '{opened}')$$),
	('NOT NULL date as the email', 'opened',
	 $$SELECT anonymize.set_customer_relation('billing.support_tickets', 'customer_ref', 'body', 'opened')$$),
	('date as the name', 'opened',
	 $$SELECT anonymize.set_customer_relation('billing.support_tickets', 'customer_ref', 'opened', 'body')$$),
	('replacement does not fit', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'tickets', '{}', replacements => '{"opened": "pg_catalog.now()::text"}')$$),
	('replacement not a string', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'tickets', '{}', replacements => '{"opened": 1}')$$),
	('replacements not an object', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'tickets', '{body}', replacements => '["payload"]')$$),
	('a null column name', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'tickets', '{body,NULL}')$$),
	('generated column erased', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'tickets', '{words}')$$),
	('key column erased', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'tickets', '{customer_ref}')$$),
	('column in two rules', 'bad',
	 $$SELECT anonymize.set_erase_rule('bad', 'billing_address', '{phone}')$$),
	('unknown scope of a rule', 'bad',
	 $$SELECT anonymize.set_purge_rule('bad', 'no_such_scope')$$),
	('unknown parent', 'bad',
	 $$SELECT anonymize.set_scope('bad', 'billing.ticket_replies', 'ticket_id', parent => 'no_such_scope')$$),
	('cycle of parents', 'replies',
	 $$SELECT anonymize.set_scope('tickets', 'billing.support_tickets', 'id', parent => 'replies', parent_column => 'ticket_id')$$),
	('purge of customers', 'bad',
	 $$SELECT anonymize.set_purge_rule('bad', 'customer')$$),
	('rule name of another kind', 'sent_emails',
	 $$SELECT anonymize.set_blocker_rule('sent_emails', 'sent_emails', 'true', 'x')$$),
	('unknown rule', 'bad',
	 $$SELECT anonymize.drop_rule('bad')$$),
	('unknown scope', 'bad',
	 $$SELECT anonymize.drop_scope('bad')$$),
	('scope in use', 'tickets',
	 $$SELECT anonymize.drop_scope('tickets')$$)) AS v (mistake, entry, sql),
	LATERAL pg_temp.names_entry(v.sql, v.entry) e;

-- Nothing was saved but the valid entries above, and the plans still work.
SELECT * FROM config EXCEPT ALL SELECT * FROM config_before ORDER BY 1, 2;
SELECT * FROM config_before EXCEPT ALL SELECT * FROM config ORDER BY 1, 2;
SELECT count(*) AS ticket_rows FROM billing.support_tickets;
SELECT anonymize.drop_rule('billing_address_company_street');
SELECT anonymize.drop_rule('open_ticket_texts');
SELECT anonymize.drop_rule('ticket_texts');
SELECT anonymize.drop_scope('open_tickets');
SELECT anonymize.drop_scope('replies');
SELECT anonymize.drop_scope('ticket_log');
SELECT * FROM config EXCEPT ALL SELECT * FROM config_before ORDER BY 1, 2;
SELECT anonymize.can_anonymize(:'jean');

-- A valid blocker rule is used at once.
SELECT anonymize.set_scope('customer_activity', 'billing.customer_activity', 'customer_id');
SELECT anonymize.set_blocker_rule('legal_hold', 'customer_activity',
	$$kind = 'legal_hold'$$, 'legal hold');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES (:'jean', 'legal_hold');
SELECT anonymize.can_anonymize(:'jean');
SELECT * FROM anonymize.blockers(:'jean');
SELECT * FROM anonymize.anonymize_customer(:'jean');

-- A change rolled back is forgotten at once, too.
BEGIN;
SELECT anonymize.drop_rule('legal_hold');
SELECT anonymize.can_anonymize(:'jean');
ROLLBACK;
SELECT anonymize.can_anonymize(:'jean');

-- Drop the blocker and the sent_emails purge, add a purge rule.
SELECT anonymize.drop_rule('legal_hold');
SELECT anonymize.drop_rule('sent_emails');
SELECT anonymize.set_purge_rule('support_tickets', 'tickets');
SELECT rule_name, kind, scope, condition FROM anonymize.rules
 WHERE kind IN ('purge', 'blocker') ORDER BY rule_name;
SELECT anonymize.can_anonymize(:'jean');
SELECT * FROM anonymize.anonymize_customer(:'jean');
-- Jean's ticket and activity are gone, its sent email stays; Maria's ticket
-- stays.
SELECT customer_ref, body FROM billing.support_tickets ORDER BY id;
SELECT * FROM rows_per_customer ORDER BY id;

-- set_purge_rule() adds a dropped rule again, in its changed form.
SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails',
	$$subject IS DISTINCT FROM 'Your invoice'$$);
SELECT rule_name, kind, scope, condition FROM anonymize.rules
 WHERE rule_name = 'sent_emails';
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT customer_id, subject FROM billing.sent_emails ORDER BY id;

-- A balance rule of one's own.
SELECT anonymize.set_balance_rule('open_tickets', 'tickets', '1', 'open support tickets');
SELECT rule_name, scope, amount, reason FROM anonymize.rules
 WHERE kind = 'balance' ORDER BY rule_name;
SELECT * FROM anonymize.blockers(:'maria') ORDER BY rule_name;

-- A stale mapping is reported by name until it is repaired: a dropped table
-- of a scope (42P01), a renamed mapped column (42703).  The error names
-- the relation or column, and the entry that refers to it.
DROP VIEW billing.ticket_view;
DROP TABLE billing.ticket_replies, billing.support_tickets;
SELECT pg_temp.sqlstate(format('SELECT anonymize.can_anonymize(%L)', :'maria'));
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
SELECT pg_temp.sqlstate(format('SELECT anonymize.blockers(%L)', :'maria'));
-- (the error names the scope, too)
SELECT * FROM pg_temp.names_entry(
	format('SELECT anonymize.can_anonymize(%L)', :'maria'), 'tickets');
-- Any other change is refused while the mapping is stale ...
SELECT pg_temp.sqlstate($$SELECT anonymize.set_placeholder('-')$$);
-- ... but dropping the stale entries is not.
SELECT anonymize.drop_rule('support_tickets');
SELECT anonymize.drop_rule('open_tickets');
SELECT anonymize.drop_scope('tickets');
SELECT anonymize.can_anonymize(:'maria');
ALTER TABLE billing.customers RENAME COLUMN email TO mail;
SELECT pg_temp.sqlstate(format('SELECT anonymize.can_anonymize(%L)', :'maria'));
ALTER TABLE billing.billing_addresses RENAME COLUMN phone TO telephone;
ALTER TABLE billing.customers RENAME COLUMN mail TO email;
SELECT * FROM pg_temp.mistake(format('SELECT anonymize.can_anonymize(%L)', :'maria'));
ALTER TABLE billing.billing_addresses RENAME COLUMN telephone TO phone;
SELECT * FROM anonymize.blockers(:'maria') ORDER BY rule_name;
