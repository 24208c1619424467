--
-- state_during_call: a plan rebuild while a call runs (here: a trigger of the
-- billing schema changes the mapping mid-erasure) frees nothing that the
-- call still reads.  Before 1.2, the blockers of a customer pointed into a
-- mapping that the rebuild for the next customer freed, and formatting them
-- read freed memory (the server crashed with signal 11); rows_deleted was
-- printed with the rebuilt mapping.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'
\set SHOW_CONTEXT never

-- A trigger that changes the mapping while the erasure deletes sent emails;
-- its change takes effect at the next call.
CREATE FUNCTION billing.change_mapping() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	PERFORM anonymize.set_placeholder('changed by a trigger');
	-- the next call in this transaction builds a new state, while the
	-- erasure in progress keeps its own
	PERFORM anonymize.can_anonymize('cccccccc-cccc-cccc-cccc-cccccccccccc');
	RETURN OLD;
END
$$;
CREATE TRIGGER change_mapping BEFORE DELETE ON billing.sent_emails
	FOR EACH ROW WHEN (OLD.subject = 'Welcome')
	EXECUTE FUNCTION billing.change_mapping();

-- One customer at a time: maria is blocked, acme's erasure changes the
-- mapping, jean comes after: maria's blockers are recorded intact.
SELECT anonymize.request(:'maria', 'm', now() + interval '1 day') IS NOT NULL,
       anonymize.request(:'acme', 'a', now() + interval '2 days') IS NOT NULL,
       anonymize.request(:'jean', 'j', now() + interval '3 days') IS NOT NULL;
SET anonymize.set_based_batches = off;
CALL anonymize.process_requests();
RESET anonymize.set_based_batches;
SELECT reference, state, outcome, anonymize.describe_outcome(details) AS blockers FROM anonymize.requests
 ORDER BY due_at;
SELECT placeholder FROM anonymize.customer_relation;

-- One call: a trigger drops a purge rule and an erase rule in the middle;
-- rows_deleted and rows_updated still name the rules the erasure ran with.
SELECT anonymize.set_placeholder('');
INSERT INTO billing.customers (id, name, email) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'Dora Drop', 'dora@example.com');
INSERT INTO billing.sent_emails (customer_id, recipient, subject) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'dora@example.com', 'Drop');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'login');
CREATE FUNCTION billing.drop_rule() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	PERFORM anonymize.drop_rule('customer_activity');
	PERFORM anonymize.drop_rule('billing_address_street');
	PERFORM anonymize.can_anonymize('cccccccc-cccc-cccc-cccc-cccccccccccc');
	RETURN OLD;
END
$$;
CREATE TRIGGER drop_rule BEFORE DELETE ON billing.sent_emails
	FOR EACH ROW WHEN (OLD.subject = 'Drop')
	EXECUTE FUNCTION billing.drop_rule();
SELECT * FROM anonymize.anonymize_customer('dddddddd-dddd-dddd-dddd-dddddddddddd');
SELECT rows_updated FROM anonymize.audit_log
 WHERE customer_id = 'dddddddd-dddd-dddd-dddd-dddddddddddd';
-- the next call runs without the dropped rules
SELECT rule_name, kind FROM anonymize.rules
 WHERE kind IN ('purge', 'erase') ORDER BY rule_name;
SELECT count(*) AS activity_left FROM billing.customer_activity
 WHERE customer_id = 'dddddddd-dddd-dddd-dddd-dddddddddddd';
