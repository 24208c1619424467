--
-- verify_ancestor_counts: the verification of an erased scope reached
-- through an ancestor counts the rows failing each check as distinct
-- (table, ctid) pairs, as it counts the scope's rows.  An inheritance child
-- of the ancestor may hold a row with the same key (a primary key does not
-- span the children), so that the customer's one note joins two account
-- rows: counted by count(*), anonymize.verify() and the erasure's error
-- reported 2 rows where 1 holds data.
--
\ir sql/include/fresh_billing.sql

CREATE TABLE billing.accounts (
	id bigint PRIMARY KEY, customer_id uuid NOT NULL REFERENCES billing.customers);
CREATE TABLE billing.accounts_archive () INHERITS (billing.accounts);
CREATE TABLE billing.account_notes (
	id bigint PRIMARY KEY, account_id bigint NOT NULL, signature text);
INSERT INTO billing.accounts VALUES (1, :'jean'), (2, :'maria');
INSERT INTO billing.accounts_archive VALUES (1, :'jean');
INSERT INTO billing.account_notes VALUES (1, 1, 'Jean D.'), (2, 2, 'Maria R.');
\o /dev/null
SELECT anonymize.set_scope('accounts', 'billing.accounts', 'customer_id');
SELECT anonymize.set_scope('account_notes', 'billing.account_notes', 'account_id',
	'accounts');
SELECT anonymize.set_erase_rule('account_notes', 'account_notes', '{signature}');
\o

-- A trigger keeps the signature: the erasure fails, naming 1 row.
CREATE FUNCTION billing.keep_signature() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	NEW.signature := OLD.signature;
	RETURN NEW;
END
$$;
CREATE TRIGGER keep_signature BEFORE UPDATE ON billing.account_notes
	FOR EACH ROW EXECUTE FUNCTION billing.keep_signature();
\set VERBOSITY default
SELECT anonymize.anonymize_customer(:'jean');
\set VERBOSITY terse

-- Without it the erasure passes; the signature written again is 1 row of
-- anonymize.verify(), as preview() counts the note once.
DROP TRIGGER keep_signature ON billing.account_notes;
SELECT anonymized FROM anonymize.anonymize_customer(:'jean');
UPDATE billing.account_notes SET signature = 'Jean D.' WHERE id = 1;
SELECT rule_name, column_name, rows FROM anonymize.verify(:'jean');
SELECT rows FROM anonymize.preview(:'jean') WHERE rule_name = 'account_notes';
