/*-------------------------------------------------------------------------
 *
 * eligibility.c
 *	  Whether a customer may be anonymized: it exists, and no blocker or
 *	  balance rule holds it back.
 *
 * In a transaction that uses one snapshot for all its statements
 * (REPEATABLE READ and SERIALIZABLE), a blocker committed after that
 * snapshot was taken is invisible to it.  As PostgreSQL's foreign key checks
 * do, the check is then run again with the latest snapshot, and a blocker
 * seen only there raises a serialization failure instead of an erasure.
 * Likewise the purge then deletes what the latest snapshot sees, and fails
 * on a row the transaction's snapshot does not: a sent email committed
 * after that snapshot must not survive the erasure unnoticed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "anonymize.h"

static char *
customer_id_text(Datum customer_id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, customer_id));
}

void
report_unknown_customer(Datum customer_id)
{
	ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
					errmsg("customer %s does not exist",
						   customer_id_text(customer_id))));
}

bool
customer_exists(AnonymizePlans *plans, Datum customer_id)
{
	if (SPI_execute_plan(plans->customer_exists, &customer_id, NULL, true,
						 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up customer");
	return SPI_processed > 0;
}

/*
 * Errors out if row-level security hides rows of a mapped relation from
 * the current user: a hidden blocker would not block, and a hidden row to
 * erase would survive.  Anonymizing needs to see all of a customer.
 */
void
check_rows_visible(AnonymizePlans *plans)
{
	for (int i = 0; i < plans->n_rls_relids; i++)
	{
		Oid relid = plans->rls_relids[i];

		if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("row-level security hides rows of relation "
							"\"%s.%s\" from anonymize",
							get_namespace_name(get_rel_namespace(relid)),
							get_rel_name(relid)),
					 errdetail("Checking the blockers and erasing the data of "
							   "a customer needs to see all of its rows."),
					 errhint("Run it as a role that owns the relation or "
							 "bypasses row-level security.")));
	}
}

/* A row of a blockers statement: see blockers_sql(). */
typedef struct BlockerRow
{
	Datum customer_id;
	int   rule;
	bool  blocks; /* a blocker rule's condition holds */
	Datum amount; /* a balance rule's amount, or 0 */
} BlockerRow;

/* By customer, then by rule in the mapping's order. */
static int
compare_blocker_rows(const void *a, const void *b)
{
	const BlockerRow *x = a;
	const BlockerRow *y = b;
	int               c = memcmp(DatumGetUUIDP(x->customer_id),
								 DatumGetUUIDP(y->customer_id), UUID_LEN);

	return c != 0 ? c : (x->rule > y->rule) - (x->rule < y->rule);
}

static BlockerRow *
read_blocker_rows(uint64 n)
{
	BlockerRow *rows = palloc(sizeof(BlockerRow) * Max(n, 1));
	Datum       zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple tuple = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool      isnull;

		rows[i].rule = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		rows[i].blocks =
			DatumGetBool(SPI_getbinval(tuple, desc, 2, &isnull)) && !isnull;
		rows[i].amount = SPI_getbinval(tuple, desc, 3, &isnull);
		if (isnull)
			rows[i].amount = zero;
		rows[i].customer_id = SPI_getbinval(tuple, desc, 4, &isnull);
	}
	qsort(rows, n, sizeof(BlockerRow), compare_blocker_rows);
	return rows;
}

/*
 * The blocker of one rule for one customer, from its rows (first .. end),
 * or NULL: a blocker rule blocks with a row whose condition holds, a
 * balance rule when its amounts do not sum to zero.
 */
static Blocker *
blocker_of(AnonymizePlans *plans, BlockerRow *first, BlockerRow *end)
{
	const Rule *rule = &plans->mapping->blocker_rules[first->rule];
	Datum       zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	Datum       sum = zero;
	int64       rows = 0;
	bool        blocks;
	Blocker    *blocker;

	for (BlockerRow *row = first; row < end; row++)
		if (rule->kind == RULE_BALANCE)
		{
			sum = DirectFunctionCall2(numeric_add, sum, row->amount);
			rows++;
		}
		else if (row->blocks)
			rows++;

	blocks =
		(rule->kind == RULE_BALANCE)
			? DatumGetInt32(DirectFunctionCall2(numeric_cmp, sum, zero)) != 0
			: rows > 0;
	if (!blocks)
		return NULL;

	blocker = palloc0(sizeof(Blocker));
	blocker->rule = rule;
	blocker->customer_id = first->customer_id;
	blocker->relid = rule->relation.relid;
	blocker->rows = rows;
	if (rule->kind == RULE_BALANCE)
		blocker->amount =
			DatumGetCString(DirectFunctionCall1(numeric_out, sum));
	return blocker;
}

/*
 * Runs a blockers plan, for one customer or many (param is a uuid or a
 * uuid[]), with the given snapshot (InvalidSnapshot: the current one), and
 * returns the rules that hold the customers back, by customer and rule.
 */
static List *
run_blockers_plan(AnonymizePlans *plans, SPIPlanPtr plan, Datum param,
				  Snapshot snapshot, bool read_only)
{
	List       *blockers = NIL;
	BlockerRow *rows;
	uint64      n;
	uint64      first = 0;

	if (plan == NULL)
		return NIL;
	if (SPI_execute_snapshot(plan, &param, NULL, snapshot, InvalidSnapshot,
							 read_only, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not check the blockers of a customer");

	n = SPI_processed;
	rows = read_blocker_rows(n);
	for (uint64 i = 1; i <= n; i++)
		if (i == n || compare_blocker_rows(&rows[first], &rows[i]) != 0)
		{
			Blocker *blocker = blocker_of(plans, &rows[first], &rows[i]);

			if (blocker != NULL)
				blockers = lappend(blockers, blocker);
			first = i;
		}
	return blockers;
}

/*
 * Runs the purge statement for one customer or many (param).  With one
 * snapshot per transaction, it deletes the rows of the latest snapshot and
 * cross-checks them against the transaction's, as PostgreSQL's foreign key
 * actions do: a row committed since raises a serialization failure.
 */
int
execute_purge(SPIPlanPtr plan, Datum param)
{
	if (!IsolationUsesXactSnapshot())
		return SPI_execute_plan(plan, &param, NULL, false, 0);
	return SPI_execute_snapshot(plan, &param, NULL, GetLatestSnapshot(),
								GetTransactionSnapshot(), false, true, 0);
}

/*
 * The blockers of a customer, without "already anonymized".  With
 * lock_rows, the customer's rows of the blocker relations are locked FOR
 * SHARE; without, nothing is locked.
 */
List *
find_blockers(AnonymizePlans *plans, Datum customer_id, bool lock_rows)
{
	return run_blockers_plan(
		plans, lock_rows ? plans->one.blockers_locking : plans->one.blockers,
		customer_id, InvalidSnapshot, !lock_rows);
}

/* "2 rows of relation "billing.invoices" (invoice not paid or cancelled)" */
static void
append_blocker(StringInfo buf, const Blocker *blocker)
{
	const Rule *rule = blocker->rule;

	if (buf->len > 0)
		appendStringInfoString(buf, "; ");
	if (rule->kind == RULE_BALANCE)
		appendStringInfo(buf, "a balance of %s in relation \"%s.%s\" (%s)",
						 blocker->amount, rule->relation.schema,
						 rule->relation.name, rule->reason);
	else
		appendStringInfo(
			buf, "%lld %s of relation \"%s.%s\" (%s)",
			(long long)blocker->rows, blocker->rows == 1 ? "row" : "rows",
			rule->relation.schema, rule->relation.name, rule->reason);
}

/* The blockers as one phrase, for messages and the request queue. */
char *
describe_blockers(List *blockers)
{
	StringInfoData buf;
	ListCell      *cell;

	initStringInfo(&buf);
	foreach (cell, blockers)
		append_blocker(&buf, lfirst(cell));
	return buf.data;
}

/*
 * The blockers of customers whose rows the caller has locked, leaving
 * their rows of the blocker relations locked FOR SHARE until the end of the
 * transaction.  param is a customer id for the "one" statements, an array
 * of them for the "many".  NIL when all may be anonymized now.
 */
List *
lock_blockers(AnonymizePlans *plans, const StatementPlans *statements,
			  Datum param)
{
	List *blockers = run_blockers_plan(plans, statements->blockers_locking,
									   param, InvalidSnapshot, false);

	if (blockers != NIL || !IsolationUsesXactSnapshot())
		return blockers;

	/* Blockers committed after this transaction's snapshot was taken. */
	blockers = run_blockers_plan(plans, statements->blockers, param,
								 GetLatestSnapshot(), true);
	if (blockers != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update"),
				 errdetail("Customer %s got blocked by a transaction that "
						   "committed after this one started: %s.",
						   customer_id_text(
							   ((Blocker *)linitial(blockers))->customer_id),
						   describe_blockers(blockers)),
				 errhint("The transaction might succeed if retried.")));
	return NIL;
}

void
report_blocked_customer(Datum customer_id, List *blockers)
{
	ereport(
		ERROR,
		(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		 errmsg("customer %s cannot be anonymized",
				customer_id_text(customer_id)),
		 errdetail("Blocked by %s.", describe_blockers(blockers)),
		 errhint("Terminate its subscriptions and settle its invoices and "
				 "balance first; anonymize.blockers() lists what remains.")));
}
