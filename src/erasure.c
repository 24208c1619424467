/*-------------------------------------------------------------------------
 *
 * erasure.c
 *	  Anonymizes one customer: runs the statements of erasure_rules.c in
 *	  order, with the plans of plan_cache.c, in the caller's transaction.
 *	  Used by anonymize.anonymize_customer() and the request queue.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/json.h"

#include "anonymize.h"

/* {"rule name": rows deleted, ...}, as in the audit log. */
void
append_rows_deleted(StringInfo json, const Mapping *m, const int64 *counts)
{
	appendStringInfoChar(json, '{');
	for (int i = 0; i < m->n_purge_rules; i++)
	{
		if (i > 0)
			appendStringInfoString(json, ", ");
		escape_json(json, m->purge_rules[i].rule_name);
		appendStringInfo(json, ": " INT64_FORMAT, counts[i]);
	}
	appendStringInfoChar(json, '}');
}

/* Rule 3: deletes the purge rules' rows, counting them per rule. */
static void
purge_customer_rows(AnonymizePlans *plans, Datum customer_id,
					StringInfo rows_deleted)
{
	const Mapping *m = plans->mapping;
	int64         *counts = palloc0(sizeof(int64) * Max(m->n_purge_rules, 1));

	if (plans->one.purge != NULL)
	{
		bool isnull;

		if (execute_purge(plans->one.purge, customer_id) != SPI_OK_SELECT)
			elog(ERROR, "could not purge the rows of a customer");
		for (int i = 0; i < m->n_purge_rules; i++)
			counts[i] = DatumGetInt64(SPI_getbinval(
				SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull));
	}
	append_rows_deleted(rows_deleted, m, counts);
}

/*
 * Rules 4 and 5: erases the billing address and the customer.  Returns
 * whether the customer is a company.
 */
static bool
erase_personal_data(AnonymizePlans *plans, Datum customer_id)
{
	Datum values[3];
	char  nulls[3] = {' ', ' ', 'n'};
	bool  is_company = false;
	bool  isnull;

	values[0] = customer_id;
	values[1] = CStringGetTextDatum(plans->mapping->placeholder);
	values[2] = (Datum)0;

	if (plans->one.erase_address != NULL)
	{
		if (SPI_execute_plan(plans->one.erase_address, values, nulls, false,
							 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "could not erase the billing address of a customer");
		/* The company name of the first company address, if any. */
		for (uint64 row = 0; row < SPI_processed && !is_company; row++)
		{
			HeapTuple tuple = SPI_tuptable->vals[row];

			is_company = DatumGetBool(
				SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull));
			if (is_company)
			{
				values[2] =
					SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull);
				nulls[2] = ' ';
			}
		}
	}

	if (SPI_execute_plan(plans->one.erase_customer, values, nulls, false, 0) !=
			SPI_OK_UPDATE_RETURNING ||
		SPI_processed == 0)
		elog(ERROR, "could not erase a customer");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Anonymizes one customer in the current transaction, applying the rules
 * of erasure_rules.c in their order.  The caller is connected to SPI and
 * has initialized result->rows_deleted in a context that outlives SPI.
 * Nothing is changed unless the outcome is ERASURE_DONE; errors (privileges,
 * a stale mapping, a failing trigger) are thrown.
 */
void
erase_customer(Datum customer_id, ErasureResult *result)
{
	AnonymizePlans *plans = get_plans();

	/* Rule 1: from here on, nothing new can reference the customer. */
	if (SPI_execute_plan(plans->one.lock_customer, &customer_id, NULL, false,
						 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock a customer");
	if (SPI_processed == 0)
	{
		result->outcome = ERASURE_UNKNOWN_CUSTOMER;
		return;
	}

	/* A second call changes nothing. */
	if (audit_lookup(plans, customer_id, &result->is_company, true))
	{
		result->outcome = ERASURE_ALREADY_DONE;
		appendStringInfoString(&result->rows_deleted, "{}");
		return;
	}

	/* Rule 2. */
	result->blockers = lock_blockers(plans, &plans->one, customer_id);
	if (result->blockers != NIL)
	{
		result->outcome = ERASURE_BLOCKED;
		return;
	}

	purge_customer_rows(plans, customer_id, &result->rows_deleted);
	result->is_company = erase_personal_data(plans, customer_id);
	result->outcome = ERASURE_DONE;
	audit_insert(plans, customer_id, result->is_company,
				 result->rows_deleted.data);
}
