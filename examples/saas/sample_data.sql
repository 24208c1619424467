-- examples/saas/sample_data.sql
--
-- Deterministic sample data for examples/saas/schema.sql (load the schema
-- first):  psql -f examples/saas/schema.sql -f examples/saas/sample_data.sql
--
-- Two tenants, "cloudhost" and "mailbird", and six customers.  Ids are
-- fixed: customer N is c0000000-0000-4000-8000-00000000000N, and the rows of
-- customer N in the other tables end in 0000000N000S (S: 1, 2, ...), with a
-- prefix per table (5b subscriptions, 1a invoices, aa wallets,
-- ab wallet transactions, ca payment requests, cb payment methods,
-- cc payments, ed error details).  Webhook ids are derived from md5.
--
--  1 acme      cloudhost  company (customer_type 'company', legal name "Acme
--                         Robotics GmbH"), contact Anna Schmidt; eligible
--  2 jean      cloudhost  individual Jean Dupont, customer_type NULL (a row
--                         older than the enum), no legal name; eligible
--  3 krause    cloudhost  sole trader: customer_type 'individual' trading as
--                         "Malerbetrieb Krause" (legal_name), tax number;
--                         eligible; must be erased as an individual
--  4 nordwind  cloudhost  company without legal name: customer_type
--                         'company', legal_name NULL, contact Lena Vogt;
--                         eligible; must stay a company named by its name
--  5 maria     cloudhost  individual Maria Rossi, still active: an active
--                         subscription, an unpaid invoice, a pending wallet
--                         top-up and 30.00 of unused credits; blocked
--  6 jean2     mailbird   the SAME person as 2 (same name, email, phone,
--                         street, even the same external_id, which is unique
--                         per tenant only), customer of the other tenant;
--                         eligible, but nobody asked: must stay untouched
--
-- Every eligible customer has, besides its own row: webhooks about its
-- invoices, subscriptions, wallet transactions and itself whose payload
-- copies the customer; paper_trail versions of its customer row (with OLD
-- emails, phones and streets), of its payment methods, wallets and payment
-- requests; a payment method whose details hold the card holder's name and
-- email; payments whose provider details hold the payer; mostly a wallet
-- named after the person, a payment request with an email, and error
-- details of the tax provider that echo the street.  Acme also has a
-- pending subscription (purged) with a webhook about it.

INSERT INTO saas.tenants (id, name) VALUES
	('a0000000-0000-4000-8000-000000000001', 'cloudhost'),
	('a0000000-0000-4000-8000-000000000002', 'mailbird');

INSERT INTO saas.customers (id, tenant_id, external_id, name, customer_type,
		legal_name, tax_identification_number, firstname, lastname, email,
		phone, url, address_line1, address_line2, city, zipcode, state,
		country, shipping_address_line1, shipping_city, shipping_zipcode,
		shipping_country) VALUES
	('c0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001',
		'cus_1001', 'Acme Robotics', 'company', 'Acme Robotics GmbH', 'DE811234567',
		'Anna', 'Schmidt', 'anna.schmidt@acme-robotics.example', '+49 30 1234567',
		'https://acme-robotics.example', 'Friedrichstrasse 123', '3. OG', 'Berlin',
		'10117', 'Berlin', 'DE', 'Lagerweg 9', 'Berlin', '10115', 'DE'),
	('c0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000001',
		'cus_1002', 'Jean Dupont', NULL, NULL, NULL,
		'Jean', 'Dupont', 'jean.dupont@example.fr', '+33 1 23 45 67 89',
		NULL, '12 rue de la Paix', 'Bat. A', 'Paris',
		'75002', 'Ile-de-France', 'FR', '12 rue de la Paix', 'Paris', '75002', 'FR'),
	('c0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000001',
		'cus_1003', 'Klaus Krause', 'individual', 'Malerbetrieb Krause', 'DE298765432',
		'Klaus', 'Krause', 'info@malerbetrieb-krause.example', '+49 341 9876543',
		'https://malerbetrieb-krause.example', 'Hauptstrasse 7', NULL, 'Leipzig',
		'04109', 'Sachsen', 'DE', NULL, NULL, NULL, NULL),
	('c0000000-0000-4000-8000-000000000004', 'a0000000-0000-4000-8000-000000000001',
		'cus_1004', 'Nordwind Logistik', 'company', NULL, 'DE300111222',
		'Lena', 'Vogt', 'lena.vogt@nordwind-logistik.example', '+49 40 5550123',
		NULL, 'Hafenstrasse 5', NULL, 'Hamburg',
		'20459', 'Hamburg', 'DE', NULL, NULL, NULL, NULL),
	('c0000000-0000-4000-8000-000000000005', 'a0000000-0000-4000-8000-000000000001',
		'cus_1005', 'Maria Rossi', 'individual', NULL, NULL,
		'Maria', 'Rossi', 'maria.rossi@example.it', '+39 06 1234 5678',
		NULL, 'Via del Corso 45', 'Scala B', 'Roma',
		'00186', 'Lazio', 'IT', NULL, NULL, NULL, NULL),
	('c0000000-0000-4000-8000-000000000006', 'a0000000-0000-4000-8000-000000000002',
		'cus_1002', 'Jean Dupont', NULL, NULL, NULL,
		'Jean', 'Dupont', 'jean.dupont@example.fr', '+33 1 23 45 67 89',
		NULL, '12 rue de la Paix', 'Bat. A', 'Paris',
		'75002', 'Ile-de-France', 'FR', '12 rue de la Paix', 'Paris', '75002', 'FR');

-- status: 0 pending, 1 active, 2 terminated, 3 canceled
INSERT INTO saas.subscriptions (id, tenant_id, customer_id, external_id,
		plan_code, status, started_at, terminated_at) VALUES
	('5b000000-0000-4000-8000-000000010001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000001', 'sub_acme_1', 'business', 2,
		'2023-01-01', '2024-01-31'),
	('5b000000-0000-4000-8000-000000010002', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000001', 'sub_acme_2', 'business_plus', 0,
		NULL, NULL),
	('5b000000-0000-4000-8000-000000020001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000002', 'sub_jean_1', 'starter', 2,
		'2023-03-01', '2024-02-29'),
	('5b000000-0000-4000-8000-000000030001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000003', 'sub_krause_1', 'starter', 2,
		'2023-05-01', '2024-01-31'),
	('5b000000-0000-4000-8000-000000040001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000004', 'sub_nordwind_1', 'business', 3,
		NULL, NULL),
	('5b000000-0000-4000-8000-000000050001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000005', 'sub_maria_1', 'starter', 1,
		'2023-06-01', NULL),
	('5b000000-0000-4000-8000-000000060001', 'a0000000-0000-4000-8000-000000000002',
		'c0000000-0000-4000-8000-000000000006', 'sub_jean_1', 'mailer', 2,
		'2023-03-01', '2024-02-29');

-- status: 0 draft, 1 finalized, 2 voided; payment_status: 0 pending,
-- 1 succeeded, 2 failed
INSERT INTO saas.invoices (id, tenant_id, customer_id, number, status,
		payment_status, total_amount_cents, issuing_date) VALUES
	('1a000000-0000-4000-8000-000000010001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000001', 'CH-2024-0001', 1, 1, 4900, '2024-01-31'),
	('1a000000-0000-4000-8000-000000010002', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000001', 'CH-2024-0002', 2, 0, 1200, '2024-02-01'),
	('1a000000-0000-4000-8000-000000020001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000002', 'CH-2024-0003', 1, 1, 990, '2024-02-29'),
	('1a000000-0000-4000-8000-000000030001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000003', 'CH-2024-0004', 1, 1, 1990, '2024-01-31'),
	('1a000000-0000-4000-8000-000000040001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000004', 'CH-2024-0005', 2, 0, 4900, '2024-01-31'),
	('1a000000-0000-4000-8000-000000050001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000005', 'CH-2024-0006', 1, 0, 990, '2024-03-01'),
	('1a000000-0000-4000-8000-000000060001', 'a0000000-0000-4000-8000-000000000002',
		'c0000000-0000-4000-8000-000000000006', 'MB-2024-0001', 1, 1, 500, '2024-02-29');

-- status: 0 active, 1 terminated
INSERT INTO saas.wallets (id, tenant_id, customer_id, name, status) VALUES
	('aa000000-0000-4000-8000-000000010001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000001', 'Acme Robotics credits', 1),
	('aa000000-0000-4000-8000-000000020001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000002', 'Jean Dupont', 1),
	('aa000000-0000-4000-8000-000000030001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000003', 'Malerbetrieb Krause Guthaben', 1),
	('aa000000-0000-4000-8000-000000050001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000005', 'Credits of Maria Rossi', 0),
	('aa000000-0000-4000-8000-000000060001', 'a0000000-0000-4000-8000-000000000002',
		'c0000000-0000-4000-8000-000000000006', 'Jean Dupont', 1);

-- transaction_type: 0 inbound, 1 outbound; status: 0 pending, 1 settled,
-- 2 failed.  The settled lines of a wallet sum to zero, except Maria's.
INSERT INTO saas.wallet_transactions (id, tenant_id, wallet_id, invoice_id,
		transaction_type, status, amount, metadata) VALUES
	('ab000000-0000-4000-8000-000000010001', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000010001', NULL, 0, 1, 100.00,
		'[{"key": "purchased_by", "value": "Anna Schmidt"}]'),
	('ab000000-0000-4000-8000-000000010002', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000010001', '1a000000-0000-4000-8000-000000010001', 1, 1, 100.00,
		'[]'),
	('ab000000-0000-4000-8000-000000020001', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000020001', NULL, 0, 1, 20.00,
		'[{"key": "note", "value": "gift card for Jean Dupont"}]'),
	('ab000000-0000-4000-8000-000000020002', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000020001', '1a000000-0000-4000-8000-000000020001', 1, 1, 20.00,
		'[]'),
	('ab000000-0000-4000-8000-000000030001', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000030001', NULL, 0, 1, 50.00,
		'[{"key": "bestellt_von", "value": "Klaus Krause"}]'),
	('ab000000-0000-4000-8000-000000030002', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000030001', NULL, 0, 2, 50.00,
		'[]'),
	('ab000000-0000-4000-8000-000000030003', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000030001', '1a000000-0000-4000-8000-000000030001', 1, 1, 50.00,
		'[]'),
	('ab000000-0000-4000-8000-000000050001', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000050001', NULL, 0, 1, 30.00,
		'[{"key": "note", "value": "welcome bonus Maria Rossi"}]'),
	('ab000000-0000-4000-8000-000000050002', 'a0000000-0000-4000-8000-000000000001',
		'aa000000-0000-4000-8000-000000050001', NULL, 0, 0, 10.00,
		'[]'),
	('ab000000-0000-4000-8000-000000060001', 'a0000000-0000-4000-8000-000000000002',
		'aa000000-0000-4000-8000-000000060001', NULL, 0, 1, 20.00,
		'[{"key": "note", "value": "gift card for Jean Dupont"}]'),
	('ab000000-0000-4000-8000-000000060002', 'a0000000-0000-4000-8000-000000000002',
		'aa000000-0000-4000-8000-000000060001', '1a000000-0000-4000-8000-000000060001', 1, 1, 20.00,
		'[]');

-- payment_status: 0 pending, 1 succeeded, 2 failed.  Krause's requests go
-- to his bookkeeping address, not to the customer's email.
INSERT INTO saas.payment_requests (id, tenant_id, customer_id, email,
		amount_cents, payment_status) VALUES
	('ca000000-0000-4000-8000-000000010001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000001', 'anna.schmidt@acme-robotics.example', 1200, 2),
	('ca000000-0000-4000-8000-000000020001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000002', 'jean.dupont@example.fr', 990, 1),
	('ca000000-0000-4000-8000-000000030001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000003', 'buchhaltung@malerbetrieb-krause.example', 1990, 1),
	('ca000000-0000-4000-8000-000000050001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000005', 'maria.rossi@example.it', 990, 0),
	('ca000000-0000-4000-8000-000000060001', 'a0000000-0000-4000-8000-000000000002',
		'c0000000-0000-4000-8000-000000000006', 'jean.dupont@example.fr', 500, 1);

INSERT INTO saas.payment_methods (id, tenant_id, customer_id, provider_type,
		provider_method_id, is_default, details) VALUES
	('cb000000-0000-4000-8000-000000010001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000001', 'stripe', 'pm_1001', true,
		'{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2027,
		  "holder_name": "ANNA M SCHMIDT", "email": "anna.schmidt@acme-robotics.example"}'),
	('cb000000-0000-4000-8000-000000020001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000002', 'stripe', 'pm_1002', true,
		'{"brand": "mastercard", "last4": "4444", "exp_month": 3, "exp_year": 2026,
		  "holder_name": "JEAN DUPONT", "email": "jean.dupont@example.fr"}'),
	('cb000000-0000-4000-8000-000000030001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000003', 'gocardless', 'MD0003', true,
		'{"scheme": "sepa_core", "last4": "3000", "holder_name": "Klaus Krause",
		  "email": "buchhaltung@malerbetrieb-krause.example"}'),
	('cb000000-0000-4000-8000-000000040001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000004', 'stripe', 'pm_1004', true,
		'{"brand": "amex", "last4": "0005", "exp_month": 8, "exp_year": 2028,
		  "holder_name": "LENA VOGT"}'),
	('cb000000-0000-4000-8000-000000050001', 'a0000000-0000-4000-8000-000000000001',
		'c0000000-0000-4000-8000-000000000005', 'stripe', 'pm_1005', true,
		'{"brand": "visa", "last4": "1881", "exp_month": 1, "exp_year": 2029,
		  "holder_name": "MARIA ROSSI", "email": "maria.rossi@example.it"}'),
	('cb000000-0000-4000-8000-000000060001', 'a0000000-0000-4000-8000-000000000002',
		'c0000000-0000-4000-8000-000000000006', 'stripe', 'pm_2001', true,
		'{"brand": "mastercard", "last4": "4444", "exp_month": 3, "exp_year": 2026,
		  "holder_name": "JEAN DUPONT", "email": "jean.dupont@example.fr"}');

-- Acme's first payment pays an invoice; its second settles a payment
-- request (and failed).  Jean's payment pays his invoice AND settles his
-- payment request: it is reached through both.  Krause's settles his
-- request only.
INSERT INTO saas.payments (id, tenant_id, invoice_id, payment_request_id,
		payment_method_id, amount_cents, status, provider_payment_id,
		provider_details) VALUES
	('cc000000-0000-4000-8000-000000010001', 'a0000000-0000-4000-8000-000000000001',
		'1a000000-0000-4000-8000-000000010001', NULL,
		'cb000000-0000-4000-8000-000000010001', 4900, 1, 'pi_1001',
		'{"payer_name": "ANNA M SCHMIDT", "payer_email": "anna.schmidt@acme-robotics.example",
		  "receipt_number": "1001-2001"}'),
	('cc000000-0000-4000-8000-000000010002', 'a0000000-0000-4000-8000-000000000001',
		NULL, 'ca000000-0000-4000-8000-000000010001',
		'cb000000-0000-4000-8000-000000010001', 1200, 2, 'pi_1002',
		'{"payer_name": "ANNA M SCHMIDT", "decline_code": "insufficient_funds"}'),
	('cc000000-0000-4000-8000-000000020001', 'a0000000-0000-4000-8000-000000000001',
		'1a000000-0000-4000-8000-000000020001', 'ca000000-0000-4000-8000-000000020001',
		'cb000000-0000-4000-8000-000000020001', 990, 1, 'pi_1003',
		'{"payer_name": "JEAN DUPONT", "payer_email": "jean.dupont@example.fr",
		  "receipt_number": "1002-2001"}'),
	('cc000000-0000-4000-8000-000000030001', 'a0000000-0000-4000-8000-000000000001',
		NULL, 'ca000000-0000-4000-8000-000000030001',
		'cb000000-0000-4000-8000-000000030001', 1990, 1, 'PM0003',
		'{"payer_name": "Klaus Krause", "mandate": "MD0003"}'),
	('cc000000-0000-4000-8000-000000060001', 'a0000000-0000-4000-8000-000000000002',
		'1a000000-0000-4000-8000-000000060001', 'ca000000-0000-4000-8000-000000060001',
		'cb000000-0000-4000-8000-000000060001', 500, 1, 'pi_2001',
		'{"payer_name": "JEAN DUPONT", "payer_email": "jean.dupont@example.fr",
		  "receipt_number": "2001-2001"}');

-- The tax provider could not validate the address on some invoices.
INSERT INTO saas.error_details (id, tenant_id, owner_type, owner_id,
		error_code, details)
SELECT ('ed' || substr(i.id::text, 3))::uuid, i.tenant_id, 'Invoice', i.id, 3,
	   jsonb_build_object('provider', 'taxjar',
			'message', 'address not validated: ' || c.address_line1 || ', '
					   || c.zipcode || ' ' || c.city,
			'customer_email', c.email)
  FROM saas.invoices i JOIN saas.customers c ON c.id = i.customer_id
 WHERE i.number IN ('CH-2024-0001', 'CH-2024-0004', 'CH-2024-0006', 'MB-2024-0001');

-- Timestamps as of the data's date, so that an erasure's updated_at shows.
UPDATE saas.customers SET created_at = '2023-01-01 09:00+00', updated_at = '2024-03-01 12:00+00';
UPDATE saas.subscriptions SET created_at = '2023-01-01 09:00+00', updated_at = '2024-03-01 12:00+00';
UPDATE saas.invoices SET created_at = issuing_date, updated_at = '2024-03-01 12:00+00';
UPDATE saas.wallets SET created_at = '2023-01-01 09:00+00', updated_at = '2024-03-01 12:00+00';
UPDATE saas.wallet_transactions SET created_at = '2024-01-15 09:00+00', updated_at = '2024-03-01 12:00+00';
UPDATE saas.payment_requests SET created_at = '2024-02-15 09:00+00', updated_at = '2024-03-01 12:00+00';
UPDATE saas.payment_methods SET created_at = '2023-01-01 09:00+00', updated_at = '2024-03-01 12:00+00';
UPDATE saas.payments SET created_at = '2024-02-16 09:00+00', updated_at = '2024-03-01 12:00+00';
UPDATE saas.error_details SET created_at = '2024-02-01 09:00+00';

-- Webhooks: the payload copies the customer as the platform sends it.
CREATE TEMP TABLE sample_webhook_customer AS
SELECT c.id, c.tenant_id,
	   jsonb_strip_nulls(jsonb_build_object(
			'lago_id', c.id, 'external_id', c.external_id, 'name', c.name,
			'customer_type', c.customer_type, 'legal_name', c.legal_name,
			'tax_identification_number', c.tax_identification_number,
			'firstname', c.firstname, 'lastname', c.lastname, 'email', c.email,
			'phone', c.phone, 'address_line1', c.address_line1,
			'address_line2', c.address_line2, 'city', c.city,
			'zipcode', c.zipcode, 'country', c.country)) AS customer
  FROM saas.customers c;

INSERT INTO saas.webhooks (id, tenant_id, object_type, object_id,
		webhook_type, endpoint_url, payload, status, http_status, created_at,
		updated_at)
SELECT md5('webhook ' || w.object_type || ' ' || w.object_id || ' ' || w.webhook_type)::uuid,
	   w.tenant_id, w.object_type, w.object_id, w.webhook_type,
	   'https://hooks.' || t.name || '.example/billing', w.payload, 1, 200,
	   '2024-03-01 12:00+00', '2024-03-01 12:00+00'
  FROM (SELECT 'Customer', c.id, 'customer.created', c.tenant_id,
			   jsonb_build_object('customer', c.customer)
		  FROM sample_webhook_customer c
		UNION ALL
		SELECT 'Invoice', i.id, 'invoice.created', i.tenant_id,
			   jsonb_build_object('invoice', jsonb_build_object(
					'lago_id', i.id, 'number', i.number,
					'total_amount_cents', i.total_amount_cents,
					'customer', c.customer))
		  FROM saas.invoices i JOIN sample_webhook_customer c ON c.id = i.customer_id
		UNION ALL
		SELECT 'Subscription', s.id,
			   CASE s.status WHEN 0 THEN 'subscription.created'
				   WHEN 2 THEN 'subscription.terminated' ELSE 'subscription.started' END,
			   s.tenant_id,
			   jsonb_build_object('subscription', jsonb_build_object(
					'lago_id', s.id, 'external_id', s.external_id,
					'plan_code', s.plan_code, 'customer', c.customer))
		  FROM saas.subscriptions s JOIN sample_webhook_customer c ON c.id = s.customer_id
		UNION ALL
		SELECT 'WalletTransaction', wt.id, 'wallet_transaction.created', wt.tenant_id,
			   jsonb_build_object('wallet_transaction', jsonb_build_object(
					'lago_id', wt.id, 'amount', wt.amount,
					'wallet', jsonb_build_object('name', wl.name),
					'customer', jsonb_build_object('email', c.customer->'email',
						'name', c.customer->'name')))
		  FROM saas.wallet_transactions wt
		  JOIN saas.wallets wl ON wl.id = wt.wallet_id
		  JOIN sample_webhook_customer c ON c.id = wl.customer_id
		 WHERE wt.status = 1
	   ) w (object_type, object_id, webhook_type, tenant_id, payload)
  JOIN saas.tenants t ON t.id = w.tenant_id;

DROP TABLE sample_webhook_customer;

-- paper_trail versions.  Customers were created with an older email, phone
-- and street and changed them later (Nordwind never changed anything).
CREATE TEMP TABLE sample_old_contact (id, old_email, old_phone, old_street) AS
VALUES
	('c0000000-0000-4000-8000-000000000001'::uuid, 'anna.old@acme-robotics.example',
		'+49 30 7654321', 'Torstrasse 44'),
	('c0000000-0000-4000-8000-000000000002'::uuid, 'jdupont@oldmail.example',
		'+33 6 98 76 54 32', '5 avenue Foch'),
	('c0000000-0000-4000-8000-000000000003'::uuid, 'klaus.krause@oldmail.example',
		'+49 341 1111111', 'Gartenweg 2'),
	('c0000000-0000-4000-8000-000000000004'::uuid, NULL, NULL, NULL),
	('c0000000-0000-4000-8000-000000000005'::uuid, 'mrossi@oldmail.example',
		'+39 06 0000 0000', 'Via Appia 1'),
	('c0000000-0000-4000-8000-000000000006'::uuid, 'jdupont@oldmail.example',
		'+33 6 98 76 54 32', '5 avenue Foch');

INSERT INTO saas.versions (tenant_id, item_type, item_id, event, whodunnit,
		object, object_changes, created_at)
SELECT v.tenant_id, v.item_type, v.item_id, v.event, v.whodunnit, v.object,
	   v.object_changes, v.created_at
  FROM (
		-- the customer created, with its first contact data ...
		SELECT c.tenant_id, 'Customer', c.id::text, 'create', 'staff:7', NULL::jsonb,
			   jsonb_strip_nulls(jsonb_build_object(
					'name', jsonb_build_array(NULL, c.name),
					'email', jsonb_build_array(NULL, coalesce(o.old_email, c.email)),
					'phone', jsonb_build_array(NULL, coalesce(o.old_phone, c.phone)),
					'address_line1', jsonb_build_array(NULL, coalesce(o.old_street, c.address_line1)),
					'legal_name', CASE WHEN c.legal_name IS NOT NULL
									   THEN jsonb_build_array(NULL, c.legal_name) END)),
			   timestamptz '2023-01-01 09:00+00', 1
		  FROM saas.customers c JOIN sample_old_contact o ON o.id = c.id
		UNION ALL
		-- ... then changed to the current one: object is the old row
		SELECT c.tenant_id, 'Customer', c.id::text, 'update', 'staff:7',
			   to_jsonb(c) - 'created_at' - 'updated_at'
					|| jsonb_build_object('email', o.old_email, 'phone', o.old_phone,
										  'address_line1', o.old_street),
			   jsonb_build_object(
					'email', jsonb_build_array(o.old_email, c.email),
					'phone', jsonb_build_array(o.old_phone, c.phone),
					'address_line1', jsonb_build_array(o.old_street, c.address_line1)),
			   timestamptz '2023-09-01 09:00+00', 2
		  FROM saas.customers c JOIN sample_old_contact o ON o.id = c.id
		 WHERE o.old_email IS NOT NULL
		UNION ALL
		SELECT p.tenant_id, 'PaymentMethod', p.id::text, 'create', NULL, NULL,
			   jsonb_build_object('customer_id', jsonb_build_array(NULL, p.customer_id),
								  'details', jsonb_build_array(NULL, p.details)),
			   timestamptz '2023-01-01 09:00+00', 3
		  FROM saas.payment_methods p
		UNION ALL
		SELECT w.tenant_id, 'Wallet', w.id::text, 'create', NULL, NULL,
			   jsonb_build_object('customer_id', jsonb_build_array(NULL, w.customer_id),
								  'name', jsonb_build_array(NULL, w.name)),
			   timestamptz '2023-01-01 09:00+00', 4
		  FROM saas.wallets w
		UNION ALL
		SELECT r.tenant_id, 'PaymentRequest', r.id::text, 'create', NULL, NULL,
			   jsonb_build_object('email', jsonb_build_array(NULL, r.email),
								  'amount_cents', jsonb_build_array(NULL, r.amount_cents)),
			   timestamptz '2024-02-15 09:00+00', 5
		  FROM saas.payment_requests r
		UNION ALL
		-- an invoice finalized by staff: no personal data, kept
		SELECT i.tenant_id, 'Invoice', i.id::text, 'update', 'staff:7',
			   jsonb_build_object('number', i.number, 'status', 0),
			   jsonb_build_object('status', jsonb_build_array(0, 1)),
			   i.issuing_date::timestamptz, 6
		  FROM saas.invoices i
		 WHERE i.status = 1
	   ) v (tenant_id, item_type, item_id, event, whodunnit, object,
			object_changes, created_at, ord)
 ORDER BY v.ord, v.item_id;

DROP TABLE sample_old_contact;
