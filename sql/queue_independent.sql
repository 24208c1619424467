--
-- queue_independent: the queue's own operations depend on the queue and,
-- for request(), on the customer relation only.  An application that only
-- records requests needs the grants of README.md and nothing on the other
-- billing tables; cancel_request() and pending_requests work while a
-- mapped table is renamed, and the view says why it cannot tell the
-- blockers.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

-- The README's grant for an application that only records requests.
CREATE ROLE regress_request_app;
GRANT USAGE ON SCHEMA anonymize, billing TO regress_request_app;
GRANT EXECUTE ON FUNCTION anonymize.request(uuid, text, timestamptz) TO regress_request_app;
GRANT SELECT ON billing.customers TO regress_request_app;
SET ROLE regress_request_app;
SELECT anonymize.request(:'maria', 'TICKET-1') IS NOT NULL AS requested;
SELECT pg_temp.sqlstate(format('SELECT anonymize.request(%L)', :'unknown'));
-- nothing else of the queue or the billing schema
SELECT pg_temp.sqlstate(format('SELECT anonymize.cancel_request(%L)', :'maria'));
SELECT pg_temp.sqlstate('SELECT count(*) FROM billing.invoices');
RESET ROLE;
-- without SELECT on the customers it cannot probe ids
REVOKE SELECT ON billing.customers FROM regress_request_app;
SET ROLE regress_request_app;
SELECT pg_temp.sqlstate(format('SELECT anonymize.request(%L)', :'jean'));
RESET ROLE;

-- A mapped table is renamed: the erasure reports it, the queue works on.
ALTER TABLE billing.webhook_notifications RENAME TO webhook_notifications_old;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'jean'));
SELECT anonymize.request(:'jean', 'TICKET-2') IS NOT NULL AS requested;
SELECT reference, blockers FROM anonymize.pending_requests ORDER BY reference;
SELECT anonymize.cancel_request(:'jean') AS cancelled;
ALTER TABLE billing.webhook_notifications_old RENAME TO webhook_notifications;
SELECT reference, blockers FROM anonymize.pending_requests ORDER BY reference;

-- A broken customer relation is reported by request() too.
ALTER TABLE billing.customers RENAME TO customers_old;
SELECT pg_temp.sqlstate(format('SELECT anonymize.request(%L)', :'acme'));
SELECT anonymize.cancel_request(:'maria') AS cancelled;
ALTER TABLE billing.customers_old RENAME TO customers;

DROP OWNED BY regress_request_app;
DROP ROLE regress_request_app;
