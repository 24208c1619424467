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

/*
 * Errors out unless the customer's rows of an erased scope are erased: no
 * more rows than its UPDATE changed (rows_updated, so that a replaced
 * column counts as erased), and every verified column (one count of rows
 * still holding data each, in the order of verify_erased_sql()) erased.
 */
void
check_scope_erased(const ErasedScope *erased, SPIPlanPtr plan, Datum *values,
				   const char *nulls, int64 rows_updated)
{
	const MappedRelation *rel = &erased->scope->relation;
	bool                  isnull;
	int64                 rows;
	int                   n = 1;

	if (run_verifying(rel, plan, values, nulls) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not verify the erasure of scope \"%s\"",
			 erased->scope->name);
	rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	if (rows > rows_updated)
		ereport(
			ERROR,
			(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
			 errmsg("rows of relation \"%s.%s\" were not erased", rel->schema,
					rel->name),
			 errdetail("Scope \"%s\" holds %lld %s of the customer "
					   "after the erasure, which updated %lld; nothing "
					   "was changed.",
					   erased->scope->name, (long long)rows,
					   rows == 1 ? "row" : "rows", (long long)rows_updated),
			 errhint("Look for triggers or rules on \"%s.%s\" that skip "
					 "the update of a row or insert rows while the "
					 "customer's data is erased.",
					 rel->schema, rel->name)));

	if (erased->name_column != NULL)
	{
		/* the customer's name, which verify_erased_sql() counts first */
		n++;
		rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, n, &isnull));
		if (rows > 0)
			report_column_not_erased(rel, erased->name_column, rows);
	}
	for (int i = 0; i < erased->n_columns; i++)
	{
		if (!is_verified_column(erased->columns[i]))
			continue;
		n++;
		rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, n, &isnull));
		if (rows > 0)
			report_column_not_erased(rel, erased->columns[i]->name, rows);
	}
}
