--
-- invalid_input: an unknown customer id is SQLSTATE P0002 for each function;
-- NULL gives NULL from can_anonymize(), no row from blockers() (both are
-- STRICT) and 22004 from anonymize_customer(); text that is not a uuid is
-- 22P02.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

-- Unknown id.
SELECT anonymize.can_anonymize(:'unknown');
SELECT * FROM anonymize.blockers(:'unknown');
SELECT * FROM anonymize.anonymize_customer(:'unknown');
SELECT f, pg_temp.sqlstate(format('SELECT anonymize.%s(%L)', f, :'unknown'))
  FROM unnest(ARRAY['can_anonymize', 'blockers', 'anonymize_customer']) f;

-- NULL.
SELECT anonymize.can_anonymize(NULL) IS NULL AS can_anonymize_is_null;
SELECT count(*) AS blocker_rows FROM anonymize.blockers(NULL);
SELECT * FROM anonymize.anonymize_customer(NULL);
SELECT pg_temp.sqlstate('SELECT anonymize.anonymize_customer(NULL)');

-- Not a uuid.
SELECT anonymize.can_anonymize('not-a-uuid');
SELECT * FROM anonymize.blockers('aaaaaaaa-aaaa');
SELECT * FROM anonymize.anonymize_customer('');
SELECT f, pg_temp.sqlstate(format('SELECT anonymize.%s(%L)', f, 'not-a-uuid'))
  FROM unnest(ARRAY['can_anonymize', 'blockers', 'anonymize_customer']) f;

-- None of it changed anything.
SELECT * FROM rows_per_customer ORDER BY id;
SELECT id, name, email FROM billing.customers ORDER BY id;

-- The prefix of the settings is reserved: a misspelt setting is an error,
-- not a silent placeholder.
SELECT anonymize.can_anonymize(:'acme') IS NOT NULL AS loaded;
SET anonymize.set_based_batchs = off;
SET anonymize.set_based_batches = off;
RESET anonymize.set_based_batches;
