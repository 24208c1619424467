--
-- coverage: anonymize.coverage() and the kept-on-purpose marks (issue 13).
--
-- Why: a DBA who maps a schema needs to see what the mapping misses before
-- a customer's data stays behind.  The report of the billing example is
-- shown without its kept marks (six columns NOT COVERED) and with them
-- (zero); then the report is made to change by the schema and the mapping:
-- relations that reference a scope relation, to any depth, without being a
-- scope (NOT COVERED, or kept when marked); columns added to a mapped table
-- of every reported type (character, json, jsonb, text[]/varchar[], inet,
-- bytea) and not of the others; a scope without rule; a scope key of a
-- character type (link); a mapping without blocker; a cascade from a
-- purged relation, which check_mapping() refuses (2BP01) and coverage()
-- reports; stale marks.  set_kept() and drop_kept() refuse wrong arguments
-- with their SQLSTATEs, non-owners get 42501, and without a customer
-- relation coverage() raises 55000 like the other functions.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'
\set SHOW_CONTEXT never

-- The marks of examples/billing_mapping.sql ...
SELECT relation_schema, relation_name, column_name, reason
  FROM anonymize.kept ORDER BY 1, 2, 3;
-- ... all removed through drop_kept: the report without them.
SELECT count(*) AS dropped
  FROM (SELECT anonymize.drop_kept(format('%I.%I', relation_schema, relation_name)::regclass,
                                   column_name)
          FROM anonymize.kept) d;
SELECT count(*) AS marks FROM anonymize.kept;
SELECT * FROM anonymize.coverage();
SELECT status, count(*) FROM anonymize.coverage() GROUP BY status ORDER BY status;

-- The mapping file marks them again (set_kept): zero NOT COVERED.
\ir sql/include/billing_mapping.sql
SELECT * FROM anonymize.coverage();
SELECT status, count(*) FROM anonymize.coverage() GROUP BY status ORDER BY status;

-- Marking again replaces the reason, still one mark.
SELECT anonymize.set_kept('billing.invoices', 'status', 'a new reason');
SELECT column_name, reason FROM anonymize.kept WHERE relation_name = 'invoices';
SELECT status, detail FROM anonymize.coverage()
 WHERE relation = 'billing.invoices'::regclass AND column_name = 'status';

--
-- Columns added to a mapped table: only those of the reported types, NOT
-- COVERED until mapped or marked.  A relation mark covers every column,
-- also those added later; a column mark wins over it.
--
CREATE TYPE billing.tier AS ENUM ('free', 'paid');
CREATE DOMAIN billing.note AS varchar(200);
ALTER TABLE billing.customers
	ADD COLUMN nickname varchar(40), ADD COLUMN initials char(2),
	ADD COLUMN remark billing.note, ADD COLUMN tags text[],
	ADD COLUMN aliases varchar[], ADD COLUMN prefs jsonb, ADD COLUMN raw json,
	ADD COLUMN last_ip inet, ADD COLUMN avatar bytea,
	ADD COLUMN tier billing.tier, ADD COLUMN logins integer,
	ADD COLUMN born date, ADD COLUMN ref uuid;
SELECT column_name, status, detail FROM anonymize.coverage()
 WHERE relation = 'billing.customers'::regclass;
SELECT anonymize.set_erase_rule('customer_extras', 'customer',
	'{nickname,initials,remark,tags,aliases,prefs,raw,last_ip,avatar}', 'individual');
SELECT column_name, status, detail FROM anonymize.coverage()
 WHERE relation = 'billing.customers'::regclass AND column_name IN ('nickname', 'avatar');
SELECT anonymize.drop_rule('customer_extras');
ALTER TABLE billing.customers DROP COLUMN nickname, DROP COLUMN initials,
	DROP COLUMN remark, DROP COLUMN tags, DROP COLUMN aliases, DROP COLUMN prefs,
	DROP COLUMN raw, DROP COLUMN last_ip, DROP COLUMN avatar, DROP COLUMN tier,
	DROP COLUMN logins, DROP COLUMN born, DROP COLUMN ref;

ALTER TABLE billing.invoices ADD COLUMN notes text;
SELECT column_name, status, detail FROM anonymize.coverage()
 WHERE relation = 'billing.invoices'::regclass;
SELECT anonymize.set_kept('billing.invoices', NULL, 'accounting records the law requires to keep');
SELECT column_name, status, detail FROM anonymize.coverage()
 WHERE relation = 'billing.invoices'::regclass;
SELECT anonymize.drop_kept('billing.invoices');
ALTER TABLE billing.invoices DROP COLUMN notes;

--
-- Relations that reference a scope relation, to any depth, and are no
-- scope: NOT COVERED, or kept when the whole relation is marked.
--
CREATE TABLE billing.invoice_notes (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	invoice_id bigint NOT NULL REFERENCES billing.invoices,
	body text);
CREATE TABLE billing.note_attachments (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	note_id bigint NOT NULL REFERENCES billing.invoice_notes,
	file bytea);
CREATE TABLE billing.unrelated (id int PRIMARY KEY, label text);
SELECT * FROM anonymize.coverage() WHERE item = 'relation';
-- A column mark does not cover the relation; a relation mark does.
SELECT anonymize.set_kept('billing.note_attachments', 'file', 'only invoice scans');
SELECT anonymize.set_kept('billing.invoice_notes', NULL, 'written by the accountants, never about the person');
SELECT * FROM anonymize.coverage() WHERE item = 'relation';
SELECT anonymize.drop_kept('billing.invoice_notes');

-- The notes become a scope: without rule it is reported, and its column.
SELECT anonymize.set_scope('invoice_notes', 'billing.invoice_notes', 'invoice_id',
	parent => 'invoices');
SELECT * FROM anonymize.coverage()
 WHERE item IN ('scope', 'relation') OR relation = 'billing.invoice_notes'::regclass;
-- With a purge rule: purged; the attachments now reference a scope.
SELECT anonymize.set_purge_rule('invoice_notes', 'invoice_notes');
SELECT * FROM anonymize.coverage()
 WHERE item IN ('scope', 'relation') OR relation = 'billing.invoice_notes'::regclass;
-- A scope without rule that is the parent of another.
SELECT anonymize.drop_rule('unsettled_invoices');
SELECT * FROM anonymize.coverage() WHERE item = 'scope';
SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices',
	$$status NOT IN ('paid', 'cancelled')$$, 'invoice not paid or cancelled');
SELECT anonymize.drop_rule('invoice_notes');
SELECT anonymize.drop_scope('invoice_notes');
DROP TABLE billing.note_attachments, billing.invoice_notes, billing.unrelated;

-- A scope keyed by a character column: its key is a link, not NOT COVERED;
-- a purge with a condition leaves the other rows' columns to review.
CREATE TABLE billing.legacy_tickets (
	customer_ref varchar NOT NULL, subject text, closed boolean NOT NULL);
SELECT anonymize.set_scope('legacy_tickets', 'billing.legacy_tickets', 'customer_ref');
SELECT anonymize.set_purge_rule('closed_tickets', 'legacy_tickets', 'closed');
SELECT column_name, status, detail FROM anonymize.coverage()
 WHERE relation = 'billing.legacy_tickets'::regclass;
-- A column erased in one scope of a relation and not in another.
SELECT anonymize.set_scope('open_tickets', 'billing.legacy_tickets', 'customer_ref',
	condition => 'NOT closed');
SELECT anonymize.set_erase_rule('open_ticket_subject', 'open_tickets', '{subject}');
SELECT column_name, status, detail FROM anonymize.coverage()
 WHERE relation = 'billing.legacy_tickets'::regclass;
SELECT anonymize.drop_rule('closed_tickets');
SELECT anonymize.set_erase_rule('ticket_subject', 'legacy_tickets', '{subject}', 'company');
SELECT anonymize.set_erase_rule('open_ticket_subject', 'open_tickets', '{}', 'everyone',
	$${"subject": "'(erased)'"}$$);
SELECT column_name, status, detail FROM anonymize.coverage()
 WHERE relation = 'billing.legacy_tickets'::regclass;
SELECT anonymize.drop_rule('ticket_subject');
SELECT anonymize.drop_rule('open_ticket_subject');
SELECT anonymize.drop_scope('open_tickets');
SELECT anonymize.drop_scope('legacy_tickets');
DROP TABLE billing.legacy_tickets;

-- A mapping without blocker or balance rule.
BEGIN;
SET LOCAL client_min_messages = error;
SELECT anonymize.drop_rule(rule_name) FROM anonymize.rules
 WHERE kind IN ('blocker', 'balance') ORDER BY rule_name;
RESET client_min_messages;
SELECT * FROM anonymize.coverage() WHERE item = 'mapping';
ROLLBACK;

-- A cascade from a purged relation: the mapping is refused (2BP01), the
-- report shows why, and the referencing relation is not covered.
CREATE TABLE billing.email_opens (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	sent_email_id bigint REFERENCES billing.sent_emails ON DELETE CASCADE,
	user_agent text);
SELECT pg_temp.sqlstate('SELECT anonymize.check_mapping()');
SELECT * FROM anonymize.coverage() WHERE item IN ('cascade', 'relation');
DROP TABLE billing.email_opens;
SELECT pg_temp.sqlstate('SELECT anonymize.check_mapping()');

-- Marks of a column or a relation that no longer exist.
CREATE TABLE billing.gone (id int, note text);
ALTER TABLE billing.balance_entries ADD COLUMN memo text;
SELECT anonymize.set_kept('billing.gone', NULL, 'reviewed');
SELECT anonymize.set_kept('billing.balance_entries', 'memo', 'reviewed');
DROP TABLE billing.gone;
ALTER TABLE billing.balance_entries DROP COLUMN memo;
SELECT * FROM anonymize.coverage() WHERE item = 'kept';
DELETE FROM anonymize.kept WHERE reason IN ('reviewed', 'only invoice scans');

--
-- set_kept and drop_kept: errors, nothing saved.
--
CREATE TEMP TABLE marks_before AS SELECT * FROM anonymize.kept;
CREATE VIEW billing.customer_names AS SELECT id, name FROM billing.customers;
SELECT pg_temp.sqlstate($$SELECT anonymize.set_kept(NULL, 'country', 'why')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_kept('billing.billing_addresses', 'country', NULL)$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_kept('billing.billing_addresses', 'country', ' ')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_kept('billing.billing_addresses', 'nope', 'why')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_kept('billing.no_such_table', NULL, 'why')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_kept('billing.customer_names', 'name', 'why')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_kept(NULL)$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_kept('billing.customers')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_kept('billing.customers', 'email')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_kept('billing.billing_addresses', 'nope')$$);
(SELECT * FROM anonymize.kept EXCEPT SELECT * FROM marks_before)
UNION ALL
(SELECT * FROM marks_before EXCEPT SELECT * FROM anonymize.kept);
DROP VIEW billing.customer_names;

-- Only the extension owner: EXECUTE is not granted to PUBLIC, and with
-- EXECUTE granted the functions still refuse.
DROP ROLE IF EXISTS regress_coverage_other;
CREATE ROLE regress_coverage_other;
GRANT USAGE ON SCHEMA anonymize, billing TO regress_coverage_other;
SET ROLE regress_coverage_other;
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.coverage()$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_kept('billing.customers', 'name', 'why')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_kept('billing.billing_addresses', 'country')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION anonymize.coverage(), anonymize.set_kept(regclass, name, text),
	anonymize.drop_kept(regclass, name) TO regress_coverage_other;
SET ROLE regress_coverage_other;
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.coverage()$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_kept('billing.customers', 'name', 'why')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_kept('billing.billing_addresses', 'country')$$);
RESET ROLE;
(SELECT * FROM anonymize.kept EXCEPT SELECT * FROM marks_before)
UNION ALL
(SELECT * FROM marks_before EXCEPT SELECT * FROM anonymize.kept);
REVOKE ALL ON FUNCTION anonymize.coverage(), anonymize.set_kept(regclass, name, text),
	anonymize.drop_kept(regclass, name) FROM regress_coverage_other;
REVOKE ALL ON SCHEMA anonymize, billing FROM regress_coverage_other;
DROP ROLE regress_coverage_other;

-- clear_mapping() removes the marks with the rest; then coverage() raises
-- 55000 like the other functions.
SELECT anonymize.clear_mapping();
SELECT count(*) AS marks FROM anonymize.kept;
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.coverage()$$);
