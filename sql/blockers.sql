--
-- blockers: a customer with a subscription that is not 'initialized' or
-- 'terminated', an invoice that is not 'paid' or 'cancelled', or balance
-- lines that do not sum to zero cannot be anonymized: anonymize_customer()
-- fails with SQLSTATE 55000 and a DETAIL naming every blocker, and changes
-- nothing.  can_anonymize() and blockers() report the same.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

\set active     'b0000000-0000-0000-0000-000000000001'
\set suspended  'b0000000-0000-0000-0000-000000000002'
\set due        'b0000000-0000-0000-0000-000000000003'
\set draft      'b0000000-0000-0000-0000-000000000004'
\set balance    'b0000000-0000-0000-0000-000000000005'
\set everything 'b0000000-0000-0000-0000-000000000006'
\set settled    'b0000000-0000-0000-0000-000000000007'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'active', 'Al Active', 'al@example.com'),
	(:'suspended', 'Susi Suspended', 'susi@example.com'),
	(:'due', 'Doug Due', 'doug@example.com'),
	(:'draft', 'Dora Draft', 'dora@example.com'),
	(:'balance', 'Bea Balance', 'bea@example.com'),
	(:'everything', 'Eve Everything', 'eve@example.com'),
	(:'settled', 'Seth Settled', 'seth@example.com');
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name,
		address_line1, city, country)
SELECT id, split_part(name, ' ', 1), split_part(name, ' ', 2),
       '1 Blocker Road', 'Blockville', 'NL'
  FROM billing.customers WHERE id::text LIKE 'b0000000%';
-- every customer also has history that a purge would delete
INSERT INTO billing.sent_emails (customer_id, recipient)
SELECT id, email FROM billing.customers WHERE id::text LIKE 'b0000000%';
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	(:'active', 'active'), (:'active', 'terminated'), (:'active', 'initialized'),
	(:'suspended', 'suspended'),
	(:'everything', 'active'), (:'everything', 'suspended'),
	(:'everything', 'initialized'),
	(:'settled', 'terminated'), (:'settled', 'initialized');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES
	(:'due', 'due', 10.00), (:'due', 'paid', 10.00),
	(:'draft', 'draft', 5.00), (:'draft', 'cancelled', 5.00),
	(:'everything', 'due', 1.00), (:'everything', 'draft', 2.00),
	(:'everything', 'draft', 3.00), (:'everything', 'paid', 4.00),
	(:'settled', 'paid', 50.00), (:'settled', 'cancelled', 7.00);
INSERT INTO billing.balance_entries (customer_id, amount) VALUES
	(:'balance', 10.00),
	(:'everything', -12.50), (:'everything', 2.25),
	-- lines that cancel out
	(:'settled', 50.00), (:'settled', -50.00), (:'settled', 0.00);

-- The state of every customer, to compare after the refusals.
CREATE TEMP TABLE state_before AS
SELECT * FROM customer_state JOIN rows_per_customer USING (id);

-- can_anonymize(): false for each blocked customer, true for the others.
SELECT id, name, anonymize.can_anonymize(id) FROM billing.customers ORDER BY id;

-- blockers(): one row per blocking rule (none for the eligible customers).
SELECT c.name, b.*
  FROM billing.customers c, anonymize.blockers(c.id) b
 ORDER BY c.id, b.rule_name;
SELECT count(*) AS blocker_rows_of_eligible
  FROM anonymize.blockers(:'settled');

-- Each blocker alone.
SELECT * FROM anonymize.anonymize_customer(:'active');
SELECT * FROM anonymize.anonymize_customer(:'suspended');
SELECT * FROM anonymize.anonymize_customer(:'due');
SELECT * FROM anonymize.anonymize_customer(:'draft');
SELECT * FROM anonymize.anonymize_customer(:'balance');
-- All at once: the DETAIL lists each of them.
SELECT * FROM anonymize.anonymize_customer(:'everything');
-- Maria, from the fixture: a balance of -12.50 among others.
SELECT * FROM anonymize.anonymize_customer(:'maria');

-- The SQLSTATE of a refusal is 55000 (object_not_in_prerequisite_state).
SELECT id, pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', id))
  FROM billing.customers
 WHERE NOT anonymize.can_anonymize(id)
 ORDER BY id;

-- Nothing changed: no customer, address, history row or audit row.
SELECT * FROM state_before
EXCEPT ALL
SELECT * FROM customer_state JOIN rows_per_customer USING (id);
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
EXCEPT ALL
SELECT * FROM state_before;
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

-- A refusal inside a transaction aborts it as any error does.
BEGIN;
SELECT * FROM anonymize.anonymize_customer(:'settled');
SELECT * FROM anonymize.anonymize_customer(:'due');
COMMIT;
SELECT name, email FROM billing.customers WHERE id = :'settled';

-- Balance lines that sum to zero do not block.
SELECT * FROM anonymize.anonymize_customer(:'settled');
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
 WHERE id = :'settled';
SELECT customer_id, amount FROM billing.balance_entries
 WHERE customer_id = :'settled' ORDER BY id;

-- Once a blocker is gone, the customer can go.
UPDATE billing.invoices SET status = 'paid' WHERE customer_id = :'due';
SELECT anonymize.can_anonymize(:'due');
SELECT * FROM anonymize.blockers(:'due');
SELECT * FROM anonymize.anonymize_customer(:'due');
-- and once it is anonymized, can_anonymize() is false and blockers() says why.
SELECT anonymize.can_anonymize(:'due');
SELECT * FROM anonymize.blockers(:'due');

-- A balance settled by a new line.
INSERT INTO billing.balance_entries (customer_id, amount) VALUES (:'balance', -10.00);
SELECT anonymize.can_anonymize(:'balance');
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'balance');

-- Everyone at the end: the anonymized ones (names erased) are blocked by
-- their anonymization only.
SELECT c.id, b.*
  FROM billing.customers c, anonymize.blockers(c.id) b
 ORDER BY c.id, b.rule_name;
