-- examples/saas/schema.sql
--
-- A second example schema for the anonymize extension: a multi-tenant
-- usage-billing SaaS, shaped like real open-source billing systems (Lago,
-- Rails applications with paper_trail) rather than like examples/billing.sql.
-- Its mapping is examples/saas/mapping.sql, sample data
-- examples/saas/sample_data.sql, and the README beside this file explains
-- both.  Load it with:  psql -f examples/saas/schema.sql
--
-- Why it is hard to map (each point is something the 1.1 mapping could not
-- express):
--
--  * The address, the company and the contact person sit on the customer
--    row.  "Company" is not a free-text company column: it is an enum
--    (customer_type: 'company', 'individual', or NULL on rows older than the
--    enum) plus a legal name.  A sole trader is an individual WITH a trading
--    name in legal_name; a company may have no legal name at all.
--  * Two tenants share the same platform: external_id and email are NOT NULL
--    and UNIQUE per tenant, so the same person can be a customer of both
--    tenants (and must stay a customer of the one she did not leave), and an
--    erased email needs a value that is unique, not one placeholder.
--  * updated_at drives the tenants' incremental syncs: an erasure that does
--    not touch it is never synced.
--  * States are integer codes (smallint), not words.
--  * Personal data is linked to the customer only indirectly:
--      - webhooks are polymorphic (object_type 'Invoice', 'Subscription',
--        'WalletTransaction' or 'Customer', object_id the id of that row),
--        with no foreign key, and copy the customer into their payload;
--      - wallet_transactions belong to a wallet, which belongs to a customer;
--      - error_details are owned (polymorphically) by an invoice;
--      - versions is a paper_trail audit history: item_type + a VARCHAR
--        item_id holding the uuid as text, and jsonb copies of the old row
--        (object) and of the changes (object_changes), i.e. every old email
--        and address.
--  * Rows that must stay hold personal data in some of their columns:
--    payment_requests.email (NOT NULL), the card holder name and email inside
--    payment_methods.details (jsonb), the payer inside
--    payments.provider_details (jsonb), wallets named after the person, notes
--    in wallet_transactions.metadata (jsonb, NOT NULL).  They are referenced
--    by foreign keys (payments -> invoices, payment_requests,
--    payment_methods) and are accounting records: they cannot be deleted.
--  * payments are reached from the customer in two ways: through the invoice
--    they pay and through the payment request they settle.
--
-- Every foreign key is NO ACTION: no ON DELETE CASCADE / SET NULL onto rows
-- an erasure deletes, and no ON UPDATE action on an erased column (the
-- extension refuses those).  Every link column has an index.  Every table
-- carries its tenant_id, as multi-tenant schemas do.
--
-- The extension never creates, alters or drops these tables.

CREATE SCHEMA saas;

CREATE TYPE saas.customer_type AS ENUM ('company', 'individual');

CREATE TABLE saas.tenants (
	id			uuid PRIMARY KEY,
	name		varchar NOT NULL UNIQUE,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE saas.customers (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	external_id		varchar(255) NOT NULL,	-- the tenant's own id of the customer
	name			varchar,				-- display name
	customer_type	saas.customer_type,		-- NULL: created before the enum existed
	legal_name		varchar,				-- a company's legal name, a sole trader's trading name
	tax_identification_number varchar,
	firstname		varchar,				-- the contact person
	lastname		varchar,
	email			varchar NOT NULL,
	phone			varchar,
	url				varchar,
	address_line1	varchar,
	address_line2	varchar,
	city			varchar,
	zipcode			varchar,
	state			varchar,
	country			char(2),
	shipping_address_line1 varchar,
	shipping_city	varchar,
	shipping_zipcode varchar,
	shipping_country char(2),
	currency		char(3) NOT NULL DEFAULT 'EUR',
	timezone		varchar NOT NULL DEFAULT 'UTC',
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (tenant_id, external_id),
	UNIQUE (tenant_id, email)
);

-- status: 0 pending (not started yet), 1 active, 2 terminated, 3 canceled
CREATE TABLE saas.subscriptions (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	customer_id		uuid NOT NULL REFERENCES saas.customers (id),
	external_id		varchar NOT NULL,
	plan_code		varchar NOT NULL,
	status			smallint NOT NULL CHECK (status BETWEEN 0 AND 3),
	started_at		timestamptz,
	terminated_at	timestamptz,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON saas.subscriptions (customer_id);

-- status: 0 draft, 1 finalized, 2 voided
-- payment_status: 0 pending, 1 succeeded, 2 failed
CREATE TABLE saas.invoices (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	customer_id		uuid NOT NULL REFERENCES saas.customers (id),
	number			varchar NOT NULL,
	status			smallint NOT NULL CHECK (status BETWEEN 0 AND 2),
	payment_status	smallint NOT NULL DEFAULT 0 CHECK (payment_status BETWEEN 0 AND 2),
	currency		char(3) NOT NULL DEFAULT 'EUR',
	total_amount_cents bigint NOT NULL,
	issuing_date	date NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (tenant_id, number)
);
CREATE INDEX ON saas.invoices (customer_id);

-- Errors of the tax or payment provider about an invoice; the provider
-- echoes the address it was sent.  owner_type is always 'Invoice' here.
CREATE TABLE saas.error_details (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	owner_type		varchar NOT NULL,
	owner_id		uuid NOT NULL,
	error_code		smallint NOT NULL,
	details			jsonb NOT NULL DEFAULT '{}',
	created_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON saas.error_details (owner_id, owner_type);

-- Prepaid credits.  status: 0 active, 1 terminated
CREATE TABLE saas.wallets (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	customer_id		uuid NOT NULL REFERENCES saas.customers (id),
	name			varchar,
	status			smallint NOT NULL CHECK (status BETWEEN 0 AND 1),
	currency		char(3) NOT NULL DEFAULT 'EUR',
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON saas.wallets (customer_id);

-- transaction_type: 0 inbound (credits bought or granted), 1 outbound (used)
-- status: 0 pending, 1 settled, 2 failed
CREATE TABLE saas.wallet_transactions (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	wallet_id		uuid NOT NULL REFERENCES saas.wallets (id),
	invoice_id		uuid REFERENCES saas.invoices (id),
	transaction_type smallint NOT NULL CHECK (transaction_type BETWEEN 0 AND 1),
	status			smallint NOT NULL CHECK (status BETWEEN 0 AND 2),
	amount			numeric(12, 2) NOT NULL,
	metadata		jsonb NOT NULL DEFAULT '[]',	-- [{"key": ..., "value": ...}]
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON saas.wallet_transactions (wallet_id);
CREATE INDEX ON saas.wallet_transactions (invoice_id);

-- A request to pay overdue invoices, sent to an email address that the
-- tenant chose (not always the customer's).
-- payment_status: 0 pending, 1 succeeded, 2 failed
CREATE TABLE saas.payment_requests (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	customer_id		uuid NOT NULL REFERENCES saas.customers (id),
	email			varchar NOT NULL,
	amount_cents	bigint NOT NULL,
	amount_currency	char(3) NOT NULL DEFAULT 'EUR',
	payment_status	smallint NOT NULL CHECK (payment_status BETWEEN 0 AND 2),
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON saas.payment_requests (customer_id);

-- details: what the payment provider says about the method, e.g.
-- {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2027,
--  "holder_name": "...", "email": "..."}
CREATE TABLE saas.payment_methods (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	customer_id		uuid NOT NULL REFERENCES saas.customers (id),
	provider_type	varchar NOT NULL,
	provider_method_id varchar NOT NULL,
	is_default		boolean NOT NULL DEFAULT false,
	details			jsonb NOT NULL DEFAULT '{}',
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON saas.payment_methods (customer_id);

-- A payment pays an invoice, or settles a payment request (which covers
-- several invoices), or both.  status: 0 pending, 1 succeeded, 2 failed
CREATE TABLE saas.payments (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	invoice_id		uuid REFERENCES saas.invoices (id),
	payment_request_id uuid REFERENCES saas.payment_requests (id),
	payment_method_id uuid REFERENCES saas.payment_methods (id),
	amount_cents	bigint NOT NULL,
	status			smallint NOT NULL CHECK (status BETWEEN 0 AND 2),
	provider_payment_id varchar NOT NULL,
	provider_details jsonb,			-- {"payer_name": ..., "payer_email": ..., ...}
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	CHECK (invoice_id IS NOT NULL OR payment_request_id IS NOT NULL)
);
CREATE INDEX ON saas.payments (invoice_id);
CREATE INDEX ON saas.payments (payment_request_id);
CREATE INDEX ON saas.payments (payment_method_id);

-- Outgoing webhooks to the tenant.  Polymorphic: object_type names the
-- table ('Invoice', 'Subscription', 'WalletTransaction', 'Customer'),
-- object_id the row; no foreign key.  status: 0 pending, 1 succeeded,
-- 2 failed
CREATE TABLE saas.webhooks (
	id				uuid PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	object_type		varchar NOT NULL,
	object_id		uuid NOT NULL,
	webhook_type	varchar NOT NULL,
	endpoint_url	varchar NOT NULL,
	payload			jsonb NOT NULL,
	status			smallint NOT NULL CHECK (status BETWEEN 0 AND 2),
	http_status		integer,
	retries			integer NOT NULL DEFAULT 0,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON saas.webhooks (object_id, object_type);

-- paper_trail's audit history (plus the tenant as metadata column): item_id
-- is a varchar holding the item's uuid as text; object is the row before
-- the change, object_changes {"column": [old, new]}.  whodunnit: who made
-- the change (a staff user id).
CREATE TABLE saas.versions (
	id				bigserial PRIMARY KEY,
	tenant_id		uuid NOT NULL REFERENCES saas.tenants (id),
	item_type		varchar NOT NULL,
	item_id			varchar NOT NULL,
	event			varchar NOT NULL,
	whodunnit		varchar,
	object			jsonb,
	object_changes	jsonb,
	created_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON saas.versions (item_type, item_id);
