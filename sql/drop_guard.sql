--
-- drop_guard: DROP EXTENSION anonymize must not silently destroy the proof
-- of erasures.  It is refused while anonymize.audit_log holds rows or
-- requests are pending (DROP SCHEMA anonymize CASCADE too), until
-- anonymize.allow_drop_with_data is set; an extension with nothing to lose
-- drops as usual, and other DROP EXTENSION and DROP SCHEMA commands are
-- not affected.  Before 1.2 the audit log went without a word.
--
\ir sql/include/fresh_billing.sql
RESET anonymize.allow_drop_with_data;
-- (the helper view of the fixture refers to the audit log)
DROP VIEW rows_per_customer;

-- Nothing recorded yet: it drops.
DROP EXTENSION anonymize;
CREATE EXTENSION anonymize;
\ir sql/include/billing_mapping.sql

-- A pending request alone is kept.
SELECT anonymize.request(:'maria', 'TICKET-1') IS NOT NULL AS requested;
DROP EXTENSION anonymize;
SELECT pg_temp.sqlstate('DROP EXTENSION anonymize CASCADE');

-- An erasure in the audit log: the extension and its schema stay.
SELECT anonymized FROM anonymize.anonymize_customer(:'jean');
DROP EXTENSION anonymize;
SELECT pg_temp.sqlstate('DROP SCHEMA anonymize CASCADE');
SELECT pg_temp.sqlstate('DROP EXTENSION IF EXISTS anonymize, no_such_extension');
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

-- Nor do the commands that would drop it with something else.
SELECT pg_temp.sqlstate('DROP EXTENSION plpgsql CASCADE');
SELECT pg_temp.sqlstate('DROP LANGUAGE plpgsql CASCADE');
-- and a dependency on another extension, made by hand
CREATE EXTENSION pg_trgm;
ALTER FUNCTION anonymize.can_anonymize(uuid) DEPENDS ON EXTENSION pg_trgm;
SELECT pg_temp.sqlstate('DROP EXTENSION pg_trgm CASCADE');
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

-- Other drops are not affected.
CREATE SCHEMA regress_other;
DROP SCHEMA regress_other;
DROP EXTENSION IF EXISTS no_such_extension;

-- A role that may not read the audit log gets the usual error of its DROP.
CREATE ROLE regress_drop_guard;
SET ROLE regress_drop_guard;
DROP SCHEMA anonymize;
RESET ROLE;
DROP ROLE regress_drop_guard;

-- DROP OWNED BY the extension's owner (here another superuser) drops it.
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
RESET anonymize.allow_drop_with_data;
CREATE ROLE regress_dba SUPERUSER;
SET ROLE regress_dba;
CREATE EXTENSION anonymize;
\ir sql/include/billing_mapping.sql
SELECT anonymized FROM anonymize.anonymize_customer(:'acme');
RESET ROLE;
SELECT pg_temp.sqlstate('DROP OWNED BY regress_dba');
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

-- The setting is for superusers.
CREATE ROLE regress_drop_guard;
SET ROLE regress_drop_guard;
SET anonymize.allow_drop_with_data = on;
RESET ROLE;
DROP ROLE regress_drop_guard;

-- Exported and dropped deliberately.
CREATE TEMP TABLE exported_audit AS SELECT * FROM anonymize.audit_log;
SET anonymize.allow_drop_with_data = on;
DROP OWNED BY regress_dba;
RESET anonymize.allow_drop_with_data;
DROP ROLE regress_dba;
SELECT count(*) AS exported_rows FROM exported_audit;
-- the billing data is all there
SELECT count(*) AS customers FROM billing.customers;
DROP EXTENSION pg_trgm;
