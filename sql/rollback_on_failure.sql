--
-- rollback_on_failure: an error in the middle of anonymize_customer() (here
-- from triggers of the billing schema) leaves nothing half done: sent
-- emails, activity, the customer, its address and the audit log are as
-- before.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'
-- The CONTEXT of the trigger errors would quote the statements the extension
-- generates; they are not what this test is about.
\set SHOW_CONTEXT never

CREATE FUNCTION billing.refuse() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	RAISE EXCEPTION 'refused by trigger % on %', TG_NAME, TG_TABLE_NAME;
END
$$;

CREATE TEMP TABLE state_before AS
SELECT * FROM customer_state JOIN rows_per_customer USING (id);
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
 WHERE id = :'acme';

-- 1. During the purge: the delete of the webhook notifications fails, in the
-- statement that deletes the sent emails and the activity too.
CREATE TRIGGER refuse_delete BEFORE DELETE ON billing.webhook_notifications
	FOR EACH ROW EXECUTE FUNCTION billing.refuse();
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
 WHERE id = :'acme';
SELECT customer_id, subject FROM billing.sent_emails
 WHERE customer_id = :'acme' ORDER BY id;
SELECT count(*) AS audit_rows FROM anonymize.audit_log;
DROP TRIGGER refuse_delete ON billing.webhook_notifications;

-- 2. At the last update, of the customer: purge and address erasure are
-- done by then, and are undone.
CREATE TRIGGER refuse_update AFTER UPDATE ON billing.customers
	FOR EACH ROW EXECUTE FUNCTION billing.refuse();
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
 WHERE id IN (:'acme', :'jean') ORDER BY id;
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

-- 3. In a transaction, rolled back to a savepoint: the customer is as before
-- and can be anonymized in the same transaction once the cause is gone.
BEGIN;
SAVEPOINT before_erasure;
SELECT * FROM anonymize.anonymize_customer(:'jean');
ROLLBACK TO SAVEPOINT before_erasure;
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
 WHERE id = :'jean';
DROP TRIGGER refuse_update ON billing.customers;
SELECT * FROM anonymize.anonymize_customer(:'jean');
COMMIT;

-- Nothing changed but Jean's erasure.
SELECT * FROM state_before
EXCEPT ALL
SELECT * FROM customer_state JOIN rows_per_customer USING (id);
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
EXCEPT ALL
SELECT * FROM state_before;
SELECT customer_id, customer_kind, rows_deleted FROM anonymize.audit_log;

-- 4. The failed attempts did not spoil the session: Acme can be anonymized.
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
 WHERE id = :'acme';
