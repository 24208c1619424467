--
-- mapping_address_on_customer: a mapping whose billing address columns sit
-- on the customer table itself (schema crm), with rules of its own.  The
-- company and individual rules hold there too.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

CREATE SCHEMA crm;
CREATE TABLE crm.people (
	id			uuid PRIMARY KEY,
	full_name	text,
	mail		text,
	company		text,
	first_name	text,
	last_name	text,
	phone		text,
	street		text,
	city		text,
	country		text NOT NULL
);
CREATE TABLE crm.notes (
	id			serial PRIMARY KEY,
	person_id	uuid NOT NULL REFERENCES crm.people (id),
	note		text
);
CREATE TABLE crm.contracts (
	id			serial PRIMARY KEY,
	person_id	uuid NOT NULL REFERENCES crm.people (id),
	open		boolean NOT NULL
);

\set firm      'c1000000-0000-0000-0000-000000000001'
\set person    'c1000000-0000-0000-0000-000000000002'
\set blank     'c1000000-0000-0000-0000-000000000003'
\set contracted 'c1000000-0000-0000-0000-000000000004'
INSERT INTO crm.people VALUES
	(:'firm', 'Fritz Firm', 'fritz@firm.example', 'Firm AG', 'Fritz', 'Firm',
		'+41 44 555', 'Bahnhofstr. 1', 'Zurich', 'CH'),
	(:'person', 'Petra Person', 'petra@example.com', NULL, 'Petra', 'Person',
		'+43 1 555', 'Ring 2', 'Wien', 'AT'),
	(:'blank', 'Bert Blank', 'bert@example.com', E' \t', 'Bert', 'Blank',
		'+32 2 555', 'Grand Place 3', 'Bruxelles', 'BE'),
	(:'contracted', 'Carl Contract', 'carl@example.com', NULL, 'Carl',
		'Contract', '+45 555', 'Stroget 4', 'Kobenhavn', 'DK');
INSERT INTO crm.notes (person_id, note) VALUES
	(:'firm', 'called'), (:'person', 'called'), (:'person', 'emailed'),
	(:'contracted', 'called');
INSERT INTO crm.contracts (person_id, open) VALUES
	(:'firm', false), (:'contracted', true);

-- Build the plans of the default mapping first.
SELECT anonymize.can_anonymize(:'jean');

SELECT anonymize.set_customer_relation('crm.people', 'id', 'full_name', 'mail');
SELECT anonymize.set_billing_address('crm.people', 'id', 'company',
	'first_name', 'last_name', 'phone', '{street,city}', 'country');
SELECT anonymize.drop_rule(rule_name)
  FROM (SELECT rule_name FROM anonymize.purge_rules
		UNION ALL SELECT rule_name FROM anonymize.blocker_rules
		UNION ALL SELECT rule_name FROM anonymize.balance_rules) r;
SELECT anonymize.set_purge_rule('notes', 'crm.notes', 'person_id');
SELECT anonymize.set_blocker_rule('open_contracts', 'crm.contracts',
	'person_id', 'open', 'open contract');
SELECT customer_schema, customer_table, key_column, name_column, email_column,
       address_schema, address_table, address_key_column, company_column,
       first_name_column, last_name_column, phone_column, address_columns,
       country_column, preset
  FROM anonymize.customer_mapping;

SELECT * FROM crm.people ORDER BY id;

-- The billing customers are no customers any more.
SELECT * FROM anonymize.anonymize_customer(:'jean');

SELECT id, anonymize.can_anonymize(id) FROM crm.people ORDER BY id;
SELECT * FROM anonymize.blockers(:'contracted');
SELECT * FROM anonymize.anonymize_customer(:'contracted');

-- Company: full_name := company, mail, names and phone erased, street, city
-- and country kept.
SELECT * FROM anonymize.anonymize_customer(:'firm');
-- Individuals: full_name, mail, names, phone, street and city erased,
-- country kept; a blank company is an individual.
SELECT * FROM anonymize.anonymize_customer(:'person');
SELECT * FROM anonymize.anonymize_customer(:'blank');

SELECT * FROM crm.people ORDER BY id;
SELECT person_id, note FROM crm.notes ORDER BY id;
SELECT customer_id, customer_kind, rows_deleted FROM anonymize.audit_log
 ORDER BY customer_id;
-- billing was not touched
SELECT * FROM rows_per_customer ORDER BY id;
SELECT id, name, email FROM billing.customers ORDER BY id;
