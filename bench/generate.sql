-- bench/generate.sql
--
-- Deterministic, set-based data generator for the example billing schema
-- (examples/billing.sql).  Benchmark-only: never installed.
--
-- Usage (psql variables, all optional):
--   psql -v profile=history   -v first=1 -v n=100000 -f bench/generate.sql
--   psql -v profile=nohistory -v first=1 -v n=20000  -f bench/generate.sql
--
--   profile  'history' (default): per customer 2 subscriptions, 4 invoices,
--            2 balance lines, 10 sent emails, 20 activity rows and 5 webhook
--            notifications; 90% eligible for anonymization.
--            'nohistory': customer + billing address only, no rows in any
--            other table (every one eligible); per-call overhead dominates.
--   first    number of the first customer to generate (default 1).  Lets a
--            run grow an existing data set (e.g. first=100001 n=900000 turns
--            100,000 customers into 1,000,000) without touching old rows.
--   n        number of customers to generate (default 100000).
--
-- Customer number i of a profile always gets the same uuid,
-- md5('bench:<profile>:<i>')::uuid, and the same rows, so runs are
-- reproducible.  Rows of one customer are spread over the history tables the
-- way an append-only history is (row g of a table belongs to customer
-- first + g % n), not clustered per customer.
--
-- Shape of the 'history' profile (i = customer number):
--   company      i even (billing_addresses.company = 'Company <i> GmbH')
--   individual   i odd; i % 20 = 1 has a blank company ('   '),
--                i % 20 = 5 has no billing address row at all
--   ineligible   i % 20 in (3, 8)  (10%; half companies, half individuals);
--                blocker by (i / 20) % 3: 0 = an active/suspended
--                subscription, 1 = a due/draft invoice, 2 = non-zero balance
--   eligible     everything else: subscriptions terminated (the second one
--                'initialized' when i % 4 = 1, which the purge deletes),
--                invoices paid/cancelled, balance lines +x and -x.
--
-- The generator also keeps (schema bench):
--   bench.population(id, profile, i, eligible, kind, has_address)
--       what the generator meant each customer to be (ground truth)
--   bench.targets(n bigint primary key, id uuid)          profile history
--   bench.targets_nohist(n bigint primary key, id uuid)   profile nohistory
--       the eligible, not yet anonymized customers numbered 1..K in a fixed
--       pseudo-random order (so consecutive picks do not hit neighbouring
--       pages); pgbench scripts take nextval('bench.targets_seq') or
--       nextval('bench.targets_nohist_seq') so committed runs never hit the
--       same customer twice.  SELECT bench.refill_targets() renumbers them
--       (skipping customers already anonymized, i.e. with email IS NULL)
--       and restarts both sequences.

\set ON_ERROR_STOP on
\if :{?profile}
\else
\set profile history
\endif
\if :{?first}
\else
\set first 1
\endif
\if :{?n}
\else
\set n 100000
\endif

SET client_min_messages = warning;
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET work_mem = '64MB';

CREATE SCHEMA IF NOT EXISTS bench;

CREATE TABLE IF NOT EXISTS bench.population (
	id			uuid PRIMARY KEY,
	profile		text NOT NULL,
	i			bigint NOT NULL,
	eligible	boolean NOT NULL,
	kind		text NOT NULL,
	has_address	boolean NOT NULL,
	UNIQUE (profile, i)
);

CREATE TABLE IF NOT EXISTS bench.targets (
	n			bigint PRIMARY KEY,
	id			uuid NOT NULL
);
CREATE TABLE IF NOT EXISTS bench.targets_nohist (
	n			bigint PRIMARY KEY,
	id			uuid NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS bench.targets_seq;
CREATE SEQUENCE IF NOT EXISTS bench.targets_nohist_seq;

-- Renumber the targets: eligible (by construction), not yet anonymized
-- customers, in a fixed pseudo-random order.  Returns the two pool sizes.
CREATE OR REPLACE FUNCTION bench.refill_targets(OUT history bigint, OUT nohistory bigint)
LANGUAGE plpgsql AS $$
BEGIN
	TRUNCATE bench.targets, bench.targets_nohist;
	INSERT INTO bench.targets (n, id)
	SELECT row_number() OVER (ORDER BY md5('perm:' || p.id::text)), p.id
	FROM bench.population p JOIN billing.customers c ON c.id = p.id
	WHERE p.profile = 'history' AND p.eligible AND c.email IS NOT NULL;
	GET DIAGNOSTICS history = ROW_COUNT;
	INSERT INTO bench.targets_nohist (n, id)
	SELECT row_number() OVER (ORDER BY md5('perm:' || p.id::text)), p.id
	FROM bench.population p JOIN billing.customers c ON c.id = p.id
	WHERE p.profile = 'nohistory' AND p.eligible AND c.email IS NOT NULL;
	GET DIAGNOSTICS nohistory = ROW_COUNT;
	PERFORM setval('bench.targets_seq', 1, false);
	PERFORM setval('bench.targets_nohist_seq', 1, false);
END
$$;

\echo generating :n :profile customers starting at :first

BEGIN;

-- The population (ground truth) first; every other insert reads from it.
CREATE TEMP TABLE gen ON COMMIT DROP AS
SELECT md5('bench:' || :'profile' || ':' || i)::uuid AS id,
	   i,
	   (:'profile' = 'nohistory' OR i % 20 NOT IN (3, 8)) AS eligible,
	   CASE WHEN i % 20 IN (3, 8) THEN ((i / 20) % 3)::int END AS blocker,
	   (i % 2 = 0) AS is_company,
	   (i % 20 <> 5) AS has_address
FROM generate_series(:first::bigint, :first::bigint + :n::bigint - 1) AS i;

INSERT INTO bench.population (id, profile, i, eligible, kind, has_address)
SELECT id, :'profile', i, eligible,
	   CASE WHEN is_company THEN 'company' ELSE 'individual' END, has_address
FROM gen ORDER BY i;

INSERT INTO billing.customers (id, name, email, created_at)
SELECT id,
	   CASE WHEN is_company THEN 'Company ' || i || ' GmbH'
			ELSE 'Firstname' || i || ' Lastname' || i END,
	   'customer' || i || '@' || :'profile' || '.example.com',
	   timestamptz '2015-01-01 00:00:00+00' + i * interval '1 minute'
FROM gen ORDER BY i;

INSERT INTO billing.billing_addresses
	(customer_id, company, first_name, last_name, phone, address_line1,
	 address_line2, city, postal_code, region, country)
SELECT id,
	   CASE WHEN is_company THEN 'Company ' || i || ' GmbH'
			WHEN i % 20 = 1 THEN '   ' END,
	   'Firstname' || i, 'Lastname' || i,
	   '+49 30 ' || lpad((i % 10000000)::text, 7, '0'),
	   (i % 997) || ' Example Street',
	   CASE WHEN i % 3 = 0 THEN 'Floor ' || (i % 9) END,
	   (ARRAY['Berlin', 'Paris', 'Amsterdam', 'Vienna', 'Boston'])[1 + i % 5],
	   lpad((i % 100000)::text, 5, '0'),
	   CASE WHEN i % 5 = 4 THEN 'MA' END,
	   (ARRAY['DE', 'FR', 'NL', 'AT', 'US'])[1 + i % 5]
FROM gen WHERE has_address ORDER BY i;

-- History rows: every attribute is a function of the customer number i, so
-- each insert below is a single pass over generate_series in row order g
-- (row g belongs to customer number first + g % n), no join, no sort.
INSERT INTO billing.subscriptions (customer_id, plan, state, started_at)
SELECT c.id,
	   (ARRAY['standard', 'pro', 'enterprise'])[1 + (c.i + j) % 3],
	   CASE WHEN j = 1 AND c.blocker = 0
				THEN CASE WHEN c.i % 40 < 20 THEN 'active' ELSE 'suspended' END
			WHEN j = 2 AND c.i % 4 = 1 THEN 'initialized'
			ELSE 'terminated' END,
	   timestamptz '2016-01-01 00:00:00+00' + (c.i + j) * interval '1 hour'
FROM generate_series(0, 2 * :n::bigint - 1) AS g
CROSS JOIN LATERAL (SELECT :first::bigint + g % :n AS i, g / :n + 1 AS j) k
CROSS JOIN LATERAL (SELECT k.i, md5('bench:history:' || k.i)::uuid AS id,
						   CASE WHEN k.i % 20 IN (3, 8) THEN (k.i / 20) % 3 END AS blocker) c
WHERE :'profile' = 'history';

INSERT INTO billing.invoices (customer_id, status, amount, issued_at)
SELECT c.id,
	   CASE WHEN j = 4 AND c.blocker = 1
				THEN CASE WHEN c.i % 40 < 20 THEN 'due' ELSE 'draft' END
			WHEN j = 3 THEN 'cancelled'
			ELSE 'paid' END,
	   (10 + (c.i * 7 + j * 13) % 90) + 0.99,
	   timestamptz '2016-01-01 00:00:00+00' + (c.i + j * 30) * interval '1 hour'
FROM generate_series(0, 4 * :n::bigint - 1) AS g
CROSS JOIN LATERAL (SELECT :first::bigint + g % :n AS i, g / :n + 1 AS j) k
CROSS JOIN LATERAL (SELECT k.i, md5('bench:history:' || k.i)::uuid AS id,
						   CASE WHEN k.i % 20 IN (3, 8) THEN (k.i / 20) % 3 END AS blocker) c
WHERE :'profile' = 'history';

-- Two lines per customer: +x and -x (sum 0), or -(x - 5) for the
-- non-zero-balance blocker.
INSERT INTO billing.balance_entries (customer_id, amount, description, booked_at)
SELECT c.id,
	   CASE WHEN j = 1 THEN x
			WHEN c.blocker = 2 THEN -(x - 5)
			ELSE -x END,
	   CASE WHEN j = 1 THEN 'charge' ELSE 'payment' END,
	   timestamptz '2016-01-01 00:00:00+00' + (c.i + j * 30) * interval '1 hour'
FROM generate_series(0, 2 * :n::bigint - 1) AS g
CROSS JOIN LATERAL (SELECT :first::bigint + g % :n AS i, g / :n + 1 AS j) k
CROSS JOIN LATERAL (SELECT k.i, md5('bench:history:' || k.i)::uuid AS id,
						   CASE WHEN k.i % 20 IN (3, 8) THEN (k.i / 20) % 3 END AS blocker) c
CROSS JOIN LATERAL (SELECT (20 + (c.i * 11) % 80) + 0.50 AS x) a
WHERE :'profile' = 'history';

INSERT INTO billing.sent_emails (customer_id, recipient, subject, body, sent_at)
SELECT c.id,
	   'customer' || c.i || '@history.example.com',
	   'Your invoice ' || c.i || '-' || j,
	   'Dear Firstname' || c.i || ' Lastname' || c.i || E',\n\n'
	   || 'please find attached your invoice number ' || c.i || '-' || j
	   || E' for the current billing period. The amount will be charged to '
	   || E'the payment method on file within the next days.\n\n'
	   || E'Kind regards,\nthe billing team',
	   timestamptz '2016-01-01 00:00:00+00' + (c.i + j * 10) * interval '1 hour'
FROM generate_series(0, 10 * :n::bigint - 1) AS g
CROSS JOIN LATERAL (SELECT :first::bigint + g % :n AS i, g / :n + 1 AS j) k
CROSS JOIN LATERAL (SELECT k.i, md5('bench:history:' || k.i)::uuid AS id,
						   CASE WHEN k.i % 20 IN (3, 8) THEN (k.i / 20) % 3 END AS blocker) c
WHERE :'profile' = 'history';

INSERT INTO billing.customer_activity (customer_id, kind, details, occurred_at)
SELECT c.id,
	   (ARRAY['login', 'view_invoice', 'update_card', 'download', 'logout'])[1 + j % 5],
	   'ip=10.' || (c.i % 250) || '.' || (j % 250) || '.7 agent=Mozilla/5.0 session=' || md5(c.i || ':' || j),
	   timestamptz '2016-01-01 00:00:00+00' + (c.i + j * 5) * interval '1 hour'
FROM generate_series(0, 20 * :n::bigint - 1) AS g
CROSS JOIN LATERAL (SELECT :first::bigint + g % :n AS i, g / :n + 1 AS j) k
CROSS JOIN LATERAL (SELECT k.i, md5('bench:history:' || k.i)::uuid AS id,
						   CASE WHEN k.i % 20 IN (3, 8) THEN (k.i / 20) % 3 END AS blocker) c
WHERE :'profile' = 'history';

INSERT INTO billing.webhook_notifications (customer_id, event, payload, sent_at)
SELECT c.id,
	   (ARRAY['invoice.created', 'invoice.paid', 'subscription.updated', 'customer.updated', 'payment.succeeded'])[j],
	   jsonb_build_object('customer', c.id, 'email', 'customer' || c.i || '@history.example.com',
						  'sequence', j, 'amount', (10 + (c.i * 7 + j * 13) % 90) + 0.99),
	   timestamptz '2016-01-01 00:00:00+00' + (c.i + j * 20) * interval '1 hour'
FROM generate_series(0, 5 * :n::bigint - 1) AS g
CROSS JOIN LATERAL (SELECT :first::bigint + g % :n AS i, g / :n + 1 AS j) k
CROSS JOIN LATERAL (SELECT k.i, md5('bench:history:' || k.i)::uuid AS id,
						   CASE WHEN k.i % 20 IN (3, 8) THEN (k.i / 20) % 3 END AS blocker) c
WHERE :'profile' = 'history';

COMMIT;

SELECT * FROM bench.refill_targets();
