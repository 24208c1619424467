-- examples/billing.sql
--
-- The example subscription-billing schema that the default mapping of the
-- anonymize extension fits.  It holds personal data (names, emails, billing
-- addresses, copies of sent emails, activity and webhook history) beside
-- records that accounting law requires to keep (invoices, balance lines and
-- the country).  Load it with:  psql -f examples/billing.sql
--
-- The extension never creates, alters or drops these tables.

CREATE SCHEMA billing;

CREATE TABLE billing.customers (
	id			uuid PRIMARY KEY,
	name		text,
	email		text,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billing.billing_addresses (
	customer_id	uuid PRIMARY KEY REFERENCES billing.customers (id),
	company		text,
	first_name	text,
	last_name	text,
	phone		text,
	address_line1 text,
	address_line2 text,
	city		text,
	postal_code	text,
	region		text,
	country		text NOT NULL
);

CREATE TABLE billing.subscriptions (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id	uuid NOT NULL REFERENCES billing.customers (id),
	plan		text NOT NULL DEFAULT 'standard',
	state		text NOT NULL
		CHECK (state IN ('initialized', 'active', 'suspended', 'terminated')),
	started_at	timestamptz
);
CREATE INDEX ON billing.subscriptions (customer_id);

CREATE TABLE billing.invoices (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id	uuid NOT NULL REFERENCES billing.customers (id),
	status		text NOT NULL
		CHECK (status IN ('draft', 'due', 'paid', 'cancelled')),
	amount		numeric(12, 2) NOT NULL,
	issued_at	timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON billing.invoices (customer_id);

-- Credit and debit lines; a customer's balance is the sum of its lines.
CREATE TABLE billing.balance_entries (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id	uuid NOT NULL REFERENCES billing.customers (id),
	amount		numeric(12, 2) NOT NULL,
	description	text,
	booked_at	timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON billing.balance_entries (customer_id);

CREATE TABLE billing.sent_emails (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id	uuid NOT NULL REFERENCES billing.customers (id),
	recipient	text NOT NULL,
	subject		text,
	body		text,
	sent_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON billing.sent_emails (customer_id);

CREATE TABLE billing.customer_activity (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id	uuid NOT NULL REFERENCES billing.customers (id),
	kind		text NOT NULL,
	details		text,
	occurred_at	timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON billing.customer_activity (customer_id);

CREATE TABLE billing.webhook_notifications (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id	uuid NOT NULL REFERENCES billing.customers (id),
	event		text NOT NULL,
	payload		jsonb,
	sent_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON billing.webhook_notifications (customer_id);
