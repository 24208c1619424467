--
-- cascades: an erasure never deletes or changes rows through a referential
-- action: ON DELETE CASCADE, SET NULL or SET DEFAULT on a purged relation
-- (cascaded rows need not belong to the customer), ON UPDATE ones on an
-- erased column.  Before 1.2, purging an 'initialized' subscription deleted
-- the paid invoice billed for it.  Such a mapping is refused when a purge
-- rule is set (on a scope at any depth), and checked again whenever the
-- plans are built, since the schema can change later.  With RESTRICT or NO ACTION, referencing rows
-- that are purged too go first.
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
SELECT anonymize.set_purge_rule('initialized_subscriptions', 'subscriptions',
	$$state = 'initialized'$$);
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

-- A cascade is refused even into a relation that a rule purges as a whole:
-- another customer's attachment of this customer's email would go too.
CREATE TABLE billing.email_attachments (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id uuid NOT NULL,
	email_id bigint NOT NULL REFERENCES billing.sent_emails ON DELETE CASCADE);
INSERT INTO billing.email_attachments (customer_id, email_id)
SELECT customer_id, id FROM billing.sent_emails WHERE customer_id = :'jean';
INSERT INTO billing.email_attachments (customer_id, email_id)
SELECT :'maria', id FROM billing.sent_emails WHERE customer_id = :'jean';
SELECT * FROM anonymize.anonymize_customer(:'jean');
-- (every change of the mapping validates all of it: even the scope of the
-- attachments is refused while the purge of the emails would cascade)
SELECT anonymize.set_scope('email_attachments', 'billing.email_attachments',
	'customer_id');

-- NO ACTION: the rule is accepted.  Another customer's attachment of
-- jean's email stops jean's erasure with a foreign key error; nothing
-- changes.  Without it, the attachments are purged by their own rule,
-- before the emails they reference (whatever the rule names say).
ALTER TABLE billing.email_attachments
	DROP CONSTRAINT email_attachments_email_id_fkey,
	ADD FOREIGN KEY (email_id) REFERENCES billing.sent_emails;
SELECT anonymize.set_scope('email_attachments', 'billing.email_attachments',
	'customer_id');
SELECT anonymize.set_purge_rule('zz_attachments', 'email_attachments');
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
SELECT count(*) AS attachments FROM billing.email_attachments;
DELETE FROM billing.email_attachments WHERE customer_id = :'maria';
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT count(*) AS attachments_left FROM billing.email_attachments;

-- ON UPDATE actions on an erased column are refused too.
ALTER TABLE billing.customers ADD UNIQUE (email);
CREATE TABLE billing.newsletter (
	email text REFERENCES billing.customers (email) ON UPDATE CASCADE);
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'maria'));
ALTER TABLE billing.newsletter DROP CONSTRAINT newsletter_email_fkey,
	ADD FOREIGN KEY (email) REFERENCES billing.customers (email) ON UPDATE SET NULL;
SELECT pg_temp.sqlstate(format('SELECT anonymize.can_anonymize(%L)', :'maria'));
DROP TABLE billing.newsletter;

-- A purge rule on a partition is checked against the foreign keys that
-- reference the partition.
CREATE TABLE billing.events (customer_id uuid NOT NULL, kind text NOT NULL,
	id bigint NOT NULL, PRIMARY KEY (kind, id)) PARTITION BY LIST (kind);
CREATE TABLE billing.events_login PARTITION OF billing.events FOR VALUES IN ('login');
CREATE TABLE billing.event_receipts (kind text NOT NULL, event_id bigint NOT NULL,
	FOREIGN KEY (kind, event_id) REFERENCES billing.events ON DELETE CASCADE);
SELECT anonymize.set_scope('login_events', 'billing.events_login', 'customer_id');
SELECT anonymize.set_purge_rule('login_events', 'login_events');
SELECT anonymize.set_scope('events', 'billing.events', 'customer_id');
SELECT anonymize.set_purge_rule('events', 'events');
-- So is a foreign key that references an inheritance child of a purged
-- relation: the purge's DELETE reaches the child's rows too.
CREATE TABLE billing.sent_emails_archive () INHERITS (billing.sent_emails);
ALTER TABLE billing.sent_emails_archive ADD PRIMARY KEY (id);
CREATE TABLE billing.archive_attachments (
	email_id bigint REFERENCES billing.sent_emails_archive ON DELETE CASCADE);
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'acme'));
DROP TABLE billing.archive_attachments, billing.sent_emails_archive;
-- And a purge on a scope of a scope: the links of an email, reached
-- through the email they belong to, not through a customer column.
CREATE TABLE billing.email_links (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email_id bigint NOT NULL REFERENCES billing.sent_emails);
CREATE TABLE billing.link_clicks (
	link_id bigint REFERENCES billing.email_links ON DELETE CASCADE);
SELECT anonymize.set_scope('email_links', 'billing.email_links', 'email_id',
	parent => 'sent_emails');
SELECT anonymize.set_purge_rule('email_links', 'email_links');
SELECT count(*) AS email_links_rules FROM anonymize.rules WHERE scope = 'email_links';
SELECT anonymize.drop_scope('email_links');
DROP TABLE billing.link_clicks, billing.email_links;
SELECT rule_name, scope FROM anonymize.rules WHERE kind = 'purge' ORDER BY rule_name;
