--
-- hostile_search_path: an unprivileged role plants functions, operators and
-- aggregates in schema public under the names the extension's statements
-- and the rule conditions use (lower, btrim, upper, now, count, sum, =, <>,
-- ~, ->>, ...).  Each plant writes a row into public.trace when it runs.  A
-- superuser then calls every function of the extension with
-- search_path = public, pg_catalog (public first): nothing planted may run,
-- so public.trace stays empty.  At the end an unqualified query of the
-- caller's own shows that the plants do run when they are resolved.
-- Self-contained: builds its own fixture, cleans up at the end.
--
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DROP TABLE IF EXISTS public.trace;
DO $$
BEGIN
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'hostile_planter') THEN
		EXECUTE 'DROP OWNED BY hostile_planter CASCADE';
		EXECUTE 'DROP ROLE hostile_planter';
	END IF;
END
$$;
\ir examples/billing.sql
CREATE EXTENSION anonymize;
\o /dev/null
\ir examples/billing_mapping.sql
\o
RESET client_min_messages;
\set eligible  'e1000000-0000-0000-0000-000000000001'
\set eligible2 'e1000000-0000-0000-0000-000000000002'
\set queued    'e1000000-0000-0000-0000-000000000003'
\set blocked   'b1000000-0000-0000-0000-000000000001'
\set unknown   '00000000-0000-0000-0000-000000000000'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'eligible', 'Anna Schmidt', 'anna@acme.example'),
	(:'eligible2', 'Jean Dupont', 'jean@example.fr'),
	(:'queued', 'Quinn Queue', 'quinn@example.com'),
	(:'blocked', 'Maria Rossi', 'maria@example.it');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, phone, address_line1, city, country) VALUES
	(:'eligible', 'Acme GmbH', 'Anna', 'Schmidt', '+49 30', 'Str. 1', 'Berlin', 'DE'),
	(:'eligible2', NULL, 'Jean', 'Dupont', '+33 1', 'Rue 2', 'Paris', 'FR'),
	(:'blocked', NULL, 'Maria', 'Rossi', '+39 06', 'Via 4', 'Roma', 'IT');
INSERT INTO billing.sent_emails (customer_id, recipient, subject) VALUES
	(:'eligible', 'anna@acme.example', 'Welcome'),
	(:'eligible2', 'jean@example.fr', 'Welcome'),
	(:'queued', 'quinn@example.com', 'Welcome');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	(:'eligible', 'login'), (:'eligible2', 'login');
INSERT INTO billing.webhook_notifications (customer_id, event) VALUES
	(:'eligible', 'customer.created');
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	(:'eligible', 'terminated'), (:'eligible', 'initialized'),
	(:'eligible2', 'initialized'), (:'eligible2', 'terminated'),
	(:'blocked', 'active'), (:'blocked', 'suspended');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES
	(:'eligible', 'paid', 50), (:'blocked', 'due', 12.50);
INSERT INTO billing.balance_entries (customer_id, amount) VALUES
	(:'eligible', 50), (:'eligible', -50), (:'blocked', -12.50);
-- notes on subscriptions, keyed by the subscription id as text: a scope of
-- a scope, linked through columns of different types
CREATE TABLE billing.subscription_notes (subscription_id text NOT NULL, note text);
INSERT INTO billing.subscription_notes
SELECT id::text, 'note on ' || state FROM billing.subscriptions;
\set ECHO all

-- The trace, writable by everybody, and the planter.
CREATE TABLE public.trace (what text NOT NULL);
GRANT INSERT ON public.trace TO PUBLIC;
CREATE ROLE hostile_planter NOLOGIN;
GRANT CREATE ON SCHEMA public TO hostile_planter;
SET ROLE hostile_planter;

-- The planter cannot plant in the extension's schema.
CREATE FUNCTION anonymize.lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1';

-- Functions.
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('lower(text)'); RETURN pg_catalog.lower($1); END$$;
CREATE FUNCTION public.upper(text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('upper(text)'); RETURN pg_catalog.upper($1); END$$;
CREATE FUNCTION public.btrim(text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('btrim(text)'); RETURN pg_catalog.btrim($1); END$$;
CREATE FUNCTION public.length(text) RETURNS integer LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('length(text)'); RETURN pg_catalog.length($1); END$$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('now()'); RETURN pg_catalog.now(); END$$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('clock_timestamp()'); RETURN pg_catalog.clock_timestamp(); END$$;
CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('format(text,text)'); RETURN pg_catalog.format($1, $2); END$$;
CREATE FUNCTION public.row_to_json(record) RETURNS json LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('row_to_json(record)'); RETURN pg_catalog.row_to_json($1); END$$;
CREATE FUNCTION public."coalesce"(text, text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('coalesce(text,text)'); RETURN COALESCE($1, $2); END$$;
CREATE FUNCTION public.text(uuid) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('text(uuid)'); RETURN pg_catalog.textin(pg_catalog.uuid_out($1)); END$$;
CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('gen_random_uuid()'); RETURN pg_catalog.gen_random_uuid(); END$$;

-- Aggregates: count(*), count(anyelement), sum(numeric), string_agg.
CREATE FUNCTION public.trace_count_star(bigint) RETURNS bigint LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('count(*)'); RETURN $1 OPERATOR(pg_catalog.+) 1; END$$;
CREATE AGGREGATE public.count(*) (sfunc = public.trace_count_star, stype = bigint, initcond = '0');
CREATE FUNCTION public.trace_count_any(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('count(anyelement)'); RETURN $1 OPERATOR(pg_catalog.+) 1; END$$;
CREATE AGGREGATE public.count(anyelement) (sfunc = public.trace_count_any, stype = bigint, initcond = '0');
CREATE FUNCTION public.trace_sum(numeric, numeric) RETURNS numeric LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('sum(numeric)'); RETURN COALESCE($1, 0) OPERATOR(pg_catalog.+) $2; END$$;
CREATE AGGREGATE public.sum(numeric) (sfunc = public.trace_sum, stype = numeric);
CREATE FUNCTION public.trace_string_agg(text, text, text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('string_agg(text,text)'); RETURN COALESCE($1 OPERATOR(pg_catalog.||) $3, '') OPERATOR(pg_catalog.||) $2; END$$;
CREATE AGGREGATE public.string_agg(text, text) (sfunc = public.trace_string_agg, stype = text);

-- Operators: =, <>, >, <, ~, ->>, ||, + on the types the extension compares.
CREATE FUNCTION public.trace_eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('=(text,text)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR public.= (leftarg = text, rightarg = text, function = public.trace_eq_text);
CREATE FUNCTION public.trace_eq_uuid(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('=(uuid,uuid)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR public.= (leftarg = uuid, rightarg = uuid, function = public.trace_eq_uuid);
CREATE FUNCTION public.trace_eq_bigint(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('=(bigint,bigint)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR public.= (leftarg = bigint, rightarg = bigint, function = public.trace_eq_bigint);
CREATE FUNCTION public.trace_ne_text(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('<>(text,text)'); RETURN $1 OPERATOR(pg_catalog.<>) $2; END$$;
CREATE OPERATOR public.<> (leftarg = text, rightarg = text, function = public.trace_ne_text);
CREATE FUNCTION public.trace_ne_numeric(numeric, numeric) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('<>(numeric,numeric)'); RETURN $1 OPERATOR(pg_catalog.<>) $2; END$$;
CREATE OPERATOR public.<> (leftarg = numeric, rightarg = numeric, function = public.trace_ne_numeric);
CREATE FUNCTION public.trace_gt_bigint(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('>(bigint,bigint)'); RETURN $1 OPERATOR(pg_catalog.>) $2; END$$;
CREATE OPERATOR public.> (leftarg = bigint, rightarg = bigint, function = public.trace_gt_bigint);
CREATE FUNCTION public.trace_lt_tstz(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('<(timestamptz,timestamptz)'); RETURN $1 OPERATOR(pg_catalog.<) $2; END$$;
CREATE OPERATOR public.< (leftarg = timestamptz, rightarg = timestamptz, function = public.trace_lt_tstz);
CREATE FUNCTION public.trace_match(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('~(text,text)'); RETURN $1 OPERATOR(pg_catalog.~) $2; END$$;
CREATE OPERATOR public.~ (leftarg = text, rightarg = text, function = public.trace_match);
CREATE FUNCTION public.trace_json_field(json, text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('->>(json,text)'); RETURN $1 OPERATOR(pg_catalog.->>) $2; END$$;
CREATE OPERATOR public.->> (leftarg = json, rightarg = text, function = public.trace_json_field);
CREATE FUNCTION public.trace_concat(text, text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('||(text,text)'); RETURN $1 OPERATOR(pg_catalog.||) $2; END$$;
CREATE OPERATOR public.|| (leftarg = text, rightarg = text, function = public.trace_concat);
CREATE FUNCTION public.trace_plus_interval(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trace VALUES ('+(timestamptz,interval)'); RETURN $1 OPERATOR(pg_catalog.+) $2; END$$;
CREATE OPERATOR public.+ (leftarg = timestamptz, rightarg = interval, function = public.trace_plus_interval);
RESET ROLE;

-- Every function of the extension pins its search_path, but the trigger
-- function that runs no SQL and the procedure that pins it itself.
SELECT p.oid::regprocedure AS function, p.prokind
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	   AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'anonymize'
 WHERE p.proconfig IS NULL
	OR NOT 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)
 ORDER BY 1::text;

-- The superuser calls everything with public first.
SET search_path = public, pg_catalog;
SELECT anonymize.can_anonymize(:'eligible') AS eligible,
	   anonymize.can_anonymize(:'blocked') AS blocked;
SELECT * FROM anonymize.blockers(:'blocked');
SELECT * FROM anonymize.blockers(:'eligible');
SELECT anonymize.can_anonymize(:'unknown');
SELECT * FROM anonymize.blockers(:'unknown');
SELECT * FROM anonymize.anonymize_customer(:'unknown');
SELECT * FROM anonymize.anonymize_customer(:'blocked');
SELECT * FROM anonymize.anonymize_customer(:'eligible');
SELECT * FROM anonymize.anonymize_customer(:'eligible');
SELECT * FROM anonymize.blockers(:'eligible');
SELECT anonymize.current_blockers(:'blocked');

-- The mapping functions, with conditions, a company test and
-- replacements that name planted functions and operators (they run with
-- search_path = pg_catalog, pg_temp).
SELECT anonymize.set_placeholder('n/a');
SELECT anonymize.set_customer_relation('billing.customers', 'id', 'name', 'email');
SELECT anonymize.set_scope('billing_address', 'billing.billing_addresses', 'customer_id',
	condition => $$lower(country) <> ''$$);
SELECT anonymize.set_company_test('billing_address', $$btrim(company) <> ''$$,
	$$company || ''$$);
SELECT anonymize.set_erase_rule('billing_address_contact', 'billing_address',
	'{first_name,last_name}',
	replacements => '{"phone": "CASE WHEN length(phone) > 0 THEN NULL END"}');
SELECT anonymize.set_erase_rule('customer_email', 'customer', '{}',
	replacements => '{"email": "CASE WHEN lower(email) = upper(email) THEN email END"}');
SELECT anonymize.set_scope('subscriptions', 'billing.subscriptions', 'customer_id',
	condition => $$lower(state) <> ''$$);
SELECT anonymize.set_purge_rule('initialized_subscriptions', 'subscriptions',
	$$lower(btrim(state)) = 'initialized'$$);
SELECT anonymize.set_scope('subscription_notes', 'billing.subscription_notes',
	'subscription_id', parent => 'subscriptions',
	condition => $$upper(note) ~ 'INITIALIZED'$$);
SELECT anonymize.set_purge_rule('subscription_notes', 'subscription_notes',
	$$length(note) > 0$$);
SELECT anonymize.set_blocker_rule('suspended', 'subscriptions',
	$$upper(state) ~ '^SUSP' AND length(plan) > 0$$, 'suspended subscription');
SELECT anonymize.set_balance_rule('balance', 'balance_entries', 'amount * 1');
SELECT anonymize.set_scope('tmp', 'billing.customer_activity', 'customer_id');
SELECT anonymize.set_purge_rule('tmp', 'tmp', $$kind <> 'x' AND now() > '2000-01-01'$$);
SELECT anonymize.drop_rule('tmp');
SELECT anonymize.drop_scope('tmp');
SELECT anonymize.check_mapping();
-- A new session with the hostile path again, to be sure to build new plans.
\c
SET search_path = public, pg_catalog;
SELECT * FROM anonymize.blockers(:'blocked');
SELECT * FROM anonymize.blockers(:'eligible2');
SELECT anonymize.drop_rule('suspended');
\c
SET search_path = public, pg_catalog;
SELECT * FROM anonymize.anonymize_customer(:'eligible2');

-- The request queue.
SELECT anonymize.request(:'queued', 'ticket 1') IS NOT NULL AS requested;
SELECT anonymize.request(:'blocked', 'ticket 2') IS NOT NULL AS requested;
SELECT anonymize.cancel_request(:'blocked');
SELECT customer_id, reference, blockers FROM anonymize.pending_requests;
-- (its NOTICEs are not the point here)
SET client_min_messages = warning;
CALL anonymize.process_requests();
RESET client_min_messages;

-- Nothing planted ran.
RESET search_path;
SET search_path = pg_catalog;
SELECT what, pg_catalog.count(*) FROM public.trace GROUP BY what ORDER BY what;

-- What was done, with a safe path.
SELECT c.id, c.name, c.email, a.company, a.first_name, a.last_name, a.phone,
	   a.address_line1, a.city, a.country
  FROM billing.customers c LEFT JOIN billing.billing_addresses a ON a.customer_id = c.id
 ORDER BY c.id;
SELECT customer_id, customer_kind, rows_deleted, rows_updated
  FROM anonymize.audit_log ORDER BY 1;
SELECT * FROM billing.subscription_notes ORDER BY 1;
SELECT customer_id, reference, state, outcome FROM anonymize.requests ORDER BY reference;

-- The plants are live: the caller's own unqualified query runs them.
SET search_path = public, pg_catalog;
SELECT lower('X') AS lower, 'a'::pg_catalog.text = 'a'::pg_catalog.text AS equal;
SET search_path = pg_catalog;
SELECT what, pg_catalog.count(*) FROM public.trace GROUP BY what ORDER BY what;
RESET search_path;

-- Clean up.
\set ECHO none
SET client_min_messages = warning;
DROP OWNED BY hostile_planter CASCADE;
DROP ROLE hostile_planter;
DROP TABLE public.trace;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
DROP SCHEMA billing CASCADE;
RESET client_min_messages;
\set ECHO all
