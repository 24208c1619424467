-- examples/billing_mapping.sql -- the mapping of examples/billing.sql
--
-- Load it after CREATE EXTENSION anonymize, as the extension owner:
--     psql -f examples/billing_mapping.sql      (or \i in psql)
-- It states the erasure rules of a subscription-billing product with the
-- mapping API; a mapping of another schema is written the same way
-- (docs/mapping.md).  Loading it again replaces nothing but these entries.

-- The customer: its uuid key; the name follows the company test, the
-- email is erased.
SELECT anonymize.set_customer_relation('billing.customers', 'id', 'name', 'email');

-- The billing address, one row per customer.  A non-blank company makes
-- the customer a company, whose name becomes the company name.
SELECT anonymize.set_scope('billing_address', 'billing.billing_addresses', 'customer_id');
SELECT anonymize.set_company_test('billing_address', $$company ~ '[^[:space:]]'$$, 'company');
-- First name, last name and phone are erased for everyone ...
SELECT anonymize.set_erase_rule('billing_address_contact', 'billing_address',
	'{first_name,last_name,phone}');
-- ... the address for an individual only; the country always stays.
SELECT anonymize.set_erase_rule('billing_address_street', 'billing_address',
	'{address_line1,address_line2,city,postal_code,region}', 'individual');

-- Deleted: the history of sent emails, recent activity, webhook
-- notifications, and subscriptions still being configured.
SELECT anonymize.set_scope('sent_emails', 'billing.sent_emails', 'customer_id');
SELECT anonymize.set_scope('customer_activity', 'billing.customer_activity', 'customer_id');
SELECT anonymize.set_scope('webhook_notifications', 'billing.webhook_notifications', 'customer_id');
SELECT anonymize.set_scope('subscriptions', 'billing.subscriptions', 'customer_id');
SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails');
SELECT anonymize.set_purge_rule('customer_activity', 'customer_activity');
SELECT anonymize.set_purge_rule('webhook_notifications', 'webhook_notifications');
SELECT anonymize.set_purge_rule('initialized_subscriptions', 'subscriptions',
	$$state = 'initialized'$$);

-- Refused while the customer is active: a subscription not terminated, an
-- invoice neither paid nor cancelled, a balance that is not zero.
SELECT anonymize.set_scope('invoices', 'billing.invoices', 'customer_id');
SELECT anonymize.set_scope('balance_entries', 'billing.balance_entries', 'customer_id');
SELECT anonymize.set_blocker_rule('subscriptions_not_terminated', 'subscriptions',
	$$state NOT IN ('initialized', 'terminated')$$, 'subscription not terminated');
SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices',
	$$status NOT IN ('paid', 'cancelled')$$, 'invoice not paid or cancelled');
SELECT anonymize.set_balance_rule('balance', 'balance_entries', 'amount');

-- Kept on purpose: the columns that can hold personal data and stay after
-- an erasure, each with its reason, so that anonymize.coverage() reports
-- nothing NOT COVERED.  A mark is per column: a column added later shows
-- up as NOT COVERED until it is mapped or marked.
SELECT anonymize.set_kept('billing.billing_addresses', 'country',
	'the tax jurisdiction of the invoices (VAT), which accounting law requires to keep');
SELECT anonymize.set_kept('billing.billing_addresses', 'company',
	'the company name: the company test reads it, a company is not a natural person and its invoices name it; an individual has none');
SELECT anonymize.set_kept('billing.invoices', 'status',
	'accounting record (draft, due, paid, cancelled): no personal data');
SELECT anonymize.set_kept('billing.subscriptions', 'plan',
	'what the kept invoices were billed for: no personal data');
SELECT anonymize.set_kept('billing.subscriptions', 'state',
	'the state of a kept subscription (the initialized ones are purged): no personal data');
SELECT anonymize.set_kept('billing.balance_entries', 'description',
	'the label of an accounting line, written by the billing system (payment received, invoice 1)');
