-- examples/sample_customers.sql
--
-- Sample data for examples/billing.sql, used by examples/demo.sh.  Three
-- customers with fixed, readable ids:
--
--   11111111-1111-1111-1111-111111111111  Acme GmbH (company, DE): terminated
--       subscription, paid invoice, balance lines +50.00/-50.00 that cancel
--       out, an 'initialized' subscription and history rows -> can be erased
--   22222222-2222-2222-2222-222222222222  Jean Dupont (individual, FR): all
--       terminated and paid, history rows -> can be erased
--   33333333-3333-3333-3333-333333333333  Maria Rossi (individual, IT): active
--       subscription, due invoice, balance -12.50 -> erasure refused
--
-- Load it after the schema:  psql -f examples/billing.sql -f examples/sample_customers.sql

BEGIN;

INSERT INTO billing.customers (id, name, email, created_at) VALUES
	('11111111-1111-1111-1111-111111111111', 'Anna Schmidt', 'anna.schmidt@acme.example', '2022-03-01 09:00+00'),
	('22222222-2222-2222-2222-222222222222', 'Jean Dupont', 'jean.dupont@example.fr', '2022-06-15 14:30+00'),
	('33333333-3333-3333-3333-333333333333', 'Maria Rossi', 'maria.rossi@example.it', '2023-01-10 11:15+00');

INSERT INTO billing.billing_addresses (customer_id, company, first_name, last_name, phone,
		address_line1, address_line2, city, postal_code, region, country) VALUES
	('11111111-1111-1111-1111-111111111111', 'Acme GmbH', 'Anna', 'Schmidt', '+49 30 1234567',
		'Friedrichstrasse 123', '3. OG', 'Berlin', '10117', 'Berlin', 'DE'),
	('22222222-2222-2222-2222-222222222222', NULL, 'Jean', 'Dupont', '+33 1 23 45 67 89',
		'12 rue de la Paix', NULL, 'Paris', '75002', 'Ile-de-France', 'FR'),
	('33333333-3333-3333-3333-333333333333', NULL, 'Maria', 'Rossi', '+39 06 1234 5678',
		'Via del Corso 45', 'Scala B', 'Roma', '00186', 'Lazio', 'IT');

INSERT INTO billing.subscriptions (customer_id, plan, state, started_at) VALUES
	('11111111-1111-1111-1111-111111111111', 'business', 'terminated', '2022-03-01 09:00+00'),
	('11111111-1111-1111-1111-111111111111', 'business', 'initialized', NULL),
	('22222222-2222-2222-2222-222222222222', 'standard', 'terminated', '2022-06-15 14:30+00'),
	('33333333-3333-3333-3333-333333333333', 'standard', 'active', '2023-01-10 11:15+00');

INSERT INTO billing.invoices (customer_id, status, amount, issued_at) VALUES
	('11111111-1111-1111-1111-111111111111', 'paid', 50.00, '2022-04-01 00:00+00'),
	('22222222-2222-2222-2222-222222222222', 'paid', 9.90, '2022-07-01 00:00+00'),
	('22222222-2222-2222-2222-222222222222', 'paid', 9.90, '2022-08-01 00:00+00'),
	('33333333-3333-3333-3333-333333333333', 'paid', 12.50, '2023-02-01 00:00+00'),
	('33333333-3333-3333-3333-333333333333', 'due', 12.50, '2023-03-01 00:00+00');

INSERT INTO billing.balance_entries (customer_id, amount, description, booked_at) VALUES
	('11111111-1111-1111-1111-111111111111', 50.00, 'payment received', '2022-04-03 10:00+00'),
	('11111111-1111-1111-1111-111111111111', -50.00, 'invoice 2022-04', '2022-04-01 00:00+00'),
	('22222222-2222-2222-2222-222222222222', -9.90, 'invoice 2022-07', '2022-07-01 00:00+00'),
	('22222222-2222-2222-2222-222222222222', 9.90, 'payment received', '2022-07-02 08:00+00'),
	('22222222-2222-2222-2222-222222222222', -9.90, 'invoice 2022-08', '2022-08-01 00:00+00'),
	('22222222-2222-2222-2222-222222222222', 9.90, 'payment received', '2022-08-02 08:00+00'),
	('33333333-3333-3333-3333-333333333333', -12.50, 'invoice 2023-02', '2023-02-01 00:00+00'),
	('33333333-3333-3333-3333-333333333333', 12.50, 'payment received', '2023-02-03 08:00+00'),
	('33333333-3333-3333-3333-333333333333', -12.50, 'invoice 2023-03', '2023-03-01 00:00+00');

INSERT INTO billing.sent_emails (customer_id, recipient, subject, body, sent_at) VALUES
	('11111111-1111-1111-1111-111111111111', 'anna.schmidt@acme.example', 'Welcome to Billing', 'Hello Anna, ...', '2022-03-01 09:01+00'),
	('11111111-1111-1111-1111-111111111111', 'anna.schmidt@acme.example', 'Your invoice 2022-04', 'Dear Anna Schmidt, ...', '2022-04-01 00:05+00'),
	('11111111-1111-1111-1111-111111111111', 'anna.schmidt@acme.example', 'Subscription terminated', 'Goodbye Anna, ...', '2022-12-31 12:00+00'),
	('22222222-2222-2222-2222-222222222222', 'jean.dupont@example.fr', 'Bienvenue', 'Bonjour Jean, ...', '2022-06-15 14:31+00'),
	('22222222-2222-2222-2222-222222222222', 'jean.dupont@example.fr', 'Votre facture 2022-07', 'Cher Jean Dupont, ...', '2022-07-01 00:05+00'),
	('33333333-3333-3333-3333-333333333333', 'maria.rossi@example.it', 'Benvenuta', 'Ciao Maria, ...', '2023-01-10 11:16+00'),
	('33333333-3333-3333-3333-333333333333', 'maria.rossi@example.it', 'Payment reminder', 'Dear Maria Rossi, ...', '2023-03-15 09:00+00');

INSERT INTO billing.customer_activity (customer_id, kind, details, occurred_at) VALUES
	('11111111-1111-1111-1111-111111111111', 'login', 'from 203.0.113.7', '2022-03-01 09:05+00'),
	('11111111-1111-1111-1111-111111111111', 'address_changed', 'Friedrichstrasse 123, Berlin', '2022-03-02 10:00+00'),
	('11111111-1111-1111-1111-111111111111', 'login', 'from 203.0.113.7', '2022-11-20 08:00+00'),
	('11111111-1111-1111-1111-111111111111', 'cancel', 'subscription cancelled by Anna Schmidt', '2022-12-01 16:00+00'),
	('22222222-2222-2222-2222-222222222222', 'login', 'from 198.51.100.23', '2022-06-15 14:35+00'),
	('22222222-2222-2222-2222-222222222222', 'cancel', 'subscription cancelled', '2022-08-20 19:00+00'),
	('33333333-3333-3333-3333-333333333333', 'login', 'from 192.0.2.99', '2023-01-10 11:20+00');

INSERT INTO billing.webhook_notifications (customer_id, event, payload, sent_at) VALUES
	('11111111-1111-1111-1111-111111111111', 'customer.created', '{"name": "Anna Schmidt", "company": "Acme GmbH"}', '2022-03-01 09:00+00'),
	('11111111-1111-1111-1111-111111111111', 'subscription.terminated', '{"plan": "business"}', '2022-12-31 12:00+00'),
	('22222222-2222-2222-2222-222222222222', 'customer.created', '{"name": "Jean Dupont"}', '2022-06-15 14:30+00'),
	('22222222-2222-2222-2222-222222222222', 'subscription.terminated', '{"plan": "standard"}', '2022-08-31 23:59+00'),
	('33333333-3333-3333-3333-333333333333', 'customer.created', '{"name": "Maria Rossi"}', '2023-01-10 11:15+00');

COMMIT;
