--
-- preview_verify: anonymize.preview() shows what an erasure would do, with
-- the counts the erasure then reports (compared here rule by rule), and
-- takes no row locks (it runs in a READ ONLY transaction, where a row lock
-- is an error); anonymize.verify() lists what holds data again after an
-- erasure, with the rule that covers it, and is empty while the erasure
-- holds.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

-- Every customer, in a read-only transaction: no row locks, nothing changed.
BEGIN TRANSACTION READ ONLY;
SELECT * FROM anonymize.preview(:'acme');
SELECT * FROM anonymize.preview(:'jean');
SELECT * FROM anonymize.preview(:'maria');
COMMIT;

-- The counts of the preview are those the erasure reports.
CREATE TEMP TABLE previewed AS
SELECT c.id, p.step, p.rule_name, p.rows
  FROM billing.customers c, anonymize.preview(c.id) p
 WHERE p.step IN ('purge', 'erase') AND p.rule_name IS NOT NULL;
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'acme');
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'jean');
SELECT p.id, p.step, p.rule_name, p.rows AS previewed,
       (CASE p.step WHEN 'purge' THEN a.rows_deleted ELSE a.rows_updated END
        ->> p.rule_name)::bigint AS reported
  FROM previewed p JOIN anonymize.audit_log a ON a.customer_id = p.id
 WHERE p.rows IS DISTINCT FROM
       (CASE p.step WHEN 'purge' THEN a.rows_deleted ELSE a.rows_updated END
        ->> p.rule_name)::bigint;
SELECT count(*) AS rules_compared
  FROM previewed p JOIN anonymize.audit_log a ON a.customer_id = p.id;

-- After the erasure: the preview says so, and verify() finds nothing.
SELECT step, detail FROM anonymize.preview(:'acme') WHERE step IN ('kind', 'note');
SELECT * FROM anonymize.verify(:'acme');
SELECT * FROM anonymize.verify(:'jean');

-- Data comes back: a CRM sync rewrites the email, a new email is sent, the
-- phone and the street and name of the individual are typed in again.
UPDATE billing.customers SET email = 'anna@acme.example' WHERE id = :'acme';
INSERT INTO billing.sent_emails (customer_id, recipient, subject)
VALUES (:'acme', 'anna@acme.example', 'We miss you');
UPDATE billing.billing_addresses SET phone = '+49 30 1234567' WHERE customer_id = :'acme';
UPDATE billing.billing_addresses SET address_line1 = '12 rue de la Paix'
 WHERE customer_id = :'jean';
UPDATE billing.customers SET name = 'Jean Dupont' WHERE id = :'jean';
SELECT * FROM anonymize.verify(:'acme') ORDER BY scope, column_name;
SELECT * FROM anonymize.verify(:'jean') ORDER BY scope, column_name;
-- ... and the preview says a new call erases again.
SELECT step, detail FROM anonymize.preview(:'acme') WHERE step = 'note';
-- A company keeps the address; its name must be the company name.
UPDATE billing.customers SET name = 'Anna Schmidt' WHERE id = :'acme';
SELECT * FROM anonymize.verify(:'acme') WHERE scope = 'customer' ORDER BY column_name;

-- Errors: a customer not anonymized, an unknown one, NULL.
SELECT pg_temp.sqlstate(format('SELECT * FROM anonymize.verify(%L)', :'maria'));
SELECT pg_temp.sqlstate(format('SELECT * FROM anonymize.preview(%L)', :'unknown'));
SELECT pg_temp.sqlstate(format('SELECT * FROM anonymize.verify(%L)', :'unknown'));
SELECT count(*) FROM anonymize.preview(NULL);
