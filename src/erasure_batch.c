/*-------------------------------------------------------------------------
 *
 * erasure_batch.c
 *	  Anonymizes many customers at once, for the request queue: the same
 *	  statements as erasure.c in their "many" form (erasure_rules.c), one
 *	  statement per rule for the whole batch instead of one per customer.
 *
 * Blocked, unknown and already anonymized customers are left alone and
 * reported per customer.  An error (a failing trigger, missing privileges)
 * fails the whole batch; the caller then falls back to one customer at a
 * time, to find out which one fails.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "anonymize.h"

/* The batch, sorted by customer id, to find a statement's rows' customer. */
typedef struct Batch
{
	BatchCustomer **sorted;
	int             n;
} Batch;

static int
compare_customers(const void *a, const void *b)
{
	const BatchCustomer *x = *(BatchCustomer *const *)a;
	const BatchCustomer *y = *(BatchCustomer *const *)b;

	return memcmp(DatumGetUUIDP(x->customer_id), DatumGetUUIDP(y->customer_id),
				  UUID_LEN);
}

static BatchCustomer *
find_customer(const Batch *batch, Datum customer_id)
{
	BatchCustomer   key = {.customer_id = customer_id};
	BatchCustomer  *keyp = &key;
	BatchCustomer **found =
		bsearch(&keyp, batch->sorted, batch->n, sizeof(BatchCustomer *),
				compare_customers);

	if (found == NULL)
		elog(ERROR,
			 "anonymize statement returned a customer outside the batch");
	return *found;
}

/* The customer of the last SPI result's row, in its last column. */
static BatchCustomer *
row_customer(const Batch *batch, uint64 row)
{
	bool isnull;

	return find_customer(
		batch, SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
							 SPI_tuptable->tupdesc->natts, &isnull));
}

/* The ids of the customers whose outcome is still ERASURE_DONE. */
static Datum
eligible_ids(const Batch *batch, int *n_eligible)
{
	Datum *ids = palloc(sizeof(Datum) * batch->n);
	int    n = 0;

	for (int i = 0; i < batch->n; i++)
		if (batch->sorted[i]->outcome == ERASURE_DONE)
			ids[n++] = batch->sorted[i]->customer_id;
	*n_eligible = n;
	return PointerGetDatum(
		construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

static void
execute_checked(SPIPlanPtr plan, Datum *values, const char *nulls,
				int expected)
{
	if (SPI_execute_plan(plan, values, nulls, false, 0) != expected)
		elog(ERROR, "could not run an anonymize statement");
}

/* Rules 1 and 2, and the audit log: who can be anonymized now. */
static void
sort_out_customers(AnonymizePlans *plans, Batch *batch)
{
	int       n;
	Datum     ids = eligible_ids(batch, &n);
	ListCell *cell;

	/* Rule 1: lock the customers; those not found are unknown. */
	execute_checked(plans->many.lock_customer, &ids, NULL, SPI_OK_SELECT);
	for (int i = 0; i < batch->n; i++)
		batch->sorted[i]->outcome = ERASURE_UNKNOWN_CUSTOMER;
	for (uint64 row = 0; row < SPI_processed; row++)
		row_customer(batch, row)->outcome = ERASURE_DONE;

	for (int i = 0; i < batch->n; i++)
	{
		BatchCustomer *customer = batch->sorted[i];

		if (customer->outcome == ERASURE_DONE &&
			audit_lookup(plans, customer->customer_id, &customer->is_company,
						 true))
			customer->outcome = ERASURE_ALREADY_DONE;
	}

	/* Rule 2. */
	ids = eligible_ids(batch, &n);
	foreach (cell, lock_blockers(plans, &plans->many, ids))
	{
		Blocker       *blocker = lfirst(cell);
		BatchCustomer *customer = find_customer(batch, blocker->customer_id);

		customer->outcome = ERASURE_BLOCKED;
		customer->blockers = lappend(customer->blockers, blocker);
	}
}

/* Rule 3 for the eligible customers. */
static void
purge_rows(AnonymizePlans *plans, Batch *batch, Datum ids)
{
	bool isnull;

	if (plans->many.purge == NULL)
		return;
	if (execute_purge(plans->many.purge, ids) != SPI_OK_SELECT)
		elog(ERROR, "could not purge the rows of customers");
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		HeapTuple tuple = SPI_tuptable->vals[row];
		int       rule = DatumGetInt32(
				  SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull));

		row_customer(batch, row)->rows_deleted[rule] = DatumGetInt64(
			SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull));
	}
}

/* Rules 4 and 5 for the eligible customers (ids, n of them). */
static void
erase_personal_data(AnonymizePlans *plans, Batch *batch, Datum ids, int n)
{
	Datum  values[3];
	Datum *companies = palloc0(sizeof(Datum) * Max(n, 1));
	bool  *company_nulls = palloc(sizeof(bool) * Max(n, 1));
	int    dims[1] = {n};
	int    lbs[1] = {1};
	int    k = 0;
	bool   isnull;

	values[0] = ids;
	values[1] = CStringGetTextDatum(plans->mapping->placeholder);

	if (plans->many.erase_address != NULL)
	{
		execute_checked(plans->many.erase_address, values, NULL,
						SPI_OK_UPDATE_RETURNING);
		for (uint64 row = 0; row < SPI_processed; row++)
		{
			HeapTuple      tuple = SPI_tuptable->vals[row];
			BatchCustomer *customer = row_customer(batch, row);

			if (!customer->is_company &&
				DatumGetBool(
					SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull)))
			{
				customer->is_company = true;
				customer->company =
					SPI_getvalue(tuple, SPI_tuptable->tupdesc, 2);
			}
		}
	}

	/* The company names, in the order of the ids. */
	for (int i = 0; i < batch->n; i++)
	{
		BatchCustomer *customer = batch->sorted[i];

		if (customer->outcome != ERASURE_DONE)
			continue;
		company_nulls[k] = (customer->company == NULL);
		if (customer->company != NULL)
			companies[k] = CStringGetTextDatum(customer->company);
		k++;
	}
	values[2] = PointerGetDatum(construct_md_array(companies, company_nulls, 1,
												   dims, lbs, TEXTOID, -1,
												   false, TYPALIGN_INT));

	execute_checked(plans->many.erase_customer, values, NULL,
					SPI_OK_UPDATE_RETURNING);
	for (uint64 row = 0; row < SPI_processed; row++)
		row_customer(batch, row)->is_company = DatumGetBool(SPI_getbinval(
			SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));
}

/* The audit rows of the anonymized customers. */
static void
audit_customers(AnonymizePlans *plans, Batch *batch, Datum ids, int n)
{
	Datum *kinds = palloc(sizeof(Datum) * Max(n, 1));
	Datum *rows = palloc(sizeof(Datum) * Max(n, 1));
	Datum  values[4];
	int    k = 0;

	for (int i = 0; i < batch->n; i++)
	{
		BatchCustomer *customer = batch->sorted[i];
		StringInfoData json;

		if (customer->outcome != ERASURE_DONE)
			continue;
		initStringInfo(&json);
		append_rows_deleted(&json, plans->mapping, customer->rows_deleted);
		kinds[k] = CStringGetTextDatum(customer->is_company ? "company"
															: "individual");
		rows[k] = DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data));
		k++;
	}
	values[0] = ids;
	values[1] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	values[2] = PointerGetDatum(
		construct_array(kinds, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(
		construct_array(rows, n, JSONBOID, -1, false, TYPALIGN_INT));
	if (execute_as_owner(plans->extension_owner, plans->many.audit_insert,
						 values, NULL, false) != SPI_OK_INSERT)
		elog(ERROR, "could not write anonymize.audit_log");
}

/*
 * Anonymizes every eligible customer of the batch in the current
 * transaction and sets each one's outcome.  The caller is connected to SPI;
 * what is allocated for the customers lives in the current memory context.
 */
void
erase_customers(BatchCustomer *customers, int n)
{
	AnonymizePlans *plans = get_plans();
	Batch           batch = {palloc(sizeof(BatchCustomer *) * Max(n, 1)), n};
	Datum           ids;
	int             n_eligible;

	for (int i = 0; i < n; i++)
	{
		customers[i].outcome = ERASURE_DONE; /* until found otherwise */
		customers[i].is_company = false;
		customers[i].company = NULL;
		customers[i].blockers = NIL;
		customers[i].rows_deleted =
			palloc0(sizeof(int64) * Max(plans->mapping->n_purge_rules, 1));
		batch.sorted[i] = &customers[i];
	}
	qsort(batch.sorted, n, sizeof(BatchCustomer *), compare_customers);

	sort_out_customers(plans, &batch);
	ids = eligible_ids(&batch, &n_eligible);
	if (n_eligible == 0)
		return;
	purge_rows(plans, &batch, ids);
	erase_personal_data(plans, &batch, ids, n_eligible);
	audit_customers(plans, &batch, ids, n_eligible);
}
