--
-- mapping_address_on_customer: a mapping whose billing address columns sit
-- on the customer table itself (schema crm), with rules of its own: the
-- company test and the erase rules on scope customer.  The company and
-- individual rules hold there too.  The example mapping is replaced
-- (clear_mapping) after its plans were built.
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

SELECT anonymize.clear_mapping();
SELECT anonymize.set_customer_relation('crm.people', 'id', 'full_name', 'mail');
SELECT anonymize.set_company_test('customer', $$company ~ '[^[:space:]]'$$, 'company');
SELECT anonymize.set_erase_rule('contact', 'customer', '{first_name,last_name,phone}');
SELECT anonymize.set_erase_rule('street', 'customer', '{street,city}', 'individual');
SELECT anonymize.set_scope('notes', 'crm.notes', 'person_id');
SELECT anonymize.set_purge_rule('notes', 'notes');
SELECT anonymize.set_scope('contracts', 'crm.contracts', 'person_id');
SELECT anonymize.set_blocker_rule('open_contracts', 'contracts', 'open', 'open contract');
SELECT * FROM anonymize.customer_relation;
SELECT * FROM anonymize.scopes ORDER BY 1;
SELECT * FROM anonymize.rules ORDER BY 1;

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
SELECT customer_id, customer_kind, rows_deleted, rows_updated FROM anonymize.audit_log
 ORDER BY customer_id;
-- billing was not touched
SELECT * FROM rows_per_customer ORDER BY id;
SELECT id, name, email FROM billing.customers ORDER BY id;
