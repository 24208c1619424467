--
-- purge: anonymize_customer() deletes the customer's rows of each purge rule
-- (sent_emails, customer_activity, webhook_notifications, and subscriptions
-- in state 'initialized' only), keeps every other row of the customer, and
-- leaves the rows of other customers alone.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

-- One customer per purge rule, with rows in that table only, beside a row of
-- the same table that belongs to another customer (Maria).
\set only_emails     'f0000000-0000-0000-0000-000000000001'
\set only_activity   'f0000000-0000-0000-0000-000000000002'
\set only_webhooks   'f0000000-0000-0000-0000-000000000003'
\set only_subs       'f0000000-0000-0000-0000-000000000004'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'only_emails', 'Emil Mails', 'emil@example.com'),
	(:'only_activity', 'Ada Activity', 'ada@example.com'),
	(:'only_webhooks', 'Walter Hook', 'walter@example.com'),
	(:'only_subs', 'Sue Scriber', 'sue@example.com');
INSERT INTO billing.sent_emails (customer_id, recipient, subject) VALUES
	(:'only_emails', 'emil@example.com', 'one'),
	(:'only_emails', 'emil@example.com', 'two'),
	(:'only_emails', 'emil@example.com', 'three');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	(:'only_activity', 'login'), (:'only_activity', 'logout');
INSERT INTO billing.webhook_notifications (customer_id, event) VALUES
	(:'only_webhooks', 'customer.created');
-- two initialized subscriptions go, the terminated one stays
INSERT INTO billing.subscriptions (customer_id, plan, state) VALUES
	(:'only_subs', 'basic', 'initialized'),
	(:'only_subs', 'premium', 'initialized'),
	(:'only_subs', 'basic', 'terminated');

-- Before.
SELECT * FROM rows_per_customer ORDER BY id;

-- Each rule deletes in its own table and counts 0 elsewhere.
SELECT * FROM anonymize.anonymize_customer(:'only_emails');
SELECT * FROM anonymize.anonymize_customer(:'only_activity');
SELECT * FROM anonymize.anonymize_customer(:'only_webhooks');
SELECT * FROM anonymize.anonymize_customer(:'only_subs');
SELECT * FROM rows_per_customer ORDER BY id;
SELECT customer_id, plan, state FROM billing.subscriptions
 WHERE customer_id = :'only_subs' ORDER BY id;

-- Acme: every purge rule at once; its terminated subscription, its invoices
-- and its balance lines stay.
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT customer_id, recipient, subject FROM billing.sent_emails ORDER BY id;
SELECT customer_id, kind FROM billing.customer_activity ORDER BY id;
SELECT customer_id, event FROM billing.webhook_notifications ORDER BY id;
SELECT customer_id, plan, state FROM billing.subscriptions ORDER BY id;
SELECT customer_id, status, amount FROM billing.invoices ORDER BY id;
SELECT customer_id, amount, description FROM billing.balance_entries ORDER BY id;

-- Jean (no initialized subscription) too; Maria, blocked, keeps everything,
-- her 'initialized' subscription included.
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM rows_per_customer ORDER BY id;

-- The audit log: one row per erased customer, counts per rule, by whom.
SELECT customer_id, anonymized_by = current_user AS by_current_user,
       customer_kind, rows_deleted
  FROM anonymize.audit_log ORDER BY customer_id;
