/*-------------------------------------------------------------------------
 *
 * erasure.c
 *	  Anonymizes customers: runs the statements of erasure_rules.c in their
 *	  order, with the plans of plan_cache.c, in the caller's transaction.
 *	  One customer (anonymize.anonymize_customer) uses the statements for
 *	  one; a batch of the request queue those for many, one statement per
 *	  rule for the whole batch.
 *
 * Unknown, already anonymized, blocked and (for the queue) busy customers
 * are left alone and reported per customer.  Errors (privileges, a stale
 * mapping, a failing trigger, a failed verification, a row locked by
 * another transaction) are thrown; the request queue then tries one
 * customer at a time.
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
	AnonymizeState       *state;
	const StatementPlans *statements;
	CustomerErasure     **sorted;
	int                   n;
} Batch;

/* A trigger that re-creates purged rows gets this many more purges. */
#define MAX_PURGE_ROUNDS 4

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

/* The customer of the last SPI result's row: its first column. */
static CustomerErasure *
row_customer(const Batch *batch, uint64 row)
{
	bool isnull;

	return find_customer(batch,
						 SPI_getbinval(SPI_tuptable->vals[row],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

static bool
row_bool(uint64 row, int column)
{
	bool isnull;
	bool value = DatumGetBool(SPI_getbinval(
		SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, &isnull));

	return value && !isnull;
}

static int64
row_int64(uint64 row, int column)
{
	bool isnull;

	return DatumGetInt64(SPI_getbinval(
		SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, &isnull));
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

	if (!batch->statements->many)
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

/*
 * Customers that the queue could not lock: busy if they exist, unknown
 * otherwise.
 */
static void
find_busy_customers(Batch *batch, Datum ids)
{
	AnonymizeState *state = batch->state;

	if (!batch->statements->many)
	{
		if (customer_exists(state, ids))
			batch->sorted[0]->outcome = ERASURE_BUSY;
		return;
	}
	if (run_statement(&state->mapping->customer, batch->statements->existing,
					  &ids, NULL, InvalidSnapshot, InvalidSnapshot,
					  true) != SPI_OK_SELECT)
		elog(ERROR, "could not look up customers");
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		CustomerErasure *customer = row_customer(batch, row);

		if (customer->outcome == ERASURE_UNKNOWN_CUSTOMER)
			customer->outcome = ERASURE_BUSY;
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The company decision of a row: its columns 2 (is_company) and 3 (name). */
static void
read_company(CustomerErasure *customer, uint64 row)
{
	customer->is_company = row_bool(row, 2);
	customer->company =
		customer->is_company
			? SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 3)
			: NULL;
}

/*
 * Rule 1: lock the customers; from here on nothing new refers to them.
 * With the address on the customer row, that row also decides company or
 * individual.
 */
static void
lock_customers(Batch *batch)
{
	int    n;
	Datum  ids = eligible_ids(batch, &n);
	uint64 locked;

	if (run_statement(&batch->state->mapping->customer,
					  batch->statements->lock_customer, &ids, NULL,
					  InvalidSnapshot, InvalidSnapshot,
					  false) != SPI_OK_SELECT)
		elog(ERROR, "could not lock customers");
	locked = SPI_processed;
	for (int i = 0; i < batch->n; i++)
		batch->sorted[i]->outcome = ERASURE_UNKNOWN_CUSTOMER;
	for (uint64 row = 0; row < locked; row++)
	{
		CustomerErasure *customer = row_customer(batch, row);

		customer->outcome = ERASURE_DONE;
		if (batch->state->mapping->address_on_customer)
			read_company(customer, row);
	}
	SPI_freetuptable(SPI_tuptable);
	if (batch->statements->nowait && locked < (uint64)batch->n)
		find_busy_customers(batch, ids);
}

/* Rules 1 and 2, and the audit log: who can be anonymized now. */
static void
sort_out_customers(Batch *batch)
{
	int       n;
	Datum     ids;
	ListCell *cell;

	lock_customers(batch);

	/* A second erasure changes nothing. */
	for (int i = 0; i < batch->n; i++)
	{
		CustomerErasure *customer = batch->sorted[i];

		if (customer->outcome == ERASURE_DONE &&
			audit_lookup(batch->state, customer->customer_id,
						 &customer->is_company, true))
			customer->outcome = ERASURE_ALREADY_DONE;
	}

	/* Rule 2. */
	ids = eligible_ids(batch, &n);
	if (n == 0)
		return;
	foreach (cell, lock_blockers(batch->state, batch->statements, ids))
	{
		Blocker         *blocker = lfirst(cell);
		CustomerErasure *customer = find_customer(batch, blocker->customer_id);

		customer->outcome = ERASURE_BLOCKED;
		customer->blockers = lappend(customer->blockers, blocker);
	}
}

/*
 * Rule 3, first half: lock the address rows of the eligible customers and
 * decide, before any rewrite, which are companies.
 */
static void
classify_addresses(Batch *batch, Datum ids)
{
	const Mapping *m = batch->state->mapping;

	if (batch->statements->classify_address == NULL)
		return;
	if (run_statement(&m->address, batch->statements->classify_address, &ids,
					  NULL, InvalidSnapshot, InvalidSnapshot,
					  false) != SPI_OK_SELECT)
		elog(ERROR, "could not lock billing addresses");
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		CustomerErasure *customer = row_customer(batch, row);

		read_company(customer, row);
		customer->company_rows = row_int64(row, 4);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * The queue locks the rows it will delete before changing any, without
 * waiting (the address rows are locked by classify_addresses()): a row
 * locked by a billing transaction fails the erasure with lock_not_available
 * at once (the request stays pending, as busy) instead of waiting for it or
 * deadlocking with it.  Where the caller lacks the UPDATE privilege that
 * locking needs, the queue's lock_timeout bounds the wait instead.
 */
static void
lock_purged_rows_nowait(Batch *batch, Datum ids)
{
	const Mapping *m = batch->state->mapping;

	for (int i = 0; i < m->n_purge_rules; i++)
	{
		const Rule *rule = &m->purge_rules[i];

		if (can_lock_rows(&rule->relation) &&
			run_statement(&rule->relation, batch->statements->lock_purge[i],
						  &ids, NULL, InvalidSnapshot, InvalidSnapshot,
						  false) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the rows of purge rule \"%s\"",
				 rule->rule_name);
	}
}

/*
 * $3 of the customer statements: the company name of each eligible
 * customer (n of them), NULL for an individual.
 */
static void
bind_companies(Batch *batch, int n, Datum *param, char *param_null)
{
	Datum *companies = palloc0(sizeof(Datum) * n);
	bool  *company_nulls = palloc(sizeof(bool) * n);
	int    k = 0;

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
	bind_values(batch, companies, company_nulls, n, TEXTOID, param,
				param_null);
}

/*
 * Rules 3 and 4 for the eligible customers (n of them).  values and nulls
 * receive the parameters of the customer statements, for the verification.
 */
static void
erase_personal_data(Batch *batch, int n, Datum *values, char *nulls)
{
	const Mapping *m = batch->state->mapping;

	values[1] = CStringGetTextDatum(m->placeholder);
	nulls[0] = nulls[1] = ' ';
	bind_companies(batch, n, &values[2], &nulls[2]);

	if (batch->statements->erase_address != NULL &&
		run_modifying(&m->address, batch->statements->erase_address, values,
					  nulls) != SPI_OK_UPDATE)
		elog(ERROR, "could not erase billing addresses");
	if (run_modifying(&m->customer, batch->statements->erase_customer, values,
					  nulls) != SPI_OK_UPDATE)
		elog(ERROR, "could not erase customers");
}

/* Rule 5 for one purge rule; counts the rows deleted per customer. */
static void
purge_rule(Batch *batch, int rule, Datum ids)
{
	const Rule *purge = &batch->state->mapping->purge_rules[rule];
	int expected = batch->statements->many ? SPI_OK_SELECT : SPI_OK_DELETE;

	if (run_modifying(&purge->relation, batch->statements->purge[rule], &ids,
					  NULL) != expected)
		elog(ERROR, "could not run purge rule \"%s\"", purge->rule_name);
	if (!batch->statements->many)
	{
		batch->sorted[0]->rows_deleted[rule] += SPI_processed;
		return;
	}
	for (uint64 row = 0; row < SPI_processed; row++)
		row_customer(batch, row)->rows_deleted[rule] += row_int64(row, 2);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Rules 5 and 6 for the purge: every rule, then again every rule whose rows
 * came back (a trigger of an earlier statement archived them), until none
 * remains.
 */
static void
purge_until_gone(Batch *batch, Datum ids)
{
	const Mapping *m = batch->state->mapping;
	bool           remain = true;

	for (int i = 0; i < m->n_purge_rules; i++)
		purge_rule(batch, i, ids);
	for (int round = 1; remain; round++)
	{
		remain = false;
		for (int i = 0; i < m->n_purge_rules; i++)
		{
			if (!purged_rows_remain(&m->purge_rules[i],
									batch->statements->verify_purge[i], ids))
				continue;
			if (round > MAX_PURGE_ROUNDS)
				report_purged_rows_remain(&m->purge_rules[i]);
			purge_rule(batch, i, ids);
			remain = true;
		}
	}
}

/*
 * Rule 6 for the company decision: no address row holds a company that did
 * not before the rewrite.
 */
static void
verify_company_rows(Batch *batch, Datum ids)
{
	const Mapping *m = batch->state->mapping;

	if (batch->statements->verify_companies == NULL)
		return;
	if (run_verifying(&m->address, batch->statements->verify_companies, &ids,
					  NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not verify the billing addresses");
	for (uint64 row = 0; row < SPI_processed; row++)
		if (row_int64(row, 2) > row_customer(batch, row)->company_rows)
			report_company_changed(&m->address, m->company_column);
	SPI_freetuptable(SPI_tuptable);
}

/* Rule 6 for the erased columns; parameters as for rule 4. */
static void
verify_columns(Batch *batch, Datum *values, const char *nulls)
{
	const AnonymizeState *state = batch->state;

	check_columns_erased(&state->mapping->address,
						 batch->statements->verify_address, values, nulls,
						 state->address_verified, state->n_address_verified);
	check_columns_erased(&state->mapping->customer,
						 batch->statements->verify_customer, values, nulls,
						 state->customer_verified, state->n_customer_verified);
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

/* Rule 7: the audit rows of the anonymized customers (ids, n of them). */
static void
audit_customers(Batch *batch, Datum ids, int n)
{
	AnonymizeState *state = batch->state;
	Datum          *kinds = palloc(sizeof(Datum) * n);
	Datum          *rows = palloc(sizeof(Datum) * n);
	bool           *no_nulls = palloc0(sizeof(bool) * n);
	Datum           values[4];
	char            nulls[4] = {' ', ' ', ' ', ' '};
	int             k = 0;
	StringInfoData  json;

	initStringInfo(&json);
	for (int i = 0; i < batch->n; i++)
	{
		CustomerErasure *customer = batch->sorted[i];

		if (customer->outcome != ERASURE_DONE)
			continue;
		resetStringInfo(&json);
		append_rows_deleted(&json, state->mapping, customer->rows_deleted);
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
	if (execute_as_owner(state->extension_owner,
						 batch->statements->audit_insert, values, nulls,
						 false) != SPI_OK_INSERT)
		elog(ERROR, "could not write anonymize.audit_log");
}

/*
 * Anonymizes every eligible customer of customers[0 .. n-1] in the current
 * transaction, with the statements of the mode, and sets each one's
 * outcome.  The caller is connected to SPI and holds the state; what is
 * allocated for the customers lives in the current memory context.
 */
void
erase_customers(AnonymizeState *state, StatementMode mode,
				CustomerErasure *customers, int n)
{
	Batch batch = {state, get_statements(state, mode),
				   palloc(sizeof(CustomerErasure *) * n), n};
	Datum ids;
	int   n_eligible;
	Datum values[3];
	char  nulls[3];

	Assert(n == 1 || batch.statements->many);
	check_rows_visible(state);
	check_caller_privileges(state, CHECK_LOCK);
	for (int i = 0; i < n; i++)
	{
		customers[i].outcome = ERASURE_DONE; /* until found otherwise */
		customers[i].is_company = false;
		customers[i].company = NULL;
		customers[i].company_rows = 0;
		customers[i].blockers = NIL;
		customers[i].rows_deleted =
			palloc0(sizeof(int64) * Max(state->mapping->n_purge_rules, 1));
		batch.sorted[i] = &customers[i];
	}
	qsort(batch.sorted, n, sizeof(CustomerErasure *), compare_customers);

	sort_out_customers(&batch);
	ids = eligible_ids(&batch, &n_eligible);
	if (n_eligible == 0)
		return;
	check_caller_privileges(state, CHECK_ERASE);
	classify_addresses(&batch, ids);
	if (batch.statements->nowait)
		lock_purged_rows_nowait(&batch, ids);
	values[0] = ids;
	erase_personal_data(&batch, n_eligible, values, nulls);
	purge_until_gone(&batch, ids);
	verify_company_rows(&batch, ids);
	verify_columns(&batch, values, nulls);
	audit_customers(&batch, ids, n_eligible);
}
