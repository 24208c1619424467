--
-- queue_purge_children: the queue's purge deletes the customer's rows and
-- no one else's when the purged relation has partitions or inheritance
-- children.  ctid is unique within one table only: a purge that joins its
-- locked rows back by ctid alone (1.3's DELETE ... USING (SELECT t.ctid
-- ... FOR UPDATE OF t NOWAIT)) also deletes the rows of other customers at
-- the same ctid in another partition or child.  Maria, blocked, must keep
-- every row; jean and acme lose theirs; anonymize_customer() (a plain
-- DELETE) agrees.
--
\ir sql/include/fresh_billing.sql

-- An inheritance child of a purged relation: maria's archived emails.
CREATE TABLE billing.sent_emails_archive () INHERITS (billing.sent_emails);
INSERT INTO billing.sent_emails_archive (id, customer_id, recipient, subject)
SELECT 1000 + g, :'maria', 'maria@example.org', 'archived ' || g
  FROM generate_series(1, 20) g;
-- A partitioned purged relation: jean's and acme's logins, maria's logouts.
CREATE TABLE billing.events (
	id bigint NOT NULL, customer_id uuid NOT NULL REFERENCES billing.customers,
	kind text NOT NULL, PRIMARY KEY (kind, id)) PARTITION BY LIST (kind);
CREATE TABLE billing.events_login PARTITION OF billing.events FOR VALUES IN ('login');
CREATE TABLE billing.events_logout PARTITION OF billing.events FOR VALUES IN ('logout');
INSERT INTO billing.events VALUES (1, :'jean', 'login'), (2, :'acme', 'login'),
	(3, :'acme', 'login');
INSERT INTO billing.events SELECT 100 + g, :'maria', 'logout'
  FROM generate_series(1, 20) g;
\o /dev/null
SELECT anonymize.set_scope('events', 'billing.events', 'customer_id');
SELECT anonymize.set_purge_rule('events', 'events');
SELECT anonymize.set_kept('billing.events', 'kind', 'no personal data');
\o

CREATE TEMP VIEW rows_left AS
SELECT n.who,
       (SELECT count(*) FROM billing.sent_emails e WHERE e.customer_id = n.id) AS emails,
       (SELECT count(*) FROM billing.events e WHERE e.customer_id = n.id) AS events
  FROM (VALUES (:'acme'::uuid, 'acme'), (:'jean', 'jean'), (:'maria', 'maria'))
       AS n (id, who)
 ORDER BY n.who;
SELECT * FROM rows_left;

-- The queue, set-based: one batch of jean and acme.
BEGIN;
SELECT anonymize.request(:'jean') IS NOT NULL AS requested,
       anonymize.request(:'acme') IS NOT NULL AS requested;
SELECT anonymized, busy, failed FROM anonymize.process_request_batch(10);
SELECT * FROM rows_left;
SELECT customer_id = :'jean' AS jean, rows_deleted->'events' AS events,
       rows_deleted->'sent_emails' AS sent_emails
  FROM anonymize.audit_log ORDER BY 1;
ROLLBACK;

-- The queue, one customer at a time.
BEGIN;
SET LOCAL anonymize.set_based_batches = off;
SELECT anonymize.request(:'jean') IS NOT NULL AS requested,
       anonymize.request(:'acme') IS NOT NULL AS requested;
SELECT anonymized, busy, failed FROM anonymize.process_request_batch(10);
SELECT * FROM rows_left;
ROLLBACK;

-- anonymize_customer(): a plain DELETE.
BEGIN;
SELECT anonymized FROM anonymize.anonymize_customer(:'jean');
SELECT anonymized FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM rows_left;
ROLLBACK;
