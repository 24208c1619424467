/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  Checks, at the end of an erasure and before it is recorded, that the
 *	  data the mapping covers is gone: no purged relation holds a row of the
 *	  customer, and every erased column holds its erased value.
 *
 * A trigger that keeps the email ("the mailer needs an address"), one that
 * skips some address rows, or one that archives deleted rows into a relation
 * that is not purged would otherwise leave data behind under an audit row
 * that says it is gone.  The checks run with the latest snapshot, as the
 * statements of the erasure do (security.c), and raise an error naming the
 * relation and the column: the erasure then changes nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"

#include "anonymize.h"

/* True while a row that the purge rule covers remains. */
bool
purged_rows_remain(const Rule *rule, SPIPlanPtr plan, Datum ids)
{
	bool isnull;
	bool remain;

	if (run_verifying(&rule->scope->relation, plan, &ids, NULL) !=
			SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not verify purge rule \"%s\"", rule->rule_name);
	remain = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	return remain && !isnull;
}

/*
 * The same for every purge rule at once (plans->verify_purges): remain[i]
 * is set while a row that purge rule i covers remains.
 */
void
all_purged_rows_remain(const Mapping *m, SPIPlanPtr plan, Datum ids,
					   bool *remain)
{
	if (run_verifying(&m->purge_rules[0]->scope->relation, plan, &ids, NULL) !=
			SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not verify the purge rules");
	for (int i = 0; i < m->n_purge_rules; i++)
	{
		bool isnull;

		remain[i] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, i + 1,
											   &isnull)) &&
					!isnull;
	}
}

void
report_purged_rows_remain(const Rule *rule)
{
	ereport(
		ERROR,
		(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
		 errmsg("rows of relation \"%s.%s\" remain after the erasure",
				rule->scope->relation.schema, rule->scope->relation.name),
		 errdetail("Purge rule \"%s\" deleted them, but rows of the "
				   "customer came back each time; nothing was changed.",
				   rule->rule_name),
		 errhint("Look for triggers or rules that insert into \"%s.%s\" "
				 "while the customer's data is erased.",
				 rule->scope->relation.schema, rule->scope->relation.name)));
}

static void
report_column_not_erased(const MappedRelation *rel, const char *column,
						 int64 rows)
{
	ereport(ERROR,
			(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
			 errmsg("column \"%s\" of relation \"%s.%s\" still holds data "
					"after the erasure",
					column, rel->schema, rel->name),
			 errdetail("%lld %s of the customer kept a value that the "
					   "erasure replaced; nothing was changed.",
					   (long long)rows, rows == 1 ? "row" : "rows"),
			 errhint("Look for triggers or rules on \"%s.%s\" that keep or "
					 "restore the column.",
					 rel->schema, rel->name)));
}

/* The number of checks of an erased scope (append_unerased_checks()). */
static int
n_checks(const ErasedScope *erased)
{
	int n = erased->name_column != NULL ? 1 : 0;

	for (int i = 0; i < erased->n_columns; i++)
		if (is_verified_column(erased->columns[i]))
			n++;
	return n;
}

/* Counts the rows of verify_erased_sql() as they come, keeping none. */
typedef struct CheckReceiver
{
	DestReceiver pub;
	int64       *counts;   /* rows, then the rows failing each check */
	int          n_checks; /* the columns of each row */
} CheckReceiver;

static bool
count_check_row(TupleTableSlot *slot, DestReceiver *self)
{
	CheckReceiver *receiver = (CheckReceiver *)self;

	receiver->counts[0]++;
	for (int k = 1; k <= slot->tts_tupleDescriptor->natts; k++)
	{
		bool isnull;

		if (DatumGetBool(slot_getattr(slot, k, &isnull)) && !isnull)
			receiver->counts[k]++;
	}
	return true;
}

static void
check_rows_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	bool expected = (desc->natts == ((CheckReceiver *)self)->n_checks);

	for (int k = 0; k < desc->natts; k++)
		expected = expected && TupleDescAttr(desc, k)->atttypid == BOOLOID;
	if (!expected)
		elog(ERROR, "unexpected row type of a verification statement");
}

/*
 * Runs the verification statement of an erased scope (verify_erased_sql())
 * with snapshot and read_only as for run_statement(), and returns its
 * counts: the customers' rows of the scope, then for each check (the name,
 * then each verified column) the rows that still hold data; as many as
 * 1 + n_checks().
 */
int64 *
count_unerased(const Mapping *m, const ErasedScope *erased, SPIPlanPtr plan,
			   Datum *values, const char *nulls, Snapshot snapshot,
			   bool read_only)
{
	const MappedRelation *rel = &erased->scope->relation;
	int                   n = 1 + n_checks(erased);
	int64                *counts = palloc0(sizeof(int64) * n);
	CheckReceiver         receiver = {
				row_receiver(count_check_row, check_rows_startup), counts, n - 1};

	if (scope_rows_are_distinct(m, erased->scope))
	{
		run_statement_into(rel, plan, values, nulls, snapshot, read_only,
						   &receiver.pub);
		return counts;
	}
	if (run_statement(rel, plan, values, nulls, snapshot, InvalidSnapshot,
					  read_only) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not verify the erasure of scope \"%s\"",
			 erased->scope->name);
	for (int k = 0; k < n; k++)
	{
		bool isnull;

		counts[k] = DatumGetInt64(SPI_getbinval(
			SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k + 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return counts;
}

/*
 * Errors out unless the customer's rows of an erased scope are erased: no
 * more rows than its UPDATE changed (rows_updated, so that a replaced
 * column counts as erased), and every verified column erased.
 */
void
check_scope_erased(const Mapping *m, const ErasedScope *erased,
				   SPIPlanPtr plan, Datum *values, const char *nulls,
				   int64 rows_updated)
{
	const MappedRelation *rel = &erased->scope->relation;
	int64 *counts = count_unerased(m, erased, plan, values, nulls,
								   verifying_snapshot(), false);
	int    n = 0;

	if (counts[0] > rows_updated)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("rows of relation \"%s.%s\" were not erased",
						rel->schema, rel->name),
				 errdetail("Scope \"%s\" holds %lld %s of the customer "
						   "after the erasure, which updated %lld; nothing "
						   "was changed.",
						   erased->scope->name, (long long)counts[0],
						   counts[0] == 1 ? "row" : "rows",
						   (long long)rows_updated),
				 errhint("Look for triggers or rules on \"%s.%s\" that skip "
						 "the update of a row or insert rows while the "
						 "customer's data is erased.",
						 rel->schema, rel->name)));

	/* the customer's name, which verify_erased_sql() checks first */
	if (erased->name_column != NULL && counts[++n] > 0)
		report_column_not_erased(rel, erased->name_column, counts[n]);
	for (int i = 0; i < erased->n_columns; i++)
		if (is_verified_column(erased->columns[i]) && counts[++n] > 0)
			report_column_not_erased(rel, erased->columns[i]->name, counts[n]);
	pfree(counts);
}
