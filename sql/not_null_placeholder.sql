--
-- not_null_placeholder: an erased column that is NOT NULL gets the
-- placeholder, '' by default, the value of set_placeholder() once set.
-- Making a column NOT NULL after the plans were built is taken into account.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

\set nora 'd0000000-0000-0000-0000-000000000001'
\set kim  'd0000000-0000-0000-0000-000000000002'
\set ole  'd0000000-0000-0000-0000-000000000003'
\set firm 'd0000000-0000-0000-0000-000000000004'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'nora', 'Nora Noaddress', 'nora@example.com'),
	(:'kim', 'Kim Later', 'kim@example.com'),
	(:'ole', 'Ole Nordmann', 'ole@example.no'),
	(:'firm', 'Fiona Firm', 'fiona@firm.example');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, phone, address_line1, address_line2, city, postal_code,
		region, country) VALUES
	(:'kim', NULL, 'Kim', 'Later', '+46 8 555', 'Gatan 1', NULL, 'Stockholm',
		'11122', NULL, 'SE'),
	(:'ole', NULL, 'Ole', 'Nordmann', '+47 555', 'Gata 2', NULL, 'Oslo',
		'0150', NULL, 'NO'),
	(:'firm', 'Firm Oy', 'Fiona', 'Firm', '+358 555', 'Katu 3', NULL,
		'Helsinki', '00100', NULL, 'FI');

-- Build the plans while every column is nullable.
SELECT anonymize.can_anonymize(:'jean');

ALTER TABLE billing.customers
	ALTER COLUMN name SET NOT NULL,
	ALTER COLUMN email SET NOT NULL;
ALTER TABLE billing.billing_addresses
	ALTER COLUMN first_name SET NOT NULL,
	ALTER COLUMN city SET NOT NULL;

-- Default placeholder ''.
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM anonymize.anonymize_customer(:'nora');
SELECT id, quote_nullable(name) AS name, quote_nullable(email) AS email,
       quote_nullable(first_name) AS first_name,
       quote_nullable(last_name) AS last_name, quote_nullable(phone) AS phone,
       quote_nullable(address_line1) AS address_line1,
       quote_nullable(city) AS city, quote_nullable(postal_code) AS postal_code,
       country
  FROM customer_state WHERE id IN (:'jean', :'acme', :'nora') ORDER BY id;

-- Another placeholder, used at once.
SELECT anonymize.set_placeholder('n/a');
SELECT placeholder FROM anonymize.customer_relation;
SELECT * FROM anonymize.anonymize_customer(:'kim');
SELECT * FROM anonymize.anonymize_customer(:'firm');
SELECT id, quote_nullable(name) AS name, quote_nullable(email) AS email,
       quote_nullable(first_name) AS first_name,
       quote_nullable(last_name) AS last_name, quote_nullable(phone) AS phone,
       quote_nullable(address_line1) AS address_line1,
       quote_nullable(city) AS city, quote_nullable(postal_code) AS postal_code,
       country
  FROM customer_state WHERE id IN (:'kim', :'firm') ORDER BY id;

-- Nullable again: NULL again, not the placeholder.
ALTER TABLE billing.customers ALTER COLUMN email DROP NOT NULL;
SELECT * FROM anonymize.anonymize_customer(:'ole');
SELECT id, quote_nullable(name) AS name, quote_nullable(email) AS email,
       quote_nullable(first_name) AS first_name,
       quote_nullable(last_name) AS last_name, quote_nullable(city) AS city
  FROM customer_state WHERE id = :'ole';

-- Maria, not erased, keeps her data.
SELECT * FROM customer_state WHERE id = :'maria';
