-- examples/plproxy/cluster.sql -- the router's cluster definition for two
-- shards (SQL/MED), what setup_router.sh writes for its arguments.
--
-- pN is partition N: PL/Proxy sends a call to partition
-- hashtext(customer_id::text) & (number of partitions - 1), so the number
-- of partitions must be a power of two.  The user mapping names no user:
-- each role connects to the shards as itself (PL/Proxy appends
-- user=current_user), so the shards' own grants apply; passwords belong in
-- the router's ~/.pgpass, not here.
CREATE EXTENSION plproxy;   -- creates the foreign data wrapper plproxy
CREATE SERVER anonymize_shards FOREIGN DATA WRAPPER plproxy OPTIONS (
	p0 'dbname=billing host=billing-shard0 port=5432',
	p1 'dbname=billing host=billing-shard1 port=5432');
CREATE USER MAPPING FOR PUBLIC SERVER anonymize_shards;
GRANT USAGE ON FOREIGN SERVER anonymize_shards TO PUBLIC;
