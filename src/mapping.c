/*-------------------------------------------------------------------------
 *
 * mapping.c
 *	  Reads the mapping from the configuration tables of schema anonymize
 *	  and resolves its relations and columns, reporting stale entries.
 *
 * The configuration tables belong to the extension owner; they are read as
 * that owner, so callers need no privilege on them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "anonymize.h"

#define CUSTOMER_QUERY                                                        \
	"SELECT relation_schema, relation_name, key_column, name_column,"         \
	" email_column, placeholder, company_scope, company_condition,"           \
	" company_name FROM anonymize.customer_relation"

#define SCOPES_QUERY                                                          \
	"SELECT scope_name, relation_schema, relation_name, key_column, parent,"  \
	" parent_column, condition FROM anonymize.scopes ORDER BY scope_name"

/* Erase rules list their columns and replacements in one array each. */
#define RULES_QUERY                                                           \
	"SELECT r.rule_name, r.kind, r.scope, COALESCE(r.condition, r.amount),"   \
	" r.reason, r.applies_to, r.columns,"                                     \
	" (SELECT pg_catalog.array_agg(e.key ORDER BY e.key)"                     \
	"    FROM pg_catalog.jsonb_each(r.replacements) e),"                      \
	" (SELECT pg_catalog.array_agg(CASE WHEN "                                \
	"pg_catalog.jsonb_typeof(e.value)"                                        \
	"   OPERATOR(pg_catalog.=) 'string' THEN e.value "                        \
	"OPERATOR(pg_catalog.#>>)"                                                \
	"   '{}' END ORDER BY e.key) FROM pg_catalog.jsonb_each(r.replacements) " \
	"e)"                                                                      \
	" FROM anonymize.rules r ORDER BY r.rule_name"

/* Text of column n (1-based) of row "row" of the last SPI result. */
static char *
result_text(int row, int n)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, n);
}

/* A table of the extension itself, in schema anonymize. */
Oid
extension_table_oid(const char *name)
{
	Oid relid = get_relname_relid(name, get_namespace_oid("anonymize", false));

	if (!OidIsValid(relid))
		elog(ERROR, "relation \"anonymize.%s\" does not exist", name);
	return relid;
}

/*
 * Errors out unless a relation may be mapped: a table of the application.
 * A temporary table exists for one session only, and the extension's own
 * tables (its mapping, the audit log, the request queue) are no personal
 * data to erase: purging them would delete the proof of erasures.
 */
static void
check_mappable(Oid relid, const char *schema, const char *name)
{
	char relkind = get_rel_relkind(relid);

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(
			ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s.%s\" is not a table", schema, name),
			 errdetail("The anonymize mapping can only refer to tables.")));
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot map temporary table \"%s\"", name),
				 errdetail("A temporary table belongs to one session; the "
						   "mapping is shared by all sessions.")));
	if (getExtensionOfObject(RelationRelationId, relid) ==
			get_extension_oid("anonymize", true) ||
		strcmp(schema, "anonymize") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot map table \"%s.%s\" of extension anonymize",
						schema, name),
				 errdetail("The extension's own tables hold its mapping, the "
						   "audit log and the erasure requests, which "
						   "anonymization must not change.")));
}

/* Looks a mapped relation up by name; errors out when it is gone. */
Oid
resolve_mapped_relation(const char *schema, const char *name)
{
	Oid nspid = get_namespace_oid(schema, true);
	Oid relid =
		OidIsValid(nspid) ? get_relname_relid(name, nspid) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", schema, name),
				 errdetail("The anonymize mapping refers to it."),
				 errhint("Restore the relation or change the mapping with the "
						 "anonymize.set_* functions.")));
	check_mappable(relid, schema, name);
	return relid;
}

/* The version the SQL objects of the extension are at, and its owner. */
static void
installed_extension(char **version, Oid *owner)
{
	Oid         extid = get_extension_oid("anonymize", false);
	Relation    rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple   tuple;
	bool        isnull;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "could not find tuple for extension %u", extid);
	*owner = ((Form_pg_extension)GETSTRUCT(tuple))->extowner;
	*version = TextDatumGetCString(heap_getattr(
		tuple, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* The role that owns the extension, its mapping and its audit log. */
Oid
anonymize_extension_owner(void)
{
	char *version;
	Oid   owner;

	installed_extension(&version, &owner);
	return owner;
}

/*
 * Errors out unless the SQL objects are those of this library's version:
 * after the library of 1.2 is installed, a database still at 1.0 or 1.1
 * has the mapping tables of those versions until ALTER EXTENSION UPDATE.
 */
void
check_extension_version(void)
{
	char *version;
	Oid   owner;

	installed_extension(&version, &owner);
	if (strcmp(version, ANONYMIZE_LIBRARY_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension anonymize must be updated"),
				 errdetail("Version %s is installed in this database; the "
						   "installed library is version %s.",
						   version, ANONYMIZE_LIBRARY_VERSION),
				 errhint("Run ALTER EXTENSION anonymize UPDATE; it converts "
						 "the mapping.")));
}

/* The error of every function while there is no customer relation. */
void
report_no_customer_relation(void)
{
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("the anonymize mapping has no customer relation"),
					errhint("Map your schema, starting with "
							"anonymize.set_customer_relation(), or load the "
							"mapping of the example schema with \\i "
							"examples/billing_mapping.sql.")));
}

static void
resolve_relation(MappedRelation *rel, char *schema, char *name,
				 char *key_column)
{
	rel->schema = schema;
	rel->name = name;
	rel->key_column = key_column;
	rel->relid = resolve_mapped_relation(schema, name);
	rel->owner = relation_owner(rel->relid);
}

static void
resolve_erased_column(ErasedColumn *column, Oid relid, char *name)
{
	column->name = name;
	column->not_null = check_column(relid, name);
}

/* Runs a query of a configuration table; returns its number of rows. */
static uint64
read_table(const char *sql, const char *table)
{
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read anonymize.%s", table);
	return SPI_processed;
}

/* Reads anonymize.customer_relation into m: the scope customer. */
static void
read_customer_relation(Mapping *m, MemoryContext cxt)
{
	MemoryContext spi_cxt;
	Scope        *customer;

	if (read_table(CUSTOMER_QUERY, "customer_relation") != 1)
		report_no_customer_relation();

	spi_cxt = MemoryContextSwitchTo(cxt);
	customer = &m->scopes[0];
	customer->name = "customer";
	customer->parent = -1;
	resolve_relation(&customer->relation, result_text(0, 1), result_text(0, 2),
					 result_text(0, 3));
	m->customer = customer->relation;
	resolve_erased_column(&m->name, m->customer.relid, result_text(0, 4));
	resolve_erased_column(&m->email, m->customer.relid, result_text(0, 5));
	m->placeholder = result_text(0, 6);
	m->company_scope_name = result_text(0, 7);
	m->company_condition = result_text(0, 8);
	m->company_name = result_text(0, 9);
	MemoryContextSwitchTo(spi_cxt);
}

/* Names the scope (or the customer relation) whose relation is resolved. */
static void
resolve_error_context(void *arg)
{
	errcontext("%s", (const char *)arg);
}

/* Reads anonymize.scopes into m->scopes[1 ..]; parents are linked later. */
static void
read_scopes(Mapping *m, MemoryContext cxt)
{
	uint64        n_rows = read_table(SCOPES_QUERY, "scopes");
	MemoryContext spi_cxt;

	spi_cxt = MemoryContextSwitchTo(cxt);
	m->scopes = palloc0(sizeof(Scope) * (n_rows + 1));
	m->n_scopes = n_rows + 1;
	for (uint64 row = 0; row < n_rows; row++)
	{
		Scope               *scope = &m->scopes[row + 1];
		ErrorContextCallback callback;

		scope->name = result_text(row, 1);
		callback.callback = resolve_error_context;
		callback.arg = psprintf("anonymize scope \"%s\"", scope->name);
		callback.previous = error_context_stack;
		error_context_stack = &callback;
		resolve_relation(&scope->relation, result_text(row, 2),
						 result_text(row, 3), result_text(row, 4));
		error_context_stack = callback.previous;
		scope->parent_name = result_text(row, 5);
		scope->parent_column = result_text(row, 6);
		scope->condition = result_text(row, 7);
	}
	MemoryContextSwitchTo(spi_cxt);
}

/* The scope of that name; errors out, naming what refers to it, if none. */
const Scope *
find_scope(const Mapping *m, const char *name, const char *referrer)
{
	for (int i = 0; i < m->n_scopes; i++)
		if (strcmp(m->scopes[i].name, name) == 0)
			return &m->scopes[i];
	ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
					errmsg("scope \"%s\" does not exist", name),
					errdetail("%s refers to it.", referrer),
					errhint("Add it with anonymize.set_scope().")));
	return NULL; /* keep compiler quiet */
}

/*
 * Array column n of the current row as C strings (NULL for a NULL element
 * where allowed); NULL array: 0.
 */
static int
result_names(int row, int n, char ***names, bool allow_nulls)
{
	bool  isnull;
	Datum array = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
								n, &isnull);
	Oid   type;
	Datum *elements;
	bool  *nulls;
	int    count;
	int16  typlen;
	bool   typbyval;
	char   typalign;

	*names = NULL;
	if (isnull)
		return 0;
	type = ARR_ELEMTYPE(DatumGetArrayTypeP(array));
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	deconstruct_array(DatumGetArrayTypeP(array), type, typlen, typbyval,
					  typalign, &elements, &nulls, &count);
	*names = palloc(sizeof(char *) * Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		if (nulls[i] && !allow_nulls)
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("column names must not be null")));
		if (nulls[i])
			(*names)[i] = NULL;
		else if (type == NAMEOID)
			(*names)[i] = pstrdup(NameStr(*DatumGetName(elements[i])));
		else
			(*names)[i] = TextDatumGetCString(elements[i]);
	}
	return count;
}

static RuleKind
rule_kind(const char *kind)
{
	if (strcmp(kind, "purge") == 0)
		return RULE_PURGE;
	if (strcmp(kind, "erase") == 0)
		return RULE_ERASE;
	if (strcmp(kind, "blocker") == 0)
		return RULE_BLOCKER;
	return RULE_BALANCE;
}

static AppliesTo
applies_to(const char *value)
{
	if (value == NULL || strcmp(value, "everyone") == 0)
		return APPLIES_EVERYONE;
	return strcmp(value, "company") == 0 ? APPLIES_COMPANY
										 : APPLIES_INDIVIDUAL;
}

/*
 * The columns an erase rule sets: its columns to NULL (or the placeholder),
 * then its replacements, whose values (jsonb) must be strings.
 */
static void
read_erased_columns(Rule *rule, int row)
{
	char **columns;
	char **keys;
	char **values;
	int    n_columns = result_names(row, 7, &columns, false);
	int    n_replacements = result_names(row, 8, &keys, false);

	result_names(row, 9, &values, true);
	rule->n_columns = n_columns + n_replacements;
	rule->columns = palloc0(sizeof(ErasedColumn) * Max(rule->n_columns, 1));
	for (int i = 0; i < rule->n_columns; i++)
	{
		ErasedColumn *column = &rule->columns[i];

		column->name = i < n_columns ? columns[i] : keys[i - n_columns];
		column->applies_to = rule->applies_to;
		column->rule_name = rule->rule_name;
		if (i < n_columns)
			continue;
		column->replacement = values[i - n_columns];
		if (column->replacement == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("replacement of column \"%s\" in erase rule "
							"\"%s\" is not a JSON string",
							column->name, rule->rule_name),
					 errhint("Give the SQL expression as a string, such as "
							 "{\"%s\": \"pg_catalog.now()\"}.",
							 column->name)));
	}
}

/* Reads anonymize.rules into m->rules, by name. */
static void
read_rules(Mapping *m, MemoryContext cxt)
{
	uint64        n_rows = read_table(RULES_QUERY, "rules");
	MemoryContext spi_cxt;

	spi_cxt = MemoryContextSwitchTo(cxt);
	m->n_rules = n_rows;
	m->rules = palloc0(sizeof(Rule) * Max(n_rows, 1));
	for (uint64 row = 0; row < n_rows; row++)
	{
		Rule *rule = &m->rules[row];

		rule->rule_name = result_text(row, 1);
		rule->kind = rule_kind(result_text(row, 2));
		rule->scope_name = result_text(row, 3);
		rule->expression = result_text(row, 4);
		rule->reason = result_text(row, 5);
		rule->applies_to = applies_to(result_text(row, 6));
		if (rule->kind == RULE_ERASE)
			read_erased_columns(rule, row);
	}
	MemoryContextSwitchTo(spi_cxt);
}

/* The index of a scope's parent; errors out on a cycle of parents. */
static void
link_scope(Mapping *m, int i)
{
	Scope       *scope = &m->scopes[i];
	const Scope *up;
	char        *referrer = psprintf("Scope \"%s\"", scope->name);

	scope->parent = find_scope(m, scope->parent_name, referrer) - m->scopes;
	scope->depth = 1;
	for (up = &m->scopes[scope->parent]; up->parent_name != NULL;
		 up = find_scope(m, up->parent_name, referrer))
		if (++scope->depth > m->n_scopes)
			ereport(
				ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("scope \"%s\" is its own ancestor", up->name),
				 errdetail("Scopes form a tree rooted at the scope "
						   "customer."),
				 errhint("Change its parent with anonymize.set_scope().")));
}

/* Links scopes, rules and the company test to the scopes they name. */
static void
link_mapping(Mapping *m)
{
	for (int i = 1; i < m->n_scopes; i++)
		link_scope(m, i);
	if (m->company_scope_name != NULL)
		m->company_scope =
			find_scope(m, m->company_scope_name, "The company test");

	m->purge_rules = palloc(sizeof(Rule *) * Max(m->n_rules, 1));
	m->blocker_rules = palloc(sizeof(Rule *) * Max(m->n_rules, 1));
	for (int i = 0; i < m->n_rules; i++)
	{
		Rule *rule = &m->rules[i];

		rule->scope = find_scope(m, rule->scope_name,
								 psprintf("Rule \"%s\"", rule->rule_name));
		if (rule->kind == RULE_PURGE)
			m->purge_rules[m->n_purge_rules++] = rule;
		else if (rule->kind == RULE_BLOCKER)
			m->blocker_rules[m->n_blocker_rules++] = rule;
	}
	/* blockers, then balances: the order in which they are reported */
	for (int i = 0; i < m->n_rules; i++)
		if (m->rules[i].kind == RULE_BALANCE)
			m->blocker_rules[m->n_blocker_rules++] = &m->rules[i];
}

/* The erasure of a scope, added to m->erased_scopes if need be. */
static ErasedScope *
erased_scope(Mapping *m, const Scope *scope, int max_columns)
{
	ErasedScope *erased;

	for (int i = 0; i < m->n_erased_scopes; i++)
		if (m->erased_scopes[i].scope == scope)
			return &m->erased_scopes[i];
	erased = &m->erased_scopes[m->n_erased_scopes++];
	erased->scope = scope;
	erased->columns = palloc(sizeof(ErasedColumn *) * (max_columns + 1));
	erased->rules = palloc(sizeof(Rule *) * Max(m->n_rules, 1));
	return erased;
}

/*
 * Groups the columns of the erase rules by scope, so that each scope gets
 * one UPDATE; the customer scope comes last.  On the customer scope the
 * email is the built-in erasure, which a replacement takes the place of.
 */
static void
group_erased_columns(Mapping *m)
{
	int max_columns = 0; /* of all rules: enough for any scope */

	for (int i = 0; i < m->n_rules; i++)
		max_columns += m->rules[i].n_columns;
	m->erased_scopes = palloc0(sizeof(ErasedScope) * (m->n_rules + 1));
	for (int i = 0; i < m->n_rules; i++)
	{
		Rule        *rule = &m->rules[i];
		ErasedScope *erased;

		if (rule->kind != RULE_ERASE || rule->scope == &m->scopes[0])
			continue;
		erased = erased_scope(m, rule->scope, max_columns);
		erased->rules[erased->n_rules++] = rule;
		for (int c = 0; c < rule->n_columns; c++)
			erased->columns[erased->n_columns++] = &rule->columns[c];
	}

	/* the customer: name and email, then its erase rules */
	{
		ErasedScope *erased = erased_scope(m, &m->scopes[0], max_columns);

		erased->name_column = m->name.name;
		erased->columns[erased->n_columns++] = &m->email;
		for (int i = 0; i < m->n_rules; i++)
		{
			Rule *rule = &m->rules[i];

			if (rule->kind != RULE_ERASE || rule->scope != &m->scopes[0])
				continue;
			erased->rules[erased->n_rules++] = rule;
			for (int c = 0; c < rule->n_columns; c++)
			{
				ErasedColumn *column = &rule->columns[c];

				if (strcmp(column->name, m->email.name) != 0)
					erased->columns[erased->n_columns++] = column;
				else if (column->replacement != NULL)
					m->email.replacement = column->replacement;
			}
		}
	}
}

/*
 * Groups the erased scopes by relation (the customer's own scope alone):
 * the first of each relation leads, and its UPDATE erases them all.
 */
static void
group_by_relation(Mapping *m)
{
	for (int i = 0; i < m->n_erased_scopes; i++)
	{
		ErasedScope *erased = &m->erased_scopes[i];
		int          leader = i;

		for (int j = 0; j < i && erased->scope != &m->scopes[0]; j++)
			if (m->erased_scopes[j].scope != &m->scopes[0] &&
				m->erased_scopes[j].scope->relation.relid ==
					erased->scope->relation.relid)
			{
				leader = j;
				break;
			}
		erased->leader = leader;
		if (leader == i)
			erased->members = palloc(sizeof(int) * Max(m->n_erased_scopes, 1));
		m->erased_scopes[leader]
			.members[m->erased_scopes[leader].n_members++] = i;
	}
}

/* Whether the erasure of the scope sets the column (the customer's name). */
static bool
sets_column(const Mapping *m, const Scope *scope, const char *column)
{
	for (int i = 0; i < m->n_erased_scopes; i++)
	{
		const ErasedScope *erased = &m->erased_scopes[i];

		if (erased->scope != scope)
			continue;
		if (erased->name_column != NULL &&
			strcmp(erased->name_column, column) == 0)
			return true;
		for (int c = 0; c < erased->n_columns; c++)
			if (strcmp(erased->columns[c]->name, column) == 0)
				return true;
	}
	return false;
}

/*
 * Marks the scopes linked to the customer through a column that an
 * erasure of an ancestor sets: once that ran, they can no longer be found,
 * so they are verified at once after their own statement (erasure.c).
 */
static void
mark_changing_links(Mapping *m)
{
	for (int i = 1; i < m->n_scopes; i++)
	{
		Scope *scope = &m->scopes[i];

		for (const Scope *cur = scope; cur->parent >= 0;
			 cur = &m->scopes[cur->parent])
			if (sets_column(m, &m->scopes[cur->parent], cur->parent_column))
				scope->link_changes = true;
	}
}

/*
 * Reads and resolves the whole mapping into the current memory context and
 * validates it (mapping_validate.c); with check_assignments, also every
 * replacement against its column, as anonymize.check_mapping() does.  The
 * caller is connected to SPI.  Errors out, naming the entry, when the
 * mapping is wrong or refers to what does not exist.
 */
Mapping *
load_mapping(bool check_assignments)
{
	MemoryContext cxt = CurrentMemoryContext;
	Mapping      *m = palloc0(sizeof(Mapping));
	Oid           save_userid;
	int           save_sec_context;

	check_extension_version();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(anonymize_extension_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_NOFORCE_RLS);
	read_scopes(m, cxt);
	read_customer_relation(m, cxt);
	read_rules(m, cxt);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	MemoryContextSwitchTo(cxt);
	link_mapping(m);
	validate_mapping(m, check_assignments);
	group_erased_columns(m);
	group_by_relation(m);
	mark_changing_links(m);
	order_operations(m);
	check_cascades(m);
	return m;
}
