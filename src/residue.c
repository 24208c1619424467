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
#include "utils/formatting.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

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

/* The statements of the check, in plans (MODE_ONE). */
void
build_residue_plans(StatementPlans *plans, const Mapping *m,
					SPIPlanPtr (*prepare)(const char *, int, Oid *))
{
	ResidueSource *sources = palloc(sizeof(ResidueSource) * max_sources(m));
	const Scope   *scopes[2];
	int            n_scopes = source_scopes(m, scopes);
	Oid            key = UUIDOID;
	Oid            search_args[] = {UUIDOID, TEXTARRAYOID, TEXTARRAYOID};
	StringInfoData all;
	int            n_searched = 0;
	Oid            owner = InvalidOid;
	bool           one_owner = true;

	for (int s = 0; s < n_scopes; s++)
	{
		int          n = residue_sources(m, scopes[s], sources);
		const char **columns = palloc(sizeof(char *) * Max(n, 1));

		for (int i = 0; i < n; i++)
			columns[i] = sources[i].column;
		if (n > 0)
			plans->residue_capture[s] = prepare(
				residue_capture_sql(m, scopes[s], columns, n), 1, &key);
	}
	initStringInfo(&all);
	for (int i = 0; i < m->n_scopes; i++)
	{
		const char **columns;
		int          n;
		char        *sql;

		/* the verification guarantees that such a scope holds no row */
		if (purged_whole(m, &m->scopes[i]))
			continue;
		n = columns_to_search(m, &m->scopes[i], &columns);
		if (n == 0)
			continue;
		sql = residue_search_sql(m, i, columns, n);
		plans->residue_search[i] = prepare(sql, 3, search_args);
		/* one probe for all, when they run as one role (security.c) */
		appendStringInfo(&all, "%s(%s)", n_searched > 0 ? " UNION ALL " : "",
						 residue_probe_sql(m, i, columns, n));
		if (n_searched++ == 0)
			owner = m->scopes[i].relation.owner;
		one_owner = one_owner && m->scopes[i].relation.owner == owner;
	}
	if (n_searched > 1 && one_owner)
		plans->residue_probe = prepare(all.data, 2, search_args);
}

/*
 * Captures the customer's values before the erasure: fills needles and
 * fields (text[] Datums) for residue_search().  False when there is none.
 */
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

bool
residue_capture(AnonymizeState *state, Datum customer_id, bool is_company,
				const char *company, Datum *needles, Datum *fields)
{
	const Mapping        *m = state->mapping;
	const StatementPlans *plans = get_statements(state, MODE_ONE);
	MemoryContext         result_cxt = CurrentMemoryContext;
	/* all but the two arrays, freed at the end: a batch has many customers */
	MemoryContext work_cxt = AllocSetContextCreate(
		result_cxt, "anonymize residue capture", ALLOCSET_SMALL_SIZES);
	MemoryContext  old = MemoryContextSwitchTo(work_cxt);
	ResidueSource *sources = palloc(sizeof(ResidueSource) * max_sources(m));
	const Scope   *scopes[2];
	int            n_scopes = source_scopes(m, scopes);
	int            capacity = max_sources(m) * 2;
	Datum         *values = palloc(sizeof(Datum) * capacity);
	Datum         *names = palloc(sizeof(Datum) * capacity);
	int            n_values = 0;
	bool           found;

	for (int s = 0; s < n_scopes; s++)
	{
		int n = residue_sources(m, scopes[s], sources);

		if (plans->residue_capture[s] == NULL)
			continue;
		if (run_statement(&scopes[s]->relation, plans->residue_capture[s],
						  &customer_id, NULL, InvalidSnapshot, InvalidSnapshot,
						  true) != SPI_OK_SELECT)
			elog(ERROR, "could not capture the values of scope \"%s\"",
				 scopes[s]->name);
		MemoryContextSwitchTo(work_cxt); /* SPI left its own current */
		for (uint64 row = 0; row < SPI_processed; row++)
			for (int i = 0; i < n; i++)
			{
				char *value = SPI_getvalue(SPI_tuptable->vals[row],
										   SPI_tuptable->tupdesc, i + 1);
				bool  applies =
					sources[i].applies_to == APPLIES_EVERYONE ||
					(sources[i].applies_to == APPLIES_COMPANY) == is_company;

				if (value == NULL || !applies ||
					pg_mbstrlen(value) < MIN_RESIDUE_LENGTH ||
					in_company_name(value, company))
					continue;
				/* lower case once here, not in every comparison */
				values[n_values] = CStringGetTextDatum(
					str_tolower(value, strlen(value), DEFAULT_COLLATION_OID));
				names[n_values] = CStringGetTextDatum(sources[i].field);
				n_values++;
			}
		SPI_freetuptable(SPI_tuptable);
	}
	found = (n_values > 0);
	if (found)
	{
		MemoryContextSwitchTo(result_cxt);
		*needles = PointerGetDatum(construct_array(values, n_values, TEXTOID,
												   -1, false, TYPALIGN_INT));
		*fields = PointerGetDatum(construct_array(names, n_values, TEXTOID, -1,
												  false, TYPALIGN_INT));
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work_cxt);
	return found;
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

	deconstruct_array(DatumGetArrayTypeP(needles), TEXTOID, -1, false,
					  TYPALIGN_INT, &values, NULL, &n);
	for (int k = 0; k < n; k++)
	{
		char          *needle = TextDatumGetCString(values[k]);
		StringInfoData pattern;

		initStringInfo(&pattern);
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

/*
 * Whether scope i may hold a captured value: the probe's answer when there
 * is one (held[i]), else true.
 */
static bool *
probe_scopes(const Mapping *m, const StatementPlans *plans, Datum customer_id,
			 Datum needles)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool         *held = palloc(sizeof(bool) * m->n_scopes);
	Datum         values[2] = {customer_id, like_patterns(needles)};

	for (int i = 0; i < m->n_scopes; i++)
		held[i] = (plans->residue_probe == NULL);
	if (plans->residue_probe == NULL)
		return held;
	/* as the role of any of them: they have one owner */
	for (int i = 0; i < m->n_scopes; i++)
		if (plans->residue_search[i] != NULL)
		{
			if (run_verifying(&m->scopes[i].relation, plans->residue_probe,
							  values, NULL) != SPI_OK_SELECT)
				elog(ERROR,
					 "could not search the customer's rows for residue");
			MemoryContextSwitchTo(cxt); /* SPI left its own current */
			break;
		}
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool isnull;
		int  index = DatumGetInt32(SPI_getbinval(
			 SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));
		bool hit = DatumGetBool(SPI_getbinval(
			SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2, &isnull));

		held[index] = hit && !isnull;
	}
	SPI_freetuptable(SPI_tuptable);
	return held;
}

/*
 * Searches the customer's remaining rows of every scope for the captured
 * values and reports each column that holds one.  When the relations have
 * one owner, one probe first tells which scopes hold any: usually none.
 */
void
residue_search(AnonymizeState *state, Datum customer_id, Datum needles,
			   Datum fields)
{
	const Mapping        *m = state->mapping;
	const StatementPlans *plans = get_statements(state, MODE_ONE);
	Datum                 values[3] = {customer_id, needles, fields};
	bool                 *held = probe_scopes(m, plans, customer_id, needles);

	for (int i = 0; i < m->n_scopes; i++)
		if (plans->residue_search[i] != NULL && held[i])
			search_scopes(m, plans->residue_search[i], &m->scopes[i].relation,
						  customer_id, values);
	pfree(held);
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
