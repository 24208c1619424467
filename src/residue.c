/*-------------------------------------------------------------------------
 *
 * residue.c
 *	  The residue check: personal data copied into columns the mapping
 *	  keeps (a wallet named after the person, a webhook payload with the
 *	  email) found after an erasure.
 *
 * Before its statements, the erasure captures, in memory only, the values
 * of the customer's columns it erases: the name (of an individual) and the
 * email, and the columns of the erase rules of the customer scope and of
 * the company test's scope that apply to the customer (but values that
 * are part of a company's name, which it keeps).  After its
 * statements, it searches the customer's remaining rows of every scope, in
 * their text, json and jsonb columns, for those values (case-insensitive,
 * as substrings; values under MIN_RESIDUE_LENGTH characters are skipped).
 * Each column that holds one is reported, with the field that matched,
 * never the value: as a WARNING or, with anonymize.residue_check = error,
 * as an error that rolls the erasure back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "parser/parse_coerce.h"
#include "catalog/pg_collation.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/formatting.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "anonymize.h"

/* Shorter values match too much to tell anything. */
#define MIN_RESIDUE_LENGTH 4

typedef enum ResidueCheck
{
	RESIDUE_OFF,
	RESIDUE_WARNING,
	RESIDUE_ERROR
} ResidueCheck;

static const struct config_enum_entry residue_check_options[] = {
	{"off", RESIDUE_OFF, false},
	{"warning", RESIDUE_WARNING, false},
	{"error", RESIDUE_ERROR, false},
	{NULL, 0, false}};

static int residue_check = RESIDUE_WARNING;

void
residue_define_settings(void)
{
	DefineCustomEnumVariable(
		"anonymize.residue_check",
		"What an erasure does when the customer's erased values remain in "
		"columns the mapping keeps.",
		"off: nothing; warning: a WARNING per column; error: the erasure "
		"fails and changes nothing.",
		&residue_check, RESIDUE_WARNING, residue_check_options, PGC_USERSET, 0,
		NULL, NULL, NULL);
}

bool
residue_check_enabled(void)
{
	return residue_check != RESIDUE_OFF;
}

/* A captured column: its name, the field it reports, whom it applies to. */
typedef struct ResidueSource
{
	const char *column;
	const char *field;
	AppliesTo   applies_to;
} ResidueSource;

static const ErasedScope *
erased_scope_of(const Mapping *m, const Scope *scope)
{
	for (int i = 0; i < m->n_erased_scopes; i++)
		if (m->erased_scopes[i].scope == scope)
			return &m->erased_scopes[i];
	return NULL;
}

/*
 * The captured columns of a scope (the customer, or the company test's
 * scope); their number.  sources has room for every erased column + 1.
 */
static int
residue_sources(const Mapping *m, const Scope *scope, ResidueSource *sources)
{
	const ErasedScope *erased = erased_scope_of(m, scope);
	int                n = 0;

	if (scope == &m->scopes[0])
		sources[n++] =
			(ResidueSource){m->name.name, "name", APPLIES_INDIVIDUAL};
	if (erased == NULL)
		return n;
	for (int i = 0; i < erased->n_columns; i++)
		sources[n++] = (ResidueSource){erased->columns[i]->name,
									   erased->columns[i] == &m->email
										   ? "email"
										   : erased->columns[i]->name,
									   erased->columns[i]->applies_to};
	return n;
}

static int
max_sources(const Mapping *m)
{
	int n = 2;

	for (int i = 0; i < m->n_erased_scopes; i++)
		n += m->erased_scopes[i].n_columns;
	return n;
}

/* The scopes whose values are captured: the customer and the company's. */
static int
source_scopes(const Mapping *m, const Scope **scopes)
{
	int n = 0;

	scopes[n++] = &m->scopes[0];
	if (m->company_scope != NULL && m->company_scope != &m->scopes[0])
		scopes[n++] = m->company_scope;
	return n;
}

/* The text, json and jsonb columns of a relation, searched for residue. */
static int
searched_columns(Oid relid, const char ***names)
{
	Relation  rel = table_open(relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	int       n = 0;

	*names = palloc(sizeof(char *) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		Oid               base;

		if (attr->attisdropped) /* its type is gone: atttypid is 0 */
			continue;
		base = getBaseType(attr->atttypid); /* domains too */
		if (TypeCategory(base) == TYPCATEGORY_STRING || base == JSONOID ||
			base == JSONBOID)
			(*names)[n++] = pstrdup(NameStr(attr->attname));
	}
	table_close(rel, AccessShareLock);
	return n;
}

/* Whether a purge rule without condition deletes all rows of the scope. */
static bool
purged_whole(const Mapping *m, const Scope *scope)
{
	for (int i = 0; i < m->n_purge_rules; i++)
		if (m->purge_rules[i]->scope == scope &&
			m->purge_rules[i]->expression == NULL)
			return true;
	return false;
}

/*
 * Whether the erasure itself empties the column for every customer (NULL
 * or the placeholder, verified before the erasure is recorded), or sets it
 * to the company name (the customer's name): then it can hold no residue.
 */
static bool
emptied_by_erasure(const Mapping *m, const Scope *scope, const char *column)
{
	const ErasedScope *erased = erased_scope_of(m, scope);

	if (erased == NULL)
		return false;
	if (erased->name_column != NULL &&
		strcmp(erased->name_column, column) == 0)
		return true;
	for (int i = 0; i < erased->n_columns; i++)
		if (strcmp(erased->columns[i]->name, column) == 0 &&
			erased->columns[i]->applies_to == APPLIES_EVERYONE &&
			is_verified_column(erased->columns[i]))
			return true;
	return false;
}

/* The columns of the scope the search looks at: n of them in *names. */
static int
columns_to_search(const Mapping *m, const Scope *scope, const char ***names)
{
	int n = searched_columns(scope->relation.relid, names);
	int kept = 0;

	for (int i = 0; i < n; i++)
		if (!emptied_by_erasure(m, scope, (*names)[i]))
			(*names)[kept++] = (*names)[i];
	return kept;
}

/*
 * The statements of the check, in plans: for one customer (MODE_ONE) the
 * search per scope and the probe of all scopes; for many
 * (MODE_MANY_NOWAIT) the probe, for all the customers of the batch at
 * once.  (The values are captured by the statements that lock the
 * customer and the company test's rows: residue_captured_columns().)
 */
void
build_residue_plans(StatementPlans *plans, const Mapping *m,
					SPIPlanPtr (*prepare)(const char *, int, Oid *))
{
	bool           many = plans->many;
	Oid            search_args[] = {UUIDOID, TEXTARRAYOID, TEXTARRAYOID};
	Oid            probe_many_args[] = {UUIDARRAYOID, TEXTARRAYOID};
	StringInfoData all;
	int            n_searched = 0;
	bool           one_owner = true;

	plans->residue_probe_rights = NULL;
	initStringInfo(&all);
	if (many)
		appendStringInfoString(&all, residue_probe_customers_sql());
	for (int i = 0; i < m->n_scopes; i++)
	{
		const char **columns;
		int          n;

		/* the verification guarantees that such a scope holds no row */
		if (purged_whole(m, &m->scopes[i]))
			continue;
		n = columns_to_search(m, &m->scopes[i], &columns);
		if (n == 0)
			continue;
		if (!many)
			plans->residue_search[i] =
				prepare(residue_search_sql(m, i, columns, n), 3, search_args);
		/* one probe for all, when they run as one role (security.c) */
		appendStringInfo(&all, "%s(%s)", n_searched > 0 ? " UNION ALL " : "",
						 residue_probe_sql(m, i, columns, n, many));
		if (n_searched++ == 0)
			plans->residue_probe_rights = &m->scopes[i].relation;
		one_owner = one_owner && m->scopes[i].relation.owner ==
									 plans->residue_probe_rights->owner;
	}
	/* for one customer, a lone scope is searched at once */
	if (n_searched > (many ? 0 : 1) && one_owner)
		plans->residue_probe =
			prepare(all.data, 2, many ? probe_many_args : search_args);
}

/* Whether the value is part of the company name, kept on purpose. */
static bool
in_company_name(const char *value, const char *company)
{
	if (company == NULL)
		return false;
	return strstr(str_tolower(company, strlen(company), DEFAULT_COLLATION_OID),
				  str_tolower(value, strlen(value), DEFAULT_COLLATION_OID)) !=
		   NULL;
}

/*
 * The columns whose values are captured, of source 0 (the customer) or 1
 * (the company test's scope, when it is not the customer's): their number,
 * their names in *columns.  The statements that lock those rows return
 * them (lock_customer_sql(), classify_sql()), erasure.c and company_test.c
 * keep them in CustomerErasure.captured.
 */
int
residue_captured_columns(const Mapping *m, int source, const char ***columns)
{
	ResidueSource *sources = palloc(sizeof(ResidueSource) * max_sources(m));
	const Scope   *scopes[2];
	int            n = 0;

	*columns = palloc(sizeof(char *) * max_sources(m));
	if (source < source_scopes(m, scopes))
		n = residue_sources(m, scopes[source], sources);
	for (int i = 0; i < n; i++)
		(*columns)[i] = sources[i].column;
	pfree(sources);
	return n;
}

/* The values captured of one customer, and the fields they come from. */
typedef struct Needles
{
	Datum *values; /* lower case */
	Datum *fields;
	int    n;
} Needles;

/*
 * Adds the customer's values of one source (one per column of sources) to
 * its needles, which have room for all: those that apply to the customer's
 * kind, are long enough and are not part of a company's name.
 */
static void
add_needles(Needles *needles, const CustomerErasure *customer,
			const ResidueSource *sources, int n_sources, char **values)
{
	for (int i = 0; i < n_sources; i++)
	{
		char *value = values[i];
		bool  applies =
			sources[i].applies_to == APPLIES_EVERYONE ||
			(sources[i].applies_to == APPLIES_COMPANY) == customer->is_company;

		if (value == NULL || !applies ||
			pg_mbstrlen(value) < MIN_RESIDUE_LENGTH ||
			in_company_name(value, customer->company))
			continue;
		/* lower case once here, not in every comparison */
		needles->values[needles->n] = CStringGetTextDatum(
			str_tolower(value, strlen(value), DEFAULT_COLLATION_OID));
		needles->fields[needles->n] = CStringGetTextDatum(sources[i].field);
		needles->n++;
	}
}

/*
 * Before the erasure, once the customers are classified: turns the values
 * kept of each eligible customer among customers[0 .. n-1] into its
 * residue_needles and residue_fields (text[]) for residue_search(), and
 * sets has_residue when there is any.  No statement: the values came with
 * the rows that rules 1 and 3 locked.
 */
void
residue_capture(const Mapping *m, CustomerErasure *const *customers, int n)
{
	MemoryContext result_cxt = CurrentMemoryContext;
	/* all but the arrays, freed at the end: a batch has many customers */
	MemoryContext work_cxt = AllocSetContextCreate(
		result_cxt, "anonymize residue capture", ALLOCSET_SMALL_SIZES);
	MemoryContext  old = MemoryContextSwitchTo(work_cxt);
	const Scope   *scopes[2];
	int            n_scopes = source_scopes(m, scopes);
	ResidueSource *sources[2];
	int            n_sources[2];
	Needles        needles = {palloc(sizeof(Datum) * max_sources(m)),
							  palloc(sizeof(Datum) * max_sources(m)), 0};

	for (int s = 0; s < n_scopes; s++)
	{
		sources[s] = palloc(sizeof(ResidueSource) * max_sources(m));
		n_sources[s] = residue_sources(m, scopes[s], sources[s]);
	}
	for (int c = 0; c < n; c++)
	{
		CustomerErasure *customer = customers[c];

		customer->has_residue = false;
		if (customer->outcome != ERASURE_DONE)
			continue;
		needles.n = 0;
		for (int s = 0; s < n_scopes; s++)
			if (customer->captured[s] != NULL)
				add_needles(&needles, customer, sources[s], n_sources[s],
							customer->captured[s]);
		if (needles.n == 0)
			continue;
		MemoryContextSwitchTo(result_cxt);
		customer->has_residue = true;
		customer->residue_needles = PointerGetDatum(construct_array(
			needles.values, needles.n, TEXTOID, -1, false, TYPALIGN_INT));
		customer->residue_fields = PointerGetDatum(construct_array(
			needles.fields, needles.n, TEXTOID, -1, false, TYPALIGN_INT));
		MemoryContextSwitchTo(work_cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work_cxt);
}

static void search_scopes(const Mapping *m, SPIPlanPtr plan,
						  const MappedRelation *rights, Datum customer_id,
						  Datum *values);

/* The captured values as LIKE patterns: '%value%', with % _ \ escaped. */
static Datum
like_patterns(Datum needles)
{
	Datum *values;
	int    n;

	StringInfoData pattern;

	deconstruct_array(DatumGetArrayTypeP(needles), TEXTOID, -1, false,
					  TYPALIGN_INT, &values, NULL, &n);
	initStringInfo(&pattern);
	for (int k = 0; k < n; k++)
	{
		char *needle = TextDatumGetCString(values[k]);

		resetStringInfo(&pattern);
		appendStringInfoChar(&pattern, '%');
		for (const char *c = needle; *c != '\0'; c++)
		{
			if (*c == '%' || *c == '_' || *c == '\\')
				appendStringInfoChar(&pattern, '\\');
			appendStringInfoChar(&pattern, *c);
		}
		appendStringInfoChar(&pattern, '%');
		values[k] = CStringGetTextDatum(pattern.data);
	}
	return PointerGetDatum(
		construct_array(values, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Runs the probe of plans with values as its parameters. */
static void
run_probe(const StatementPlans *plans, Datum *values)
{
	MemoryContext cxt = CurrentMemoryContext;

	/* as the role of any of them: they have one owner */
	if (run_verifying(plans->residue_probe_rights, plans->residue_probe,
					  values, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not search the customers' rows for residue");
	MemoryContextSwitchTo(cxt); /* SPI left its own current */
}

/*
 * Whether scope i may hold a value captured of the customer (held[i]): the
 * probe returns the scopes that may, else every scope may.
 */
static bool *
probe_scopes(const Mapping *m, const StatementPlans *plans,
			 const CustomerErasure *customer)
{
	bool *held = palloc(sizeof(bool) * m->n_scopes);
	Datum values[2] = {customer->customer_id,
					   like_patterns(customer->residue_needles)};

	for (int i = 0; i < m->n_scopes; i++)
		held[i] = (plans->residue_probe == NULL);
	if (plans->residue_probe == NULL)
		return held;
	run_probe(plans, values);
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool isnull;

		held[DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[row],
										 SPI_tuptable->tupdesc, 1, &isnull))] =
			true;
	}
	SPI_freetuptable(SPI_tuptable);
	return held;
}

/*
 * For many customers: which scopes of which customers the probe says may
 * hold a value captured of them, in held[customer * n_scopes + scope].
 * One statement for the batch.
 */
static bool *
probe_customers(const Mapping *m, const StatementPlans *plans,
				CustomerErasure *const *customers, int n)
{
	bool         *held = palloc0(sizeof(bool) * n * m->n_scopes);
	MemoryContext cxt = CurrentMemoryContext;
	/* the parameters and the result, freed at the end */
	MemoryContext work_cxt = AllocSetContextCreate(
		cxt, "anonymize residue probe", ALLOCSET_DEFAULT_SIZES);
	Datum *ids;
	Datum *patterns;
	int    k = 0;
	int    dims[1];
	int    lbs[1] = {1};
	Datum  values[2];

	MemoryContextSwitchTo(work_cxt);
	ids = palloc(sizeof(Datum) * n);
	patterns = palloc(sizeof(Datum) * n);

	for (int c = 0; c < n; c++)
	{
		if (!customers[c]->has_residue)
			continue;
		ids[k] = customers[c]->customer_id;
		/* a text[] literal: the customers' arrays differ in length */
		patterns[k++] = CStringGetTextDatum(OidOutputFunctionCall(
			F_ARRAY_OUT, like_patterns(customers[c]->residue_needles)));
	}
	if (k == 0)
	{
		MemoryContextSwitchTo(cxt);
		MemoryContextDelete(work_cxt);
		return held;
	}
	dims[0] = k;
	values[0] = PointerGetDatum(construct_md_array(
		ids, NULL, 1, dims, lbs, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	values[1] = PointerGetDatum(
		construct_array(patterns, k, TEXTOID, -1, false, TYPALIGN_INT));
	run_probe(plans, values);
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool isnull;
		int  scope = DatumGetInt32(SPI_getbinval(
			 SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));
		int  c =
			customer_index(customers, n,
						   SPI_getbinval(SPI_tuptable->vals[row],
										 SPI_tuptable->tupdesc, 2, &isnull));

		held[c * m->n_scopes + scope] = true;
	}
	SPI_freetuptable(SPI_tuptable);
	MemoryContextSwitchTo(cxt);
	MemoryContextDelete(work_cxt);
	return held;
}

/*
 * Searches the remaining rows of every scope, of each customer of
 * customers[0 .. n-1] with values captured, for those values, and reports
 * each column that holds one.  When the relations have one owner, a probe
 * first tells which scopes hold any (usually none): for many customers one
 * probe for all of them, else one per customer.
 */
void
residue_search(AnonymizeState *state, const StatementPlans *plans,
			   CustomerErasure *const *customers, int n)
{
	const Mapping        *m = state->mapping;
	const StatementPlans *one = get_statements(state, MODE_ONE);
	MemoryContext         cxt = CurrentMemoryContext;
	/* what one customer's search allocates, freed before the next one */
	MemoryContext customer_cxt = AllocSetContextCreate(
		cxt, "anonymize residue search", ALLOCSET_SMALL_SIZES);
	bool *batch_held = plans->many && plans->residue_probe != NULL
						   ? probe_customers(m, plans, customers, n)
						   : NULL;

	for (int c = 0; c < n; c++)
	{
		const CustomerErasure *customer = customers[c];
		Datum values[3] = {customer->customer_id, customer->residue_needles,
						   customer->residue_fields};
		bool *held;

		if (!customer->has_residue)
			continue;
		MemoryContextSwitchTo(customer_cxt);
		held = batch_held != NULL ? &batch_held[c * m->n_scopes]
								  : probe_scopes(m, one, customer);
		for (int i = 0; i < m->n_scopes; i++)
			if (one->residue_search[i] != NULL && held[i])
				search_scopes(m, one->residue_search[i],
							  &m->scopes[i].relation, customer->customer_id,
							  values);
		MemoryContextSwitchTo(cxt);
		MemoryContextReset(customer_cxt);
	}
	MemoryContextDelete(customer_cxt);
}

/*
 * Runs a search statement, with the rights statements on rel run with,
 * and reports each of its rows: scope index, field, column.
 */
static void
search_scopes(const Mapping *m, SPIPlanPtr plan, const MappedRelation *rights,
			  Datum customer_id, Datum *values)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (run_verifying(rights, plan, values, NULL) != SPI_OK_SELECT)
		elog(ERROR, "could not search the customer's rows for residue");
	MemoryContextSwitchTo(cxt); /* SPI left its own current */
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool                  isnull;
		int                   index = DatumGetInt32(SPI_getbinval(
							  SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));
		const Scope          *scope = &m->scopes[index];
		const MappedRelation *rel = &scope->relation;
		char                 *field =
			SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2);
		char *column =
			SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 3);

		ereport(residue_check == RESIDUE_ERROR ? ERROR : WARNING,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("the %s of customer %s remains in column \"%s\" "
						"of relation \"%s.%s\"",
						field, customer_id_text(customer_id), column,
						rel->schema, rel->name),
				 errdetail("Scope \"%s\" keeps the column; the erasure "
						   "erased the %s elsewhere.",
						   scope->name, field),
				 errhint("Erase or replace the column with an erase "
						 "rule (anonymize.set_erase_rule()), or set "
						 "anonymize.residue_check to off.")));
	}
	SPI_freetuptable(SPI_tuptable);
}
