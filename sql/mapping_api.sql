--
-- mapping_api: every function of the mapping API of version 1.2 (issue 12)
-- succeeds on a valid entry and refuses each wrong one with its SQLSTATE,
-- saving nothing: NULL arguments, unknown scopes, the reserved scope
-- "customer", scopes with dependents (named), rule names reused with
-- another kind, invalid applies_to, replacements that are not strings or do
-- not fit their column, NOT NULL non-character columns without a
-- replacement, a column in two rules of a scope that can apply to the same
-- customer, link columns of the wrong type (or an integer linked to a
-- uuid, which can never be equal), the parent column defaulting to
-- the parent's primary key, cycles of scopes, the WARNING when the last
-- blocker goes, non-owners (42501), and a cleared mapping (55000, with the
-- hint how to start).  What is accepted must also work when a customer is
-- anonymized: the erasures at the end of some sections check that.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'
-- Errors raised from PL/pgSQL carry line numbers in their CONTEXT; the
-- entry that a C check names is shown by pg_temp.err() instead.
\set SHOW_CONTEXT never

-- pg_temp.err(sql): the error of a statement, field by field; "entry" is
-- the mapping entry that the error context names ("anonymize rule ...").
CREATE FUNCTION pg_temp.err(sql text,
	OUT state text, OUT message text, OUT detail text, OUT hint text,
	OUT entry text)
LANGUAGE plpgsql AS
$$
DECLARE
	context text;
BEGIN
	EXECUTE sql;
	state := 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT,
		context = PG_EXCEPTION_CONTEXT;
	entry := substring(context from '(anonymize (?:rule|scope|company test)[^\n]*)');
	detail := nullif(detail, '');
	hint := nullif(hint, '');
END
$$;

-- The whole mapping as one value, to show that a refused call saved nothing.
CREATE TEMP VIEW mapping AS
SELECT jsonb_build_object(
	'customer_relation', (SELECT jsonb_agg(to_jsonb(c)) FROM anonymize.customer_relation c),
	'scopes', (SELECT jsonb_agg(to_jsonb(s) ORDER BY s.scope_name) FROM anonymize.scopes s),
	'rules', (SELECT jsonb_agg(to_jsonb(r) ORDER BY r.rule_name) FROM anonymize.rules r)) AS m;

-- Tables of this test beside the example schema: support tickets (uuid
-- key), their messages (linked to the ticket's primary key) and tags
-- (composite primary key).
CREATE TABLE billing.tickets (
	id			uuid PRIMARY KEY,
	customer_id	uuid NOT NULL REFERENCES billing.customers (id),
	subject		text,
	priority	integer NOT NULL DEFAULT 0,
	opened_at	timestamp without time zone NOT NULL DEFAULT now(),
	updated_at	timestamp without time zone NOT NULL DEFAULT now()
);
CREATE TABLE billing.ticket_messages (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ticket_id	uuid NOT NULL REFERENCES billing.tickets (id),
	author		text NOT NULL,
	body		text
);
CREATE TABLE billing.ticket_tags (
	ticket_id	uuid NOT NULL REFERENCES billing.tickets (id),
	tag			text NOT NULL,
	PRIMARY KEY (ticket_id, tag)
);
CREATE TABLE billing.tag_notes (
	ticket_id	uuid NOT NULL,
	note		text
);
CREATE VIEW billing.ticket_view AS SELECT * FROM billing.tickets;
INSERT INTO billing.tickets (id, customer_id, subject, priority, opened_at, updated_at) VALUES
	('7e000000-0000-0000-0000-00000000000a', :'jean', 'card charged twice', 2,
	 '2024-01-01 10:00', '2024-01-01 10:00'),
	('7e000000-0000-0000-0000-00000000000b', :'maria', 'please call me', 1,
	 '2024-01-02 10:00', '2024-01-02 10:00');
INSERT INTO billing.ticket_messages (ticket_id, author, body) VALUES
	('7e000000-0000-0000-0000-00000000000a', 'Jean Dupont', 'I was charged twice'),
	('7e000000-0000-0000-0000-00000000000a', 'Support', 'Refunded'),
	('7e000000-0000-0000-0000-00000000000b', 'Maria Rossi', 'Call +39 06 1234 5678');

--
-- 1. The mapping of examples/billing.sql, as loaded by fresh_billing.sql.
--
SELECT * FROM anonymize.customer_relation;
SELECT * FROM anonymize.scopes ORDER BY scope_name COLLATE "C";
SELECT * FROM anonymize.rules ORDER BY rule_name COLLATE "C";
CREATE TEMP TABLE saved AS SELECT m FROM mapping;

--
-- 2. NULL arguments: 22004, naming the argument, for every function.
--
SELECT n, call, pg_temp.sqlstate('SELECT anonymize.' || call) AS result
  FROM (VALUES
	(1, $$set_customer_relation(NULL, 'id', 'name', 'email')$$),
	(2, $$set_customer_relation('billing.customers', NULL, 'name', 'email')$$),
	(3, $$set_customer_relation('billing.customers', 'id', NULL, 'email')$$),
	(4, $$set_customer_relation('billing.customers', 'id', 'name', NULL)$$),
	(5, $$set_scope(NULL, 'billing.tickets', 'customer_id')$$),
	(6, $$set_scope('tickets', NULL, 'customer_id')$$),
	(7, $$set_scope('tickets', 'billing.tickets', NULL)$$),
	(8, $$set_scope('tickets', 'billing.tickets', 'customer_id', NULL)$$),
	(9, $$drop_scope(NULL)$$),
	(10, $$set_company_test(NULL, 'true', 'name')$$),
	(11, $$set_company_test('customer', NULL, 'name')$$),
	(12, $$set_company_test('customer', 'true', NULL)$$),
	(13, $$set_purge_rule(NULL, 'sent_emails')$$),
	(14, $$set_purge_rule('sent_emails', NULL)$$),
	(15, $$set_erase_rule(NULL, 'invoices', '{status}')$$),
	(16, $$set_erase_rule('e', NULL, '{status}')$$),
	(17, $$set_erase_rule('e', 'invoices', NULL)$$),
	(18, $$set_erase_rule('e', 'invoices', '{status}', NULL)$$),
	(19, $$set_erase_rule('e', 'invoices', '{status}', 'everyone', NULL)$$),
	(20, $$set_erase_rule('e', 'invoices', '{NULL}')$$),
	(21, $$set_blocker_rule(NULL, 'invoices', 'true', 'reason')$$),
	(22, $$set_blocker_rule('b', NULL, 'true', 'reason')$$),
	(23, $$set_blocker_rule('b', 'invoices', NULL, 'reason')$$),
	(24, $$set_blocker_rule('b', 'invoices', 'true', NULL)$$),
	(25, $$set_balance_rule(NULL, 'balance_entries', 'amount')$$),
	(26, $$set_balance_rule('b', NULL, 'amount')$$),
	(27, $$set_balance_rule('b', 'balance_entries', NULL)$$),
	(28, $$set_balance_rule('b', 'balance_entries', 'amount', NULL)$$),
	(29, $$drop_rule(NULL)$$),
	(30, $$set_placeholder(NULL)$$)
  ) AS c (n, call) ORDER BY n;

--
-- 3. Wrong entries, function by function, each with its SQLSTATE.
--
SELECT n, call, pg_temp.sqlstate('SELECT anonymize.' || call) AS result
  FROM (VALUES
	-- the customer relation: a table, existing columns, a uuid key, two
	-- different columns for name and email
	(1, $$set_customer_relation('billing.ticket_view', 'id', 'subject', 'subject')$$),
	(2, $$set_customer_relation('billing.customers', 'id', 'full_name', 'email')$$),
	(3, $$set_customer_relation('billing.customers', 'name', 'name', 'email')$$),
	(4, $$set_customer_relation('billing.customers', 'id', 'email', 'email')$$),
	(5, $$set_customer_relation('anonymize.rules', 'rule_name', 'kind', 'scope')$$),
	-- scopes: the name "customer" is the customer relation; unknown parent;
	-- key and parent columns uuid, a character or an integer type;
	-- condition boolean, one expression, qualified names
	(6, $$set_scope('customer', 'billing.tickets', 'customer_id')$$),
	(7, $$set_scope('tickets', 'billing.tickets', 'customer_id', 'no_such_scope')$$),
	(9, $$set_scope('tickets', 'billing.tickets', 'opened_at')$$),
	(10, $$set_scope('tickets', 'billing.tickets', 'customer_id', 'customer', 'created_at')$$),
	(11, $$set_scope('tickets', 'billing.tickets', 'no_such_column')$$),
	(12, $$set_scope('tickets', 'billing.tickets', 'customer_id', 'customer', 'no_such_column')$$),
	(14, $$set_scope('tickets', 'billing.tickets', 'customer_id', condition => 'priority')$$),
	(15, $$set_scope('tickets', 'billing.tickets', 'customer_id', condition => 'true) OR (true')$$),
	(16, $$set_scope('tickets', 'billing.tickets', 'customer_id', condition => 'EXISTS (SELECT FROM invoices)')$$),
	(17, $$set_scope('tickets', 'billing.ticket_view', 'customer_id')$$),
	-- drop_scope
	(18, $$drop_scope('no_such_scope')$$),
	(19, $$drop_scope('customer')$$),
	(20, $$drop_scope('subscriptions')$$),
	-- the company test: a known scope, a boolean condition
	(21, $$set_company_test('no_such_scope', 'true', 'name')$$),
	(22, $$set_company_test('customer', 'name', 'name')$$),
	(23, $$set_company_test('customer', 'true', 'no_such_column')$$),
	-- rules: known scope, names unique across kinds, conditions boolean,
	-- amounts numeric
	(24, $$set_purge_rule('p', 'no_such_scope')$$),
	(25, $$set_purge_rule('p', 'customer_activity', 'kind')$$),
	(26, $$set_purge_rule('balance', 'sent_emails')$$),
	(27, $$set_erase_rule('sent_emails', 'sent_emails', '{subject}')$$),
	(28, $$set_blocker_rule('sent_emails', 'invoices', 'true', 'reason')$$),
	(29, $$set_balance_rule('unsettled_invoices', 'balance_entries', 'amount')$$),
	(30, $$set_blocker_rule('b', 'no_such_scope', 'true', 'reason')$$),
	(31, $$set_blocker_rule('b', 'invoices', 'amount', 'reason')$$),
	(32, $$set_blocker_rule('b', 'invoices', 'true UNION SELECT false', 'reason')$$),
	(33, $$set_balance_rule('b', 'balance_entries', 'description')$$),
	(34, $$set_balance_rule('b', 'balance_entries', 'amount > 0')$$),
	(35, $$set_balance_rule('b', 'no_such_scope', 'amount')$$),
	-- erase rules: applies_to, columns that exist, are not the scope's key
	-- nor the customer's name, appear once; replacements are a JSON object
	-- of strings, each one expression that fits its column
	(36, $$set_erase_rule('e', 'no_such_scope', '{status}')$$),
	(37, $$set_erase_rule('e', 'invoices', '{status}', 'nobody')$$),
	(38, $$set_erase_rule('e', 'invoices', '{status}', 'Individual')$$),
	(39, $$set_erase_rule('e', 'invoices', '{}')$$),
	(40, $$set_erase_rule('e', 'invoices', '{no_such_column}')$$),
	(41, $$set_erase_rule('e', 'invoices', '{customer_id}')$$),
	(42, $$set_erase_rule('e', 'customer', '{name}')$$),
	(43, $$set_erase_rule('e', 'customer', '{id}')$$),
	(44, $$set_erase_rule('e', 'invoices', '{status,status}')$$),
	(45, $$set_erase_rule('e', 'sent_emails', '{subject}', 'everyone', '{"subject": "''x''"}')$$),
	(46, $$set_erase_rule('e', 'sent_emails', '{}', 'everyone', '{"no_such_column": "''x''"}')$$),
	(47, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": 0}')$$),
	(48, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": null}')$$),
	(49, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": ["0"]}')$$),
	(50, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": {"sql": "0"}}')$$),
	(51, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": "0, status = NULL"}')$$),
	(52, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": "0) , status = (NULL"}')$$),
	(53, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": "(SELECT 0 FROM invoices LIMIT 1)"}')$$),
	(54, $$set_erase_rule('e', 'customer', '{}', 'everyone', '{"name": "''x''"}')$$),
	(55, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"customer_id": "NULL"}')$$),
	-- a replacement whose type does not fit the column, refused when set
	(56, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": "pg_catalog.now()"}')$$),
	(57, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": "status"}')$$),
	(58, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": "''zero''"}')$$),
	(59, $$set_erase_rule('e', 'invoices', '{}', 'everyone', '{"issued_at": "true"}')$$),
	-- a NOT NULL column that is not of a character type needs a replacement
	(60, $$set_erase_rule('e', 'invoices', '{amount}')$$),
	(61, $$set_erase_rule('e', 'invoices', '{status,issued_at}')$$),
	-- a column in two rules of one scope that can apply to the same customer
	(62, $$set_erase_rule('e', 'billing_address', '{phone}')$$),
	(63, $$set_erase_rule('e', 'billing_address', '{city}', 'individual')$$),
	(64, $$set_erase_rule('e', 'billing_address', '{first_name}', 'company')$$),
	(65, $$set_erase_rule('e', 'billing_address', '{}', 'individual', '{"region": "NULL"}')$$),
	-- drop_rule
	(66, $$drop_rule('no_such_rule')$$),
	(67, $$drop_rule('billing_address')$$),
	-- a condition that is more than one statement
	(68, $$set_purge_rule('p', 'customer_activity', 'true; DELETE FROM billing.invoices')$$)
  ) AS c (n, call) ORDER BY n;

-- Replacements that are not a JSON object at all: 22023, and the message
-- says what is wrong with the rule (not an error of an internal query).
SELECT state, message LIKE '%replacements%' AS names_replacements,
       entry IS NOT NULL OR message LIKE '%"e"%' AS names_rule
  FROM (VALUES ($$SELECT anonymize.set_erase_rule('e', 'invoices', '{status}', 'everyone', '["amount"]')$$),
               ($$SELECT anonymize.set_erase_rule('e', 'invoices', '{status}', 'everyone', '"amount"')$$)) v (sql),
       pg_temp.err(v.sql);

-- Nothing of the refused calls was saved.
SELECT (SELECT m FROM saved) = (SELECT m FROM mapping) AS mapping_unchanged;

-- A replaced rule of the same kind stays as it was when the new version is
-- refused (the old row is deleted, then the new one fails validation).
SELECT pg_temp.sqlstate($$SELECT anonymize.set_erase_rule('billing_address_contact',
	'billing_address', '{first_name,no_such_column}')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_blocker_rule('unsettled_invoices',
	'invoices', 'status', 'invoice not paid')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_scope('invoices', 'billing.invoices', 'no_such_column')$$);
SELECT (SELECT m FROM saved) = (SELECT m FROM mapping) AS mapping_unchanged;

-- Key and parent columns whose types can never hold equal values: an
-- integer and a uuid (compared as text, '42' is never a uuid), refused as
-- a type mismatch (42804) like any other wrong link column; integers with
-- integers (or with text) link.  In a transaction rolled back, so that an
-- accepted call changes nothing below.
BEGIN;
SELECT n, call, split_part(pg_temp.sqlstate('SELECT anonymize.' || call), ':', 1) AS sqlstate
  FROM (VALUES
	(1, $$set_scope('tickets', 'billing.tickets', 'priority')$$),
	(2, $$set_scope('invoice_lines', 'billing.invoices', 'customer_id', 'subscriptions')$$),
	(3, $$set_scope('invoices', 'billing.invoices', 'id')$$),
	(4, $$set_scope('subscription_invoices', 'billing.invoices', 'id', 'subscriptions')$$)
  ) AS c (n, call) ORDER BY n;
ROLLBACK;

--
-- 4. The messages that tell what to do: detail, hint, and the entry named.
--
\x on
-- NOT NULL non-character column without replacement: the hint says to give
-- one.
SELECT * FROM pg_temp.err($$SELECT anonymize.set_erase_rule('e', 'invoices', '{amount}')$$);
-- A scope with dependents: every rule, scope and the company test named.
SELECT anonymize.set_scope('invoice_tickets', 'billing.tickets', 'customer_id', 'billing_address');
SELECT * FROM pg_temp.err($$SELECT anonymize.drop_scope('billing_address')$$);
SELECT * FROM pg_temp.err($$SELECT anonymize.drop_scope('subscriptions')$$);
SELECT anonymize.drop_scope('invoice_tickets');
-- A rule name of another kind.
SELECT * FROM pg_temp.err($$SELECT anonymize.set_blocker_rule('sent_emails', 'invoices', 'true', 'x')$$);
-- Two rules for the same customers.
SELECT * FROM pg_temp.err($$SELECT anonymize.set_erase_rule('street_again', 'billing_address', '{city}')$$);
-- A replacement that does not fit names the rule.
SELECT * FROM pg_temp.err($$SELECT anonymize.set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": "pg_catalog.now()"}')$$);
-- A replacement that is not a string.
SELECT * FROM pg_temp.err($$SELECT anonymize.set_erase_rule('e', 'invoices', '{}', 'everyone', '{"amount": 0}')$$);
-- A scope without single-column primary key as a parent, and no
-- parent_column: the hint says to name it.
SELECT anonymize.set_scope('tickets', 'billing.tickets', 'customer_id');
SELECT anonymize.set_scope('ticket_tags', 'billing.ticket_tags', 'ticket_id', 'tickets');
SELECT * FROM pg_temp.err($$SELECT anonymize.set_scope('tag_notes', 'billing.tag_notes', 'ticket_id', 'ticket_tags')$$);
SELECT anonymize.drop_scope('ticket_tags');
SELECT anonymize.drop_scope('tickets');
\x off
SELECT (SELECT m FROM saved) = (SELECT m FROM mapping) AS mapping_unchanged;

--
-- 5. Valid entries, and how they are stored.
--
-- A scope of the customer; a scope of that scope whose parent column
-- defaults to the parent relation's primary key (tickets.id, a uuid); a
-- scope with an explicit parent column on the customer (the email, text).
SELECT anonymize.set_scope('tickets', 'billing.tickets', 'customer_id');
SELECT anonymize.set_scope('ticket_messages', 'billing.ticket_messages', 'ticket_id', 'tickets');
SELECT anonymize.set_scope('emails_by_address', 'billing.sent_emails', 'recipient',
	parent_column => 'email', condition => $$subject IS DISTINCT FROM 'Welcome'$$);
SELECT anonymize.set_scope('ticket_tags', 'billing.ticket_tags', 'ticket_id', 'tickets');
SELECT anonymize.set_scope('tag_notes', 'billing.tag_notes', 'ticket_id', 'ticket_tags', 'ticket_id');
SELECT * FROM anonymize.scopes ORDER BY scope_name COLLATE "C";

-- Rules on them.  A replacement that fits by assignment: now() (timestamp
-- with time zone) into a timestamp without time zone, text into integer
-- is not (refused above), a numeric literal into integer is.
SELECT anonymize.set_purge_rule('ticket_messages', 'ticket_messages');
SELECT anonymize.set_erase_rule('ticket_subject', 'tickets', '{subject}', 'everyone',
	'{"updated_at": "pg_catalog.now()", "priority": "0.0"}');
-- A rule that only cleans a column by replacement (columns empty).
SELECT anonymize.set_erase_rule('ticket_opened', 'tickets', '{}', 'individual',
	$${"opened_at": "date_trunc('month', opened_at)"}$$);
-- An email replacement on scope customer takes the place of the built-in
-- erasure of the email, which applies to everyone: refused for one kind
-- of customer only, accepted for everyone.
SELECT pg_temp.sqlstate($$SELECT anonymize.set_erase_rule('customer_email_individual',
	'customer', '{}', 'individual',
	'{"email": "''erased+'' || id::text || ''@invalid.example''"}')$$);
SELECT anonymize.set_erase_rule('customer_email', 'customer', '{}', 'everyone',
	$${"email": "'erased+' || id::text || '@invalid.example'"}$$);
-- A blocker on a scope of a scope, a balance rule on a scope.
SELECT anonymize.set_blocker_rule('ticket_open', 'ticket_messages',
	$$author = 'Support' AND body IS NULL$$, 'support ticket awaiting an answer');
SELECT anonymize.set_balance_rule('ticket_priority', 'tickets', 'priority - priority',
	'tickets not settled');
-- A purge rule replaced by one of the same kind and name.
SELECT anonymize.set_purge_rule('customer_activity', 'customer_activity', $$kind <> 'plan_change'$$);
SELECT anonymize.set_placeholder('(erased)');
SELECT * FROM anonymize.customer_relation;
SELECT * FROM anonymize.rules ORDER BY rule_name COLLATE "C";
SELECT anonymize.check_mapping();

-- The same column in a rule for individuals and one for companies:
-- accepted, since they never apply to the same customer; and it works:
-- the customer's kind decides which of the two sets the column (Acme, a
-- company, loses its city; Jean, an individual, his street and city).
SELECT anonymize.set_erase_rule('billing_address_city_company', 'billing_address',
	'{city}', 'company');
SELECT anonymize.can_anonymize(:'jean');
BEGIN;
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'acme');
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'jean');
SELECT id, name, company, address_line1, address_line2, city, postal_code, country
  FROM customer_state WHERE id IN (:'jean', :'acme') ORDER BY id;
ROLLBACK;
SELECT anonymize.drop_rule('billing_address_city_company');

-- What was accepted works.  Jean (individual) and Acme (company), in a
-- transaction that is rolled back.
BEGIN;
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM anonymize.anonymize_customer(:'acme');
-- Jean: the street (individual rule); Acme: the street kept; both
-- emails replaced.
SELECT id, name, email, company, first_name, address_line1, city, country
  FROM customer_state WHERE id IN (:'jean', :'acme') ORDER BY id;
-- Jean's ticket: subject erased, priority 0, updated_at now, opened_at the
-- month; both messages purged; Maria's ticket and message untouched.
SELECT id, customer_id, subject, priority, opened_at,
       updated_at = now()::timestamp AS updated_now
  FROM billing.tickets ORDER BY id;
SELECT ticket_id, author, body FROM billing.ticket_messages ORDER BY id;
-- rows_updated per erase rule: a rule counts the rows it applied to, so a
-- rule for the other kind of customer counts 0.
SELECT customer_id, customer_kind, rows_deleted, rows_updated
  FROM anonymize.audit_log ORDER BY customer_id;
ROLLBACK;

--
-- 6. Cycles of scopes: refused (22023), naming a scope of the cycle, not a
-- scope that merely lies below it (tag_notes, below tickets, sorts first).
--
SELECT n, state,
       EXISTS (SELECT FROM unnest(c.cycle) s WHERE message LIKE '%"' || s || '"%') AS names_cycle,
       message NOT LIKE '%tag_notes%' AS not_tag_notes
  FROM (VALUES
	(1, '{tickets}'::text[],
	 $$SELECT anonymize.set_scope('tickets', 'billing.tickets', 'customer_id', 'tickets')$$),
	(2, '{tickets,ticket_messages}',
	 $$SELECT anonymize.set_scope('tickets', 'billing.tickets', 'id', 'ticket_messages', 'ticket_id')$$),
	(3, '{tickets,ticket_tags}',
	 $$SELECT anonymize.set_scope('tickets', 'billing.tickets', 'customer_id', 'ticket_tags', 'ticket_id')$$)
  ) AS c (n, cycle, sql), pg_temp.err(c.sql) ORDER BY n;
SELECT * FROM anonymize.scopes WHERE scope_name = 'tickets';

--
-- 7. drop_rule, drop_scope, and the last blocker.
--
SELECT anonymize.drop_rule('ticket_open');
SELECT anonymize.drop_rule('ticket_priority');
SELECT anonymize.drop_rule('ticket_opened');
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_scope('ticket_messages')$$);
SELECT anonymize.drop_rule('ticket_messages');
SELECT anonymize.drop_scope('ticket_messages');
SELECT anonymize.drop_scope('tag_notes');
SELECT anonymize.drop_scope('ticket_tags');
SELECT scope_name FROM anonymize.scopes ORDER BY scope_name COLLATE "C";
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_rule('ticket_messages')$$);
-- Dropping blockers: no warning while a blocker or balance rule is left;
-- a WARNING when the last one goes.  Maria (an active subscription, a due
-- invoice, a balance) then becomes eligible.
SELECT anonymize.drop_rule('subscriptions_not_terminated');
SELECT anonymize.drop_rule('unsettled_invoices');
SELECT anonymize.can_anonymize(:'maria');
SELECT anonymize.drop_rule('balance');
SELECT anonymize.can_anonymize(:'maria');
SELECT count(*) AS blocker_rules FROM anonymize.rules WHERE kind IN ('blocker', 'balance');
SELECT anonymize.set_balance_rule('balance', 'balance_entries', 'amount');
SELECT anonymize.can_anonymize(:'maria');

--
-- 8. Only the extension owner changes the mapping.
--
DROP ROLE IF EXISTS regress_newtests_mapper;
CREATE ROLE regress_newtests_mapper;
GRANT USAGE ON SCHEMA anonymize, billing TO regress_newtests_mapper;
-- No function of the mapping is executable by PUBLIC.
SELECT p.oid::regprocedure AS function
  FROM pg_proc p
 WHERE p.pronamespace = 'anonymize'::regnamespace
   AND p.proname IN ('set_customer_relation', 'set_scope', 'drop_scope',
		'set_company_test', 'set_purge_rule', 'set_erase_rule',
		'set_blocker_rule', 'set_balance_rule', 'drop_rule', 'set_placeholder',
		'clear_mapping', 'check_mapping')
   AND has_function_privilege('regress_newtests_mapper', p.oid, 'EXECUTE')
 ORDER BY 1::text COLLATE "C";
CREATE TEMP TABLE saved_now AS SELECT m FROM mapping;
SET ROLE regress_newtests_mapper;
SELECT pg_temp.sqlstate($$SELECT anonymize.set_scope('t', 'billing.tickets', 'customer_id')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.clear_mapping()$$);
RESET ROLE;
-- Even with EXECUTE granted, every function refuses a role that lacks the
-- owner's privileges.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA anonymize TO regress_newtests_mapper;
SET ROLE regress_newtests_mapper;
SELECT n, call, pg_temp.sqlstate('SELECT anonymize.' || call) AS result
  FROM (VALUES
	(1, $$set_customer_relation('billing.customers', 'id', 'name', 'email')$$),
	(2, $$set_scope('t', 'billing.tickets', 'customer_id')$$),
	(3, $$drop_scope('tickets')$$),
	(4, $$set_company_test('customer', 'true', 'name')$$),
	(5, $$set_purge_rule('p', 'tickets')$$),
	(6, $$set_erase_rule('e', 'tickets', '{subject}')$$),
	(7, $$set_blocker_rule('b', 'tickets', 'true', 'r')$$),
	(8, $$set_balance_rule('b', 'tickets', 'priority')$$),
	(9, $$drop_rule('balance')$$),
	(10, $$set_placeholder('x')$$),
	(11, $$clear_mapping()$$),
	(12, $$check_mapping()$$)
  ) AS c (n, call) ORDER BY n;
SELECT pg_temp.sqlstate($$INSERT INTO anonymize.rules (rule_name, kind, scope) VALUES ('p', 'purge', 'tickets')$$);
RESET ROLE;
SELECT (SELECT m FROM saved_now) = (SELECT m FROM mapping) AS mapping_unchanged;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA anonymize FROM regress_newtests_mapper;
REVOKE USAGE ON SCHEMA anonymize, billing FROM regress_newtests_mapper;
DROP ROLE regress_newtests_mapper;

--
-- 9. clear_mapping(): nothing is left, and every function fails with 55000
-- and the hint how to start, until a customer relation is set again.
--
SELECT anonymize.clear_mapping();
SELECT (SELECT count(*) FROM anonymize.customer_relation) AS customer_relation,
       (SELECT count(*) FROM anonymize.scopes) AS scopes,
       (SELECT count(*) FROM anonymize.rules) AS rules;
SELECT n, call, pg_temp.sqlstate(call) AS result
  FROM (VALUES
	(1, $$SELECT anonymize.set_scope('tickets', 'billing.tickets', 'customer_id')$$),
	(2, $$SELECT anonymize.drop_scope('tickets')$$),
	(3, $$SELECT anonymize.set_company_test('customer', 'true', 'name')$$),
	(4, $$SELECT anonymize.set_purge_rule('p', 'customer')$$),
	(5, $$SELECT anonymize.set_erase_rule('e', 'customer', '{email}')$$),
	(6, $$SELECT anonymize.set_blocker_rule('b', 'customer', 'true', 'r')$$),
	(7, $$SELECT anonymize.set_balance_rule('b', 'customer', '1')$$),
	(8, $$SELECT anonymize.drop_rule('balance')$$),
	(9, $$SELECT anonymize.set_placeholder('x')$$),
	(10, $$SELECT anonymize.check_mapping()$$),
	(11, $$SELECT anonymize.can_anonymize('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb')$$),
	(12, $$SELECT * FROM anonymize.blockers('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb')$$),
	(13, $$SELECT * FROM anonymize.anonymize_customer('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb')$$),
	(14, $$SELECT anonymize.request('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb')$$)
  ) AS c (n, call) ORDER BY n;
\x on
SELECT * FROM pg_temp.err($$SELECT anonymize.set_scope('tickets', 'billing.tickets', 'customer_id')$$);
\x off
SELECT (SELECT count(*) FROM anonymize.scopes) AS scopes,
       (SELECT count(*) FROM anonymize.rules) AS rules,
       (SELECT count(*) FROM anonymize.requests) AS requests;
-- Starting over: the customer relation first, then the example's mapping.
SELECT anonymize.set_customer_relation('billing.customers', 'id', 'name', 'email');
SELECT * FROM anonymize.customer_relation;
SELECT anonymize.can_anonymize(:'maria');
\set ECHO none
\o /dev/null
\ir examples/billing_mapping.sql
\o
\set ECHO all
SELECT (SELECT m FROM saved) = (SELECT m FROM mapping) AS same_as_loaded;
SELECT anonymize.can_anonymize(:'maria');
