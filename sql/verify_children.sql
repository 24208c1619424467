--
-- verify_children: the verification of an erased scope reached through an
-- ancestor counts its rows as distinct (table, ctid) pairs.  A ctid is
-- unique within one partition only: counted by ctid alone, jean's note
-- updated to (0,3) of one partition and his note left at (0,3) of the
-- other were one row, so a trigger that skipped the update of one of them
-- (its replaced column kept its value) went unnoticed.
--
\ir sql/include/fresh_billing.sql

CREATE TABLE billing.accounts (
	id bigint PRIMARY KEY, customer_id uuid NOT NULL REFERENCES billing.customers);
CREATE TABLE billing.account_notes (
	id bigint NOT NULL, account_id bigint NOT NULL REFERENCES billing.accounts,
	kind text NOT NULL, signature text, PRIMARY KEY (kind, id)) PARTITION BY LIST (kind);
CREATE TABLE billing.account_notes_call PARTITION OF billing.account_notes FOR VALUES IN ('call');
CREATE TABLE billing.account_notes_mail PARTITION OF billing.account_notes FOR VALUES IN ('mail');
INSERT INTO billing.accounts VALUES (1, :'jean'), (2, :'maria');
-- jean's mail note at (0,3), where the update puts the new version of his
-- call note
INSERT INTO billing.account_notes VALUES (1, 1, 'call', 'Jean D.'),
	(3, 2, 'call', 'Maria R.'), (10, 2, 'mail', 'Maria R.'),
	(11, 2, 'mail', 'Maria R.'), (2, 1, 'mail', 'Jean D.');
SELECT tableoid::regclass AS partition, ctid, id FROM billing.account_notes ORDER BY id;
\o /dev/null
SELECT anonymize.set_scope('accounts', 'billing.accounts', 'customer_id');
SELECT anonymize.set_scope('account_notes', 'billing.account_notes', 'account_id',
	'accounts');
SELECT anonymize.set_erase_rule('account_notes', 'account_notes', '{}',
	replacements => '{"signature": "''(signed)''"}');
SELECT anonymize.set_kept('billing.account_notes', 'kind', 'no personal data');
\o

-- A trigger skips the update of the mail partition's note.
CREATE FUNCTION billing.skip_mail() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	RETURN NULL;
END
$$;
CREATE TRIGGER skip_mail BEFORE UPDATE ON billing.account_notes_mail
	FOR EACH ROW EXECUTE FUNCTION billing.skip_mail();
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
SELECT id, signature FROM billing.account_notes WHERE account_id = 1 ORDER BY id;

-- Without it, both notes are erased.
DROP TRIGGER skip_mail ON billing.account_notes_mail;
SELECT anonymized FROM anonymize.anonymize_customer(:'jean');
SELECT id, signature FROM billing.account_notes WHERE account_id = 1 ORDER BY id;
