--
-- idempotent: anonymizing an anonymized customer is no error and changes
-- nothing: anonymized = false, the kind of the first erasure, rows_deleted
-- {}, no second audit row, and no row deleted or updated, even if the
-- customer got new rows or a blocker since.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

SELECT * FROM anonymize.anonymize_customer(:'acme');
CREATE TEMP TABLE after_first AS
SELECT * FROM customer_state JOIN rows_per_customer USING (id);
CREATE TEMP TABLE audit_after_first AS SELECT * FROM anonymize.audit_log;

-- Second call.
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM after_first
EXCEPT ALL
SELECT * FROM customer_state JOIN rows_per_customer USING (id);
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
EXCEPT ALL
SELECT * FROM after_first;
-- the audit row is the first one, unchanged (anonymized_at included)
SELECT count(*) AS audit_rows,
       count(*) FILTER (WHERE (a.*)::text = (f.*)::text) AS unchanged
  FROM anonymize.audit_log a LEFT JOIN audit_after_first f USING (customer_id);

-- New rows and a blocker of the anonymized customer: still no error, and
-- nothing deleted.
INSERT INTO billing.sent_emails (customer_id, recipient) VALUES (:'acme', 'x@example.com');
INSERT INTO billing.subscriptions (customer_id, state) VALUES (:'acme', 'active');
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM rows_per_customer WHERE id = :'acme';
SELECT count(*) AS audit_rows FROM anonymize.audit_log;
SELECT anonymize.can_anonymize(:'acme');
SELECT * FROM anonymize.blockers(:'acme');

-- Twice in one transaction: the second call sees the first one's audit row.
BEGIN;
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT anonymize.can_anonymize(:'jean');
COMMIT;
SELECT customer_id, customer_kind, rows_deleted FROM anonymize.audit_log
 ORDER BY customer_id;
