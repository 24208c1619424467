--
-- erasure_triggers: triggers of the billing schema cannot make an erasure
-- leave data behind under an audit row.
--   - Rows that the erasure's own triggers create in purged relations (a
--     history of old names, an archive of deleted emails) are purged too.
--   - A trigger that keeps an erased value, or skips rows, fails the
--     erasure with an error naming the relation and the column; nothing
--     changes and no audit row is written.  The queue records the request
--     as failed with that message.
-- Before 1.2, each of these returned anonymized = true.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'
\set SHOW_CONTEXT never

-- 1. An AFTER UPDATE trigger copies the old name and email into a history
-- table, which is itself purged: the purge runs after the rewrite.
CREATE TABLE billing.customer_history (
	customer_id uuid NOT NULL, name text, email text);
CREATE FUNCTION billing.keep_history() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	INSERT INTO billing.customer_history VALUES (OLD.id, OLD.name, OLD.email);
	RETURN NEW;
END
$$;
CREATE TRIGGER keep_history AFTER UPDATE ON billing.customers
	FOR EACH ROW EXECUTE FUNCTION billing.keep_history();
SELECT anonymize.set_scope('customer_history', 'billing.customer_history',
	'customer_id');
SELECT anonymize.set_purge_rule('customer_history', 'customer_history');

-- 2. A DELETE trigger archives deleted sent emails into an archive table
-- that is purged too, by a rule that runs before sent_emails: the archived
-- rows come back after their purge and are purged again.
CREATE TABLE billing.archived_emails (
	customer_id uuid NOT NULL, recipient text, subject text);
CREATE FUNCTION billing.archive_email() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	INSERT INTO billing.archived_emails
	VALUES (OLD.customer_id, OLD.recipient, OLD.subject);
	RETURN OLD;
END
$$;
CREATE TRIGGER archive_email AFTER DELETE ON billing.sent_emails
	FOR EACH ROW EXECUTE FUNCTION billing.archive_email();
SELECT anonymize.set_scope('archived_emails', 'billing.archived_emails',
	'customer_id');
SELECT anonymize.set_purge_rule('archived_emails', 'archived_emails');

SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT count(*) AS history_left FROM billing.customer_history;
SELECT count(*) AS archive_left FROM billing.archived_emails;
SELECT name, email FROM billing.customers WHERE id = :'acme';

-- A trigger that re-creates rows every time: the erasure gives up, names
-- the relation, and changes nothing.
CREATE FUNCTION billing.resurrect() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	INSERT INTO billing.customer_history VALUES (OLD.customer_id, 'again', NULL);
	RETURN OLD;
END
$$;
CREATE TRIGGER resurrect AFTER DELETE ON billing.customer_history
	FOR EACH ROW EXECUTE FUNCTION billing.resurrect();
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
DROP TRIGGER resurrect ON billing.customer_history;

-- 3. A BEFORE UPDATE trigger keeps the email ("the mailer needs an
-- address"): refused, nothing changed, no audit row.
CREATE FUNCTION billing.keep_email() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	NEW.email := OLD.email;
	RETURN NEW;
END
$$;
CREATE TRIGGER keep_email BEFORE UPDATE ON billing.customers
	FOR EACH ROW EXECUTE FUNCTION billing.keep_email();
CREATE TEMP TABLE jean_before AS
SELECT * FROM customer_state JOIN rows_per_customer USING (id) WHERE id = :'jean';
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
SELECT * FROM jean_before
EXCEPT ALL
SELECT * FROM customer_state JOIN rows_per_customer USING (id) WHERE id = :'jean';
SELECT count(*) AS jean_audit_rows FROM anonymize.audit_log WHERE customer_id = :'jean';
-- The same in REPEATABLE READ, where the verification reads with the
-- latest snapshot and must see what the erasure's statements wrote.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
ROLLBACK;

-- The queue records the request as failed, with the message.
SELECT anonymize.request(:'jean', 'TICKET-7') IS NOT NULL AS requested;
CALL anonymize.process_requests();
SELECT reference, state, outcome, anonymize.describe_outcome(details) AS blockers FROM anonymize.requests;
DROP TRIGGER keep_email ON billing.customers;

-- 4. A BEFORE UPDATE trigger that skips the address rows (returns NULL):
-- the address keeps its data, so the erasure is refused.
CREATE FUNCTION billing.skip_update() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	RETURN NULL;
END
$$;
CREATE TRIGGER skip_update BEFORE UPDATE ON billing.billing_addresses
	FOR EACH ROW EXECUTE FUNCTION billing.skip_update();
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
ROLLBACK;
DROP TRIGGER skip_update ON billing.billing_addresses;
-- Without the triggers the erasure passes its verification, in REPEATABLE
-- READ too (rolled back here: the cases below need Jean's data).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'jean');
SELECT count(*) AS places_with_data FROM anonymize.verify(:'jean');
ROLLBACK;

-- 5. A company's name must become its company name: a trigger that keeps
-- the person's name is refused too.
CREATE FUNCTION billing.keep_name() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	NEW.name := OLD.name;
	RETURN NEW;
END
$$;
INSERT INTO billing.customers (id, name, email) VALUES
	('eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee', 'Erik Eriksson', 'erik@firma.se');
INSERT INTO billing.billing_addresses (customer_id, company, first_name, country)
VALUES ('eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee', 'Firma AB', 'Erik', 'SE');
CREATE TRIGGER keep_name BEFORE UPDATE ON billing.customers
	FOR EACH ROW EXECUTE FUNCTION billing.keep_name();
SELECT * FROM anonymize.anonymize_customer('eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee');
DROP TRIGGER keep_name ON billing.customers;

-- 6. Several rows in an erased scope: the rewrite and the verification
-- cover each row.  (Since 1.2 the company test decides once per customer,
-- before the rewrite, on the one row of its scope: a customer with two
-- billing addresses, one of a company, is refused with an error and
-- nothing changes.)
ALTER TABLE billing.billing_addresses DROP CONSTRAINT billing_addresses_pkey;
INSERT INTO billing.customers (id, name, email) VALUES
	('ffffffff-ffff-ffff-ffff-ffffffffffff', 'Fanny Fournier', 'fanny@example.fr');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		address_line1, city, country) VALUES
	('ffffffff-ffff-ffff-ffff-ffffffffffff', NULL, 'Fanny', '3 rue Haute', 'Lyon', 'FR'),
	('ffffffff-ffff-ffff-ffff-ffffffffffff', 'Fournier SARL', 'Fanny', '9 quai Bas', 'Lyon', 'FR');
SELECT pg_temp.sqlstate(
	$$SELECT anonymize.anonymize_customer('ffffffff-ffff-ffff-ffff-ffffffffffff')$$);
DELETE FROM billing.billing_addresses
 WHERE customer_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff' AND company IS NOT NULL;
-- Fanny, an individual, has two delivery addresses, whose street an erase
-- rule erases for individuals.
CREATE TABLE billing.delivery_addresses (
	customer_id uuid NOT NULL REFERENCES billing.customers,
	address_line1 text, city text, country text);
INSERT INTO billing.delivery_addresses VALUES
	('ffffffff-ffff-ffff-ffff-ffffffffffff', '5 rue Basse', 'Lyon', 'FR'),
	('ffffffff-ffff-ffff-ffff-ffffffffffff', '7 place Neuve', 'Lyon', 'FR');
SELECT anonymize.set_scope('delivery_addresses', 'billing.delivery_addresses',
	'customer_id');
SELECT anonymize.set_erase_rule('delivery_street', 'delivery_addresses',
	'{address_line1,city}', 'individual');
-- A trigger that keeps the street of one of them is refused.
CREATE FUNCTION billing.keep_street() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	NEW.address_line1 := OLD.address_line1;
	RETURN NEW;
END
$$;
CREATE TRIGGER keep_street BEFORE UPDATE ON billing.delivery_addresses
	FOR EACH ROW WHEN (OLD.address_line1 = '7 place Neuve')
	EXECUTE FUNCTION billing.keep_street();
SELECT * FROM anonymize.anonymize_customer('ffffffff-ffff-ffff-ffff-ffffffffffff');
DROP TRIGGER keep_street ON billing.delivery_addresses;
-- A trigger that turns the home address into a company's during the
-- rewrite changes nothing to the decision, taken before: the street of an
-- individual must go, and keeping it is refused.
CREATE FUNCTION billing.make_company() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	NEW.company := coalesce(NEW.company, 'Fanny Fournier');
	NEW.address_line1 := OLD.address_line1;
	RETURN NEW;
END
$$;
CREATE TRIGGER make_company BEFORE UPDATE ON billing.billing_addresses
	FOR EACH ROW EXECUTE FUNCTION billing.make_company();
SELECT * FROM anonymize.anonymize_customer('ffffffff-ffff-ffff-ffff-ffffffffffff');
DROP TRIGGER make_company ON billing.billing_addresses;
SELECT anonymized, customer_kind
  FROM anonymize.anonymize_customer('ffffffff-ffff-ffff-ffff-ffffffffffff');
SELECT company, first_name, address_line1, city, country FROM billing.billing_addresses
 WHERE customer_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
SELECT address_line1, city, country FROM billing.delivery_addresses ORDER BY 1;

-- Without the triggers, jean and erik are anonymized.
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'jean');
SELECT anonymized, customer_kind
  FROM anonymize.anonymize_customer('eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee');
SELECT id, name, email FROM billing.customers ORDER BY id;
SELECT count(*) AS history_left FROM billing.customer_history;
SELECT count(*) AS archive_left FROM billing.archived_emails;
