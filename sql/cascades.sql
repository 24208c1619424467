--
-- cascades: an erasure never deletes or changes rows of a relation that no
-- purge rule deletes as a whole through a foreign key ON DELETE CASCADE,
-- SET NULL or SET DEFAULT.  Before 1.2, purging an 'initialized'
-- subscription deleted the paid invoice billed for it.  A purge rule that
-- would cascade is refused when it is set, and checked again whenever the
-- plans are built, since the schema can change later.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

-- acme's initialized subscription gets an invoice, paid.
ALTER TABLE billing.invoices ADD COLUMN subscription_id bigint;
INSERT INTO billing.invoices (customer_id, status, amount, subscription_id)
SELECT customer_id, 'paid', 1.00, id FROM billing.subscriptions
 WHERE customer_id = :'acme' AND state = 'initialized';

-- The schema changes under an existing purge rule: every call refuses.
ALTER TABLE billing.invoices ADD CONSTRAINT invoices_subscription_fkey
	FOREIGN KEY (subscription_id) REFERENCES billing.subscriptions
	ON DELETE CASCADE;
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT anonymize.can_anonymize(:'acme');
SELECT count(*) AS acme_invoices FROM billing.invoices WHERE customer_id = :'acme';

-- Setting the rule again is refused too, and so is any purge of the
-- relation; SET NULL and SET DEFAULT change rows just the same.
SELECT anonymize.set_purge_rule('initialized_subscriptions', 'billing.subscriptions',
	'customer_id', $$state = 'initialized'$$);
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_subscription_fkey,
	ADD CONSTRAINT invoices_subscription_fkey
	FOREIGN KEY (subscription_id) REFERENCES billing.subscriptions
	ON DELETE SET NULL;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'acme'));
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_subscription_fkey,
	ADD CONSTRAINT invoices_subscription_fkey
	FOREIGN KEY (subscription_id) REFERENCES billing.subscriptions
	ON DELETE SET DEFAULT;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'acme'));

-- With RESTRICT (or NO ACTION) nothing cascades: the invoice makes the
-- purge fail with a foreign key error instead, and stays.
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_subscription_fkey,
	ADD CONSTRAINT invoices_subscription_fkey
	FOREIGN KEY (subscription_id) REFERENCES billing.subscriptions
	ON DELETE RESTRICT;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'acme'));
SELECT customer_id, status, amount, subscription_id IS NOT NULL AS for_subscription
  FROM billing.invoices ORDER BY id;

-- A cascade into a relation that no rule purges is refused ...
CREATE TABLE billing.email_attachments (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id uuid NOT NULL,
	email_id bigint NOT NULL REFERENCES billing.sent_emails ON DELETE CASCADE);
INSERT INTO billing.email_attachments (customer_id, email_id)
SELECT customer_id, id FROM billing.sent_emails WHERE customer_id = :'jean';
SELECT * FROM anonymize.anonymize_customer(:'jean');
-- ... and so is one into a relation purged only in part ...
SELECT anonymize.set_purge_rule('email_attachments', 'billing.email_attachments',
	'customer_id', $$email_id > 0$$);
-- ... but one into a relation that a purge rule deletes as a whole is
-- covered: the rows go anyway.
SELECT anonymize.set_purge_rule('email_attachments', 'billing.email_attachments',
	'customer_id');
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT count(*) AS attachments_left FROM billing.email_attachments;
