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

#include "anonymize.h"

/* True while a row that the purge rule covers remains. */
bool
purged_rows_remain(const Rule *rule, SPIPlanPtr plan, Datum ids)
{
	bool isnull;
	bool remain;

	if (run_verifying(&rule->relation, plan, &ids, NULL) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not verify purge rule \"%s\"", rule->rule_name);
	remain = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	return remain && !isnull;
}

void
report_purged_rows_remain(const Rule *rule)
{
	ereport(ERROR,
			(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
			 errmsg("rows of relation \"%s.%s\" remain after the erasure",
					rule->relation.schema, rule->relation.name),
			 errdetail("Purge rule \"%s\" deleted them, but rows of the "
					   "customer came back each time; nothing was changed.",
					   rule->rule_name),
			 errhint("Look for triggers or rules that insert into \"%s.%s\" "
					 "while the customer's data is erased.",
					 rule->relation.schema, rule->relation.name)));
}

/*
 * Errors out unless every column counted by the plan (one row of counts of
 * rows still holding data, in the order of columns[]) is erased.
 */
void
check_columns_erased(const MappedRelation *rel, SPIPlanPtr plan, Datum *values,
					 const char *nulls, const char **columns, int n_columns)
{
	if (plan == NULL)
		return;
	if (run_verifying(rel, plan, values, nulls) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not verify the erasure of relation \"%s.%s\"",
			 rel->schema, rel->name);

	for (int i = 0; i < n_columns; i++)
	{
		bool  isnull;
		int64 rows = DatumGetInt64(SPI_getbinval(
			SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull));

		if (rows > 0)
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
					 errmsg("column \"%s\" of relation \"%s.%s\" still holds "
							"data after the erasure",
							columns[i], rel->schema, rel->name),
					 errdetail("%lld %s of the customer kept a value that "
							   "the erasure replaced; nothing was changed.",
							   (long long)rows, rows == 1 ? "row" : "rows"),
					 errhint("Look for triggers or rules on \"%s.%s\" that "
							 "keep or restore the column.",
							 rel->schema, rel->name)));
	}
}

void
report_company_changed(const MappedRelation *rel, const char *column)
{
	ereport(ERROR,
			(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
			 errmsg("column \"%s\" of relation \"%s.%s\" changed during the "
					"erasure",
					column, rel->schema, rel->name),
			 errdetail("An address row of the customer that held no company "
					   "before the erasure holds one now, so its address "
					   "would stay; nothing was changed."),
			 errhint("Look for triggers or rules on \"%s.%s\" that change "
					 "the column.",
					 rel->schema, rel->name)));
}
