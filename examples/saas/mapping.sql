-- examples/saas/mapping.sql -- the mapping of examples/saas/schema.sql
--
-- Load it after CREATE EXTENSION anonymize, as the extension owner:
--     psql -f examples/saas/mapping.sql      (or \i in psql)
-- It starts over (clear_mapping), so it can be loaded again.  The README
-- beside this file explains it rule by rule, and lists the columns that
-- stay on purpose.
--
-- Every condition, amount, company name and replacement is an SQL
-- expression on one row of its scope's relation (alias t), evaluated with
-- search_path = pg_catalog: the enum type is written saas.customer_type,
-- functions of pg_catalog need no schema.

SELECT anonymize.clear_mapping();

-- The customer: its uuid key, the name column (a company keeps its company
-- name there; an individual's is erased) and the email column.
SELECT anonymize.set_customer_relation('saas.customers', 'id', 'name', 'email');

-- Company or individual, from the customer row itself.  customer_type
-- decides; rows older than the enum (customer_type NULL) are companies if
-- they have a legal name.  A sole trader is customer_type 'individual' with
-- a trading name in legal_name: an individual.  A company without legal
-- name keeps its display name.
SELECT anonymize.set_company_test('customer',
	$$t.customer_type = 'company'::saas.customer_type
	  OR (t.customer_type IS NULL AND t.legal_name ~ '[^[:space:]]')$$,
	$$coalesce(nullif(btrim(t.legal_name), ''), t.name)$$);

-- The contact person goes for everyone.  The email and the tenant's
-- external id are NOT NULL and UNIQUE per tenant: the email becomes an
-- address that is unique and undeliverable, the external id (tenants often
-- use the email or a user name there) a unique value derived from the
-- customer id, which stays.  updated_at moves, so that the tenants'
-- incremental syncs see the change.
SELECT anonymize.set_erase_rule('customer_contact', 'customer',
	'{firstname,lastname,phone}', 'everyone',
	$${"email": "'erased+' || t.id::text || '@invalid.example'",
	   "external_id": "'erased-' || t.id::text",
	   "updated_at": "pg_catalog.now()"}$$);
-- An individual's address, website, tax number and trading name go too
-- (a sole trader's trading name and tax number identify him).  The
-- countries stay.  A company keeps all of them.
SELECT anonymize.set_erase_rule('customer_private_data', 'customer',
	'{legal_name,tax_identification_number,url,address_line1,address_line2,city,zipcode,state,shipping_address_line1,shipping_city,shipping_zipcode}',
	'individual');

-- Rows linked to the customer directly.
SELECT anonymize.set_scope('subscriptions', 'saas.subscriptions', 'customer_id');
SELECT anonymize.set_scope('invoices', 'saas.invoices', 'customer_id');
SELECT anonymize.set_scope('wallets', 'saas.wallets', 'customer_id');
SELECT anonymize.set_scope('payment_requests', 'saas.payment_requests', 'customer_id');
SELECT anonymize.set_scope('payment_methods', 'saas.payment_methods', 'customer_id');

-- Scopes of scopes: wallet transactions through the wallet; payments
-- through the invoice they pay AND through the payment request they settle
-- (a payment may be reached both ways); error details owned by an invoice.
SELECT anonymize.set_scope('wallet_transactions', 'saas.wallet_transactions', 'wallet_id',
	parent => 'wallets');
SELECT anonymize.set_scope('invoice_payments', 'saas.payments', 'invoice_id',
	parent => 'invoices');
SELECT anonymize.set_scope('request_payments', 'saas.payments', 'payment_request_id',
	parent => 'payment_requests');
SELECT anonymize.set_scope('invoice_error_details', 'saas.error_details', 'owner_id',
	parent => 'invoices', condition => $$t.owner_type = 'Invoice'$$);

-- Polymorphic webhooks: object_id is the id of the row object_type names.
SELECT anonymize.set_scope('customer_webhooks', 'saas.webhooks', 'object_id',
	condition => $$t.object_type = 'Customer'$$);
SELECT anonymize.set_scope('invoice_webhooks', 'saas.webhooks', 'object_id',
	parent => 'invoices', condition => $$t.object_type = 'Invoice'$$);
SELECT anonymize.set_scope('subscription_webhooks', 'saas.webhooks', 'object_id',
	parent => 'subscriptions', condition => $$t.object_type = 'Subscription'$$);
SELECT anonymize.set_scope('wallet_transaction_webhooks', 'saas.webhooks', 'object_id',
	parent => 'wallet_transactions', condition => $$t.object_type = 'WalletTransaction'$$);

-- paper_trail versions: item_id is a varchar holding the item's uuid as
-- text; it is compared with the parent's uuid key in text form.
SELECT anonymize.set_scope('customer_versions', 'saas.versions', 'item_id',
	condition => $$t.item_type = 'Customer'$$);
SELECT anonymize.set_scope('payment_method_versions', 'saas.versions', 'item_id',
	parent => 'payment_methods', condition => $$t.item_type = 'PaymentMethod'$$);
SELECT anonymize.set_scope('wallet_versions', 'saas.versions', 'item_id',
	parent => 'wallets', condition => $$t.item_type = 'Wallet'$$);
SELECT anonymize.set_scope('payment_request_versions', 'saas.versions', 'item_id',
	parent => 'payment_requests', condition => $$t.item_type = 'PaymentRequest'$$);

-- Refused while the customer is active.  Status codes: subscriptions
-- 0 pending, 1 active, 2 terminated, 3 canceled; invoices 0 draft,
-- 1 finalized, 2 voided, payment_status 0 pending, 1 succeeded, 2 failed;
-- wallet transactions 0 pending, 1 settled, 2 failed, transaction_type
-- 0 inbound, 1 outbound.
SELECT anonymize.set_blocker_rule('active_subscriptions', 'subscriptions',
	$$t.status = 1$$, 'active subscription');
SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices',
	$$t.status = 0 OR (t.status = 1 AND t.payment_status <> 1)$$,
	'invoice draft or not paid');
SELECT anonymize.set_blocker_rule('pending_payment_requests', 'payment_requests',
	$$t.payment_status = 0$$, 'payment request pending');
SELECT anonymize.set_blocker_rule('pending_wallet_transactions', 'wallet_transactions',
	$$t.status = 0$$, 'wallet transaction pending');
SELECT anonymize.set_balance_rule('wallet_credits', 'wallet_transactions',
	$$CASE WHEN t.status = 1
		   THEN CASE t.transaction_type WHEN 0 THEN t.amount ELSE -t.amount END
		   ELSE 0 END$$,
	'unused wallet credits');

-- Deleted: copies of personal data that nothing refers to.  Subscriptions
-- that never started (the webhooks about them go first, through the scope).
SELECT anonymize.set_purge_rule('pending_subscriptions', 'subscriptions', $$t.status = 0$$);
SELECT anonymize.set_purge_rule('customer_webhooks', 'customer_webhooks');
SELECT anonymize.set_purge_rule('invoice_webhooks', 'invoice_webhooks');
SELECT anonymize.set_purge_rule('subscription_webhooks', 'subscription_webhooks');
SELECT anonymize.set_purge_rule('wallet_transaction_webhooks', 'wallet_transaction_webhooks');
SELECT anonymize.set_purge_rule('invoice_error_details', 'invoice_error_details');
SELECT anonymize.set_purge_rule('customer_versions', 'customer_versions');
SELECT anonymize.set_purge_rule('payment_method_versions', 'payment_method_versions');
SELECT anonymize.set_purge_rule('wallet_versions', 'wallet_versions');
SELECT anonymize.set_purge_rule('payment_request_versions', 'payment_request_versions');

-- Kept rows, cleaned: accounting records and rows that payments reference.
-- Subscriptions stay; their external id is the tenant's and may be made of
-- the person's name (sub_jean_1).
SELECT anonymize.set_erase_rule('subscription_external_id', 'subscriptions',
	'{}', 'everyone',
	$${"external_id": "'erased-' || t.id::text", "updated_at": "pg_catalog.now()"}$$);
-- The payment request's email is NOT NULL: it gets the placeholder ('').
SELECT anonymize.set_erase_rule('payment_request_email', 'payment_requests',
	'{email}', 'everyone', $${"updated_at": "pg_catalog.now()"}$$);
-- The card stays (brand, last4, expiry: a dispute names them); its holder
-- and email go.
SELECT anonymize.set_erase_rule('payment_method_holder', 'payment_methods',
	'{}', 'everyone',
	$${"details": "t.details - 'holder_name' - 'email'",
	   "updated_at": "pg_catalog.now()"}$$);
-- Wallets are often named after the person.
SELECT anonymize.set_erase_rule('wallet_name', 'wallets',
	'{name}', 'everyone', $${"updated_at": "pg_catalog.now()"}$$);
-- Free-form metadata of wallet transactions (NOT NULL jsonb): emptied.
SELECT anonymize.set_erase_rule('wallet_transaction_metadata', 'wallet_transactions',
	'{}', 'everyone',
	$${"metadata": "'[]'::jsonb", "updated_at": "pg_catalog.now()"}$$);
-- The payer the provider reported, on payments reached either way.
SELECT anonymize.set_erase_rule('invoice_payment_payer', 'invoice_payments',
	'{}', 'everyone',
	$${"provider_details": "t.provider_details - 'payer_name' - 'payer_email'",
	   "updated_at": "pg_catalog.now()"}$$);
SELECT anonymize.set_erase_rule('request_payment_payer', 'request_payments',
	'{}', 'everyone',
	$${"provider_details": "t.provider_details - 'payer_name' - 'payer_email'",
	   "updated_at": "pg_catalog.now()"}$$);

-- Kept on purpose (README.md, "Kept on purpose"): every column that can
-- hold personal data and stays after an erasure, with its reason, so that
-- anonymize.coverage() reports nothing NOT COVERED.  Company data kept for
-- companies only (name, legal name, address) is erased for individuals by
-- the rules above and needs no mark.
SELECT anonymize.set_kept('saas.customers', 'country',
	'the tax jurisdiction of the invoices (VAT), which accounting law requires to keep');
SELECT anonymize.set_kept('saas.customers', 'shipping_country',
	'the tax jurisdiction of the invoices (VAT), which accounting law requires to keep');
SELECT anonymize.set_kept('saas.customers', 'currency',
	'the currency of the invoices: not personal');
SELECT anonymize.set_kept('saas.customers', 'timezone',
	'the time zone of the invoices'' dates: not personal');
SELECT anonymize.set_kept('saas.invoices', 'number',
	'accounting record the law requires to keep: no personal data');
SELECT anonymize.set_kept('saas.invoices', 'currency',
	'accounting record the law requires to keep: no personal data');
SELECT anonymize.set_kept('saas.subscriptions', 'plan_code',
	'what the kept invoices were billed for: not personal');
SELECT anonymize.set_kept('saas.wallets', 'currency',
	'the currency of the credit ledger: not personal');
SELECT anonymize.set_kept('saas.payment_requests', 'amount_currency',
	'the currency of a kept request for payment: not personal');
SELECT anonymize.set_kept('saas.payments', 'provider_payment_id',
	'the provider''s reference of the payment: reconciliation, refunds and chargebacks need it (the provider, not this database, knows the payer)');
SELECT anonymize.set_kept('saas.payment_methods', 'provider_type',
	'the payment provider of a card that kept payments reference: not personal');
SELECT anonymize.set_kept('saas.payment_methods', 'provider_method_id',
	'the provider''s token of the card, which kept payments reference and a dispute names (the provider, not this database, knows the holder)');
