--
-- scopes_indirect: a billing schema of its own (crm) in the shape of issue
-- 12, where personal data sits in rows linked to the customer only
-- indirectly: polymorphic webhooks about invoices and wallet transactions
-- (a varchar object_id holding a uuid: a type-mixed link, compared as
-- text), wallet transactions through wallets (a scope of a scope) and their
-- webhooks (a scope of a scope of a scope), a paper_trail "versions" table
-- (varchar item_id, jsonb copies), payment requests whose NOT NULL email is
-- replaced while the row stays, sent emails reached through that email (a
-- link through a column that the parent's erase rule changes), a card
-- holder name inside jsonb details, updated_at set to now(), payments
-- reached through two scopes, and the company test on the customer row
-- (an enum customer_type and a legal name).
--
-- It anonymizes an individual, a company, a sole trader (individual with a
-- trading name) and a company without legal name, and shows exactly which
-- rows and columns changed: nothing of the bystander, not even its webhook
-- identical to one of the erased customer's.  Then: the audit log's rows
-- deleted and updated per rule; can_anonymize()/blockers() with a blocker
-- through a scope of a scope; the request queue's set-based batch erasing
-- the same customers at once with the same result as one by one; the
-- company test on a scope with two rows of a customer (21000, nothing
-- changed); a trigger that re-inserts a row into an erased scope, and one
-- that puts purged rows back into a scope linked through a column that its
-- parent's erase rule changes (27000, nothing changed).
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

CREATE SCHEMA crm;
CREATE TYPE crm.customer_type AS ENUM ('individual', 'company');
-- ref: a readable name of each row for this test's output only.
CREATE TABLE crm.customers (
	id			uuid PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	tenant		text NOT NULL,
	customer_type crm.customer_type,
	name		text NOT NULL,
	legal_name	text,
	email		text NOT NULL,
	phone		text,
	address_line1 text,
	city		text,
	zipcode		text,
	country		text NOT NULL,
	updated_at	timestamp without time zone NOT NULL,
	UNIQUE (tenant, email)
);
CREATE TABLE crm.invoices (
	id			uuid PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	customer_id	uuid NOT NULL REFERENCES crm.customers (id),
	status		text NOT NULL,
	total		numeric(12, 2) NOT NULL
);
CREATE TABLE crm.wallets (
	id			uuid PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	customer_id	uuid NOT NULL REFERENCES crm.customers (id),
	name		text,
	balance		numeric(12, 2) NOT NULL
);
CREATE TABLE crm.wallet_transactions (
	id			uuid PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	wallet_id	uuid NOT NULL REFERENCES crm.wallets (id),
	status		text NOT NULL,
	amount		numeric(12, 2) NOT NULL,
	note		text
);
-- Polymorphic: object_id is the id of the object_type's row, as text.
CREATE TABLE crm.webhooks (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	object_type	varchar NOT NULL,
	object_id	varchar NOT NULL,
	payload		jsonb NOT NULL
);
-- paper_trail: every old version of a row, as jsonb.
CREATE TABLE crm.versions (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	item_type	varchar NOT NULL,
	item_id		varchar NOT NULL,
	event		text NOT NULL,
	object		jsonb,
	object_changes jsonb
);
CREATE TABLE crm.payment_requests (
	id			uuid PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	customer_id	uuid NOT NULL REFERENCES crm.customers (id),
	email		text NOT NULL,
	amount		numeric(12, 2) NOT NULL,
	updated_at	timestamp without time zone NOT NULL
);
CREATE TABLE crm.payment_methods (
	id			uuid PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	customer_id	uuid NOT NULL REFERENCES crm.customers (id),
	provider	text NOT NULL,
	details		jsonb NOT NULL
);
CREATE TABLE crm.payments (
	id			uuid PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	invoice_id	uuid NOT NULL REFERENCES crm.invoices (id),
	payment_request_id uuid NOT NULL REFERENCES crm.payment_requests (id),
	payer_name	text,
	payer_email	text
);
CREATE TABLE crm.sent_emails (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ref			text NOT NULL UNIQUE,
	recipient	text NOT NULL,
	subject		text NOT NULL
);

-- Bookkeeping of this test: UPDATE statements on wallets (one per erasure
-- when customers are erased one by one, one per batch when set-based) and
-- UPDATEs of each payment row.
CREATE TABLE crm.statement_log (relation text NOT NULL);
CREATE FUNCTION crm.log_statement() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	INSERT INTO crm.statement_log VALUES (TG_TABLE_NAME);
	RETURN NULL;
END
$$;
CREATE TRIGGER log_update AFTER UPDATE ON crm.wallets
	FOR EACH STATEMENT EXECUTE FUNCTION crm.log_statement();
CREATE TABLE crm.row_updates (ref text NOT NULL);
CREATE FUNCTION crm.log_row_update() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	INSERT INTO crm.row_updates VALUES (NEW.ref);
	RETURN NULL;
END
$$;
CREATE TRIGGER log_row_update AFTER UPDATE ON crm.payments
	FOR EACH ROW EXECUTE FUNCTION crm.log_row_update();

\set ines    '11111111-1111-1111-1111-111111111111'
\set comp    '22222222-2222-2222-2222-222222222222'
\set sole    '33333333-3333-3333-3333-333333333333'
\set nolegal '44444444-4444-4444-4444-444444444444'
\set olga    '55555555-5555-5555-5555-555555555555'

INSERT INTO crm.customers (id, ref, tenant, customer_type, name, legal_name,
		email, phone, address_line1, city, zipcode, country, updated_at) VALUES
	(:'ines', 'ines', 'north', 'individual', 'Ines Ibsen', NULL,
	 'ines@example.no', '+47 1111', 'Storgata 1', 'Oslo', '0150', 'NO', '2024-01-01'),
	(:'comp', 'comp', 'north', 'company', 'Carl Contact', 'Comp AG',
	 'carl@comp.example', '+41 2222', 'Bahnhofstrasse 2', 'Zurich', '8001', 'CH', '2024-01-01'),
	(:'sole', 'sole', 'north', 'individual', 'Sam Sole', 'Sole Trading',
	 'sam@sole.example', '+44 3333', '3 High Street', 'Leeds', 'LS1', 'GB', '2024-01-01'),
	(:'nolegal', 'nolegal', 'north', 'company', 'Nora Nolegal', '  ',
	 'nora@nolegal.example', '+46 4444', 'Gatan 4', 'Malmo', '21111', 'SE', '2024-01-01'),
	(:'olga', 'olga', 'south', 'individual', 'Olga Other', NULL,
	 'olga@example.org', '+43 5555', 'Ring 5', 'Wien', '1010', 'AT', '2024-01-01');
INSERT INTO crm.invoices (id, ref, customer_id, status, total) VALUES
	('a1000000-0000-0000-0000-000000000001', 'inv-ines', :'ines', 'paid', 10),
	('a1000000-0000-0000-0000-000000000002', 'inv-comp', :'comp', 'paid', 20),
	('a1000000-0000-0000-0000-000000000003', 'inv-sole', :'sole', 'paid', 30),
	('a1000000-0000-0000-0000-000000000004', 'inv-nolegal', :'nolegal', 'voided', 0),
	('a1000000-0000-0000-0000-000000000005', 'inv-olga', :'olga', 'paid', 5);
INSERT INTO crm.wallets (id, ref, customer_id, name, balance) VALUES
	('b1000000-0000-0000-0000-000000000001', 'w-ines', :'ines', 'Ines Ibsen', 0),
	('b1000000-0000-0000-0000-000000000002', 'w-comp-main', :'comp', 'Comp main', 0),
	('b1000000-0000-0000-0000-000000000003', 'w-comp-travel', :'comp', 'Carl travel', 0),
	('b1000000-0000-0000-0000-000000000004', 'w-sole', :'sole', 'Sam savings', 0),
	('b1000000-0000-0000-0000-000000000005', 'w-olga', :'olga', 'Olga Other', 5);
INSERT INTO crm.wallet_transactions (id, ref, wallet_id, status, amount, note) VALUES
	('c1000000-0000-0000-0000-000000000001', 'wt-ines', 'b1000000-0000-0000-0000-000000000001',
	 'settled', 10, 'top-up by Ines'),
	('c1000000-0000-0000-0000-000000000002', 'wt-comp', 'b1000000-0000-0000-0000-000000000003',
	 'settled', 20, 'advance for Carl'),
	('c1000000-0000-0000-0000-000000000003', 'wt-olga', 'b1000000-0000-0000-0000-000000000005',
	 'pending', 5, 'top-up by Olga');
INSERT INTO crm.webhooks (ref, object_type, object_id, payload) VALUES
	('wh-ines-invoice', 'Invoice', 'a1000000-0000-0000-0000-000000000001',
	 '{"event": "invoice.paid", "total": 10}'),
	-- identical to Ines's, about Olga's invoice
	('wh-olga-invoice', 'Invoice', 'a1000000-0000-0000-0000-000000000005',
	 '{"event": "invoice.paid", "total": 10}'),
	('wh-comp-invoice', 'Invoice', 'a1000000-0000-0000-0000-000000000002',
	 '{"event": "invoice.paid", "total": 20}'),
	('wh-ines-wallet-tx', 'WalletTransaction', 'c1000000-0000-0000-0000-000000000001',
	 '{"event": "wallet_transaction.settled", "note": "top-up by Ines"}'),
	('wh-olga-wallet-tx', 'WalletTransaction', 'c1000000-0000-0000-0000-000000000003',
	 '{"event": "wallet_transaction.created", "note": "top-up by Olga"}'),
	-- Ines's invoice id, but about another type of object: not in a scope
	('wh-decoy-subscription', 'Subscription', 'a1000000-0000-0000-0000-000000000001',
	 '{"event": "subscription.started"}');
INSERT INTO crm.versions (ref, item_type, item_id, event, object, object_changes) VALUES
	('v-ines-customer', 'Customer', :'ines', 'update',
	 '{"name": "Ines Ibsen", "email": "ines@old.example"}',
	 '{"email": ["ines@old.example", "ines@example.no"]}'),
	('v-ines-invoice', 'Invoice', 'a1000000-0000-0000-0000-000000000001', 'update',
	 '{"status": "due", "billing_name": "Ines Ibsen"}', '{"status": ["due", "paid"]}'),
	('v-comp-customer', 'Customer', :'comp', 'create',
	 '{"name": "Carl Contact", "legal_name": "Comp AG"}', NULL),
	('v-olga-customer', 'Customer', :'olga', 'create', '{"name": "Olga Other"}', NULL),
	('v-olga-invoice', 'Invoice', 'a1000000-0000-0000-0000-000000000005', 'update',
	 '{"status": "due", "billing_name": "Olga Other"}', '{"status": ["due", "paid"]}'),
	-- Ines's customer id, but of another item type: not in a scope
	('v-decoy-wallet', 'Wallet', :'ines', 'create', '{"name": "Ines Ibsen"}', NULL);
INSERT INTO crm.payment_requests (id, ref, customer_id, email, amount, updated_at) VALUES
	('d1000000-0000-0000-0000-000000000001', 'pr-ines', :'ines', 'ines@pay.example', 10, '2024-01-01'),
	('d1000000-0000-0000-0000-000000000002', 'pr-comp', :'comp', 'ap@comp.example', 20, '2024-01-01'),
	('d1000000-0000-0000-0000-000000000003', 'pr-sole', :'sole', 'sam@sole.example', 30, '2024-01-01'),
	('d1000000-0000-0000-0000-000000000004', 'pr-nolegal', :'nolegal', 'nora@nolegal.example', 0, '2024-01-01'),
	('d1000000-0000-0000-0000-000000000005', 'pr-olga', :'olga', 'olga@pay.example', 5, '2024-01-01');
INSERT INTO crm.payment_methods (id, ref, customer_id, provider, details) VALUES
	('e1000000-0000-0000-0000-000000000001', 'pm-ines', :'ines', 'stripe',
	 '{"brand": "visa", "last4": "4242", "holder_name": "Ines Ibsen"}'),
	('e1000000-0000-0000-0000-000000000002', 'pm-comp', :'comp', 'stripe',
	 '{"brand": "amex", "last4": "0005", "holder_name": "Carl Contact"}'),
	('e1000000-0000-0000-0000-000000000003', 'pm-olga', :'olga', 'stripe',
	 '{"brand": "visa", "last4": "4242", "holder_name": "Olga Other"}');
INSERT INTO crm.payments (id, ref, invoice_id, payment_request_id, payer_name, payer_email) VALUES
	('f1000000-0000-0000-0000-000000000001', 'pay-ines', 'a1000000-0000-0000-0000-000000000001',
	 'd1000000-0000-0000-0000-000000000001', 'Ines Ibsen', 'ines@pay.example'),
	('f1000000-0000-0000-0000-000000000002', 'pay-comp', 'a1000000-0000-0000-0000-000000000002',
	 'd1000000-0000-0000-0000-000000000002', 'Carl Contact', 'ap@comp.example'),
	('f1000000-0000-0000-0000-000000000005', 'pay-olga', 'a1000000-0000-0000-0000-000000000005',
	 'd1000000-0000-0000-0000-000000000005', 'Olga Other', 'olga@pay.example');
INSERT INTO crm.sent_emails (ref, recipient, subject) VALUES
	('se-ines-request', 'ines@pay.example', 'Your payment request'),
	('se-ines-reminder', 'ines@pay.example', 'Reminder'),
	('se-comp-request', 'ap@comp.example', 'Your payment request'),
	('se-olga-request', 'olga@pay.example', 'Your payment request'),
	('se-unrelated', 'someone@else.example', 'Newsletter');

--
-- The mapping of crm, through the API.
--
SELECT anonymize.clear_mapping();
\set ECHO none
\o /dev/null
SELECT anonymize.set_customer_relation('crm.customers', 'id', 'name', 'email');
-- A company: customer_type says so, or (untyped) a non-blank legal name;
-- its name becomes the legal name, or its name if that is blank.
SELECT anonymize.set_company_test('customer',
	$$customer_type = 'company' OR (customer_type IS NULL AND legal_name ~ '[^[:space:]]')$$,
	$$coalesce(nullif(btrim(legal_name), ''), name)$$);
-- The email is NOT NULL and UNIQUE per tenant: a distinct replacement.  The
-- legal name is erased for everyone: the company test reads it first.
SELECT anonymize.set_erase_rule('customer_contact', 'customer', '{phone,legal_name}',
	'everyone', $${"email": "'erased+' || id::text || '@invalid.example'",
	               "updated_at": "pg_catalog.now()"}$$);
SELECT anonymize.set_erase_rule('customer_address', 'customer',
	'{address_line1,city,zipcode}', 'individual');
SELECT anonymize.set_scope('invoices', 'crm.invoices', 'customer_id');
SELECT anonymize.set_blocker_rule('unpaid_invoices', 'invoices',
	$$status NOT IN ('paid', 'voided')$$, 'invoice not paid');
SELECT anonymize.set_scope('invoice_webhooks', 'crm.webhooks', 'object_id', 'invoices',
	condition => $$object_type = 'Invoice'$$);
SELECT anonymize.set_purge_rule('invoice_webhooks', 'invoice_webhooks');
SELECT anonymize.set_scope('invoice_versions', 'crm.versions', 'item_id', 'invoices',
	condition => $$item_type = 'Invoice'$$);
SELECT anonymize.set_erase_rule('invoice_versions', 'invoice_versions', '{object,object_changes}');
SELECT anonymize.set_scope('customer_versions', 'crm.versions', 'item_id',
	condition => $$item_type = 'Customer'$$);
SELECT anonymize.set_purge_rule('customer_versions', 'customer_versions');
SELECT anonymize.set_scope('wallets', 'crm.wallets', 'customer_id');
SELECT anonymize.set_erase_rule('wallet_name', 'wallets', '{name}');
SELECT anonymize.set_balance_rule('wallet_balance', 'wallets', 'balance', 'wallet not empty');
SELECT anonymize.set_scope('wallet_transactions', 'crm.wallet_transactions', 'wallet_id', 'wallets');
SELECT anonymize.set_blocker_rule('pending_wallet_transactions', 'wallet_transactions',
	$$status = 'pending'$$, 'wallet transaction pending');
SELECT anonymize.set_erase_rule('wallet_transaction_note', 'wallet_transactions', '{note}');
SELECT anonymize.set_scope('wallet_transaction_webhooks', 'crm.webhooks', 'object_id',
	'wallet_transactions', condition => $$object_type = 'WalletTransaction'$$);
SELECT anonymize.set_purge_rule('wallet_transaction_webhooks', 'wallet_transaction_webhooks');
SELECT anonymize.set_scope('payment_requests', 'crm.payment_requests', 'customer_id');
SELECT anonymize.set_erase_rule('payment_request_email', 'payment_requests', '{}', 'everyone',
	$${"email": "'erased@invalid.example'", "updated_at": "pg_catalog.now()"}$$);
-- Linked through the email that the parent's rule replaces.
SELECT anonymize.set_scope('payment_request_emails', 'crm.sent_emails', 'recipient',
	'payment_requests', 'email');
SELECT anonymize.set_purge_rule('payment_request_emails', 'payment_request_emails');
SELECT anonymize.set_scope('payment_methods', 'crm.payment_methods', 'customer_id');
SELECT anonymize.set_erase_rule('payment_method_holder', 'payment_methods', '{}', 'everyone',
	$${"details": "details - 'holder_name'"}$$);
-- One relation through two scopes, a rule in each.
SELECT anonymize.set_scope('invoice_payments', 'crm.payments', 'invoice_id', 'invoices');
SELECT anonymize.set_erase_rule('invoice_payment_payer', 'invoice_payments', '{payer_name}');
SELECT anonymize.set_scope('request_payments', 'crm.payments', 'payment_request_id',
	'payment_requests');
SELECT anonymize.set_erase_rule('request_payment_payer', 'request_payments', '{payer_email}');
\o
\set ECHO all
SELECT * FROM anonymize.customer_relation;
SELECT scope_name, relation_schema || '.' || relation_name AS relation, key_column,
       parent, parent_column, condition
  FROM anonymize.scopes ORDER BY scope_name COLLATE "C";
SELECT rule_name, kind, scope, coalesce(condition, amount) AS condition_or_amount,
       columns, applies_to, replacements
  FROM anonymize.rules ORDER BY rule_name COLLATE "C";

-- Every row of crm, with its owner (the customer it belongs to through
-- the links, if any), and what changed since crm_before was taken.
CREATE FUNCTION pg_temp.crm_rows()
RETURNS TABLE (tab text, ref text, owner text, r jsonb) LANGUAGE sql AS
$$
SELECT 'customers', c.ref, c.ref, to_jsonb(c) FROM crm.customers c
UNION ALL
SELECT 'invoices', i.ref, c.ref, to_jsonb(i)
  FROM crm.invoices i LEFT JOIN crm.customers c ON c.id = i.customer_id
UNION ALL
SELECT 'wallets', w.ref, c.ref, to_jsonb(w)
  FROM crm.wallets w LEFT JOIN crm.customers c ON c.id = w.customer_id
UNION ALL
SELECT 'wallet_transactions', t.ref, c.ref, to_jsonb(t)
  FROM crm.wallet_transactions t JOIN crm.wallets w ON w.id = t.wallet_id
  LEFT JOIN crm.customers c ON c.id = w.customer_id
UNION ALL
SELECT 'webhooks', h.ref, coalesce(ic.ref, tc.ref), to_jsonb(h)
  FROM crm.webhooks h
  LEFT JOIN crm.invoices i ON h.object_type = 'Invoice' AND h.object_id = i.id::text
  LEFT JOIN crm.customers ic ON ic.id = i.customer_id
  LEFT JOIN crm.wallet_transactions t
	ON h.object_type = 'WalletTransaction' AND h.object_id = t.id::text
  LEFT JOIN crm.wallets w ON w.id = t.wallet_id
  LEFT JOIN crm.customers tc ON tc.id = w.customer_id
UNION ALL
SELECT 'versions', v.ref, coalesce(cc.ref, ic.ref), to_jsonb(v)
  FROM crm.versions v
  LEFT JOIN crm.customers cc ON v.item_type = 'Customer' AND v.item_id = cc.id::text
  LEFT JOIN crm.invoices i ON v.item_type = 'Invoice' AND v.item_id = i.id::text
  LEFT JOIN crm.customers ic ON ic.id = i.customer_id
UNION ALL
SELECT 'payment_requests', p.ref, c.ref, to_jsonb(p)
  FROM crm.payment_requests p LEFT JOIN crm.customers c ON c.id = p.customer_id
UNION ALL
SELECT 'payment_methods', p.ref, c.ref, to_jsonb(p)
  FROM crm.payment_methods p LEFT JOIN crm.customers c ON c.id = p.customer_id
UNION ALL
SELECT 'payments', p.ref, c.ref, to_jsonb(p)
  FROM crm.payments p JOIN crm.invoices i ON i.id = p.invoice_id
  LEFT JOIN crm.customers c ON c.id = i.customer_id
UNION ALL
SELECT 'sent_emails', e.ref,
       (SELECT min(c.ref) FROM crm.payment_requests p JOIN crm.customers c ON c.id = p.customer_id
         WHERE p.email = e.recipient), to_jsonb(e)
  FROM crm.sent_emails e
$$;
CREATE TEMP TABLE crm_before AS SELECT * FROM pg_temp.crm_rows();
-- A changed updated_at shows as "later" (its value is the time of the
-- erasure's transaction); a deleted row as column "(row deleted)".
CREATE FUNCTION pg_temp.changes()
RETURNS TABLE (owner text, tab text, ref text, col text, old text, new text)
LANGUAGE sql AS
$$
SELECT coalesce(b.owner, a.owner, '(none)'), coalesce(b.tab, a.tab),
       coalesce(b.ref, a.ref),
       CASE WHEN a.r IS NULL THEN '(row deleted)'
            WHEN b.r IS NULL THEN '(row inserted)' ELSE k.key END,
       b.r ->> k.key,
       CASE WHEN k.key = 'updated_at' AND (a.r ->> k.key)::timestamp > (b.r ->> k.key)::timestamp
            THEN 'later' ELSE a.r ->> k.key END
  FROM crm_before b
  FULL JOIN pg_temp.crm_rows() a ON a.tab = b.tab AND a.ref = b.ref
  LEFT JOIN LATERAL (SELECT e.key FROM jsonb_each(b.r) e
                      WHERE e.value IS DISTINCT FROM a.r -> e.key) k
	ON a.r IS NOT NULL AND b.r IS NOT NULL
 WHERE a.r IS NULL OR b.r IS NULL OR k.key IS NOT NULL
$$;
CREATE TEMP VIEW changes AS SELECT * FROM pg_temp.changes()
 ORDER BY owner COLLATE "C", tab COLLATE "C", ref COLLATE "C", col COLLATE "C";
SELECT count(*) AS rows_in_crm FROM crm_before;

--
-- Eligibility: Olga has a pending wallet transaction (a scope of a scope)
-- and a wallet that is not empty.
--
SELECT c.ref, anonymize.can_anonymize(c.id) FROM crm.customers c ORDER BY c.ref;
SELECT * FROM anonymize.blockers(:'olga') ORDER BY rule_name COLLATE "C";
SELECT * FROM anonymize.blockers(:'ines');
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('55555555-5555-5555-5555-555555555555')$$);

--
-- The company test on a scope with two rows of a customer (Comp has two
-- wallets): the erasure fails with 21000 and changes nothing.
--
SELECT anonymize.set_company_test('wallets', 'name IS NOT NULL', 'name');
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('22222222-2222-2222-2222-222222222222')$$);
SELECT * FROM changes;
SELECT anonymize.set_company_test('customer',
	$$customer_type = 'company' OR (customer_type IS NULL AND legal_name ~ '[^[:space:]]')$$,
	$$coalesce(nullif(btrim(legal_name), ''), name)$$);

--
-- A trigger that puts back a row of an erased (not purged) scope: the
-- verification finds more rows than the erasure updated (27000) and the
-- erasure changes nothing.
--
CREATE FUNCTION crm.keep_card() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	INSERT INTO crm.payment_methods (id, ref, customer_id, provider, details)
	VALUES (pg_catalog.gen_random_uuid(), OLD.ref || '-kept', OLD.customer_id,
			OLD.provider, OLD.details);
	RETURN NULL;
END
$$;
CREATE TRIGGER keep_card AFTER UPDATE ON crm.payment_methods
	FOR EACH ROW WHEN (OLD.details ? 'holder_name') EXECUTE FUNCTION crm.keep_card();
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('11111111-1111-1111-1111-111111111111')$$);
SELECT * FROM changes;
DROP TRIGGER keep_card ON crm.payment_methods;

-- The same for a purged scope reached through a column that its parent's
-- erase rule changes: a trigger that archives every deleted sent email
-- back into the table.  The rows that belong to the customer are those of
-- the data as it was when the erasure started, so the copies are found
-- again by every repeated purge, and the erasure fails (27000) instead of
-- recording an erasure that left them behind.
CREATE FUNCTION crm.archive_email() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	INSERT INTO crm.sent_emails (ref, recipient, subject)
	VALUES (OLD.ref || '+', OLD.recipient, OLD.subject);
	RETURN NULL;
END
$$;
CREATE TRIGGER archive_email AFTER DELETE ON crm.sent_emails
	FOR EACH ROW EXECUTE FUNCTION crm.archive_email();
-- (In a transaction that is rolled back, should the erasure pass.)
BEGIN;
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('11111111-1111-1111-1111-111111111111')$$);
SELECT * FROM changes;
ROLLBACK;
DROP TRIGGER archive_email ON crm.sent_emails;
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

--
-- One by one, in a transaction that is rolled back: Ines (individual),
-- Comp (company), Sam (individual with a trading name), Nora (company
-- without legal name).
--
BEGIN;
SELECT 'ines' AS ref, * FROM anonymize.anonymize_customer(:'ines');
SELECT 'comp' AS ref, * FROM anonymize.anonymize_customer(:'comp');
SELECT 'sole' AS ref, * FROM anonymize.anonymize_customer(:'sole');
SELECT 'nolegal' AS ref, * FROM anonymize.anonymize_customer(:'nolegal');
-- Exactly what changed: only rows of the four, none of Olga's and none of
-- the decoys (a webhook and a version with Ines's ids but another type).
SELECT * FROM changes;
SELECT owner FROM changes GROUP BY owner ORDER BY owner COLLATE "C";
-- The new updated_at values are the time of the erasure.
SELECT tab, ref FROM pg_temp.crm_rows()
 WHERE (r ->> 'updated_at')::timestamp = now()::timestamp
 ORDER BY tab COLLATE "C", ref COLLATE "C";
-- The audit log: rows deleted per purge rule, rows updated per erase rule
-- (a rule counts the rows it applied to: 0 for a rule of the other kind).
SELECT c.ref, a.customer_kind, a.rows_deleted, a.rows_updated
  FROM anonymize.audit_log a JOIN crm.customers c ON c.id = a.customer_id
 ORDER BY c.ref;
-- One UPDATE per erasure on wallets; each payment row updated once,
-- although it is reached through two scopes.
SELECT relation, count(*) FROM crm.statement_log GROUP BY relation;
SELECT ref, count(*) AS updates FROM crm.row_updates GROUP BY ref ORDER BY ref;
-- For the comparison with the request queue below.
SELECT jsonb_agg(to_jsonb(c) ORDER BY c.owner COLLATE "C", c.tab COLLATE "C",
                 c.ref COLLATE "C", c.col COLLATE "C") AS one_by_one_changes
  FROM changes c \gset
SELECT jsonb_agg(jsonb_build_array(c.ref, a.customer_kind, a.rows_deleted, a.rows_updated)
                 ORDER BY c.ref) AS one_by_one_audit
  FROM anonymize.audit_log a JOIN crm.customers c ON c.id = a.customer_id \gset
ROLLBACK;
SELECT count(*) AS changes_after_rollback FROM changes;

--
-- The request queue: the same four and Olga, requested at once, erased in
-- one set-based batch (one UPDATE of wallets for all); Olga stays pending,
-- blocked.  The result is the same as one by one.
--
SELECT c.ref, anonymize.request(c.id, 'ticket ' || c.ref) IS NOT NULL AS requested
  FROM crm.customers c ORDER BY c.ref;
CALL anonymize.process_requests();
SELECT c.ref, r.state, r.outcome, anonymize.describe_outcome(r.details) AS blockers
  FROM anonymize.requests r JOIN crm.customers c ON c.id = r.customer_id
 ORDER BY c.ref;
SELECT relation, count(*) FROM crm.statement_log GROUP BY relation;
SELECT (SELECT jsonb_agg(to_jsonb(c) ORDER BY c.owner COLLATE "C", c.tab COLLATE "C",
                         c.ref COLLATE "C", c.col COLLATE "C") FROM changes c)
       = :'one_by_one_changes'::jsonb
       AS same_changes_as_one_by_one;
SELECT (SELECT jsonb_agg(jsonb_build_array(c.ref, a.customer_kind, a.rows_deleted, a.rows_updated)
                         ORDER BY c.ref)
          FROM anonymize.audit_log a JOIN crm.customers c ON c.id = a.customer_id)
       = :'one_by_one_audit'::jsonb AS same_audit_as_one_by_one;
SELECT ref, count(*) AS updates FROM crm.row_updates GROUP BY ref ORDER BY ref;
SELECT owner, tab, ref, col FROM changes WHERE owner NOT IN ('ines', 'comp', 'sole', 'nolegal');
-- A second run changes nothing: Olga is still blocked, and not tried again
-- before anonymize.retry_interval has passed.
CALL anonymize.process_requests();
SELECT c.ref, r.state, r.outcome
  FROM anonymize.requests r JOIN crm.customers c ON c.id = r.customer_id
 ORDER BY c.ref;
SELECT * FROM anonymize.anonymize_customer(:'ines');

SET client_min_messages = warning;
DROP SCHEMA crm CASCADE;
RESET client_min_messages;
