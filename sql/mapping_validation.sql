--
-- mapping_validation: each anonymize.set_* function checks its entry at once
-- (relation exists and is a table, columns exist, key is a uuid, a condition
-- is one boolean expression, an amount one numeric expression) and saves
-- nothing when it is wrong.  A valid change is used at once by the same
-- session (a rolled back one is forgotten at once), drop_rule() disables a
-- rule, and a stale mapping is reported by name.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

CREATE TEMP VIEW config AS
SELECT 'customer_mapping' AS tab, to_jsonb(m) - 'singleton' AS entry
  FROM anonymize.customer_mapping m
UNION ALL
SELECT 'purge_rules', to_jsonb(r) FROM anonymize.purge_rules r
UNION ALL
SELECT 'blocker_rules', to_jsonb(r) FROM anonymize.blocker_rules r
UNION ALL
SELECT 'balance_rules', to_jsonb(r) FROM anonymize.balance_rules r;

-- The default mapping.
SELECT * FROM anonymize.customer_mapping;
SELECT * FROM anonymize.purge_rules ORDER BY rule_name;
SELECT * FROM anonymize.blocker_rules ORDER BY rule_name;
SELECT * FROM anonymize.balance_rules ORDER BY rule_name;
CREATE TEMP TABLE config_before AS SELECT * FROM config;

-- Build this session's plans with the default mapping.
SELECT anonymize.can_anonymize(:'jean');

CREATE TABLE billing.support_tickets (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_ref uuid NOT NULL,
	body		text
);
INSERT INTO billing.support_tickets (customer_ref, body) VALUES
	(:'jean', 'my card was charged twice'),
	(:'maria', 'please call me');
CREATE VIEW billing.ticket_view AS SELECT * FROM billing.support_tickets;

-- Unknown relation: the regclass argument fails.
SELECT anonymize.set_purge_rule('tickets', 'billing.no_such_table', 'customer_ref');
SELECT anonymize.set_customer_relation('no_such_schema.people', 'id', 'name', 'email');
-- Not a table.
SELECT anonymize.set_purge_rule('tickets', 'billing.ticket_view', 'customer_ref');
-- Unknown columns.
SELECT anonymize.set_purge_rule('tickets', 'billing.support_tickets', 'customer_id');
SELECT anonymize.set_customer_relation('billing.customers', 'id', 'full_name', 'email');
SELECT anonymize.set_billing_address('billing.billing_addresses', 'customer_id',
	'company', 'first_name', 'last_name', 'phone',
	'{address_line1,address_line3}', 'country');
SELECT anonymize.set_blocker_rule('tickets', 'billing.support_tickets',
	'customer_ref', 'state = ''open''', 'open ticket');
-- Key column not a uuid.
SELECT anonymize.set_purge_rule('tickets', 'billing.support_tickets', 'id');
SELECT anonymize.set_customer_relation('billing.customers', 'name', 'name', 'email');
-- Condition not boolean.
SELECT anonymize.set_purge_rule('tickets', 'billing.support_tickets',
	'customer_ref', 'body');
SELECT anonymize.set_blocker_rule('tickets', 'billing.support_tickets',
	'customer_ref', '1', 'open ticket');
-- Condition that is not one expression.
SELECT anonymize.set_purge_rule('tickets', 'billing.support_tickets',
	'customer_ref', 'true) OR (true');
SELECT anonymize.set_purge_rule('tickets', 'billing.support_tickets',
	'customer_ref', 'true; DELETE FROM billing.invoices');
SELECT anonymize.set_blocker_rule('tickets', 'billing.support_tickets',
	'customer_ref', 'true UNION SELECT false', 'open ticket');
SELECT anonymize.set_blocker_rule('tickets', 'billing.support_tickets',
	'customer_ref', 'true FROM billing.invoices', 'open ticket');
-- A table in a condition must be schema-qualified (search_path is
-- pg_catalog, pg_temp).
SELECT anonymize.set_blocker_rule('tickets', 'billing.support_tickets',
	'customer_ref', 'EXISTS (SELECT FROM invoices)', 'open ticket');
-- Amount not numeric.
SELECT anonymize.set_balance_rule('tickets', 'billing.support_tickets',
	'customer_ref', 'body');
SELECT anonymize.set_balance_rule('tickets', 'billing.balance_entries',
	'customer_id', 'amount > 0');
-- Missing condition or reason; country erased; NULL placeholder.
SELECT anonymize.set_blocker_rule('tickets', 'billing.support_tickets',
	'customer_ref', NULL, 'open ticket');
SELECT anonymize.set_billing_address('billing.billing_addresses', 'customer_id',
	'company', 'first_name', 'last_name', 'phone',
	'{address_line1,country}', 'country');
SELECT anonymize.set_placeholder(NULL);
-- Unknown rule.
SELECT anonymize.drop_rule('no_such_rule');

-- The SQLSTATEs.
SELECT pg_temp.sqlstate(sql) FROM (VALUES
	($$SELECT anonymize.set_purge_rule('t', 'billing.no_such_table', 'customer_ref')$$),
	($$SELECT anonymize.set_purge_rule('t', 'billing.ticket_view', 'customer_ref')$$),
	($$SELECT anonymize.set_purge_rule('t', 'billing.support_tickets', 'customer_id')$$),
	($$SELECT anonymize.set_purge_rule('t', 'billing.support_tickets', 'id')$$),
	($$SELECT anonymize.set_purge_rule('t', 'billing.support_tickets', 'customer_ref', 'body')$$),
	($$SELECT anonymize.set_purge_rule('t', 'billing.support_tickets', 'customer_ref', 'true) OR (true')$$),
	($$SELECT anonymize.set_purge_rule('t', 'billing.support_tickets', 'customer_ref', 'true; DELETE FROM billing.invoices')$$),
	($$SELECT anonymize.set_balance_rule('t', 'billing.support_tickets', 'customer_ref', 'body')$$),
	($$SELECT anonymize.drop_rule('no_such_rule')$$)) AS v(sql);

-- Nothing was saved, and the plans still work.
SELECT * FROM config EXCEPT ALL SELECT * FROM config_before;
SELECT * FROM config_before EXCEPT ALL SELECT * FROM config;
SELECT count(*) AS ticket_rows FROM billing.support_tickets;
SELECT anonymize.can_anonymize(:'jean');

-- A valid blocker rule is used at once.
SELECT anonymize.set_blocker_rule('legal_hold', 'billing.customer_activity',
	'customer_id', $$kind = 'legal_hold'$$, 'legal hold');
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

-- Disable the blocker and the sent_emails purge, add a purge rule.
SELECT anonymize.drop_rule('legal_hold');
SELECT anonymize.drop_rule('sent_emails');
SELECT anonymize.set_purge_rule('support_tickets', 'billing.support_tickets',
	'customer_ref');
SELECT * FROM anonymize.purge_rules ORDER BY rule_name;
SELECT * FROM anonymize.blocker_rules ORDER BY rule_name;
SELECT anonymize.can_anonymize(:'jean');
SELECT * FROM anonymize.anonymize_customer(:'jean');
-- Jean's ticket and activity are gone, its sent email stays; Maria's ticket
-- stays.
SELECT customer_ref, body FROM billing.support_tickets ORDER BY id;
SELECT * FROM rows_per_customer ORDER BY id;

-- set_purge_rule() enables a dropped rule again, in its changed form.
SELECT anonymize.set_purge_rule('sent_emails', 'billing.sent_emails',
	'customer_id', $$subject IS DISTINCT FROM 'Your invoice'$$);
SELECT * FROM anonymize.purge_rules WHERE rule_name = 'sent_emails';
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT customer_id, subject FROM billing.sent_emails ORDER BY id;

-- A balance rule of one's own.
SELECT anonymize.set_balance_rule('open_tickets', 'billing.support_tickets',
	'customer_ref', '1', 'open support tickets');
SELECT * FROM anonymize.balance_rules ORDER BY rule_name;
SELECT * FROM anonymize.blockers(:'maria') ORDER BY rule_name;

-- A stale mapping is reported by name until it is repaired: a dropped table
-- of a rule (42P01), a renamed mapped column (42703).
DROP VIEW billing.ticket_view;
DROP TABLE billing.support_tickets;
SELECT anonymize.can_anonymize(:'maria');
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT pg_temp.sqlstate(format('SELECT anonymize.blockers(%L)', :'maria'));
SELECT anonymize.drop_rule('support_tickets');
SELECT anonymize.drop_rule('open_tickets');
SELECT anonymize.can_anonymize(:'maria');
ALTER TABLE billing.customers RENAME COLUMN email TO mail;
SELECT anonymize.can_anonymize(:'maria');
SELECT pg_temp.sqlstate(format('SELECT anonymize.can_anonymize(%L)', :'maria'));
ALTER TABLE billing.customers RENAME COLUMN mail TO email;
SELECT * FROM anonymize.blockers(:'maria') ORDER BY rule_name;
