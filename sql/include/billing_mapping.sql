\set ECHO none
-- sql/include/billing_mapping.sql: loads the mapping of the example schema
-- (examples/billing_mapping.sql) silently, for tests that create the
-- extension anew:  \ir sql/include/billing_mapping.sql
\o /dev/null
\ir ../../examples/billing_mapping.sql
\o
\set ECHO all
