--
-- receipt: every erasure records its transaction, the request it answered
-- (from the queue) and the fingerprint of the mapping it followed;
-- anonymize.receipt() gives a JSON document of it without personal data;
-- anonymize.mapping_fingerprint() changes with the mapping and only then.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

-- The fingerprint: stable, changed by any change of the mapping, back when
-- the change is undone.
SELECT anonymize.mapping_fingerprint() AS fingerprint \gset
SELECT length(:'fingerprint') AS hex_digits,
       anonymize.mapping_fingerprint() = :'fingerprint' AS stable;
SELECT anonymize.set_placeholder('n/a');
SELECT anonymize.mapping_fingerprint() <> :'fingerprint' AS changed_by_placeholder;
SELECT anonymize.set_placeholder('');
SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails', 'true');
SELECT anonymize.mapping_fingerprint() <> :'fingerprint' AS changed_by_rule;
SELECT anonymize.set_purge_rule('sent_emails', 'sent_emails');
SELECT anonymize.mapping_fingerprint() = :'fingerprint' AS back;

-- A direct erasure and one from the queue.
BEGIN;
SELECT anonymized FROM anonymize.anonymize_customer(:'acme');
SELECT transaction_id = pg_current_xact_id() AS this_transaction
  FROM anonymize.audit_log WHERE customer_id = :'acme';
COMMIT;
SELECT anonymize.request(:'jean', 'TICKET-7') AS request_id \gset
CALL anonymize.process_requests();
SELECT customer_id, customer_kind, request_id = :'request_id' AS from_request,
       request_id IS NULL AS direct,
       mapping_fingerprint = :'fingerprint' AS mapping_in_force
  FROM anonymize.audit_log ORDER BY event_id;

-- The receipt: no personal data, the facts of the erasure.
SELECT r - 'erased_at' - 'transaction_id' - 'event_id' - 'request_id'
       - 'mapping_fingerprint' AS receipt,
       r ->> 'mapping_fingerprint' = :'fingerprint' AS fingerprint,
       (r ->> 'request_id')::uuid = :'request_id' AS request
  FROM anonymize.receipt(:'jean') r;
SELECT anonymize.receipt(:'jean')::text ~* '(jean|dupont|@|rue)' AS mentions_the_person;

-- Errors: not anonymized, unknown; not for PUBLIC.
SELECT pg_temp.sqlstate(format('SELECT anonymize.receipt(%L)', :'maria'));
SELECT pg_temp.sqlstate(format('SELECT anonymize.receipt(%L)', :'unknown'));
SELECT has_function_privilege('public', 'anonymize.receipt(uuid)', 'EXECUTE') AS public_receipt,
       has_function_privilege('public', 'anonymize.mapping_fingerprint()', 'EXECUTE') AS public_fingerprint;
