--
-- erasure_kinds: how the customer and its billing address are rewritten.
--   company (company column holds a non-blank character): name := company,
--     email, first_name, last_name, phone := NULL; address and country stay
--   individual: name, email, first_name, last_name, phone and every address
--     column but the country := NULL
--   a blank company ('', spaces, tab/newline) is an individual, and so is a
--   customer without a billing address row
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

\set spaces     'e0000000-0000-0000-0000-000000000001'
\set tabs       'e0000000-0000-0000-0000-000000000002'
\set empty      'e0000000-0000-0000-0000-000000000003'
\set no_address 'e0000000-0000-0000-0000-000000000004'
\set padded     'e0000000-0000-0000-0000-000000000005'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'spaces', 'Sam Space', 'sam@example.com'),
	(:'tabs', 'Tabea Tab', 'tabea@example.com'),
	(:'empty', 'Emma Empty', 'emma@example.com'),
	(:'no_address', 'Nora Nowhere', 'nora@example.com'),
	(:'padded', 'Paul Pad', 'paul@example.com');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, phone, address_line1, address_line2, city, postal_code,
		region, country) VALUES
	(:'spaces', '   ', 'Sam', 'Space', '+1 555 0101',
		'1 Main St', 'Apt 1', 'Springfield', '12345', 'IL', 'US'),
	(:'tabs', E'\t\n \r', 'Tabea', 'Tab', '+49 40 555',
		'Hafenstr. 2', NULL, 'Hamburg', '20095', 'HH', 'DE'),
	(:'empty', '', 'Emma', 'Empty', '+44 20 555',
		'3 High St', NULL, 'London', 'SW1', NULL, 'GB'),
	(:'padded', E'\t Pad & Co ', 'Paul', 'Pad', '+33 1 555',
		'4 rue X', NULL, 'Lyon', '69001', 'ARA', 'FR');

-- Before (company as JSON, to show its blanks).
SELECT id, name, email, to_json(company) AS company, first_name, last_name,
       phone, address_line1, address_line2, city, postal_code, region, country
  FROM customer_state ORDER BY id;

-- Company.
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM customer_state WHERE id = :'acme';

-- Individual (company NULL).
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM customer_state WHERE id = :'jean';

-- Blank companies are individuals.
SELECT * FROM anonymize.anonymize_customer(:'spaces');
SELECT * FROM anonymize.anonymize_customer(:'tabs');
SELECT * FROM anonymize.anonymize_customer(:'empty');
SELECT id, name, email, to_json(company) AS company, first_name, last_name,
       phone, address_line1, address_line2, city, postal_code, region, country
  FROM customer_state WHERE id IN (:'spaces', :'tabs', :'empty') ORDER BY id;

-- A company name with blanks around it is a company; the name is copied as
-- it is.
SELECT * FROM anonymize.anonymize_customer(:'padded');
SELECT id, to_json(name) AS name, email, to_json(company) AS company,
       first_name, last_name, phone, address_line1, city, country
  FROM customer_state WHERE id = :'padded';

-- No billing address row: an individual, and no address row appears.
SELECT * FROM anonymize.anonymize_customer(:'no_address');
SELECT * FROM customer_state WHERE id = :'no_address';
SELECT count(*) AS address_rows FROM billing.billing_addresses
 WHERE customer_id = :'no_address';

-- Maria (not erased) is untouched.
SELECT * FROM customer_state WHERE id = :'maria';

SELECT customer_id, customer_kind FROM anonymize.audit_log ORDER BY customer_id;
