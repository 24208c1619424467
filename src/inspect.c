/*-------------------------------------------------------------------------
 *
 * inspect.c
 *	  What an erasure would do, and whether it still holds:
 *	  anonymize.preview() and anonymize.verify().  Both change nothing and
 *	  take no row locks.
 *
 * They run the statements of erasure_rules.c that the erasure itself runs
 * (the company test, the blocker checks, the verification) or that count
 * the rows of a rule's scope with the same predicates, so that the counts
 * of a preview are those the erasure then reports.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_preview);
PG_FUNCTION_INFO_V1(anonymize_verify);

/* The company test of one customer now. */
typedef struct Kind
{
	bool  is_company;
	int64 rows; /* of the test's scope; -1 without a test */
	char *company;
} Kind;

static int64
first_int64(int column)
{
	bool isnull;

	return DatumGetInt64(SPI_getbinval(
		SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull));
}

static Kind
company_test(AnonymizeState *state, const StatementPlans *plans,
			 Datum customer_id, Snapshot snapshot)
{
	const Mapping *m = state->mapping;
	Kind           kind = {false, -1, NULL};
	bool           isnull;

	if (plans->company_test == NULL)
		return kind;
	if (run_statement(&m->company_scope->relation, plans->company_test,
					  &customer_id, NULL, snapshot, InvalidSnapshot,
					  true) != SPI_OK_SELECT)
		elog(ERROR, "could not run the company test");
	kind.rows = 0;
	if (SPI_processed == 1)
	{
		kind.rows = first_int64(1);
		kind.is_company =
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 2, &isnull)) &&
			!isnull;
		if (kind.is_company)
			kind.company =
				SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	}
	return kind;
}

/* The rows of a purge or erase rule's scope that belong to the customer. */
static int64
rule_rows(const StatementPlans *plans, const Mapping *m, const Rule *rule,
		  Datum customer_id, Snapshot snapshot)
{
	SPIPlanPtr plan = plans->count_rule[rule - m->rules];
	int result = run_statement(&rule->scope->relation, plan, &customer_id,
							   NULL, snapshot, InvalidSnapshot, true);

	if (result != SPI_OK_SELECT)
		elog(ERROR, "could not count the rows of rule \"%s\": %s",
			 rule->rule_name, SPI_result_code_string(result));
	return first_int64(1);
}

static bool
applies(AppliesTo applies_to, bool is_company)
{
	return applies_to == APPLIES_EVERYONE ||
		   (applies_to == APPLIES_COMPANY) == is_company;
}

/* The column names of an erase rule, as a name[]. */
static Datum
rule_columns(const Rule *rule)
{
	Datum *names = palloc(sizeof(Datum) * Max(rule->n_columns, 1));

	for (int i = 0; i < rule->n_columns; i++)
		names[i] = DirectFunctionCall1(namein,
									   CStringGetDatum(rule->columns[i].name));
	return PointerGetDatum(construct_array(names, rule->n_columns, NAMEOID,
										   NAMEDATALEN, false, TYPALIGN_CHAR));
}

/* One row of preview(): (step, rule, scope, relation, rows, columns,
 * applies, detail); NULL pointers and negative rows give NULLs. */
typedef struct PreviewRow
{
	const char  *step;
	const char  *rule_name;
	const Scope *scope;
	int64        rows;
	Datum        columns; /* (Datum) 0: NULL */
	int          applies; /* -1: NULL */
	const char  *detail;
} PreviewRow;

static void
put_preview_row(ReturnSetInfo *rsinfo, const PreviewRow *row)
{
	Datum values[8];
	bool  nulls[8] = {false,
					  row->rule_name == NULL,
					  row->scope == NULL,
					  row->scope == NULL,
					  row->rows < 0,
					  row->columns == (Datum)0,
					  row->applies < 0,
					  row->detail == NULL};

	values[0] = CStringGetTextDatum(row->step);
	if (row->rule_name != NULL)
		values[1] = CStringGetTextDatum(row->rule_name);
	if (row->scope != NULL)
	{
		values[2] = CStringGetTextDatum(row->scope->name);
		values[3] = ObjectIdGetDatum(row->scope->relation.relid);
	}
	values[4] = Int64GetDatum(row->rows);
	values[5] = row->columns;
	values[6] = BoolGetDatum(row->applies > 0);
	if (row->detail != NULL)
		values[7] = CStringGetTextDatum(row->detail);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* The first row: company or individual, and why. */
static void
preview_kind(ReturnSetInfo *rsinfo, const Mapping *m, const Kind *kind)
{
	PreviewRow row = {"kind", NULL, m->company_scope, kind->rows, (Datum)0,
					  -1,     NULL};

	if (m->company_scope == NULL)
		row.detail = "individual: the mapping has no company test";
	else if (kind->rows == 0)
		row.detail = psprintf("individual: scope \"%s\" holds no row of the "
							  "customer",
							  m->company_scope->name);
	else if (kind->rows > 1)
		row.detail = psprintf("the erasure would fail: scope \"%s\" of the "
							  "company test holds %lld rows of the customer",
							  m->company_scope->name, (long long)kind->rows);
	else if (kind->is_company)
		row.detail = psprintf("company: the company test is true; the name "
							  "becomes \"%s\"",
							  kind->company ? kind->company : "");
	else
		row.detail = "individual: the company test is false; the name is "
					 "erased";
	put_preview_row(rsinfo, &row);
}

static void
preview_blockers(ReturnSetInfo *rsinfo, AnonymizeState *state,
				 Datum customer_id)
{
	ListCell *cell;

	foreach (cell, find_blockers(state, customer_id))
	{
		Blocker   *blocker = lfirst(cell);
		PreviewRow row = {
			"blocker",
			blocker->rule->rule_name,
			blocker->rule->scope,
			blocker->rows,
			(Datum)0,
			-1,
			blocker->amount == NULL
				? blocker->rule->reason
				: psprintf("%s: %s", blocker->rule->reason, blocker->amount)};

		put_preview_row(rsinfo, &row);
	}
}

/* The purges and erasures, in the order of the erasure. */
static void
preview_changes(ReturnSetInfo *rsinfo, AnonymizeState *state,
				const StatementPlans *plans, Datum customer_id,
				const Kind *kind)
{
	const Mapping *m = state->mapping;

	for (int i = 0; i < m->n_purge_rules; i++)
	{
		const Rule *rule = m->purge_rules[i];
		PreviewRow  row = {
			 "purge",
			 rule->rule_name,
			 rule->scope,
			 rule_rows(plans, m, rule, customer_id, InvalidSnapshot),
			 (Datum)0,
			 1,
			 NULL};

		put_preview_row(rsinfo, &row);
	}
	for (int i = 0; i < m->n_erased_scopes; i++)
	{
		const ErasedScope *erased = &m->erased_scopes[i];

		if (erased->name_column != NULL)
		{
			PreviewRow row = {
				"erase",
				NULL,
				erased->scope,
				1,
				(Datum)0,
				1,
				psprintf("the name %s; the email %s",
						 kind->is_company ? "becomes the company name"
										  : "is erased",
						 m->email.replacement ? "is replaced" : "is erased")};

			put_preview_row(rsinfo, &row);
		}
		for (int r = 0; r < erased->n_rules; r++)
		{
			const Rule *rule = erased->rules[r];
			bool rule_applies = applies(rule->applies_to, kind->is_company);
			PreviewRow row = {
				"erase",
				rule->rule_name,
				rule->scope,
				rule_applies
					? rule_rows(plans, m, rule, customer_id, InvalidSnapshot)
					: 0,
				rule_columns(rule),
				rule_applies,
				rule_applies ? NULL
							 : psprintf("not for %s", kind->is_company
														  ? "companies"
														  : "individuals")};

			put_preview_row(rsinfo, &row);
		}
	}
}

/*
 * anonymize.preview(customer_id): what anonymize_customer() would do now:
 * the customer's kind, its blockers, and per rule the rows it would delete
 * or update.
 */
Datum
anonymize_preview(PG_FUNCTION_ARGS)
{
	ReturnSetInfo  *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	Datum           customer_id = PG_GETARG_DATUM(0);
	AnonymizeState *state;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	state = acquire_state();
	PG_TRY();
	{
		const StatementPlans *plans = get_statements(state, MODE_ONE);
		bool                  anonymized;
		Kind                  kind;

		check_rows_visible(state);
		check_caller_privileges(state, CHECK_INSPECT);
		if (!customer_exists(state, customer_id))
			report_unknown_customer(customer_id);
		kind = company_test(state, plans, customer_id, InvalidSnapshot);
		preview_kind(rsinfo, state->mapping, &kind);
		if (audit_lookup(state, customer_id, &anonymized, false))
		{
			int64 places = data_again(state, customer_id, anonymized, NULL,
									  InvalidSnapshot);
			PreviewRow row = {
				"note",
				NULL,
				NULL,
				-1,
				(Datum)0,
				-1,
				places == 0
					? "already anonymized: anonymize_customer() changes "
					  "nothing"
					: psprintf("anonymized before, but data came back in "
							   "%lld %s (anonymize.verify() lists them): "
							   "anonymize_customer() erases again",
							   (long long)places,
							   places == 1 ? "place" : "places")};

			put_preview_row(rsinfo, &row);
		}
		preview_blockers(rsinfo, state, customer_id);
		preview_changes(rsinfo, state, plans, customer_id, &kind);
	}
	PG_FINALLY();
	{
		release_state(state);
	}
	PG_END_TRY();
	SPI_finish();
	return (Datum)0;
}

/* A row of verify() when rsinfo is set; counts it either way. */
static void
put_verify_row(ReturnSetInfo *rsinfo, int64 *found, const char *rule_name,
			   const Scope *scope, const char *column, int64 rows)
{
	Datum values[5];
	bool  nulls[5] = {rule_name == NULL, false, false, column == NULL, false};

	(*found)++;
	if (rsinfo == NULL)
		return;
	if (rule_name != NULL)
		values[0] = CStringGetTextDatum(rule_name);
	values[1] = CStringGetTextDatum(scope->name);
	values[2] = ObjectIdGetDatum(scope->relation.relid);
	if (column != NULL)
		values[3] = DirectFunctionCall1(namein, CStringGetDatum(column));
	values[4] = Int64GetDatum(rows);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * The erased columns of a scope that hold data again, as the erasure's own
 * verification counts them (columns with a replacement are not checked:
 * their value cannot be told from data).
 */
static void
verify_erased(const Mapping *m, ReturnSetInfo *rsinfo, int64 *found,
			  const ErasedScope *erased, SPIPlanPtr plan, Datum *values,
			  const char *nulls, Snapshot snapshot)
{
	int64 *counts =
		count_unerased(m, erased, plan, values, nulls, snapshot, true);
	int n = 0;

	if (erased->name_column != NULL && counts[++n] > 0)
		put_verify_row(rsinfo, found, NULL, erased->scope, erased->name_column,
					   counts[n]);
	for (int i = 0; i < erased->n_columns; i++)
		if (is_verified_column(erased->columns[i]) && counts[++n] > 0)
			put_verify_row(rsinfo, found, erased->columns[i]->rule_name,
						   erased->scope, erased->columns[i]->name, counts[n]);
	pfree(counts);
}

/*
 * The places the mapping covers where an anonymized customer (as a company
 * or not, as recorded) holds data again: rows of purged scopes, erased
 * columns holding something other than NULL or the placeholder, a name
 * other than the company name.  Returns their number; puts them as rows of
 * verify() into rsinfo unless NULL.  The caller holds the state and is
 * connected to SPI.
 */
int64
data_again(AnonymizeState *state, Datum customer_id, bool is_company,
		   ReturnSetInfo *rsinfo, Snapshot snapshot)
{
	const Mapping        *m = state->mapping;
	const StatementPlans *plans = get_statements(state, MODE_ONE);
	Kind                  kind;
	Datum                 values[4];
	char                  nulls[4] = {' ', ' ', 'n', ' '};
	int64                 found = 0;

	for (int i = 0; i < m->n_purge_rules; i++)
	{
		const Rule *rule = m->purge_rules[i];
		int64       rows = rule_rows(plans, m, rule, customer_id, snapshot);

		if (rows > 0)
			put_verify_row(rsinfo, &found, rule->rule_name, rule->scope, NULL,
						   rows);
	}
	/* a company keeps the name its company test gives now */
	kind = company_test(state, plans, customer_id, snapshot);
	values[0] = customer_id;
	values[1] = CStringGetTextDatum(m->placeholder);
	if (is_company && kind.company != NULL)
	{
		values[2] = CStringGetTextDatum(kind.company);
		nulls[2] = ' ';
	}
	values[3] = BoolGetDatum(is_company);
	for (int i = 0; i < m->n_erased_scopes; i++)
		verify_erased(m, rsinfo, &found, &m->erased_scopes[i],
					  plans->verify_erased[i], values, nulls, snapshot);
	return found;
}

/*
 * anonymize.verify(customer_id): for an anonymized customer, data_again().
 * Empty when the erasure still holds.
 */
Datum
anonymize_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo  *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	Datum           customer_id = PG_GETARG_DATUM(0);
	AnonymizeState *state;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	state = acquire_state();
	PG_TRY();
	{
		bool is_company;

		check_rows_visible(state);
		check_caller_privileges(state, CHECK_INSPECT);
		if (!customer_exists(state, customer_id))
			report_unknown_customer(customer_id);
		if (!audit_lookup(state, customer_id, &is_company, false))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("customer %s has not been anonymized",
							customer_id_text(customer_id)),
					 errhint("anonymize.preview() shows what an erasure "
							 "would do.")));
		data_again(state, customer_id, is_company, rsinfo, InvalidSnapshot);
	}
	PG_FINALLY();
	{
		release_state(state);
	}
	PG_END_TRY();
	SPI_finish();
	return (Datum)0;
}
