--
-- residue_check: after its statements, the erasure searches the customer's
-- remaining rows of every scope (text, json and jsonb columns) for the
-- values it erased from the customer (name of an individual, email, the
-- columns of its erase rules on the customer and on the company test's
-- scope): a WARNING names the relation, the column and the field, never
-- the value; anonymize.residue_check = error rolls the erasure back; off
-- checks nothing.  Values under 4 characters are not searched.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

-- Free text the mapping keeps: notes about the customer, as a scope
-- without rules.
CREATE TABLE billing.customer_notes (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id uuid NOT NULL REFERENCES billing.customers (id),
	body text,
	data jsonb);
SELECT anonymize.set_scope('customer_notes', 'billing.customer_notes', 'customer_id');
INSERT INTO billing.customer_notes (customer_id, body, data) VALUES
	(:'jean', 'Called JEAN DUPONT about his invoice', '{"callback": "+33 1 23 45 67 89"}'),
	(:'jean', 'nothing personal here', NULL),
	(:'acme', 'Acme GmbH asked for a copy; contact Anna', '{"cc": "anna.schmidt@acme.example"}'),
	(:'maria', 'maria.rossi@example.it', NULL);

-- warning (the default): the erasure is done, each column is reported once
-- per field, the other customers' notes are not searched.
SHOW anonymize.residue_check;
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'jean');
SELECT count(*) AS audit_rows FROM anonymize.audit_log WHERE customer_id = :'jean';

-- A company: its name (the company name) is not searched; its email and
-- the contact's name are.
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'acme');

-- error: the erasure fails and changes nothing.
UPDATE billing.subscriptions SET state = 'terminated' WHERE customer_id = :'maria';
UPDATE billing.invoices SET status = 'paid' WHERE customer_id = :'maria';
INSERT INTO billing.balance_entries (customer_id, amount) VALUES (:'maria', 12.50);
SET anonymize.residue_check = error;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'maria'));
SELECT name, email FROM billing.customers WHERE id = :'maria';
SELECT count(*) AS audit_rows FROM anonymize.audit_log WHERE customer_id = :'maria';

-- off: nothing is searched.
SET anonymize.residue_check = off;
SELECT anonymized FROM anonymize.anonymize_customer(:'maria');
RESET anonymize.residue_check;

-- Short values are not searched: a customer named "Bo", with the email
-- "b@x" kept in a note.
INSERT INTO billing.customers (id, name, email)
VALUES ('dddddddd-0000-0000-0000-000000000001', 'Bo', 'b@x');
INSERT INTO billing.customer_notes (customer_id, body)
VALUES ('dddddddd-0000-0000-0000-000000000001', 'Bo wrote from b@x');
SELECT anonymized FROM anonymize.anonymize_customer('dddddddd-0000-0000-0000-000000000001');

-- The values are searched as they are: % _ and \ in them match only
-- themselves (the check first probes every scope with LIKE patterns, in
-- which they are escaped; a probe that missed would hide the residue).
INSERT INTO billing.customers (id, name, email)
VALUES ('dddddddd-0000-0000-0000-000000000003', 'Pat 100% Sure\Jr', 'pat_sure@example.org'),
       ('dddddddd-0000-0000-0000-000000000004', 'Kim Lookalike', 'kim_like@example.org');
INSERT INTO billing.customer_notes (customer_id, body) VALUES
	('dddddddd-0000-0000-0000-000000000003', 'wrote as PAT_SURE@example.org, "Pat 100% Sure\Jr"'),
	('dddddddd-0000-0000-0000-000000000004', 'wrote as kimXlike@example.org, Kim Lookalik');
-- reported: email and name of the first
SELECT anonymized FROM anonymize.anonymize_customer('dddddddd-0000-0000-0000-000000000003');
-- not reported: "kimXlike" is not "kim_like"
SELECT anonymized FROM anonymize.anonymize_customer('dddddddd-0000-0000-0000-000000000004');

-- Columns of a domain over text, and of a case-insensitive collation, are
-- searched too.
CREATE DOMAIN billing.memo AS text;
CREATE COLLATION billing.case_insensitive
	(provider = icu, locale = 'und-u-ks-level2', deterministic = false);
ALTER TABLE billing.customer_notes ADD COLUMN memo billing.memo,
	ADD COLUMN tag text COLLATE billing.case_insensitive;
INSERT INTO billing.customers (id, name, email)
VALUES ('dddddddd-0000-0000-0000-000000000005', 'Dora Domain', 'dora@example.org');
INSERT INTO billing.customer_notes (customer_id, memo, tag) VALUES
	('dddddddd-0000-0000-0000-000000000005', 'ask Dora Domain', 'DORA@example.org');
SELECT anonymized FROM anonymize.anonymize_customer('dddddddd-0000-0000-0000-000000000005');

-- The queue checks too.
INSERT INTO billing.customers (id, name, email)
VALUES ('dddddddd-0000-0000-0000-000000000002', 'Queue Person', 'queue@example.org');
INSERT INTO billing.customer_notes (customer_id, body)
VALUES ('dddddddd-0000-0000-0000-000000000002', 'reply to queue@example.org');
SELECT anonymize.request('dddddddd-0000-0000-0000-000000000002') IS NOT NULL AS requested;
-- In one batch, one probe for all its customers, each with its own values:
-- the name of the second (quotes, braces, a comma and a backslash, which
-- the batch passes in an array literal) in its notes; the third's
-- notes hold the first's email, not its own; the fourth's email has LIKE's
-- wildcards, which match nothing else.
INSERT INTO billing.customers (id, name, email) VALUES
	('dddddddd-0000-0000-0000-000000000006', 'Bob "Curly" {O,Brien}\', 'curly@example.org'),
	('dddddddd-0000-0000-0000-000000000007', 'Clean Customer', 'clean@example.org'),
	('dddddddd-0000-0000-0000-000000000008', 'Wild Card', 'o_k%x@example.org');
INSERT INTO billing.customer_notes (customer_id, body, data) VALUES
	('dddddddd-0000-0000-0000-000000000006', 'ask Bob "Curly" {O,Brien}\ again', NULL),
	('dddddddd-0000-0000-0000-000000000007', 'reply to queue@example.org', NULL),
	('dddddddd-0000-0000-0000-000000000008', 'from oXk%x@example.org and o_kAx@example.org', NULL);
SELECT count(anonymize.request(id)) AS requested FROM billing.customers
WHERE id IN ('dddddddd-0000-0000-0000-000000000006', 'dddddddd-0000-0000-0000-000000000007',
	'dddddddd-0000-0000-0000-000000000008');
SET client_min_messages = warning;
CALL anonymize.process_requests();
RESET client_min_messages;
SELECT customer_id, state, outcome FROM anonymize.requests
WHERE customer_id::text LIKE 'dddddddd-%' ORDER BY customer_id;

-- Invalid settings.
SELECT pg_temp.sqlstate('SET anonymize.residue_check = sometimes');
