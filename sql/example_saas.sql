--
-- example_saas: the second example mapping (examples/saas/) on a schema
-- shaped like a real multi-tenant billing system: company, contact and
-- address on the customer row with a customer_type enum and a legal name,
-- polymorphic webhooks, a paper_trail versions table keyed by varchar ids,
-- wallets and their transactions, payments reached through invoices and
-- through payment requests, personal data inside jsonb, a NOT NULL UNIQUE
-- email per tenant, and the same person as a customer of two tenants.
--
-- Why: a mapping is only as good as what it leaves behind.  This test
-- anonymizes a company, an individual (customer_type NULL), a sole trader
-- (customer_type 'individual' WITH a trading name) and a company without a
-- legal name, checks the kind the company test gave each, and then searches
-- EVERY text, varchar, char, json and jsonb column of EVERY table of schema
-- saas (from the catalog, so a column added later is searched too) for every
-- value those customers had before (emails, also old ones from the
-- versions, names, first and last names, phone numbers, streets, trading
-- name, tax number, card holder and payer names, wallet names), case-
-- insensitively, as substrings, json as text.  Every hit is printed with a
-- verdict: the other tenant's identical person (who must keep everything),
-- a company's data kept on purpose (examples/saas/README.md), or LEAK; the
-- expected output has no LEAK.  The mapping's coverage report has nothing
-- NOT COVERED.  The other tenant's rows are compared whole
-- before and after, and the blocked customer is refused (55000) with
-- nothing changed anywhere.
--
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS saas CASCADE;
CREATE EXTENSION anonymize;
\set ECHO none
\ir examples/saas/schema.sql
\ir examples/saas/sample_data.sql
\o /dev/null
\ir examples/saas/mapping.sql
\o
\ir sql/include/sqlstate.sql
\set ECHO all
RESET client_min_messages;
\pset null '(null)'

\set acme     'c0000000-0000-4000-8000-000000000001'
\set jean     'c0000000-0000-4000-8000-000000000002'
\set krause   'c0000000-0000-4000-8000-000000000003'
\set nordwind 'c0000000-0000-4000-8000-000000000004'
\set maria    'c0000000-0000-4000-8000-000000000005'
\set jean2    'c0000000-0000-4000-8000-000000000006'
\set mailbird 'a0000000-0000-4000-8000-000000000002'

CREATE TEMP TABLE who (label text PRIMARY KEY, id uuid NOT NULL);
INSERT INTO who VALUES ('acme', :'acme'), ('jean', :'jean'),
	('krause', :'krause'), ('nordwind', :'nordwind'), ('maria', :'maria'),
	('jean2', :'jean2');

-- The mapping as loaded: the scope tree and the rules.
SELECT scope_name, relation_schema || '.' || relation_name AS relation,
       key_column, parent, parent_column, condition
  FROM anonymize.scopes ORDER BY parent COLLATE "C", scope_name COLLATE "C";
SELECT rule_name, kind, scope, applies_to,
       concat_ws('; ', regexp_replace(coalesce(condition, amount), '\s+', ' ', 'g'),
                 'NULL: ' || nullif(array_to_string(columns, ', '), ''),
                 (SELECT 'replaced: ' || string_agg(k, ', ' ORDER BY k COLLATE "C")
                    FROM jsonb_object_keys(replacements) k)) AS what
  FROM anonymize.rules ORDER BY kind COLLATE "C", scope COLLATE "C", rule_name COLLATE "C";
SELECT company_scope, company_condition, company_name, placeholder
  FROM anonymize.customer_relation;
-- Its coverage (issue 13): every column that can hold personal data is
-- purged, erased or kept on purpose with a reason (the "Kept on purpose"
-- table of examples/saas/README.md); nothing is NOT COVERED, no relation
-- references a mapped one without being a scope, no scope lacks a rule.
SELECT * FROM anonymize.coverage();
SELECT status, count(*) FROM anonymize.coverage() GROUP BY status ORDER BY status COLLATE "C";

-- The customers.
SELECT w.label, t.name AS tenant, c.name, c.customer_type, c.legal_name,
       c.firstname, c.lastname, c.email
  FROM saas.customers c JOIN who w USING (id)
  JOIN saas.tenants t ON t.id = c.tenant_id
 ORDER BY c.id;
SELECT w.label, anonymize.can_anonymize(w.id) FROM who w ORDER BY w.id;

-- A digest of every table of schema saas (of one tenant's rows and the
-- tenant itself, if given), to show that something did not change.
CREATE FUNCTION pg_temp.digests(tenant uuid DEFAULT NULL)
RETURNS TABLE (relation text, row_count bigint, digest text)
LANGUAGE plpgsql AS
$$
DECLARE
	r regclass;
BEGIN
	FOR r IN SELECT c.oid FROM pg_class c
			  WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind IN ('r', 'p')
			  ORDER BY c.relname
	LOOP
		RETURN QUERY EXECUTE format(
			'SELECT %L::text, count(*), md5(coalesce(string_agg(to_jsonb(t)::text, %L'
			' ORDER BY to_jsonb(t)::text), %L)) FROM %s t'
			' WHERE $1 IS NULL OR $1::text IN (to_jsonb(t)->>%L, to_jsonb(t)->>%L)',
			r::text, E'\n', '', r, 'tenant_id', 'id')
			USING tenant;
	END LOOP;
END
$$;

-- Blocked: Maria is still active.  Refused with every blocker listed, and
-- nothing changed anywhere.
SELECT * FROM anonymize.blockers(:'maria') ORDER BY rule_name COLLATE "C";
CREATE TEMP TABLE before_refusal AS SELECT * FROM pg_temp.digests();
SELECT * FROM anonymize.anonymize_customer(:'maria');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT b.relation, b.row_count, a.digest = b.digest AS unchanged
  FROM before_refusal b JOIN pg_temp.digests() a USING (relation)
 ORDER BY b.relation COLLATE "C";
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

-- Before the erasure: every personal value of the four customers, from
-- their rows and the rows around them (emails, phones and streets, old and
-- new, from the versions: "(versions)").  Values are searched as
-- substrings; the same value found under several names counts once.
CREATE TEMP TABLE old_values AS
SELECT label AS customer, value::text,
       string_agg(DISTINCT what COLLATE "C", ', ' ORDER BY what COLLATE "C") AS what
  FROM (SELECT w.label, v.what, v.value
		  FROM who w JOIN saas.customers c USING (id)
		 CROSS JOIN LATERAL (VALUES
				('email', c.email), ('external id', c.external_id),
				('name', c.name), ('legal name', c.legal_name),
				('tax id', c.tax_identification_number), ('url', c.url),
				('firstname', c.firstname), ('lastname', c.lastname),
				('contact', c.firstname || ' ' || c.lastname), ('phone', c.phone),
				('street', c.address_line1), ('street 2', c.address_line2),
				('shipping street', c.shipping_address_line1)) v (what, value)
		UNION ALL
		SELECT w.label, f.key || ' (versions)', f.value
		  FROM who w JOIN saas.versions v
			ON v.item_type = 'Customer' AND v.item_id = w.id::text
		 CROSS JOIN LATERAL jsonb_each(v.object_changes) e
		 CROSS JOIN LATERAL (SELECT e.key, x FROM jsonb_array_elements_text(e.value) x) f (key, value)
		 WHERE e.key IN ('email', 'phone', 'address_line1')
		UNION ALL
		SELECT w.label, 'card ' || k.key, m.details->>k.key
		  FROM who w JOIN saas.payment_methods m ON m.customer_id = w.id
		 CROSS JOIN (VALUES ('holder_name'), ('email')) k (key)
		UNION ALL
		SELECT w.label, 'payment request email', r.email
		  FROM who w JOIN saas.payment_requests r ON r.customer_id = w.id
		UNION ALL
		SELECT w.label, 'payer ' || k.key, p.provider_details->>k.key
		  FROM who w
		  JOIN saas.payments p
			ON p.invoice_id IN (SELECT i.id FROM saas.invoices i WHERE i.customer_id = w.id)
			OR p.payment_request_id IN (SELECT r.id FROM saas.payment_requests r WHERE r.customer_id = w.id)
		 CROSS JOIN (VALUES ('payer_name'), ('payer_email')) k (key)
		UNION ALL
		SELECT w.label, 'subscription external id', s.external_id
		  FROM who w JOIN saas.subscriptions s ON s.customer_id = w.id
		UNION ALL
		SELECT w.label, 'wallet name', l.name
		  FROM who w JOIN saas.wallets l ON l.customer_id = w.id
	   ) v (label, what, value)
 WHERE label IN ('acme', 'jean', 'krause', 'nordwind') AND value IS NOT NULL
 GROUP BY label, value;
SELECT customer, what, value FROM old_values ORDER BY customer COLLATE "C", what COLLATE "C", value COLLATE "C";

-- The other tenant's rows, to compare after the erasures.
CREATE TEMP TABLE mailbird_before AS SELECT * FROM pg_temp.digests(:'mailbird');

-- The erasures, and the kind the company test gave each customer: Acme
-- (customer_type company) and Nordwind (company without legal name) are
-- companies; Jean (customer_type NULL, no legal name) and Krause (a sole
-- trader: individual with a trading name) are individuals.
CREATE TEMP TABLE results AS
SELECT 'acme' AS label, * FROM anonymize.anonymize_customer(:'acme');
INSERT INTO results SELECT 'jean', * FROM anonymize.anonymize_customer(:'jean');
INSERT INTO results SELECT 'krause', * FROM anonymize.anonymize_customer(:'krause');
INSERT INTO results SELECT 'nordwind', * FROM anonymize.anonymize_customer(:'nordwind');
SELECT r.label, r.anonymized, r.customer_kind, r.rows_deleted = l.rows_deleted AS as_audited
  FROM results r JOIN who w USING (label) JOIN anonymize.audit_log l ON l.customer_id = w.id
 ORDER BY w.id;
-- Again: nothing more to do.
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'krause');
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

-- The audit log: rows deleted per purge rule and updated per erase rule;
-- an erase rule for individuals counts no row of a company.
SELECT r.rule_name, r.kind, r.applies_to,
       max(n.count) FILTER (WHERE w.label = 'acme') AS acme,
       max(n.count) FILTER (WHERE w.label = 'jean') AS jean,
       max(n.count) FILTER (WHERE w.label = 'krause') AS krause,
       max(n.count) FILTER (WHERE w.label = 'nordwind') AS nordwind
  FROM anonymize.rules r
  JOIN anonymize.audit_log l ON true
  JOIN who w ON w.id = l.customer_id
  LEFT JOIN LATERAL (SELECT value::int FROM jsonb_each_text(l.rows_deleted || l.rows_updated)
					  WHERE key = r.rule_name) n (count) ON true
 WHERE r.kind IN ('purge', 'erase')
 GROUP BY r.rule_name, r.kind, r.applies_to
 ORDER BY r.kind COLLATE "C", r.rule_name COLLATE "C";

-- The customer rows after: the companies keep their company name, legal
-- name, tax number, website and addresses; the individuals keep the
-- countries only.  The email and the external id are replaced by unique
-- values derived from the id; updated_at moved.
SELECT w.label, c.external_id, c.name, c.customer_type, c.legal_name,
       c.tax_identification_number, c.firstname, c.lastname, c.email, c.phone,
       c.url, c.address_line1, c.address_line2, c.city, c.zipcode, c.state,
       c.country, c.shipping_address_line1, c.shipping_city,
       c.shipping_zipcode, c.shipping_country,
       c.email = 'erased+' || c.id || '@invalid.example' AS email_replaced,
       c.updated_at > '2024-03-01 12:00+00' AS updated_at_moved
  FROM saas.customers c JOIN who w USING (id)
 WHERE w.label IN ('acme', 'jean', 'krause', 'nordwind')
 ORDER BY c.id \gx

-- The rows that stay, cleaned; updated_at moved on each.
SELECT w.label, r.email, r.amount_cents, r.payment_status,
       r.updated_at > '2024-03-01 12:00+00' AS updated_at_moved
  FROM saas.payment_requests r JOIN who w ON w.id = r.customer_id ORDER BY r.id;
SELECT w.label, m.provider_method_id, m.details,
       m.updated_at > '2024-03-01 12:00+00' AS updated_at_moved
  FROM saas.payment_methods m JOIN who w ON w.id = m.customer_id ORDER BY m.id;
SELECT w.label, l.name, l.status, l.updated_at > '2024-03-01 12:00+00' AS updated_at_moved
  FROM saas.wallets l JOIN who w ON w.id = l.customer_id ORDER BY l.id;
SELECT w.label, x.transaction_type, x.status, x.amount, x.metadata,
       x.updated_at > '2024-03-01 12:00+00' AS updated_at_moved
  FROM saas.wallet_transactions x JOIN saas.wallets l ON l.id = x.wallet_id
  JOIN who w ON w.id = l.customer_id ORDER BY x.id;
SELECT p.provider_payment_id, p.invoice_id IS NOT NULL AS pays_invoice,
       p.payment_request_id IS NOT NULL AS settles_request, p.amount_cents,
       p.provider_details, p.updated_at > '2024-03-01 12:00+00' AS updated_at_moved
  FROM saas.payments p ORDER BY p.id;
-- Subscriptions stay, except Acme's pending one; their external ids (the
-- tenant's, made of names) are replaced.  Invoices stay as they were.
SELECT w.label, s.external_id, s.status,
       s.updated_at > '2024-03-01 12:00+00' AS updated_at_moved
  FROM saas.subscriptions s JOIN who w ON w.id = s.customer_id ORDER BY s.id;
SELECT w.label, i.number, i.status, i.payment_status, i.total_amount_cents
  FROM saas.invoices i JOIN who w ON w.id = i.customer_id ORDER BY i.id;
-- What is left of the webhooks, error details and versions: Maria's and
-- the other tenant's, and the invoices' status history (no personal data).
SELECT t.name AS tenant, h.object_type, count(*)
  FROM saas.webhooks h JOIN saas.tenants t ON t.id = h.tenant_id
 GROUP BY t.name, h.object_type ORDER BY t.name COLLATE "C", h.object_type COLLATE "C";
SELECT t.name AS tenant, e.owner_type, count(*)
  FROM saas.error_details e JOIN saas.tenants t ON t.id = e.tenant_id
 GROUP BY t.name, e.owner_type ORDER BY t.name COLLATE "C", e.owner_type COLLATE "C";
SELECT t.name AS tenant, v.item_type, count(*)
  FROM saas.versions v JOIN saas.tenants t ON t.id = v.tenant_id
 GROUP BY t.name, v.item_type ORDER BY t.name COLLATE "C", v.item_type COLLATE "C";

-- The search.  The columns searched, from the catalog: every column of
-- every table of schema saas whose type (or a domain's base type, or an
-- array's element type) is a string type (text, varchar, char, name) or
-- json/jsonb.
CREATE TEMP VIEW searched_columns AS
SELECT c.oid::regclass AS relation, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type ty ON ty.oid = a.atttypid
  LEFT JOIN pg_type el ON el.oid = ty.typelem AND ty.typcategory = 'A'
  JOIN pg_type base ON base.oid = coalesce(nullif(coalesce(el.typbasetype, ty.typbasetype), 0),
										   el.oid, ty.oid)
 WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind IN ('r', 'p')
   AND (base.typcategory = 'S' OR base.oid IN ('json'::regtype, 'jsonb'::regtype));
SELECT relation, string_agg(column_name, ', ' ORDER BY column_name) AS columns
  FROM searched_columns GROUP BY relation ORDER BY relation::text COLLATE "C";

-- Every occurrence of an old value: which customer's value, where, in whose
-- tenant, how many rows.
CREATE FUNCTION pg_temp.find_old_values()
RETURNS TABLE (customer text, what text, value text, relation text,
			   column_name text, tenant text, rows bigint)
LANGUAGE plpgsql AS
$$
DECLARE
	col record;
BEGIN
	FOR col IN SELECT * FROM searched_columns LOOP
		RETURN QUERY EXECUTE format(
			'SELECT o.customer, o.what, o.value, %L::text, %L::text, tn.name::text, count(*)'
			'  FROM %s t'
			'  JOIN old_values o ON strpos(lower(t.%I::text), lower(o.value)) > 0'
			'  LEFT JOIN saas.tenants tn ON tn.id::text = to_jsonb(t)->>%L'
			' GROUP BY 1, 2, 3, 4, 5, 6',
			col.relation::text, col.column_name, col.relation, col.column_name,
			'tenant_id');
	END LOOP;
END
$$;

-- What a company keeps on purpose (examples/saas/README.md, "Kept on
-- purpose"): its name, legal name, tax number, website and addresses on
-- the customer row.
CREATE TEMP TABLE kept_for_companies (column_name text PRIMARY KEY);
INSERT INTO kept_for_companies VALUES ('name'), ('legal_name'),
	('tax_identification_number'), ('url'), ('address_line1'),
	('address_line2'), ('shipping_address_line1');

CREATE TEMP TABLE hits AS
SELECT h.*,
       CASE WHEN h.tenant = 'mailbird' THEN 'the other tenant''s customer'
            WHEN h.relation = 'saas.customers'
             AND h.column_name IN (SELECT column_name FROM kept_for_companies)
             AND l.customer_kind = 'company'
             AND string_to_array(h.what, ', ') <@ ARRAY['name', 'legal name',
					'tax id', 'url', 'street', 'street 2', 'shipping street',
					'address_line1 (versions)']
            THEN 'kept on purpose: the company''s data'
            ELSE 'LEAK' END AS verdict
  FROM pg_temp.find_old_values() h
  JOIN who w ON w.label = h.customer
  JOIN anonymize.audit_log l ON l.customer_id = w.id;

-- Every hit in the tenant of the erased customers, with its verdict.
SELECT customer, what, value, relation, column_name, rows, verdict
  FROM hits WHERE tenant IS DISTINCT FROM 'mailbird'
 ORDER BY customer COLLATE "C", what COLLATE "C", value COLLATE "C", relation COLLATE "C", column_name COLLATE "C";
-- No leak.
SELECT count(*) AS leaks FROM hits WHERE verdict = 'LEAK';

-- The other tenant's Jean Dupont still has every value Jean had, in these
-- places (first and last name also inside emails, names and payloads):
SELECT value, relation, column_name, rows
  FROM hits WHERE tenant = 'mailbird' AND customer = 'jean'
 ORDER BY value COLLATE "C", relation COLLATE "C", column_name COLLATE "C";
SELECT o.what, o.value FROM old_values o
 WHERE o.customer = 'jean'
   AND NOT EXISTS (SELECT FROM hits h WHERE h.tenant = 'mailbird'
					  AND h.customer = 'jean' AND h.value = o.value);
-- ... and none of the other customers' values.
SELECT customer, count(*) FROM hits
 WHERE tenant = 'mailbird' AND customer <> 'jean' GROUP BY customer;
-- Every row of the other tenant is as it was, and its Jean is eligible.
SELECT b.relation, b.row_count, a.digest = b.digest AS unchanged
  FROM mailbird_before b JOIN pg_temp.digests(:'mailbird') a USING (relation)
 ORDER BY b.relation COLLATE "C";
SELECT name, email, phone, address_line1, anonymize.can_anonymize(id)
  FROM saas.customers WHERE id = :'jean2';

-- Maria, refused before, is still refused and untouched.
SELECT name, email, phone, address_line1 FROM saas.customers WHERE id = :'maria';
SELECT anonymize.can_anonymize(:'maria');

-- Leave nothing behind for the tests that follow.
SET client_min_messages = warning;
DROP EXTENSION anonymize CASCADE;
DROP SCHEMA saas CASCADE;
RESET client_min_messages;
