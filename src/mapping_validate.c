/*-------------------------------------------------------------------------
 *
 * mapping_validate.c
 *	  Checks of mapping entries: key columns, erased columns, and the SQL
 *	  conditions and amounts of rules.  Used when the mapping is changed
 *	  (anonymize.check_relation) and again whenever the plans are rebuilt,
 *	  so a stale or bad entry is reported by name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_attribute.h"
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
#include "utils/syscache.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_check_relation);
PG_FUNCTION_INFO_V1(anonymize_check_mapping);

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
				 errdetail("The anonymize mapping refers to it."),
				 errhint("Restore the column or change the mapping with the "
						 "anonymize.set_* functions.")));
	return tuple;
}

/* Errors out unless the column exists and is of type uuid. */
void
check_key_column(Oid relid, const char *column)
{
	HeapTuple tuple = lookup_column(relid, column);
	Oid       type = ((Form_pg_attribute)GETSTRUCT(tuple))->atttypid;

	ReleaseSysCache(tuple);
	if (type != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("key column \"%s\" of relation \"%s.%s\" must be of "
						"type uuid",
						column, get_namespace_name(get_rel_namespace(relid)),
						get_rel_name(relid)),
				 errdetail("It is of type %s.", format_type_be(type))));
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

/* What an error raised while checking an expression refers to. */
typedef struct ExpressionCheck
{
	const Rule *rule;
	const char *parsed_text; /* text given to raw_parser, or NULL */
} ExpressionCheck;

/*
 * Names the rule in errors raised while its expression is checked, and
 * points a syntax error into the expression rather than the caller's query.
 */
static void
rule_error_context(void *arg)
{
	const ExpressionCheck *check = (const ExpressionCheck *)arg;
	const Rule            *rule = check->rule;
	int                    position = geterrposition();

	if (check->parsed_text != NULL && position > 0)
	{
		errposition(0);
		internalerrposition(position);
		internalerrquery(check->parsed_text);
	}
	if (rule->rule_name)
		errcontext("anonymize rule \"%s\" on relation \"%s.%s\"",
				   rule->rule_name, rule->relation.schema,
				   rule->relation.name);
	else
		errcontext("anonymize rule on relation \"%s.%s\"",
				   rule->relation.schema, rule->relation.name);
}

/*
 * Errors out unless the text is one SQL expression and nothing else, so
 * that it cannot end the surrounding statement or add clauses to it.
 */
static void
check_single_expression(const char *expression, ExpressionCheck *check)
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

/*
 * Errors out unless the rule's expression is a single expression over the
 * rows of its relation, boolean for a condition, numeric for an amount.
 * The caller is connected to SPI.
 */
void
check_rule_expression(const Rule *rule)
{
	ErrorContextCallback callback;
	ExpressionCheck      check = {rule, NULL};
	char                *sql;
	Oid                  type;

	if (rule->expression == NULL)
		return;

	callback.callback = rule_error_context;
	callback.arg = (void *)&check;
	callback.previous = error_context_stack;
	error_context_stack = &callback;

	check_single_expression(rule->expression, &check);
	sql = psprintf("SELECT (%s\n) FROM %s t LIMIT 0", rule->expression,
				   quote_qualified_identifier(rule->relation.schema,
											  rule->relation.name));
	run_expression_check(rule->relation.owner, sql);
	type = SPI_gettypeid(SPI_tuptable->tupdesc, 1);

	if (rule->kind == RULE_BALANCE)
	{
		if (TypeCategory(type) != TYPCATEGORY_NUMERIC)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("amount \"%s\" must be of a numeric type, not %s",
							rule->expression, format_type_be(type))));
	}
	else if (type != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("condition \"%s\" must be of type boolean, not %s",
						rule->expression, format_type_be(type))));

	error_context_stack = callback.previous;
}

/*
 * anonymize.check_relation(relation, key_column, columns, expression,
 * expression_kind): the check behind every anonymize.set_* function.
 */
Datum
anonymize_check_relation(PG_FUNCTION_ARGS)
{
	Oid  relid;
	Rule rule = {0};

	check_extension_owner();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("relation and key column must not be null")));

	relid = PG_GETARG_OID(0);
	rule.relation.schema = get_namespace_name(get_rel_namespace(relid));
	rule.relation.name = get_rel_name(relid);
	if (rule.relation.name == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
						errmsg("relation with OID %u does not exist", relid)));
	resolve_mapped_relation(rule.relation.schema, rule.relation.name);
	rule.relation.owner = relation_owner(relid);
	check_key_column(relid, NameStr(*PG_GETARG_NAME(1)));

	if (!PG_ARGISNULL(2))
	{
		Datum *names;
		bool  *nulls;
		int    n;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), NAMEOID, NAMEDATALEN,
						  false, TYPALIGN_CHAR, &names, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
								errmsg("column names must not be null")));
			check_column(relid, NameStr(*DatumGetName(names[i])));
		}
	}

	if (!PG_ARGISNULL(3))
	{
		char *kind = PG_ARGISNULL(4) ? "condition"
									 : text_to_cstring(PG_GETARG_TEXT_PP(4));

		if (strcmp(kind, "condition") == 0)
			rule.kind = RULE_BLOCKER;
		else if (strcmp(kind, "amount") == 0)
			rule.kind = RULE_BALANCE;
		else
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("invalid expression kind \"%s\"", kind),
							errhint("Use \"condition\" or \"amount\".")));
		rule.expression = text_to_cstring(PG_GETARG_TEXT_PP(3));

		SPI_connect();
		check_rule_expression(&rule);
		SPI_finish();
	}
	PG_RETURN_VOID();
}

/*
 * anonymize.check_mapping(): reads and checks the whole mapping as the plans
 * would be built from it, within the caller's transaction; set_purge_rule()
 * calls it after its change, so that a rule whose purge would cascade into
 * relations it does not cover is refused at once.
 */
Datum
anonymize_check_mapping(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(
		CurrentMemoryContext, "anonymize mapping check", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	check_extension_owner();
	SPI_connect();
	load_mapping();
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}
