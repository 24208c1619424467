--
-- idempotent: anonymizing an anonymized customer whose erasure still holds
-- is no error and changes nothing: anonymized = false, the kind of the
-- first erasure, rows_deleted {}, no second audit row, no row deleted or
-- updated.  An erasure stays true: once data came back (new rows), a new
-- call is a new erasure event, refused while a blocker is there, and then
-- erasing what came back.
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

-- New rows and a blocker of the anonymized customer (re-activated): the
-- data came back, so a new erasure is due, and the blocker refuses it,
-- changing nothing.
INSERT INTO billing.sent_emails (customer_id, recipient) VALUES (:'acme', 'x@example.com');
INSERT INTO billing.subscriptions (customer_id, state) VALUES (:'acme', 'active');
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'acme'));
SELECT * FROM rows_per_customer WHERE id = :'acme';
SELECT count(*) AS audit_rows FROM anonymize.audit_log;
SELECT anonymize.can_anonymize(:'acme');
SELECT * FROM anonymize.blockers(:'acme');
-- Terminated again: the repeat erases the new email, as a second event.
UPDATE billing.subscriptions SET state = 'terminated' WHERE customer_id = :'acme';
SELECT anonymize.can_anonymize(:'acme');
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM rows_per_customer WHERE id = :'acme';
SELECT customer_id, erasures, customer_kind FROM anonymize.anonymized_customers
 WHERE customer_id = :'acme';
SELECT * FROM anonymize.anonymize_customer(:'acme');

-- Twice in one transaction: the second call sees the first one's audit row.
BEGIN;
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT anonymize.can_anonymize(:'jean');
COMMIT;
SELECT customer_id, customer_kind, rows_deleted FROM anonymize.audit_log
 ORDER BY customer_id;
