--
-- owner_rights: whose rights the code of the billing schema (triggers, and
-- what they call) runs with during an erasure.
--   - A caller with the privileges of a table's owner (a superuser) runs the
--     statements on it as that owner, in a security-restricted operation:
--     a trigger written by a less privileged owner cannot use the
--     superuser's rights.
--   - Any other caller (an operator) runs them with its own rights: the
--     owner's code never runs as the owner in the operator's session, where
--     the operator's temporary tables would shadow the owner's (a function
--     with SET search_path = billing searches pg_temp first) and a trigger
--     planted on them would run with the owner's rights.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'
\set SHOW_CONTEXT never

CREATE ROLE regress_app_owner;
CREATE ROLE regress_operator;

-- The triggers say who runs them with a NOTICE, which an error does not
-- take back.
-- 1. The app owner owns the activity table and puts a trigger on it.
ALTER TABLE billing.customer_activity OWNER TO regress_app_owner;
GRANT USAGE, CREATE ON SCHEMA billing TO regress_app_owner;
SET ROLE regress_app_owner;
CREATE FUNCTION billing.note_delete() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	RAISE NOTICE 'activity row deleted as %', current_user;
	RETURN OLD;
END
$$;
CREATE TRIGGER note_delete BEFORE DELETE ON billing.customer_activity
	FOR EACH ROW WHEN (OLD.kind = 'plan_change')
	EXECUTE FUNCTION billing.note_delete();
RESET ROLE;
-- The superuser erases: the trigger runs as the app owner.
SELECT anonymized FROM anonymize.anonymize_customer(:'acme');

-- 2. The superuser owns the customers; its trigger keeps a history in a
-- table it names without a schema, under SET search_path = billing.
CREATE TABLE billing.customer_history (customer_id uuid, old_email text);
CREATE FUNCTION billing.remember_email() RETURNS trigger LANGUAGE plpgsql
SET search_path = billing AS
$$
BEGIN
	RAISE NOTICE 'history kept as %', current_user;
	INSERT INTO customer_history VALUES (OLD.id, OLD.email);
	RETURN NEW;
END
$$;
CREATE TRIGGER remember_email AFTER UPDATE ON billing.customers
	FOR EACH ROW EXECUTE FUNCTION billing.remember_email();
SELECT anonymize.set_scope('customer_history', 'billing.customer_history',
	'customer_id');
SELECT anonymize.set_purge_rule('customer_history', 'customer_history');

-- The operator, with the README's grants, plants a temporary table of that
-- name with a trigger that would make it a superuser.
GRANT USAGE ON SCHEMA anonymize, billing TO regress_operator;
GRANT EXECUTE ON FUNCTION anonymize.anonymize_customer(uuid) TO regress_operator;
GRANT SELECT, UPDATE ON billing.customers, billing.billing_addresses TO regress_operator;
GRANT SELECT, UPDATE (id) ON billing.subscriptions, billing.invoices,
	billing.balance_entries TO regress_operator;
GRANT SELECT, DELETE ON billing.sent_emails, billing.customer_activity,
	billing.webhook_notifications, billing.subscriptions,
	billing.customer_history TO regress_operator;
GRANT INSERT ON billing.customer_history TO regress_operator;
SET ROLE regress_operator;
CREATE FUNCTION pg_temp.payload() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	RAISE NOTICE 'payload runs as %', current_user;
	EXECUTE 'ALTER ROLE regress_operator SUPERUSER';
	RETURN NULL;
END
$$;
CREATE TEMP TABLE customer_history (customer_id uuid, old_email text);
CREATE TRIGGER payload BEFORE INSERT ON pg_temp.customer_history
	FOR EACH ROW EXECUTE FUNCTION pg_temp.payload();
-- The trigger runs with the operator's rights: the payload cannot do it.
SELECT anonymized FROM anonymize.anonymize_customer(:'jean');
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_operator';
SELECT name, email FROM billing.customers WHERE id = :'jean';

-- clean up the roles (they are global)
ALTER TABLE billing.customer_activity OWNER TO CURRENT_USER;
DROP FUNCTION billing.note_delete() CASCADE;
DROP OWNED BY regress_app_owner, regress_operator;
DROP ROLE regress_app_owner;
DROP ROLE regress_operator;
