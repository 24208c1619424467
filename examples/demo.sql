-- examples/demo.sql -- part 1 of the demo that examples/demo.sh runs:
-- the mapping, an erasure of a company and of an individual, the refusal
-- for an active customer, and two erasure requests for the queue.
--
-- Run by demo.sh with  psql -X -q  on examples/billing.sql and
-- examples/sample_customers.sql, after CREATE EXTENSION anonymize and the
-- mapping examples/billing_mapping.sql (the extension installs none); then
-- demo.sh calls the queue in a connection of its own, as a scheduled job
-- would, and runs examples/demo_after_job.sql.  Helper objects (schema
-- "demo") are created quietly; the statements that call the extension are
-- echoed.

\set ON_ERROR_STOP 1
\set QUIET 1
\pset null '(null)'
\pset footer off
\set company    '11111111-1111-1111-1111-111111111111'
\set individual '22222222-2222-2222-2222-222222222222'
\set active     '33333333-3333-3333-3333-333333333333'
\set former     '44444444-4444-4444-4444-444444444444'

-- A fourth customer, for the queue: an individual whose subscription ended
-- and whose invoices are paid.
INSERT INTO billing.customers (id, name, email, created_at) VALUES
	(:'former', 'Ola Nordmann', 'ola@example.no', '2021-05-04 08:00+00');
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name, phone,
		address_line1, city, postal_code, country) VALUES
	(:'former', 'Ola', 'Nordmann', '+47 22 12 34 56', 'Karl Johans gate 1', 'Oslo', '0154', 'NO');
INSERT INTO billing.subscriptions (customer_id, state, started_at) VALUES
	(:'former', 'terminated', '2021-05-04 08:00+00');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES (:'former', 'paid', 9.90);
INSERT INTO billing.balance_entries (customer_id, amount, description) VALUES
	(:'former', -9.90, 'invoice 2021-06'), (:'former', 9.90, 'payment received');
INSERT INTO billing.sent_emails (customer_id, recipient, subject) VALUES
	(:'former', 'ola@example.no', 'Velkommen'), (:'former', 'ola@example.no', 'Faktura 2021-06');
INSERT INTO billing.customer_activity (customer_id, kind, details) VALUES
	(:'former', 'login', 'from 203.0.113.50');

-- Short names for the four customers, and what each of them holds.
CREATE SCHEMA demo;
CREATE VIEW demo.who (id, who) AS VALUES
	(:'company'::uuid, 'company'), (:'individual'::uuid, 'individual'),
	(:'active'::uuid, 'active'), (:'former'::uuid, 'former');
CREATE VIEW demo.customers AS
SELECT w.who, c.name, c.email FROM billing.customers c JOIN demo.who w USING (id)
 ORDER BY c.id;
CREATE VIEW demo.addresses AS
SELECT w.who, a.company, a.first_name AS first, a.last_name AS last, a.phone,
	   a.address_line1 AS street, a.country
  FROM billing.billing_addresses a JOIN demo.who w ON w.id = a.customer_id
 ORDER BY a.customer_id;
CREATE VIEW demo.rows_per_customer AS
SELECT w.who,
	   (SELECT count(*) FROM billing.sent_emails x WHERE x.customer_id = w.id) AS emails,
	   (SELECT count(*) FROM billing.customer_activity x WHERE x.customer_id = w.id) AS activity,
	   (SELECT count(*) FROM billing.webhook_notifications x WHERE x.customer_id = w.id) AS webhooks,
	   (SELECT string_agg(x.state, ',' ORDER BY x.id) FROM billing.subscriptions x
		 WHERE x.customer_id = w.id) AS subscriptions,
	   (SELECT string_agg(x.status, ',' ORDER BY x.id) FROM billing.invoices x
		 WHERE x.customer_id = w.id) AS invoices,
	   (SELECT sum(x.amount) FROM billing.balance_entries x WHERE x.customer_id = w.id) AS balance
  FROM demo.who w ORDER BY w.id;

\echo
\echo '== The four customers, by their short names (view demo.who):'
\echo '   company 1111...  individual 2222...  active 3333...  former 4444...'
\echo
\echo '== 1. The mapping, as the tables anonymize.customer_relation, scopes and rules hold it'
\echo '   (loaded from examples/billing_mapping.sql): the scopes as a tree under the'
\echo '   customer, each with its rules'
WITH RECURSIVE c AS (
	SELECT * FROM anonymize.customer_relation
), tree AS (
	SELECT 'customer'::text AS scope, 0 AS depth, ARRAY['customer'] AS path,
		   format('%I.%I, key %I', c.relation_schema, c.relation_name, c.key_column) AS what
	  FROM c
	UNION ALL
	SELECT s.scope_name, t.depth + 1, t.path || s.scope_name,
		   format('%I.%I where %I = %s.%s', s.relation_schema, s.relation_name,
				  s.key_column, t.scope,
				  coalesce(quote_ident(s.parent_column),
						   CASE WHEN t.depth = 0 THEN (SELECT quote_ident(key_column) FROM c)
								ELSE '(its primary key)' END))
		   || coalesce(' and ' || s.condition, '')
	  FROM anonymize.scopes s JOIN tree t ON s.parent = t.scope
), lines (path, o, entry, what) AS (
	SELECT path, 0, repeat('  ', depth) || scope, what FROM tree
	UNION ALL
	SELECT ARRAY['customer'], 1, '  column ' || quote_ident(c.name_column),
		   CASE WHEN c.company_scope IS NULL
				THEN 'erased (no company test: everyone is an individual)'
				ELSE 'company: set to the company name; individual: erased' END
	  FROM c
	UNION ALL
	SELECT ARRAY['customer'], 2, '  column ' || quote_ident(c.email_column),
		   coalesce((SELECT format('set to %s (erase rule %s)',
								   r.replacements ->> c.email_column::text, r.rule_name)
					   FROM anonymize.rules r
					  WHERE r.kind = 'erase' AND r.scope = 'customer'
						AND r.replacements ? c.email_column::text
					  LIMIT 1), 'erased')
	  FROM c
	UNION ALL
	SELECT ARRAY['customer'], 3, '  company test',
		   format('a company if its row of scope %s has %s; company name: %s',
				  c.company_scope, c.company_condition, c.company_name)
	  FROM c WHERE c.company_scope IS NOT NULL
	UNION ALL
	SELECT ARRAY['customer'], 4, '  placeholder',
		   format('%L, written into erased NOT NULL text columns', c.placeholder)
	  FROM c WHERE c.placeholder <> ''
	UNION ALL
	SELECT t.path, 10 + array_position('{erase,purge,blocker,balance}', r.kind),
		   repeat('  ', t.depth + 1) || r.kind || ' ' || r.rule_name,
		   CASE r.kind
			 WHEN 'purge' THEN 'delete ' || coalesce('the rows where ' || r.condition, 'every row')
			 WHEN 'erase' THEN
				'erase ' || concat_ws(', ',
					nullif(array_to_string(r.columns, ', '), ''),
					(SELECT string_agg(format('%s := %s', k, v), ', ' ORDER BY k)
					   FROM jsonb_each_text(r.replacements) e (k, v)))
				|| CASE r.applies_to WHEN 'everyone' THEN ''
									 WHEN 'individual' THEN ' (individuals only)'
									 ELSE ' (companies only)' END
			 WHEN 'blocker' THEN format('refuse while a row has %s (%s)', r.condition, r.reason)
			 WHEN 'balance' THEN format('refuse unless sum(%s) = 0 (%s)', r.amount, r.reason)
		   END
	  FROM anonymize.rules r JOIN tree t ON t.scope = r.scope
)
SELECT entry AS "scope or rule", what AS "its rows, or what the rule does"
  FROM lines ORDER BY path, o, entry;
\echo 'erase, purge: what the erasure does.  blocker, balance: what refuses it.'
\echo 'Change it with anonymize.set_scope(), set_erase_rule(), set_purge_rule(), set_blocker_rule(), set_balance_rule(), drop_rule().'
\echo

\echo '== 2. Before'
SELECT * FROM demo.customers;
SELECT * FROM demo.addresses;
SELECT * FROM demo.rows_per_customer;

\echo '== 3. Who may be erased?'
\set ECHO queries
SELECT who, anonymize.can_anonymize(id) FROM demo.who;
SELECT who, b.reason, b.relation, b.rows, b.amount
  FROM demo.who, anonymize.blockers(id) b;
\set ECHO none

\echo '== 4. Erase the company and the individual'
\set ECHO queries
SELECT a.anonymized, a.customer_kind, d.key AS purged, d.value AS rows
  FROM anonymize.anonymize_customer(:'company') a,
       jsonb_each(a.rows_deleted) d;
SELECT a.anonymized, a.customer_kind, d.key AS purged, d.value AS rows
  FROM anonymize.anonymize_customer(:'individual') a,
       jsonb_each(a.rows_deleted) d;
\set ECHO none

\echo '== 5. The active customer is refused (this ERROR is expected; nothing changes)'
\set ON_ERROR_STOP 0
\set ECHO queries
SELECT * FROM anonymize.anonymize_customer(:'active');
\set ECHO none
\set ON_ERROR_STOP 1
\echo
\echo '== 6. Erasing the company again changes nothing'
\set ECHO queries
SELECT * FROM anonymize.anonymize_customer(:'company');
\set ECHO none

\echo '== 7. After: names, emails, phones gone; a company keeps its address, an individual its country'
SELECT * FROM demo.customers;
SELECT * FROM demo.addresses;
SELECT * FROM demo.rows_per_customer;

\echo '== 8. The request queue: requests for the active and the former customer'
\set ECHO queries
SELECT anonymize.request(:'active', reference => 'TICKET-4711');
SELECT anonymize.request(:'former', reference => 'TICKET-4712');
\set ECHO none
SELECT r.request_id AS id, w.who, r.reference, r.days_left,
	   replace(r.blockers, '; ', E';\n') AS blockers
  FROM anonymize.pending_requests r JOIN demo.who w ON w.id = r.customer_id;
\echo '(SELECT * FROM anonymize.pending_requests: blockers are checked now; days_left to the GDPR deadline)'
