-- examples/plproxy/functions.sql -- the router's proxy functions for a
-- fleet of billing shards that each run the anonymize extension.
--
-- Run on the router database after the cluster definition (cluster.sql, or
-- setup_router.sh, which runs both).  The functions live in the schema
-- anonymize_router, not anonymize: the router may itself hold the extension
-- (a shard can be its own router), the fleet-wide functions return one row
-- per shard with a "shard" column and so differ from the shard's, and a
-- caller sees in the name that the call goes to another database and
-- commits there on its own.
--
-- Routing: RUN ON hashtext(customer_id::text); PL/Proxy picks partition
-- hash & (number of partitions - 1), so the number of shards must be a power
-- of two, and a customer must be stored on that shard.
-- NULL ids: the functions that are STRICT on the shard (can_anonymize,
-- blockers, cancel_request, preview) are STRICT here too and return NULL
-- without a call; anonymize_customer and request are not STRICT on the shard
-- (they raise 22004 for a NULL id), so NULL is routed to a shard by
-- hashtext(coalesce(customer_id::text, '')) and the shard's error comes
-- back, instead of PL/Proxy's "Hash function returned NULL" (XX000).
-- regclass columns are sent as text: a regclass is re-parsed on the router,
-- where the billing tables do not exist (3F000).
CREATE SCHEMA anonymize_router;

CREATE FUNCTION anonymize_router.can_anonymize(customer_id uuid)
RETURNS boolean STRICT LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON hashtext(customer_id::text);
	SELECT anonymize.can_anonymize(customer_id);
$$;

CREATE FUNCTION anonymize_router.blockers(customer_id uuid)
RETURNS TABLE (rule_name text, reason text, relation text, rows bigint, amount numeric)
STRICT LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON hashtext(customer_id::text);
	SELECT b.rule_name, b.reason, b.relation::text AS relation, b.rows, b.amount
	  FROM anonymize.blockers(customer_id) b;
$$;

CREATE FUNCTION anonymize_router.preview(customer_id uuid)
RETURNS TABLE (step text, rule_name text, scope text, relation text, rows bigint,
               columns name[], applies boolean, detail text)
STRICT LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON hashtext(customer_id::text);
	SELECT p.step, p.rule_name, p.scope, p.relation::text AS relation, p.rows,
	       p.columns, p.applies, p.detail
	  FROM anonymize.preview(customer_id) p;
$$;

CREATE FUNCTION anonymize_router.anonymize_customer(customer_id uuid,
	OUT anonymized boolean, OUT customer_kind text, OUT rows_deleted jsonb)
LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON hashtext(coalesce(customer_id::text, ''));
	SELECT a.anonymized, a.customer_kind, a.rows_deleted
	  FROM anonymize.anonymize_customer(customer_id) a;
$$;

CREATE FUNCTION anonymize_router.request(customer_id uuid, reference text DEFAULT NULL,
	due_at timestamptz DEFAULT NULL)
RETURNS uuid LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON hashtext(coalesce(customer_id::text, ''));
	SELECT anonymize.request(customer_id, reference, due_at);
$$;

CREATE FUNCTION anonymize_router.cancel_request(customer_id uuid)
RETURNS boolean STRICT LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON hashtext(customer_id::text);
	SELECT anonymize.cancel_request(customer_id);
$$;

-- Fleet-wide: one row per shard, named by its cluster_name setting (else
-- its database name and port).
CREATE FUNCTION anonymize_router.queue_status()
RETURNS TABLE (shard text, pending bigint, overdue bigint, oldest_due_at timestamptz,
               blocked bigint, failed bigint, busy bigint, not_tried bigint,
               last_run_id uuid, last_run_started_at timestamptz,
               last_run_ended_at timestamptz, last_run_by name, last_run_batches integer,
               last_run_anonymized bigint, last_run_blocked bigint,
               last_run_failed bigint, last_run_busy bigint, last_run_already_erased bigint)
LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON ALL;
	SELECT coalesce(nullif(current_setting('cluster_name'), ''),
	                current_database() || ':' || current_setting('port')) AS shard, s.*
	  FROM anonymize.queue_status() s;
$$;

-- One batch on every shard, each in a transaction of its own on its shard.
CREATE FUNCTION anonymize_router.process_request_batch(batch_size integer,
	not_tried_since timestamptz DEFAULT NULL)
RETURNS TABLE (shard text, run_id uuid, claimed integer, anonymized integer,
               already_erased integer, unknown_customers integer, blocked integer,
               busy integer, failed integer, pending bigint, overdue bigint)
LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON ALL;
	SELECT coalesce(nullif(current_setting('cluster_name'), ''),
	                current_database() || ':' || current_setting('port')) AS shard, b.*
	  FROM anonymize.process_request_batch(batch_size, not_tried_since) b;
$$;

-- Per shard: the extension version and the mapping's fingerprint.  A fleet
-- agrees when this returns one distinct (extversion, fingerprint).
CREATE FUNCTION anonymize_router.fingerprints()
RETURNS TABLE (shard text, extversion text, fingerprint text)
LANGUAGE plproxy AS $$
	CLUSTER 'anonymize_shards';
	RUN ON ALL;
	SELECT coalesce(nullif(current_setting('cluster_name'), ''),
	                current_database() || ':' || current_setting('port')) AS shard,
	       (SELECT e.extversion::text FROM pg_extension e WHERE e.extname = 'anonymize')
	         AS extversion,
	       anonymize.mapping_fingerprint() AS fingerprint;
$$;

-- Privileges, as on the shards: reading is for everybody, writing for the
-- operator role.  The call runs on the shard as the same role (the user
-- mapping names no user), so the shard's grants apply as well.
REVOKE EXECUTE ON FUNCTION anonymize_router.anonymize_customer(uuid),
       anonymize_router.request(uuid, text, timestamptz),
       anonymize_router.cancel_request(uuid),
       anonymize_router.queue_status(),
       anonymize_router.process_request_batch(integer, timestamptz) FROM PUBLIC;
GRANT USAGE ON SCHEMA anonymize_router TO PUBLIC;
GRANT EXECUTE ON FUNCTION anonymize_router.anonymize_customer(uuid),
       anonymize_router.request(uuid, text, timestamptz),
       anonymize_router.cancel_request(uuid),
       anonymize_router.queue_status(),
       anonymize_router.process_request_batch(integer, timestamptz) TO gdpr_operator;
