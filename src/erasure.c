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
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "utils/memutils.h"

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

/* The index of the customer in sorted[0 .. n-1], which is sorted by id. */
int
customer_index(CustomerErasure *const *sorted, int n, Datum customer_id)
{
	CustomerErasure   key = {.customer_id = customer_id};
	CustomerErasure  *keyp = &key;
	CustomerErasure **found = bsearch(
		&keyp, sorted, n, sizeof(CustomerErasure *), compare_customers);

	if (found == NULL)
		elog(ERROR, "anonymize statement returned an unexpected customer");
	return found - sorted;
}

static CustomerErasure *
find_customer(const Batch *batch, Datum customer_id)
{
	return batch->sorted[customer_index(batch->sorted, batch->n, customer_id)];
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

/*
 * The company decision of a row: its columns "column" (is_company) and the
 * next one (the company name).
 */
static void
read_company(CustomerErasure *customer, uint64 row, int column)
{
	customer->is_company = row_bool(row, column);
	customer->company = customer->is_company
							? SPI_getvalue(SPI_tuptable->vals[row],
										   SPI_tuptable->tupdesc, column + 1)
							: NULL;
}

/*
 * The values the residue check captures on the customer row: n columns of
 * the last SPI result's row, from first on.
 */
static void
keep_captured_values(CustomerErasure *customer, int n, uint64 row, int first)
{
	if (n == 0 || !residue_check_enabled())
		return;
	customer->captured[0] = palloc(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
		customer->captured[0][i] = SPI_getvalue(
			SPI_tuptable->vals[row], SPI_tuptable->tupdesc, first + i);
}

/*
 * Rule 1: lock the customers; from here on nothing new refers to them.
 * With the company test on the customer row, that row also decides company
 * or individual.
 */
static void
lock_customers(Batch *batch)
{
	const Mapping *m = batch->state->mapping;
	int            n;
	Datum          ids = eligible_ids(batch, &n);
	uint64         locked;

	if (run_statement(&m->customer, batch->statements->lock_customer, &ids,
					  NULL, InvalidSnapshot, InvalidSnapshot,
					  false) != SPI_OK_SELECT)
		elog(ERROR, "could not lock customers");
	locked = SPI_processed;
	for (int i = 0; i < batch->n; i++)
		batch->sorted[i]->outcome = ERASURE_UNKNOWN_CUSTOMER;
	for (uint64 row = 0; row < locked; row++)
	{
		CustomerErasure *customer = row_customer(batch, row);

		customer->outcome = ERASURE_DONE;
		if (m->company_scope == &m->scopes[0])
			read_company(customer, row, 2);
		keep_captured_values(customer, batch->statements->n_captured[0], row,
							 m->company_scope == &m->scopes[0] ? 4 : 2);
	}
	SPI_freetuptable(SPI_tuptable);
	if (batch->statements->nowait && locked < (uint64)batch->n)
		find_busy_customers(batch, ids);
}

/*
 * Rule 2, first: the rows of the ancestors of blocker, purged and erased
 * scopes, FOR UPDATE, top down, so that no new row referencing them joins a
 * scope below; each in a statement of its own, so that the blocker
 * statements that follow see (at READ COMMITTED) what was committed while
 * these waited.
 */
static void
lock_ancestor_rows(Batch *batch, Datum ids)
{
	const Mapping *m = batch->state->mapping;

	for (int i = 0; i < m->n_locked_scopes; i++)
		if (run_statement(&m->locked_scopes[i]->relation,
						  batch->statements->lock_ancestors[i], &ids, NULL,
						  InvalidSnapshot, InvalidSnapshot,
						  false) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the rows of scope \"%s\"",
				 m->locked_scopes[i]->name);
}

/* Rules 1 and 2, and the audit log: who can be anonymized now. */
static void
sort_out_customers(Batch *batch)
{
	int       n;
	Datum     ids;
	ListCell *cell;

	lock_customers(batch);

	/*
	 * A second erasure changes nothing while the first holds; it erases,
	 * as a new erasure event, what came back.
	 */
	for (int i = 0; i < batch->n; i++)
	{
		CustomerErasure *customer = batch->sorted[i];
		bool             was_company;

		Snapshot snapshot;
		int64    places;

		if (customer->outcome != ERASURE_DONE ||
			!audit_lookup(batch->state, customer->customer_id, &was_company,
						  true))
			continue;
		/* as the audit lookup: what the erasure we waited for left */
		snapshot = RegisterSnapshot(GetTransactionSnapshot());
		places = data_again(batch->state, customer->customer_id, was_company,
							NULL, snapshot);
		UnregisterSnapshot(snapshot);
		if (places == 0)
		{
			customer->outcome = ERASURE_ALREADY_DONE;
			customer->is_company = was_company;
		}
	}

	/* Rule 2. */
	ids = eligible_ids(batch, &n);
	if (n == 0)
		return;
	lock_ancestor_rows(batch, ids);
	foreach (cell, lock_blockers(batch->state, batch->statements, ids))
	{
		Blocker         *blocker = lfirst(cell);
		CustomerErasure *customer = find_customer(batch, blocker->customer_id);

		customer->outcome = ERASURE_BLOCKED;
		customer->blockers = lappend(customer->blockers, blocker);
	}
}

/* Runs a lock statement of the scope, where the caller may lock rows. */
static void
lock_scope_rows(const Scope *scope, SPIPlanPtr plan, Datum ids)
{
	if (plan != NULL && can_lock_rows(&scope->relation) &&
		run_statement(&scope->relation, plan, &ids, NULL, InvalidSnapshot,
					  InvalidSnapshot, false) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the rows of scope \"%s\"", scope->name);
}

/*
 * Rule 4: the queue locks the rows it will update before changing any, and
 * each purge locks the rows it deletes (purge_rule()), without waiting: a
 * row locked by a billing transaction fails the erasure with
 * lock_not_available at once (the request stays pending, as busy) instead
 * of waiting for it or deadlocking with it.  Where the caller lacks the
 * UPDATE privilege that locking needs, the queue's lock_timeout bounds the
 * wait instead.
 */
static void
lock_rows(Batch *batch, Datum ids)
{
	const Mapping        *m = batch->state->mapping;
	const StatementPlans *plans = batch->statements;

	if (!plans->nowait)
		return;
	for (int i = 0; i < m->n_erased_scopes; i++)
		lock_scope_rows(m->erased_scopes[i].scope, plans->lock_erased[i], ids);
}

/*
 * The parameters of the erase statements for the eligible customers (n of
 * them): $1 ids, $2 placeholder, $3 company names (NULL for individuals),
 * $4 whether companies.
 */
static void
bind_erase_params(Batch *batch, Datum ids, int n, Datum *values, char *nulls)
{
	Datum *companies = palloc0(sizeof(Datum) * n);
	bool  *company_nulls = palloc(sizeof(bool) * n);
	Datum *kinds = palloc(sizeof(Datum) * n);
	bool  *no_nulls = palloc0(sizeof(bool) * n);
	int    k = 0;

	for (int i = 0; i < batch->n; i++)
	{
		CustomerErasure *customer = batch->sorted[i];

		if (customer->outcome != ERASURE_DONE)
			continue;
		company_nulls[k] = (customer->company == NULL);
		if (customer->company != NULL)
			companies[k] = CStringGetTextDatum(customer->company);
		kinds[k] = BoolGetDatum(customer->is_company);
		k++;
	}
	values[0] = ids;
	nulls[0] = ' ';
	values[1] = CStringGetTextDatum(batch->state->mapping->placeholder);
	nulls[1] = ' ';
	bind_values(batch, companies, company_nulls, n, TEXTOID, &values[2],
				&nulls[2]);
	bind_values(batch, kinds, no_nulls, n, BOOLOID, &values[3], &nulls[3]);
}

/*
 * Adds the rows a data-modifying statement changed to each customer's
 * counts: SPI_processed for one customer, the rows (customer id, rows) of
 * its result for many.
 */
static void
count_rows(Batch *batch, int index, bool deleted)
{
	if (!batch->statements->many)
	{
		CustomerErasure *customer = batch->sorted[0];

		(deleted ? customer->rows_deleted : customer->rows_updated)[index] +=
			SPI_processed;
		return;
	}
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		CustomerErasure *customer = row_customer(batch, row);

		(deleted ? customer->rows_deleted : customer->rows_updated)[index] +=
			row_int64(row, 2);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Rule 5 for one purge rule; counts the rows deleted per customer. */
static void
purge_rule(Batch *batch, int index, Datum ids)
{
	const Rule           *rule = batch->state->mapping->purge_rules[index];
	const StatementPlans *plans = batch->statements;
	int        expected = plans->many ? SPI_OK_SELECT : SPI_OK_DELETE;
	SPIPlanPtr plan = plans->nowait && can_lock_rows(&rule->scope->relation)
						  ? plans->purge_locking[index]
						  : plans->purge[index];

	if (run_modifying(&rule->scope->relation, plan, &ids, NULL) != expected)
		elog(ERROR, "could not run purge rule \"%s\"", rule->rule_name);
	count_rows(batch, index, true);
}

/*
 * Adds the rows updated per erased scope of one relation (the members of
 * the leader) to each customer's counts, from the result of
 * erase_members_sql().
 */
static void
count_members_rows(Batch *batch, const ErasedScope *leader)
{
	int first = batch->statements->many ? 2 : 1;

	for (uint64 row = 0; row < SPI_processed; row++)
	{
		CustomerErasure *customer = batch->statements->many
										? row_customer(batch, row)
										: batch->sorted[0];

		for (int k = 0; k < leader->n_members; k++)
			customer->rows_updated[leader->members[k]] +=
				row_int64(row, first + k);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Rule 5 for the erased scopes of one relation, led by erased_scopes[index];
 * counts the rows updated per scope and customer.
 */
static void
erase_scope(Batch *batch, int index, Datum *values, const char *nulls)
{
	const ErasedScope *erased = &batch->state->mapping->erased_scopes[index];
	bool counted = batch->statements->many || erased->n_members > 1;

	if (run_modifying(&erased->scope->relation,
					  batch->statements->erase[index], values,
					  nulls) != (counted ? SPI_OK_SELECT : SPI_OK_UPDATE))
		elog(ERROR, "could not erase the rows of scope \"%s\"",
			 erased->scope->name);
	if (erased->n_members > 1)
		count_members_rows(batch, erased);
	else
		count_rows(batch, index, false);
}

/*
 * Rule 6 for the purge: again every rule (of those where only is true)
 * whose rows came back (a trigger of an earlier statement archived them),
 * until none remains.
 */
static void
purge_until_gone(Batch *batch, Datum ids, const bool *only)
{
	const Mapping *m = batch->state->mapping;
	bool          *remaining = palloc(sizeof(bool) * Max(m->n_purge_rules, 1));
	bool           remain = true;

	for (int round = 1; remain; round++)
	{
		remain = false;
		if (only == NULL && batch->statements->verify_purges != NULL)
			all_purged_rows_remain(m, batch->statements->verify_purges, ids,
								   remaining);
		for (int i = 0; i < m->n_purge_rules; i++)
		{
			if (only == NULL && batch->statements->verify_purges != NULL)
			{
				if (!remaining[i])
					continue;
			}
			else if ((only != NULL && !only[i]) ||
					 !purged_rows_remain(m->purge_rules[i],
										 batch->statements->verify_purge[i],
										 ids))
				continue;
			if (round > MAX_PURGE_ROUNDS)
				report_purged_rows_remain(m->purge_rules[i]);
			purge_rule(batch, i, ids);
			remain = true;
		}
	}
	pfree(remaining);
}

/* Rule 6 for one erased scope; parameters as for rule 5. */
static void
verify_erased_scope(Batch *batch, int index, Datum *values, const char *nulls)
{
	int64 updated = 0;

	for (int c = 0; c < batch->n; c++)
		if (batch->sorted[c]->outcome == ERASURE_DONE)
			updated += batch->sorted[c]->rows_updated[index];
	check_scope_erased(
		batch->state->mapping, &batch->state->mapping->erased_scopes[index],
		batch->statements->verify_erased[index], values, nulls, updated);
}

/*
 * Rule 5: every purge and erasure, in the order of the mapping.  A scope
 * linked through a column that an ancestor's erasure sets is verified
 * (rule 6) right after its own statement, while its rows can still be
 * found; every scope is verified again at the end.
 */
static void
run_operations(Batch *batch, Datum *values, const char *nulls)
{
	const Mapping *m = batch->state->mapping;
	bool          *only = palloc0(sizeof(bool) * Max(m->n_purge_rules, 1));

	for (int i = 0; i < m->n_operations; i++)
	{
		const Operation *op = &m->operations[i];

		if (op->purge)
		{
			purge_rule(batch, op->index, values[0]);
			if (!op->rule->scope->link_changes)
				continue;
			only[op->index] = true;
			purge_until_gone(batch, values[0], only);
			only[op->index] = false;
		}
		else
		{
			erase_scope(batch, op->index, values, nulls);
			for (int k = 0; k < op->erased->n_members; k++)
				if (m->erased_scopes[op->erased->members[k]]
						.scope->link_changes)
					verify_erased_scope(batch, op->erased->members[k], values,
										nulls);
		}
	}
	pfree(only);
}

/* Rule 6 for the erased scopes; parameters as for rule 5. */
static void
verify_erased_scopes(Batch *batch, Datum *values, const char *nulls)
{
	for (int i = 0; i < batch->state->mapping->n_erased_scopes; i++)
		verify_erased_scope(batch, i, values, nulls);
}

/* {"rule name": rows, ...} for rules[0 .. n-1], as in the audit log. */
static void
append_counts(StringInfo json, const Rule *const *rules, int n,
			  const int64 *counts, bool *first)
{
	for (int i = 0; i < n; i++)
	{
		if (!*first)
			appendStringInfoString(json, ", ");
		*first = false;
		escape_json(json, rules[i]->rule_name);
		appendStringInfo(json, ": " INT64_FORMAT, counts[i]);
	}
}

/* {"rule name": rows deleted, ...}, as in the audit log. */
void
append_rows_deleted(StringInfo json, const Mapping *m, const int64 *counts)
{
	bool first = true;

	appendStringInfoChar(json, '{');
	append_counts(json, m->purge_rules, m->n_purge_rules, counts, &first);
	appendStringInfoChar(json, '}');
}

/*
 * {"rule name": rows updated, ...}: each erase rule counts the rows of its
 * scope's UPDATE where it applies to the customer's kind, 0 elsewhere.
 */
void
append_rows_updated(StringInfo json, const Mapping *m, const int64 *counts,
					bool is_company)
{
	static const int64 none = 0;
	bool               first = true;

	appendStringInfoChar(json, '{');
	for (int i = 0; i < m->n_erased_scopes; i++)
	{
		const ErasedScope *erased = &m->erased_scopes[i];

		for (int r = 0; r < erased->n_rules; r++)
		{
			AppliesTo applies_to = erased->rules[r]->applies_to;
			bool      applies = applies_to == APPLIES_EVERYONE ||
						   (applies_to == APPLIES_COMPANY) == is_company;

			append_counts(json, &erased->rules[r], 1,
						  applies ? &counts[i] : &none, &first);
		}
	}
	appendStringInfoChar(json, '}');
}

/* Rule 7: the audit rows of the anonymized customers (ids, n of them). */
static void
audit_customers(Batch *batch, Datum ids, int n)
{
	AnonymizeState *state = batch->state;
	Datum          *kinds = palloc(sizeof(Datum) * n);
	Datum          *deleted = palloc(sizeof(Datum) * n);
	Datum          *updated = palloc(sizeof(Datum) * n);
	Datum          *requests = palloc(sizeof(Datum) * n);
	bool           *request_nulls = palloc(sizeof(bool) * n);
	bool           *no_nulls = palloc0(sizeof(bool) * n);
	Datum           values[7];
	char            nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int             k = 0;
	StringInfoData  json;

	initStringInfo(&json);
	for (int i = 0; i < batch->n; i++)
	{
		CustomerErasure *customer = batch->sorted[i];

		if (customer->outcome != ERASURE_DONE)
			continue;
		kinds[k] = CStringGetTextDatum(customer->is_company ? "company"
															: "individual");
		resetStringInfo(&json);
		append_rows_deleted(&json, state->mapping, customer->rows_deleted);
		deleted[k] = DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data));
		resetStringInfo(&json);
		append_rows_updated(&json, state->mapping, customer->rows_updated,
							customer->is_company);
		updated[k] = DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data));
		requests[k] = customer->request_id;
		request_nulls[k] = (customer->request_id == (Datum)0);
		k++;
	}
	values[0] = ids;
	/* current_user of the caller, not the owner the insert runs as */
	values[1] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	bind_values(batch, kinds, no_nulls, n, TEXTOID, &values[2], &nulls[2]);
	bind_values(batch, deleted, no_nulls, n, JSONBOID, &values[3], &nulls[3]);
	bind_values(batch, updated, no_nulls, n, JSONBOID, &values[4], &nulls[4]);
	bind_values(batch, requests, request_nulls, n, UUIDOID, &values[5],
				&nulls[5]);
	values[6] = CStringGetTextDatum(state->fingerprint);
	if (execute_as_owner(state->extension_owner,
						 batch->statements->audit_insert, values, nulls,
						 false) != SPI_OK_INSERT)
		elog(ERROR, "could not write anonymize.audit_log");
}

/*
 * The residue check (residue.c), before the erasure: the values to search
 * for, from those rules 1 and 3 kept.
 */
static void
capture_residue(Batch *batch)
{
	if (residue_check_enabled())
		residue_capture(batch->state->mapping, batch->sorted, batch->n);
}

/* The residue check, after the erasure: search for the values. */
static void
search_residue(Batch *batch)
{
	if (residue_check_enabled())
		residue_search(batch->state, batch->statements, batch->sorted,
					   batch->n);
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
	const Mapping *m = state->mapping;
	Batch          batch = {state, get_statements(state, mode),
							palloc(sizeof(CustomerErasure *) * n), n};
	Datum          ids;
	int            n_eligible;
	Datum          values[4];
	char           nulls[4];

	Assert(n == 1 || batch.statements->many);
	check_rows_visible(state);
	check_caller_privileges(state, CHECK_LOCK);
	for (int i = 0; i < n; i++)
	{
		customers[i].outcome = ERASURE_DONE; /* until found otherwise */
		customers[i].is_company = false;
		customers[i].company = NULL;
		customers[i].blockers = NIL;
		customers[i].captured[0] = customers[i].captured[1] = NULL;
		customers[i].has_residue = false;
		customers[i].rows_deleted =
			palloc0(sizeof(int64) * Max(m->n_purge_rules, 1));
		customers[i].rows_updated =
			palloc0(sizeof(int64) * Max(m->n_erased_scopes, 1));
		batch.sorted[i] = &customers[i];
	}
	qsort(batch.sorted, n, sizeof(CustomerErasure *), compare_customers);

	sort_out_customers(&batch);
	ids = eligible_ids(&batch, &n_eligible);
	if (n_eligible == 0)
		return;
	check_caller_privileges(state, CHECK_ERASE);
	/* rule 3 (company_test.c) */
	classify_customers(m, batch.statements, batch.sorted, n, ids);
	lock_rows(&batch, ids);
	capture_residue(&batch);
	bind_erase_params(&batch, ids, n_eligible, values, nulls);
	run_operations(&batch, values, nulls);
	purge_until_gone(&batch, ids, NULL);
	verify_erased_scopes(&batch, values, nulls);
	search_residue(&batch);
	audit_customers(&batch, ids, n_eligible);
}
