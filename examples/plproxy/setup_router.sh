#!/bin/bash
# examples/plproxy/setup_router.sh -- sets up a PL/Proxy router for N
# billing shards.
#
#   setup_router.sh 'dbname=billing host=shard0' 'dbname=billing host=shard1' ...
#
# Connects with psql to the router database (PGHOST, PGPORT, PGDATABASE,
# PGUSER as usual; run it as a superuser), and in one transaction: CREATE
# EXTENSION plproxy, the server anonymize_shards with one option pN per
# connection string in the order given (partition N gets the customers with
# hashtext(id::text) & (N_shards - 1) = N), a user mapping for PUBLIC without
# a user (each role connects to the shards as itself), USAGE on the server,
# the role gdpr_operator if missing, and the proxy functions of
# functions.sql.  The number of connection strings must be a power of two
# (PL/Proxy requires it).  The shards must already hold the extension and
# their mapping.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
n=$#
if [ "$n" -eq 0 ] || [ $((n & (n - 1))) -ne 0 ]; then
	echo "usage: $0 CONNSTR... (a power of two of them, got $n)" >&2
	exit 2
fi

options=
i=0
for conn in "$@"; do
	options+="${options:+, }p$i '${conn//\'/\'\'}'"
	i=$((i + 1))
done

psql -X -q -v ON_ERROR_STOP=1 --single-transaction <<SQL
CREATE EXTENSION IF NOT EXISTS plproxy;
CREATE SERVER anonymize_shards FOREIGN DATA WRAPPER plproxy OPTIONS ($options);
CREATE USER MAPPING FOR PUBLIC SERVER anonymize_shards;
GRANT USAGE ON FOREIGN SERVER anonymize_shards TO PUBLIC;
SELECT 'CREATE ROLE gdpr_operator LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gdpr_operator') \gexec
\i '$here/functions.sql'
SQL
echo "router set up for $n shards"
