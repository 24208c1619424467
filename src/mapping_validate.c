/*-------------------------------------------------------------------------
 *
 * mapping_validate.c
 *	  The validation of the mapping, in one place: scopes (key and parent
 *	  columns, conditions), the company test, and rules (conditions,
 *	  amounts, erased columns and their replacements).  Run by
 *	  anonymize.check_mapping() after every change of the mapping and again
 *	  whenever the plans are rebuilt, so a stale or wrong entry is reported
 *	  by name, with what is wrong with it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_coerce.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_check_mapping);
PG_FUNCTION_INFO_V1(anonymize_check_relation);

/* Errors out unless the current user has the privileges of the owner. */
void
check_extension_owner(void)
{
	if (!has_privs_of_role(GetUserId(), anonymize_extension_owner()))
		ereport(
			ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("must be owner of extension anonymize"),
			 errdetail(
				 "Only the owner of the extension can change its mapping.")));
}

/* The attribute row of a column; errors out when there is none. */
static HeapTuple
lookup_column(Oid relid, const char *column)
{
	HeapTuple tuple = SearchSysCacheAttName(relid, column);

	if (!HeapTupleIsValid(tuple) ||
		((Form_pg_attribute)GETSTRUCT(tuple))->attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s.%s\" does not exist",
						column, get_namespace_name(get_rel_namespace(relid)),
						get_rel_name(relid)),
				 errdetail("The anonymize mapping refers to it.")));
	return tuple;
}

/* The type of a column; errors out when there is none. */
static Oid
column_type(Oid relid, const char *column)
{
	HeapTuple tuple = lookup_column(relid, column);
	Oid       type = ((Form_pg_attribute)GETSTRUCT(tuple))->atttypid;

	ReleaseSysCache(tuple);
	return type;
}

/* Errors out unless the column exists and is of type uuid. */
Oid
check_key_column(Oid relid, const char *column)
{
	Oid type = column_type(relid, column);

	if (type != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("key column \"%s\" of relation \"%s.%s\" must be of "
						"type uuid",
						column, get_namespace_name(get_rel_namespace(relid)),
						get_rel_name(relid)),
				 errdetail("It is of type %s.", format_type_be(type))));
	return type;
}

bool
is_character_type(Oid type)
{
	return type == TEXTOID || type == VARCHAROID || type == BPCHAROID;
}

bool
is_integer_type(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID;
}

/*
 * Errors out unless a scope may link through the column: uuid, a character
 * or an integer type.
 */
static Oid
check_link_column(Oid relid, const char *column)
{
	Oid type = column_type(relid, column);

	if (type != UUIDOID && !is_character_type(type) && !is_integer_type(type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s.%s\" cannot link "
						"scopes",
						column, get_namespace_name(get_rel_namespace(relid)),
						get_rel_name(relid)),
				 errdetail("It is of type %s; key and parent columns must "
						   "be of type uuid, text, varchar, char, smallint, "
						   "integer or bigint.",
						   format_type_be(type))));
	return type;
}

/* Errors out unless the column exists; returns whether it is NOT NULL. */
bool
check_column(Oid relid, const char *column)
{
	HeapTuple         tuple = lookup_column(relid, column);
	Form_pg_attribute attr = (Form_pg_attribute)GETSTRUCT(tuple);
	bool              not_null = attr->attnotnull;
	bool              generated = (attr->attgenerated != '\0');

	ReleaseSysCache(tuple);
	if (generated)
		ereport(
			ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("column \"%s\" of relation \"%s\" is a generated column",
					column, get_rel_name(relid)),
			 errdetail(
				 "The anonymize mapping can only erase ordinary columns.")));
	return not_null;
}

/* What an error raised while checking the mapping refers to. */
typedef struct EntryCheck
{
	const char *entry;       /* "anonymize rule "x" on scope "y"" */
	const char *parsed_text; /* text given to raw_parser, or NULL */
} EntryCheck;

/*
 * Names the entry in errors raised while it is checked, and points a
 * syntax error into the expression rather than the caller's query.
 */
static void
entry_error_context(void *arg)
{
	const EntryCheck *check = (const EntryCheck *)arg;
	int               position = geterrposition();

	if (check->parsed_text != NULL && position > 0)
	{
		errposition(0);
		internalerrposition(position);
		internalerrquery(check->parsed_text);
	}
	errcontext("%s", check->entry);
}

static void
push_entry(ErrorContextCallback *callback, EntryCheck *check,
		   const char *entry)
{
	check->entry = entry;
	check->parsed_text = NULL;
	callback->callback = entry_error_context;
	callback->arg = (void *)check;
	callback->previous = error_context_stack;
	error_context_stack = callback;
}

static void
pop_entry(ErrorContextCallback *callback)
{
	error_context_stack = callback->previous;
}

/*
 * Errors out unless the text is one SQL expression and nothing else, so
 * that it cannot end the surrounding statement or add clauses to it.
 */
static void
check_single_expression(const char *expression, EntryCheck *check)
{
	List       *statements;
	SelectStmt *select = NULL;

	check->parsed_text = psprintf("SELECT %s\n", expression);
	statements = raw_parser(check->parsed_text, RAW_PARSE_DEFAULT);
	check->parsed_text = NULL;

	if (list_length(statements) == 1 &&
		IsA(linitial_node(RawStmt, statements)->stmt, SelectStmt))
		select = (SelectStmt *)linitial_node(RawStmt, statements)->stmt;

	if (select == NULL || select->op != SETOP_NONE ||
		list_length(select->targetList) != 1 || select->fromClause ||
		select->whereClause || select->groupClause || select->havingClause ||
		select->windowClause || select->sortClause || select->limitCount ||
		select->limitOffset || select->lockingClause || select->withClause ||
		select->intoClause || select->distinctClause || select->valuesLists)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("\"%s\" is not a single SQL expression", expression)));
}

typedef enum ExpressionKind
{
	EXPR_CONDITION, /* boolean */
	EXPR_AMOUNT,    /* numeric */
	EXPR_VALUE      /* any type */
} ExpressionKind;

/*
 * Errors out unless the expression is a single expression over a row "t"
 * of the relation, of the kind's type.  The caller is connected to SPI.
 */
static void
check_expression(const MappedRelation *rel, const char *expression,
				 ExpressionKind kind, EntryCheck *check)
{
	MemoryContext cxt = CurrentMemoryContext;
	char         *sql;
	Oid           type;

	check_single_expression(expression, check);
	sql = psprintf("SELECT (%s\n) FROM %s t LIMIT 0", expression,
				   quote_qualified_identifier(rel->schema, rel->name));
	run_expression_check(rel->owner, sql);
	type = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
	/* SPI leaves its own context current; the mapping is built in cxt */
	MemoryContextSwitchTo(cxt);

	if (kind == EXPR_AMOUNT && TypeCategory(type) != TYPCATEGORY_NUMERIC)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("amount \"%s\" must be of a numeric type, not %s",
						expression, format_type_be(type))));
	if (kind == EXPR_CONDITION && type != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("condition \"%s\" must be of type boolean, not %s",
						expression, format_type_be(type))));
}

/*
 * Errors out unless the replacement's value can be assigned to the column,
 * as in an UPDATE: the statement is parsed and analyzed, never run.
 */
static void
check_assignment(const MappedRelation *rel, const ErasedColumn *column)
{
	MemoryContext cxt = CurrentMemoryContext;
	char         *sql = psprintf("UPDATE %s t SET %s = (%s\n) WHERE false",
								 quote_qualified_identifier(rel->schema, rel->name),
								 quote_identifier(column->name), column->replacement);
	SPIPlanPtr    plan = SPI_prepare(sql, 0, NULL);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	SPI_freeplan(plan);
	MemoryContextSwitchTo(cxt);
}

/* The single-column primary key of a relation, or NULL. */
static char *
primary_key_column(Oid relid)
{
	Relation  rel = table_open(relid, AccessShareLock);
	Oid       index = RelationGetPrimaryKeyIndex(rel);
	char     *column = NULL;
	HeapTuple tuple;

	table_close(rel, AccessShareLock);
	if (!OidIsValid(index))
		return NULL;
	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for index %u", index);
	if (((Form_pg_index)GETSTRUCT(tuple))->indnkeyatts == 1)
		column = get_attname(
			relid, ((Form_pg_index)GETSTRUCT(tuple))->indkey.values[0], false);
	ReleaseSysCache(tuple);
	return column;
}

/*
 * A scope: its key column, the parent column it matches (by default the
 * customer key or the parent relation's primary key), its condition.
 */
static void
check_scope(Mapping *m, Scope *scope)
{
	const Scope *parent = &m->scopes[scope->parent];

	scope->key_type =
		check_link_column(scope->relation.relid, scope->relation.key_column);
	if (scope->parent_column == NULL)
	{
		scope->parent_column =
			scope->parent == 0 ? parent->relation.key_column
							   : primary_key_column(parent->relation.relid);
		if (scope->parent_column == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("relation \"%s.%s\" of scope \"%s\" has no "
							"single-column primary key",
							parent->relation.schema, parent->relation.name,
							parent->name),
					 errhint("Name the column that key column \"%s\" matches: "
							 "the parent_column of anonymize.set_scope().",
							 scope->relation.key_column)));
	}
	scope->parent_type =
		check_link_column(parent->relation.relid, scope->parent_column);
	if ((scope->key_type == UUIDOID && is_integer_type(scope->parent_type)) ||
		(is_integer_type(scope->key_type) && scope->parent_type == UUIDOID))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("key column \"%s\" (%s) of scope \"%s\" cannot match "
						"column \"%s\" (%s) of scope \"%s\"",
						scope->relation.key_column,
						format_type_be(scope->key_type), scope->name,
						scope->parent_column,
						format_type_be(scope->parent_type), parent->name),
				 errdetail("A uuid never equals an integer."),
				 errhint("Name the column the key matches: the "
						 "parent_column of anonymize.set_scope().")));
}

static const char *
applies_to_name(AppliesTo applies_to)
{
	switch (applies_to)
	{
		case APPLIES_INDIVIDUAL:
			return "individuals";
		case APPLIES_COMPANY:
			return "companies";
		default:
			return "everyone";
	}
}

/* Whether two erase rules can apply to the same customer. */
static bool
overlap(AppliesTo a, AppliesTo b)
{
	return a == APPLIES_EVERYONE || b == APPLIES_EVERYONE || a == b;
}

/*
 * Errors out if a column of the erase rule is erased by an earlier rule of
 * the same scope that can apply to the same customers, or is the column a
 * rule may not set.
 */
static void
check_erased_column_once(const Mapping *m, const Rule *rule,
						 const ErasedColumn *column)
{
	const Scope *scope = rule->scope;

	if (strcmp(column->name, scope->relation.key_column) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("erase rule \"%s\" cannot erase key column \"%s\"",
						rule->rule_name, column->name),
				 errdetail("The key column links the rows of scope \"%s\" "
						   "to the customer.",
						   scope->name)));
	if (scope == &m->scopes[0] && strcmp(column->name, m->name.name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("erase rule \"%s\" cannot set name column \"%s\"",
						rule->rule_name, column->name),
				 errdetail("The customer's name follows the company test: "
						   "the company name for a company, erased for an "
						   "individual."),
				 errhint("Change the company name with "
						 "anonymize.set_company_test().")));
	if (scope == &m->scopes[0] && strcmp(column->name, m->email.name) == 0 &&
		column->replacement != NULL && rule->applies_to != APPLIES_EVERYONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("erase rule \"%s\" replaces email column \"%s\" for "
						"%s only",
						rule->rule_name, column->name,
						applies_to_name(rule->applies_to)),
				 errdetail("The email of every customer is erased; a "
						   "replacement takes the place of that erasure for "
						   "everyone."),
				 errhint("Set the replacement in a rule that applies to "
						 "everyone.")));
	for (const Rule *other = m->rules; other < rule; other++)
	{
		if (other->kind != RULE_ERASE || other->scope != scope ||
			!overlap(other->applies_to, rule->applies_to))
			continue;
		for (int c = 0; c < other->n_columns; c++)
			if (strcmp(other->columns[c].name, column->name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" of scope \"%s\" is erased by "
								"rules \"%s\" and \"%s\"",
								column->name, scope->name, other->rule_name,
								rule->rule_name),
						 errdetail("Rule \"%s\" applies to %s, rule \"%s\" "
								   "to %s: a customer would get both.",
								   other->rule_name,
								   applies_to_name(other->applies_to),
								   rule->rule_name,
								   applies_to_name(rule->applies_to)),
						 errhint("Erase each column of a scope in one rule "
								 "per kind of customer.")));
	}
	for (int c = 0; c < rule->n_columns && &rule->columns[c] != column; c++)
		if (strcmp(rule->columns[c].name, column->name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" appears twice in erase rule \"%s\"",
							column->name, rule->rule_name),
					 errdetail("A column is either erased or replaced, "
							   "once.")));
}

/* An erased column: exists, is ordinary, can take its erased value. */
static void
check_erased_column(const Mapping *m, const Rule *rule, ErasedColumn *column,
					bool check_assignments, EntryCheck *check)
{
	const MappedRelation *rel = &rule->scope->relation;
	Oid                   type = column_type(rel->relid, column->name);

	column->not_null = check_column(rel->relid, column->name);
	check_erased_column_once(m, rule, column);
	if (column->replacement != NULL)
	{
		check_single_expression(column->replacement, check);
		if (check_assignments)
			check_assignment(rel, column);
	}
	else if (column->not_null && !is_character_type(type))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("erase rule \"%s\" cannot erase NOT NULL column "
						"\"%s\" of type %s",
						rule->rule_name, column->name, format_type_be(type)),
				 errdetail("Only character columns that are NOT NULL get "
						   "the placeholder."),
				 errhint("Give the column a replacement, such as "
						 "{\"%s\": \"...\"}, instead of listing it in "
						 "columns.",
						 column->name)));
}

static void
check_rule(const Mapping *m, Rule *rule, bool check_assignments)
{
	ErrorContextCallback callback;
	EntryCheck           check;

	push_entry(&callback, &check,
			   psprintf("anonymize rule \"%s\" on scope \"%s\"",
						rule->rule_name, rule->scope->name));
	if (rule->kind == RULE_PURGE && rule->scope == &m->scopes[0])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purge rule \"%s\" cannot delete customers",
						rule->rule_name),
				 errdetail("Anonymization keeps the customer row, erased, "
						   "for the invoices that refer to it."),
				 errhint("Erase its columns with anonymize.set_erase_rule() "
						 "on scope customer.")));
	if (rule->kind == RULE_ERASE)
	{
		if (rule->n_columns == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("erase rule \"%s\" erases nothing",
								   rule->rule_name),
							errhint("Give it columns or replacements.")));
		for (int c = 0; c < rule->n_columns; c++)
			check_erased_column(m, rule, &rule->columns[c], check_assignments,
								&check);
	}
	else if (rule->expression != NULL)
		check_expression(
			&rule->scope->relation, rule->expression,
			rule->kind == RULE_BALANCE ? EXPR_AMOUNT : EXPR_CONDITION, &check);
	pop_entry(&callback);
}

static void
check_company_test(const Mapping *m)
{
	ErrorContextCallback callback;
	EntryCheck           check;
	const Scope         *scope = m->company_scope;

	if (scope == NULL)
		return;
	push_entry(
		&callback, &check,
		psprintf("anonymize company test on scope \"%s\"", scope->name));
	check_expression(&scope->relation, m->company_condition, EXPR_CONDITION,
					 &check);
	check_expression(&scope->relation, m->company_name, EXPR_VALUE, &check);
	pop_entry(&callback);
}

/*
 * Validates the whole mapping, resolved by load_mapping(); completes the
 * scopes (types, default parent columns) and the erased columns (NOT
 * NULL).  The caller is connected to SPI.
 */
/* The replacement of the email column, from an erase rule on customer. */
static const char *
email_replacement(const Mapping *m)
{
	for (int i = 0; i < m->n_rules; i++)
		for (int c = 0; c < m->rules[i].n_columns; c++)
			if (m->rules[i].kind == RULE_ERASE &&
				m->rules[i].scope == &m->scopes[0] &&
				strcmp(m->rules[i].columns[c].name, m->email.name) == 0 &&
				m->rules[i].columns[c].replacement != NULL)
				return m->rules[i].columns[c].replacement;
	return NULL;
}

/*
 * The name and email columns of the customer: the name gets the company
 * name (text), the email NULL or the placeholder, unless replaced.
 */
static void
check_customer_columns(const Mapping *m)
{
	Oid name_type = column_type(m->customer.relid, m->name.name);
	Oid email_type = column_type(m->customer.relid, m->email.name);

	if (!is_character_type(name_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("name column \"%s\" must be of a character type, "
						"not %s",
						m->name.name, format_type_be(name_type)),
				 errdetail("A company keeps its company name there.")));
	if (m->email.not_null && !is_character_type(email_type) &&
		email_replacement(m) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("cannot erase NOT NULL email column \"%s\" of type %s",
						m->email.name, format_type_be(email_type)),
				 errdetail("Only character columns that are NOT NULL get "
						   "the placeholder."),
				 errhint("Give it a replacement in an erase rule on scope "
						 "customer, such as {\"%s\": \"...\"}.",
						 m->email.name)));
}

void
validate_mapping(Mapping *m, bool check_assignments)
{
	ErrorContextCallback callback;
	EntryCheck           check;

	push_entry(&callback, &check,
			   psprintf("anonymize customer relation \"%s.%s\"",
						m->customer.schema, m->customer.name));
	m->scopes[0].key_type =
		check_key_column(m->customer.relid, m->customer.key_column);
	if (strcmp(m->name.name, m->email.name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the name and the email of the customer are both "
						"column \"%s\"",
						m->name.name),
				 errhint("Map them with anonymize.set_customer_relation().")));
	check_customer_columns(m);
	pop_entry(&callback);
	for (int i = 1; i < m->n_scopes; i++)
	{
		ErrorContextCallback callback;
		EntryCheck           check;
		Scope               *scope = &m->scopes[i];

		push_entry(&callback, &check,
				   psprintf("anonymize scope \"%s\"", scope->name));
		check_scope(m, scope);
		if (scope->condition != NULL)
			check_expression(&scope->relation, scope->condition,
							 EXPR_CONDITION, &check);
		pop_entry(&callback);
	}
	check_company_test(m);
	for (int i = 0; i < m->n_rules; i++)
		check_rule(m, &m->rules[i], check_assignments);
}

/*
 * anonymize.check_mapping(): reads and validates the whole mapping as the
 * plans would be built from it, and every replacement against its column,
 * within the caller's transaction; every function that changes the mapping
 * calls it after its change, so a wrong entry is refused at once.
 */
Datum
anonymize_check_mapping(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(
		CurrentMemoryContext, "anonymize mapping check", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	check_extension_owner();
	SPI_connect();
	load_mapping(true);
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}

/*
 * anonymize.check_relation() of versions 1.0 and 1.1, which version 1.2
 * drops: the symbol stays so that their scripts (run by CREATE EXTENSION
 * and by an update from them) can still create the function.
 */
Datum
anonymize_check_relation(PG_FUNCTION_ARGS)
{
	check_extension_version();
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("anonymize.check_relation() was removed in version 1.2")));
	PG_RETURN_VOID();
}
