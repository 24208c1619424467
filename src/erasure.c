/*-------------------------------------------------------------------------
 *
 * erasure.c
 *	  Anonymizes customers: runs the statements of erasure_rules.c in their
 *	  order, with the plans of plan_cache.c, in the caller's transaction.
 *	  One customer (anonymize.anonymize_customer) uses the statements for
 *	  one; a batch of the request queue those for many, one statement per
 *	  rule for the whole batch.
 *
 * Unknown, already anonymized and blocked customers are left alone and
 * reported per customer.  Errors (privileges, a stale mapping, a failing
 * trigger) are thrown; the request queue then tries one customer at a time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"

#include "anonymize.h"

/* The customers of one call, sorted by id, and the statements for them. */
typedef struct Batch
{
	CustomerErasure     **sorted;
	int                   n;
	bool                  one; /* $1 is a uuid, not a uuid[] */
	const StatementPlans *statements;
} Batch;

static int
compare_customers(const void *a, const void *b)
{
	const CustomerErasure *x = *(CustomerErasure *const *)a;
	const CustomerErasure *y = *(CustomerErasure *const *)b;

	return memcmp(DatumGetUUIDP(x->customer_id), DatumGetUUIDP(y->customer_id),
				  UUID_LEN);
}

static CustomerErasure *
find_customer(const Batch *batch, Datum customer_id)
{
	CustomerErasure   key = {.customer_id = customer_id};
	CustomerErasure  *keyp = &key;
	CustomerErasure **found =
		bsearch(&keyp, batch->sorted, batch->n, sizeof(CustomerErasure *),
				compare_customers);

	if (found == NULL)
		elog(ERROR, "anonymize statement returned an unexpected customer");
	return *found;
}

/* The customer of the last SPI result's row: its last column. */
static CustomerErasure *
row_customer(const Batch *batch, uint64 row)
{
	bool isnull;

	return find_customer(
		batch, SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
							 SPI_tuptable->tupdesc->natts, &isnull));
}

static bool
row_bool(uint64 row, int column)
{
	bool isnull;
	bool value = DatumGetBool(SPI_getbinval(
		SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, &isnull));

	return value && !isnull;
}

/*
 * A parameter of the statements: one value per eligible customer, as an
 * array, or for one customer the value itself.
 */
static void
bind_values(const Batch *batch, Datum *values, bool *nulls, int n,
			Oid element_type, Datum *param, char *param_null)
{
	int16 typlen;
	bool  typbyval;
	char  typalign;
	int   dims[1] = {n};
	int   lbs[1] = {1};

	if (batch->one)
	{
		*param = values[0];
		*param_null = nulls[0] ? 'n' : ' ';
		return;
	}
	get_typlenbyvalalign(element_type, &typlen, &typbyval, &typalign);
	*param = PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs,
												element_type, typlen, typbyval,
												typalign));
	*param_null = ' ';
}

/* $1: the ids of the customers whose outcome is still ERASURE_DONE. */
static Datum
eligible_ids(const Batch *batch, int *n_eligible)
{
	Datum *ids = palloc(sizeof(Datum) * batch->n);
	bool  *nulls = palloc0(sizeof(bool) * batch->n);
	int    n = 0;
	Datum  param;
	char   param_null;

	for (int i = 0; i < batch->n; i++)
		if (batch->sorted[i]->outcome == ERASURE_DONE)
			ids[n++] = batch->sorted[i]->customer_id;
	*n_eligible = n;
	if (n == 0)
		return (Datum)0;
	bind_values(batch, ids, nulls, n, UUIDOID, &param, &param_null);
	return param;
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

	/* Rule 1: lock the customers; from here on nothing new refers to them. */
	execute_checked(batch->statements->lock_customer, &ids, NULL,
					SPI_OK_SELECT);
	for (int i = 0; i < batch->n; i++)
		batch->sorted[i]->outcome = ERASURE_UNKNOWN_CUSTOMER;
	for (uint64 row = 0; row < SPI_processed; row++)
		row_customer(batch, row)->outcome = ERASURE_DONE;

	/* A second erasure changes nothing. */
	for (int i = 0; i < batch->n; i++)
	{
		CustomerErasure *customer = batch->sorted[i];

		if (customer->outcome == ERASURE_DONE &&
			audit_lookup(plans, customer->customer_id, &customer->is_company,
						 true))
			customer->outcome = ERASURE_ALREADY_DONE;
	}

	/* Rule 2. */
	ids = eligible_ids(batch, &n);
	if (n == 0)
		return;
	foreach (cell, lock_blockers(plans, batch->statements, ids))
	{
		Blocker         *blocker = lfirst(cell);
		CustomerErasure *customer = find_customer(batch, blocker->customer_id);

		customer->outcome = ERASURE_BLOCKED;
		customer->blockers = lappend(customer->blockers, blocker);
	}
}

/* Rule 3 for the eligible customers: one row per row deleted. */
static void
purge_rows(Batch *batch, Datum ids)
{
	bool isnull;

	if (batch->statements->purge == NULL)
		return;
	if (execute_purge(batch->statements->purge, ids) != SPI_OK_SELECT)
		elog(ERROR, "could not purge the rows of customers");
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		int rule = DatumGetInt32(SPI_getbinval(
			SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));

		row_customer(batch, row)->rows_deleted[rule]++;
	}
}

/* Rules 4 and 5 for the eligible customers (ids, n of them). */
static void
erase_personal_data(AnonymizePlans *plans, Batch *batch, Datum ids, int n)
{
	Datum  values[3];
	char   nulls[3] = {' ', ' ', ' '};
	Datum *companies = palloc0(sizeof(Datum) * n);
	bool  *company_nulls = palloc(sizeof(bool) * n);
	int    k = 0;

	values[0] = ids;
	values[1] = CStringGetTextDatum(plans->mapping->placeholder);

	if (batch->statements->erase_address != NULL)
	{
		execute_checked(batch->statements->erase_address, values, nulls,
						SPI_OK_UPDATE_RETURNING);
		/* The company name of the first company address, if any. */
		for (uint64 row = 0; row < SPI_processed; row++)
		{
			CustomerErasure *customer = row_customer(batch, row);

			if (!customer->is_company && row_bool(row, 1))
			{
				customer->is_company = true;
				customer->company = SPI_getvalue(SPI_tuptable->vals[row],
												 SPI_tuptable->tupdesc, 2);
			}
		}
	}

	for (int i = 0; i < batch->n; i++)
	{
		CustomerErasure *customer = batch->sorted[i];

		if (customer->outcome != ERASURE_DONE)
			continue;
		company_nulls[k] = (customer->company == NULL);
		if (customer->company != NULL)
			companies[k] = CStringGetTextDatum(customer->company);
		k++;
	}
	bind_values(batch, companies, company_nulls, n, TEXTOID, &values[2],
				&nulls[2]);

	execute_checked(batch->statements->erase_customer, values, nulls,
					SPI_OK_UPDATE_RETURNING);
	for (uint64 row = 0; row < SPI_processed; row++)
		row_customer(batch, row)->is_company = row_bool(row, 1);
}

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

/* The audit rows of the anonymized customers (ids, n of them). */
static void
audit_customers(AnonymizePlans *plans, Batch *batch, Datum ids, int n)
{
	Datum *kinds = palloc(sizeof(Datum) * n);
	Datum *rows = palloc(sizeof(Datum) * n);
	bool  *no_nulls = palloc0(sizeof(bool) * n);
	Datum  values[4];
	char   nulls[4] = {' ', ' ', ' ', ' '};
	int    k = 0;

	for (int i = 0; i < batch->n; i++)
	{
		CustomerErasure *customer = batch->sorted[i];
		StringInfoData   json;

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
	/* current_user of the caller, not the owner the insert runs as */
	values[1] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	bind_values(batch, kinds, no_nulls, n, TEXTOID, &values[2], &nulls[2]);
	bind_values(batch, rows, no_nulls, n, JSONBOID, &values[3], &nulls[3]);
	if (execute_as_owner(plans->extension_owner,
						 batch->statements->audit_insert, values, nulls,
						 false) != SPI_OK_INSERT)
		elog(ERROR, "could not write anonymize.audit_log");
}

/*
 * Anonymizes every eligible customer of customers[0 .. n-1] in the current
 * transaction and sets each one's outcome.  The caller is connected to SPI;
 * what is allocated for the customers lives in the current memory context.
 */
void
erase_customers(CustomerErasure *customers, int n)
{
	AnonymizePlans *plans = get_plans();
	Batch           batch = {palloc(sizeof(CustomerErasure *) * n), n, n == 1,
                   n == 1 ? &plans->one : &plans->many};
	Datum           ids;
	int             n_eligible;

	check_rows_visible(plans);
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
	qsort(batch.sorted, n, sizeof(CustomerErasure *), compare_customers);

	sort_out_customers(plans, &batch);
	ids = eligible_ids(&batch, &n_eligible);
	if (n_eligible == 0)
		return;
	purge_rows(&batch, ids);
	erase_personal_data(plans, &batch, ids, n_eligible);
	audit_customers(plans, &batch, ids, n_eligible);
}
