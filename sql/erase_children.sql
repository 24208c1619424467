--
-- erase_children: two erased scopes on one partitioned relation (their
-- rows are updated by one statement, joined back by ctid) change the
-- customer's rows only, and preview() counts every row of a purged
-- partitioned relation.  A ctid is unique within one partition: before,
-- the UPDATE erased maria's note at jean's ctid in the other partition,
-- and preview() counted jean's two events at (0,1) of two partitions as
-- one.
--
\ir sql/include/fresh_billing.sql

CREATE TABLE billing.notes (
	id bigint NOT NULL, customer_id uuid NOT NULL REFERENCES billing.customers,
	kind text NOT NULL, body text, PRIMARY KEY (kind, id)) PARTITION BY LIST (kind);
CREATE TABLE billing.notes_call PARTITION OF billing.notes FOR VALUES IN ('call');
CREATE TABLE billing.notes_mail PARTITION OF billing.notes FOR VALUES IN ('mail');
INSERT INTO billing.notes VALUES (1, :'jean', 'call', 'jean called'),
	(2, :'acme', 'call', 'acme called');
INSERT INTO billing.notes SELECT 100 + g, :'maria', 'mail', 'maria wrote ' || g
  FROM generate_series(1, 5) g;
CREATE TABLE billing.events (
	id bigint NOT NULL, customer_id uuid NOT NULL REFERENCES billing.customers,
	kind text NOT NULL, PRIMARY KEY (kind, id)) PARTITION BY LIST (kind);
CREATE TABLE billing.events_login PARTITION OF billing.events FOR VALUES IN ('login');
CREATE TABLE billing.events_logout PARTITION OF billing.events FOR VALUES IN ('logout');
INSERT INTO billing.events VALUES (1, :'jean', 'login'), (2, :'jean', 'logout');
\o /dev/null
SELECT anonymize.set_scope('call_notes', 'billing.notes', 'customer_id',
	condition => $$kind = 'call'$$);
SELECT anonymize.set_scope('all_notes', 'billing.notes', 'customer_id');
SELECT anonymize.set_erase_rule('call_notes', 'call_notes', '{body}');
SELECT anonymize.set_erase_rule('all_notes', 'all_notes', '{body}');
SELECT anonymize.set_kept('billing.notes', 'kind', 'no personal data');
SELECT anonymize.set_scope('events', 'billing.events', 'customer_id');
SELECT anonymize.set_purge_rule('events', 'events');
SELECT anonymize.set_kept('billing.events', 'kind', 'no personal data');
\o

CREATE TEMP VIEW notes AS
SELECT n.id, coalesce(w.who, n.customer_id::text) AS who, n.kind, n.body
  FROM billing.notes n
  LEFT JOIN (VALUES (:'acme'::uuid, 'acme'), (:'jean', 'jean'),
                    (:'maria', 'maria')) AS w (id, who) ON w.id = n.customer_id
 ORDER BY n.id;

-- preview(): both of jean's events, one note in each erased scope
SELECT rule_name, rows FROM anonymize.preview(:'jean')
 WHERE rule_name IN ('events', 'call_notes', 'all_notes') ORDER BY rule_name;

-- anonymize_customer()
BEGIN;
SELECT anonymized FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM notes;
ROLLBACK;

-- the queue, set-based
BEGIN;
SELECT anonymize.request(:'jean') IS NOT NULL AS requested,
       anonymize.request(:'acme') IS NOT NULL AS requested;
SELECT anonymized, busy, failed FROM anonymize.process_request_batch(10);
SELECT * FROM notes;
ROLLBACK;
