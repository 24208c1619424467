/*-------------------------------------------------------------------------
 *
 * erasure_rules.c
 *	  The erasure rules, in one place: the SQL text of every statement that
 *	  anonymize runs, built from the mapping.
 *
 * The rules, as erasure.c applies them in this order:
 *
 *	1. Lock the customer row FOR UPDATE.  This also holds off concurrent
 *	   inserts that reference it (their foreign key check takes FOR KEY
 *	   SHARE).  When the company test is on the customer row, it is read
 *	   here, on the row before it is rewritten.
 *	2. Blockers: any row of a blocker rule's scope matching its condition
 *	   (a subscription not terminated, an invoice not paid or cancelled), or
 *	   a balance rule whose amounts do not sum to zero, refuses the
 *	   anonymization.  First the rows of the ancestor scopes of every
 *	   blocker, purged or erased scope are locked FOR UPDATE, top down,
 *	   which holds off new rows referencing them; then the blocker scopes'
 *	   rows are locked FOR SHARE, so nothing can turn into a blocker before
 *	   the transaction ends.
 *	3. The company test on a scope of its own (a billing address): its row
 *	   is locked and decides, before anything is rewritten, company or
 *	   individual; more than one row is an error.
 *	4. The queue locks the rows it will update, NOWAIT, before changing
 *	   any; each DELETE locks its rows NOWAIT as it goes.
 *	5. Purges and erasures, children first: which rows belong to the
 *	   customer is decided on the data as it was when the erasure started
 *	   (a scope's statement runs before any of its ancestors' rows change),
 *	   and children are deleted before the rows they reference.  An erasure
 *	   sets, in one UPDATE per row of a scope, every column of its erase
 *	   rules that applies to the customer's kind: NULL, the placeholder for
 *	   a NOT NULL character column, or the replacement's value.  On the
 *	   customer row, the email is erased (or replaced) and the name becomes
 *	   the company name for a company and is erased for an individual.
 *	6. Verify: every purge is run again while rows of its scope came back
 *	   (a trigger archived them); no purged scope holds a row; every column
 *	   erased to NULL or the placeholder holds nothing else, the name the
 *	   company name or nothing; and no erased scope holds more rows than its
 *	   UPDATE changed (a replaced column counts as erased when its row was
 *	   updated).  Otherwise the erasure fails and changes nothing
 *	   (verify.c).
 *	7. Audit: one row in anonymize.audit_log, with rows deleted per purge
 *	   rule and rows updated per erase rule, which also marks the customer
 *	   as anonymized, so that a second call changes nothing (audit.c).
 *
 * A scope's rows are those of its relation "t" joined, through derived
 * tables s1, s2, ... (one per ancestor scope, each with its own condition),
 * to the customer key: for one customer the parameter $1, for many (the
 * request queue) the elements of the uuid[] $1, joined as "c".  Every
 * statement is driven by the customer key, so that it uses the indexes of
 * the link columns.  Key and parent columns of different types are
 * compared as text.
 *
 * Each statement comes in two forms: for one customer and for many at
 * once.  A statement changes or locks one relation, so that it can run as
 * that relation's owner (security.c).  No statement returns a row per row
 * it touches: counts come from SPI_processed or from aggregates per
 * customer, so the memory of a call does not grow with the customer's
 * history.  The request queue never waits for a row lock: it locks
 * customers SKIP LOCKED and every other row NOWAIT, before changing
 * anything.
 *
 * Every identifier is quoted, values are always parameters, and every
 * function and operator is schema-qualified, so that objects planted in
 * the caller's search_path never run.  Conditions, amounts and
 * replacements come from the extension owner and run with search_path
 * pinned to pg_catalog by the calling function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "anonymize.h"

/* The parameters of the erase and verify statements. */
#define PLACEHOLDER_PARAM "$2"

/* The columns of "c", the customers of a statement for many. */
#define C_KEY "c.__anonymize_key"
#define C_COMPANY "c.__anonymize_company"
#define C_IS_COMPANY "c.__anonymize_is_company"

/* How a statement gets its customers. */
typedef enum Root
{
	ROOT_ONE,        /* $1, a uuid */
	ROOT_MANY,       /* c: the elements of $1, a uuid[] */
	ROOT_MANY_ERASE, /* c: $1 with the company names $3 and kinds $4 */
	ROOT_OUTER       /* c: a row of the enclosing query */
} Root;

static Root
root_of(bool many, bool erase)
{
	return !many ? ROOT_ONE : erase ? ROOT_MANY_ERASE : ROOT_MANY;
}

static const char *
root_key(Root root)
{
	return root == ROOT_ONE ? "$1" : C_KEY;
}

/* The company name decided for the customer; NULL for an individual. */
static const char *
root_company(Root root)
{
	return root == ROOT_ONE ? "$3" : C_COMPANY;
}

static const char *
root_is_company(Root root)
{
	return root == ROOT_ONE ? "$4" : C_IS_COMPANY;
}

static const char *
qualified(const MappedRelation *rel)
{
	return quote_qualified_identifier(rel->schema, rel->name);
}

/*
 * An SQL expression, evaluated on the row "t".  The newline ends a
 * trailing "--" comment before the closing parenthesis.
 */
static void
append_expression(StringInfo sql, const char *expression)
{
	appendStringInfo(sql, "(%s\n)", expression);
}

/*
 * lhs = rhs: directly for the same type or two integer or two character
 * types (so that an index of lhs serves), else compared as text (a varchar
 * holding a uuid matches the uuid).
 */
static void
append_link(StringInfo sql, const char *lhs, Oid lhs_type, const char *rhs,
			Oid rhs_type)
{
	if (lhs_type == rhs_type ||
		(is_integer_type(lhs_type) && is_integer_type(rhs_type)) ||
		(is_character_type(lhs_type) && is_character_type(rhs_type)))
		appendStringInfo(sql, "%s OPERATOR(pg_catalog.=) %s", lhs, rhs);
	else
		appendStringInfo(sql,
						 "%s::pg_catalog.text OPERATOR(pg_catalog.=) "
						 "%s::pg_catalog.text",
						 lhs, rhs);
}

/* A derived table of the join: one row per row of an ancestor. */
static void
append_ancestor(StringInfo items, const Scope *ancestor,
				const char *down_column, int level)
{
	appendStringInfo(items,
					 ", (SELECT t.%s AS __anonymize_up, t.%s AS "
					 "__anonymize_down FROM %s t",
					 quote_identifier(ancestor->relation.key_column),
					 quote_identifier(down_column),
					 qualified(&ancestor->relation));
	if (ancestor->condition != NULL)
	{
		appendStringInfoString(items, " WHERE ");
		append_expression(items, ancestor->condition);
	}
	appendStringInfo(items, ") s%d", level);
}

/*
 * The rows of the scope that belong to the customer(s), after "relation
 * t": after "joiner" (" USING " in a DELETE, " FROM " in an UPDATE, ", "
 * in a SELECT), the customers "c" and the ancestors' derived tables, then
 * " WHERE " and the conditions that link them.
 */
static void
append_scope_join(StringInfo sql, const Mapping *m, const Scope *scope,
				  Root root, const char *joiner)
{
	StringInfoData items;
	StringInfoData where;
	const Scope   *cur = scope;
	char *lhs = psprintf("t.%s", quote_identifier(scope->relation.key_column));
	Oid   lhs_type = scope->key_type;
	int   level = 0;

	initStringInfo(&items);
	initStringInfo(&where);
	if (root == ROOT_MANY)
		appendStringInfoString(&items, ", ROWS FROM (pg_catalog.unnest($1))"
									   " AS c (__anonymize_key)");
	else if (root == ROOT_MANY_ERASE)
		appendStringInfoString(
			&items,
			", ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($3),"
			" pg_catalog.unnest($4)) AS c (__anonymize_key,"
			" __anonymize_company, __anonymize_is_company)");

	while (cur->parent > 0)
	{
		const Scope *parent = &m->scopes[cur->parent];
		char        *alias = psprintf("s%d", ++level);

		append_ancestor(&items, parent, cur->parent_column, level);
		append_link(&where, lhs, lhs_type,
					psprintf("%s.__anonymize_down", alias), cur->parent_type);
		appendStringInfoString(&where, " AND ");
		lhs = psprintf("%s.__anonymize_up", alias);
		lhs_type = parent->key_type;
		cur = parent;
	}

	/* cur's parent is the customer, unless cur is the customer */
	if (cur->parent == 0 &&
		strcmp(cur->parent_column, m->customer.key_column) != 0)
	{
		char *alias = psprintf("s%d", ++level);

		append_ancestor(&items, &m->scopes[0], cur->parent_column, level);
		append_link(&where, lhs, lhs_type,
					psprintf("%s.__anonymize_down", alias), cur->parent_type);
		appendStringInfoString(&where, " AND ");
		lhs = psprintf("%s.__anonymize_up", alias);
		lhs_type = UUIDOID;
	}
	append_link(&where, lhs, lhs_type, root_key(root), UUIDOID);
	if (scope->condition != NULL)
	{
		appendStringInfoString(&where, " AND ");
		append_expression(&where, scope->condition);
	}

	if (items.len > 0)
		appendStringInfo(sql, "%s%s", joiner, items.data + 2);
	appendStringInfo(sql, " WHERE %s", where.data);
}

/* "relation t", then append_scope_join(). */
static void
append_scope_rows(StringInfo sql, const Mapping *m, const Scope *scope,
				  Root root, const char *joiner)
{
	appendStringInfo(sql, "%s t", qualified(&scope->relation));
	append_scope_join(sql, m, scope, root, joiner);
}

char *
customer_exists_sql(const Mapping *m)
{
	return psprintf("SELECT 1 FROM %s t WHERE t.%s OPERATOR(pg_catalog.=) $1",
					qualified(&m->customer),
					quote_identifier(m->customer.key_column));
}

/* The ids among $1 (a uuid[]) that are customers. */
char *
existing_customers_sql(const Mapping *m)
{
	const char *key = quote_identifier(m->customer.key_column);

	return psprintf("SELECT t.%s FROM %s t WHERE t.%s "
					"OPERATOR(pg_catalog.=) ANY ($1)",
					key, qualified(&m->customer), key);
}

/* ", is_company, company name" of the company test, on the row "t". */
static void
append_company_test(StringInfo sql, const Mapping *m)
{
	appendStringInfoString(sql, ", COALESCE(");
	append_expression(sql, m->company_condition);
	appendStringInfoString(sql, ", false), ");
	append_expression(sql, m->company_name);
	appendStringInfoString(sql, "::pg_catalog.text");
}

/*
 * Rule 1: returns the id of every customer locked and, when the company
 * test is on the customer row, whether it is a company and its name, then
 * the values of captured[] as text (what the residue check searches for
 * after the erasure; the row is locked, so they are the values the erasure
 * finds).  Many customers are locked in the order of their ids; without
 * waiting, a customer locked by another transaction is skipped.
 */
char *
lock_customer_sql(const Mapping *m, bool many, bool nowait,
				  const char *const *captured, int n_captured)
{
	StringInfoData sql;
	const char    *key = quote_identifier(m->customer.key_column);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t.%s", key);
	if (m->company_scope == &m->scopes[0])
		append_company_test(&sql, m);
	for (int i = 0; i < n_captured; i++)
		appendStringInfo(&sql, ", t.%s::pg_catalog.text",
						 quote_identifier(captured[i]));
	appendStringInfo(&sql, " FROM %s t WHERE t.%s OPERATOR(pg_catalog.=) %s",
					 qualified(&m->customer), key, many ? "ANY ($1)" : "$1");
	if (many)
		appendStringInfo(&sql, " ORDER BY t.%s", key);
	appendStringInfoString(&sql, " FOR UPDATE OF t");
	if (nowait)
		appendStringInfoString(&sql, " SKIP LOCKED");
	return sql.data;
}

/*
 * Rule 2 for one blocker or balance rule: a row (customer id, the
 * condition, or the amount as numeric) per row of the scope, which
 * eligibility.c tallies as they come, keeping none.  A blocker rule holds
 * back a customer with a row whose condition is true; a balance rule one
 * whose amounts do not sum to zero.  With lock_rows, every row of the scope
 * is locked FOR SHARE, not only the blocking ones: a row that does not
 * block yet could be updated into one.  (The rows of its ancestor scopes
 * are locked FOR UPDATE before, by lock_scope_sql(), so that no new row
 * joins the scope; this statement then sees, at READ COMMITTED, the rows
 * committed while it waited for those locks.)  No aggregate: an Agg node
 * costs more to start than the scan under it.
 */
char *
blocker_sql(const Mapping *m, const Rule *rule, bool lock_rows, bool many,
			bool nowait)
{
	StringInfoData sql;
	Root           root = root_of(many, false);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s, ", root_key(root));
	append_expression(&sql, rule->expression);
	if (rule->kind == RULE_BALANCE)
		appendStringInfoString(&sql, "::pg_catalog.numeric");
	appendStringInfoString(&sql, " FROM ");
	append_scope_rows(&sql, m, rule->scope, root, ", ");
	if (lock_rows)
		appendStringInfoString(&sql, nowait ? " FOR SHARE OF t NOWAIT"
											: " FOR SHARE OF t");
	return sql.data;
}

/*
 * Rule 3, when the company test is on a scope of its own: locks the
 * scope's rows FOR NO KEY UPDATE (the lock the rewrite takes anyway, which
 * does not conflict with foreign key checks of rows referencing them;
 * NOWAIT for the queue) and returns a row per row of the scope: (customer
 * id, is_company, company name, the values of captured[] as text), decided
 * on the rows before they are rewritten.  company_test.c reads them as
 * they come: more than one row for a customer is an error.
 */
char *
classify_sql(const Mapping *m, bool many, bool nowait,
			 const char *const *captured, int n_captured)
{
	StringInfoData sql;
	Root           root = root_of(many, false);

	if (m->company_scope == NULL || m->company_scope == &m->scopes[0])
		return NULL;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s", root_key(root));
	append_company_test(&sql, m);
	for (int i = 0; i < n_captured; i++)
		appendStringInfo(&sql, ", t.%s::pg_catalog.text",
						 quote_identifier(captured[i]));
	appendStringInfoString(&sql, " FROM ");
	append_scope_rows(&sql, m, m->company_scope, root, ", ");
	appendStringInfoString(&sql, nowait ? " FOR NO KEY UPDATE OF t NOWAIT"
										: " FOR NO KEY UPDATE OF t");
	return sql.data;
}

/*
 * Locks the customers' rows of a scope (strength "UPDATE" or "NO KEY
 * UPDATE"; NOWAIT for the queue); returns their count.
 */
char *
lock_scope_sql(const Mapping *m, const Scope *scope, const char *strength,
			   bool many, bool nowait)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT pg_catalog.count(*) FROM (SELECT 1 FROM ");
	append_scope_rows(&sql, m, scope, root_of(many, false), ", ");
	appendStringInfo(&sql, " FOR %s OF t%s) s", strength,
					 nowait ? " NOWAIT" : "");
	return sql.data;
}

/* " AND (condition)" of a purge rule. */
static void
append_rule_condition(StringInfo sql, const Rule *rule)
{
	if (rule->expression == NULL)
		return;
	appendStringInfoString(sql, " AND ");
	append_expression(sql, rule->expression);
}

/*
 * For many customers, a data-modifying statement becomes one row
 * (customer id, rows) per customer.
 */
static void
begin_counted(StringInfo sql, bool many)
{
	if (many)
		appendStringInfoString(sql, "WITH d AS (");
}

static void
end_counted(StringInfo sql, bool many)
{
	if (many)
		appendStringInfoString(sql, " RETURNING " C_KEY " AS key)"
									" SELECT d.key, pg_catalog.count(*)"
									" FROM d GROUP BY d.key");
}

/*
 * Rule 5 for one purge rule.  For one customer a plain DELETE (SPI counts
 * the rows); for many, one row (customer id, rows deleted) per customer.
 *
 * Rule 4 for it, when locking: the DELETE takes its rows from a sub-select
 * that locks them FOR UPDATE NOWAIT, joined back by ctid, so that each row
 * is locked and deleted in one pass, while its page is at hand, instead of
 * a pass that locks every row of the batch and a second one that deletes
 * them (when the batch's rows outgrow shared_buffers, the second pass reads
 * them again).  A ctid is unique within one table only: the join matches
 * tableoid too, or a partition's or inheritance child's row at the same
 * ctid as a purged row of another partition would go with it.  A row that
 * a concurrent update moved is not deleted by ctid: the verification (rule
 * 6) finds it and purges again.
 */
char *
purge_sql(const Mapping *m, const Rule *rule, bool many, bool locking)
{
	Root           root = root_of(many, false);
	StringInfoData sql;

	initStringInfo(&sql);
	begin_counted(&sql, many);
	appendStringInfoString(&sql, "DELETE FROM ");
	if (!locking)
	{
		append_scope_rows(&sql, m, rule->scope, root, " USING ");
		append_rule_condition(&sql, rule);
		end_counted(&sql, many);
		return sql.data;
	}
	appendStringInfo(&sql,
					 "%s t USING (SELECT t.tableoid AS __anonymize_rel,"
					 " t.ctid AS __anonymize_tid, %s AS __anonymize_key"
					 " FROM ",
					 qualified(&rule->scope->relation), root_key(root));
	append_scope_rows(&sql, m, rule->scope, root, ", ");
	append_rule_condition(&sql, rule);
	appendStringInfoString(&sql,
						   " FOR UPDATE OF t NOWAIT) l WHERE t.ctid"
						   " OPERATOR(pg_catalog.=) l.__anonymize_tid AND"
						   " t.tableoid OPERATOR(pg_catalog.=)"
						   " l.__anonymize_rel");
	if (many)
		appendStringInfoString(&sql, " RETURNING l.__anonymize_key AS key)"
									 " SELECT d.key, pg_catalog.count(*)"
									 " FROM d GROUP BY d.key");
	return sql.data;
}

/*
 * For anonymize.preview() and verify(): the number of the customer's rows
 * of the rule's scope (that match a purge rule's condition), counted as
 * the rule's statement would change them, without locks.
 */
char *
count_rule_rows_sql(const Mapping *m, const Rule *rule)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT pg_catalog.count(DISTINCT (t.tableoid,"
						   " t.ctid)) FROM ");
	append_scope_rows(&sql, m, rule->scope, ROOT_ONE, ", ");
	if (rule->kind == RULE_PURGE)
		append_rule_condition(&sql, rule);
	return sql.data;
}

/*
 * For anonymize.preview() and verify(): the company test of one customer
 * without locks: (rows, is_company, company name); no row when the test's
 * scope holds none.
 */
char *
company_test_sql(const Mapping *m)
{
	StringInfoData sql;

	if (m->company_scope == NULL)
		return NULL;
	initStringInfo(&sql);
	appendStringInfoString(
		&sql, "SELECT pg_catalog.count(*), pg_catalog.bool_or(b.is_company),"
			  " pg_catalog.min(b.company) FROM (SELECT 1");
	append_company_test(&sql, m);
	appendStringInfoString(&sql, " FROM ");
	append_scope_rows(&sql, m, m->company_scope, ROOT_ONE, ", ");
	appendStringInfoString(&sql,
						   ") b (one, is_company, company) HAVING "
						   "pg_catalog.count(*) OPERATOR(pg_catalog.>) 0");
	return sql.data;
}

/*
 * For the residue check: which of the values $2 (text[], lower case, named
 * by $3) the customer's rows of the scope still hold in columns[] (text,
 * json, jsonb): one row (field, column) per value and column that holds it,
 * never the rows themselves, after the index of the scope.  Each column
 * value is lowered once, not once per value searched.
 */
char *
residue_search_sql(const Mapping *m, int scope_index,
				   const char *const *columns, int n)
{
	const Scope   *scope = &m->scopes[scope_index];
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %d, f.field, c.column_name FROM (SELECT ",
					 scope_index);
	for (int i = 0; i < n; i++)
		appendStringInfo(&sql,
						 "%spg_catalog.lower(t.%s::pg_catalog.text"
						 " COLLATE pg_catalog.\"default\") AS v%d",
						 i > 0 ? ", " : "", quote_identifier(columns[i]), i);
	appendStringInfoString(&sql, " FROM ");
	append_scope_rows(&sql, m, scope, ROOT_ONE, ", ");
	appendStringInfoString(&sql, ") r, LATERAL (VALUES ");
	for (int i = 0; i < n; i++)
		appendStringInfo(&sql, "%s(%s::pg_catalog.name, r.v%d)",
						 i > 0 ? ", " : "", quote_literal_cstr(columns[i]), i);
	appendStringInfoString(
		&sql, ") AS c (column_name, value), ROWS FROM (pg_catalog.unnest($2),"
			  " pg_catalog.unnest($3)) AS f (needle, field)"
			  " WHERE c.value IS NOT NULL"
			  " AND pg_catalog.strpos(c.value, f.needle)"
			  " OPERATOR(pg_catalog.>) 0 GROUP BY f.field, c.column_name"
			  " ORDER BY c.column_name, f.field");
	return sql.data;
}

/*
 * For the residue check, first: whether the customer's rows of the scope
 * may hold any of the values in columns[]: a row (the index of the scope)
 * if they do, none if not; $2 holds the values as LIKE patterns
 * ('%value%', lower case).  One EXISTS over one scan, cheap to start (an
 * aggregate costs more to start than its scan): residue_search_sql() runs
 * only for a scope that holds one.  For many (after
 * residue_probe_customers_sql()): a row (index, customer id) per customer
 * whose rows of the scope may hold one of its values.
 */
char *
residue_probe_sql(const Mapping *m, int scope_index,
				  const char *const *columns, int n, bool many)
{
	StringInfoData sql;

	initStringInfo(&sql);
	if (many)
		appendStringInfo(&sql, "SELECT %d, " C_KEY " FROM c", scope_index);
	else
		appendStringInfo(&sql, "SELECT %d", scope_index);
	appendStringInfoString(&sql, " WHERE EXISTS (SELECT FROM ");
	append_scope_rows(&sql, m, &m->scopes[scope_index],
					  many ? ROOT_OUTER : ROOT_ONE, ", ");
	appendStringInfoString(&sql, " AND (");
	for (int i = 0; i < n; i++)
		appendStringInfo(&sql,
						 "%spg_catalog.lower(t.%s::pg_catalog.text"
						 " COLLATE pg_catalog.\"default\")"
						 " OPERATOR(pg_catalog.~~) ANY (%s)",
						 i > 0 ? " OR " : "", quote_identifier(columns[i]),
						 many ? "c.__anonymize_patterns" : "$2");
	appendStringInfoString(&sql, "))");
	return sql.data;
}

/*
 * Before the probes of residue_probe_sql() for many: the customers "c",
 * each with its LIKE patterns; $1 holds the ids, $2 the patterns of each
 * as a text[] literal (arrays of arrays must be rectangular).  Materialized,
 * so that each customer's literal is parsed once for all scopes.
 */
const char *
residue_probe_customers_sql(void)
{
	return "WITH c (__anonymize_key, __anonymize_patterns) AS MATERIALIZED"
		   " (SELECT u.k, u.p::pg_catalog.text[] FROM ROWS FROM"
		   " (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u (k, p)) ";
}

/* Rule 6 for one purge rule: true while a row it covers remains. */
static void
append_purged_rows_remain(StringInfo sql, const Mapping *m, const Rule *rule,
						  bool many)
{
	appendStringInfoString(sql, "EXISTS (SELECT 1 FROM ");
	append_scope_rows(sql, m, rule->scope, root_of(many, false), ", ");
	append_rule_condition(sql, rule);
	appendStringInfoChar(sql, ')');
}

char *
verify_purge_sql(const Mapping *m, const Rule *rule, bool many)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	append_purged_rows_remain(&sql, m, rule, many);
	return sql.data;
}

/* Rule 6 for every purge rule in one statement: a column per rule. */
char *
verify_purges_sql(const Mapping *m, bool many)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < m->n_purge_rules; i++)
	{
		if (i > 0)
			appendStringInfoString(&sql, ", ");
		append_purged_rows_remain(&sql, m, m->purge_rules[i], many);
	}
	return sql.data;
}

/* The erased value of a column: its replacement, NULL or the placeholder. */
static void
append_erased_value(StringInfo sql, const ErasedColumn *column)
{
	if (column->replacement != NULL)
		append_expression(sql, column->replacement);
	else
		appendStringInfoString(sql,
							   column->not_null ? PLACEHOLDER_PARAM : "NULL");
}

/*
 * The erased value, or the old one where the rule does not apply;
 * is_company is the SQL of the customer's kind.
 */
static void
append_new_value(StringInfo sql, const ErasedColumn *column,
				 const char *is_company)
{
	const char *quoted = quote_identifier(column->name);

	if (column->applies_to == APPLIES_EVERYONE)
	{
		append_erased_value(sql, column);
		return;
	}
	appendStringInfo(sql, "CASE WHEN %s THEN ", is_company);
	if (column->applies_to == APPLIES_COMPANY)
		append_erased_value(sql, column);
	else
		appendStringInfo(sql, "t.%s", quoted);
	appendStringInfoString(sql, " ELSE ");
	if (column->applies_to == APPLIES_COMPANY)
		appendStringInfo(sql, "t.%s", quoted);
	else
		append_erased_value(sql, column);
	appendStringInfoString(sql, " END");
}

/* The index of the scope's first entry of the column, or -1. */
static int
find_column(const ErasedScope *erased, const char *name, int after)
{
	for (int i = after + 1; i < erased->n_columns; i++)
		if (strcmp(erased->columns[i]->name, name) == 0)
			return i;
	return -1;
}

/*
 * The new value of a column of the scope's rows: its rule's, or, with one
 * rule for companies and one for individuals, each customer's.  False if no
 * rule of the scope sets the column.
 */
static bool
append_scope_value(StringInfo sql, const ErasedScope *erased, const char *name,
				   const char *is_company)
{
	int                 i = find_column(erased, name, -1);
	int                 j = i < 0 ? -1 : find_column(erased, name, i);
	const ErasedColumn *company;

	if (i < 0)
		return false;
	if (j < 0)
	{
		append_new_value(sql, erased->columns[i], is_company);
		return true;
	}
	company = erased->columns[i]->applies_to == APPLIES_COMPANY
				  ? erased->columns[i]
				  : erased->columns[j];
	appendStringInfo(sql, "CASE WHEN %s THEN ", is_company);
	append_erased_value(sql, company);
	appendStringInfoString(sql, " ELSE ");
	append_erased_value(sql, company == erased->columns[i]
								 ? erased->columns[j]
								 : erased->columns[i]);
	appendStringInfoString(sql, " END");
	return true;
}

/* The erased name: NULL or the placeholder, as text. */
static const char *
erased_name(const Mapping *m)
{
	return m->name.not_null ? PLACEHOLDER_PARAM : "NULL::pg_catalog.text";
}

/*
 * Rule 5 for an erased scope alone on its relation: one UPDATE of its rows
 * setting every column of its erase rules ($2 the placeholder, $3 the
 * company name, NULL for an individual, $4 whether a company).  For many,
 * one row (customer id, rows updated) per customer.
 */
char *
erase_sql(const Mapping *m, const ErasedScope *erased, bool many)
{
	StringInfoData sql;
	Root           root = root_of(many, true);
	bool           first = true;

	initStringInfo(&sql);
	begin_counted(&sql, many);
	appendStringInfo(&sql, "UPDATE %s t SET ",
					 qualified(&erased->scope->relation));
	if (erased->scope == &m->scopes[0])
		appendStringInfo(&sql, "%s = COALESCE(%s, %s), ",
						 quote_identifier(m->name.name), root_company(root),
						 erased_name(m));
	for (int i = 0; i < erased->n_columns; i++)
	{
		const char *name = erased->columns[i]->name;

		if (find_column(erased, name, -1) < i)
			continue; /* set with its first entry */
		appendStringInfo(&sql, "%s%s = ", first ? "" : ", ",
						 quote_identifier(name));
		append_scope_value(&sql, erased, name, root_is_company(root));
		first = false;
	}
	append_scope_join(&sql, m, erased->scope, root, " FROM ");
	end_counted(&sql, many);
	return sql.data;
}

/*
 * The rows of the erased scopes of one relation, one per row: its table
 * "rel" and ctid "tid" (a ctid is unique within one partition or
 * inheritance child only), whether it belongs to each scope ("in1", "in2",
 * ...) and, for many, one of its customers ("key") and its kind
 * ("is_company").
 */
static void
append_members_rows(StringInfo sql, const Mapping *m,
					const ErasedScope *leader, bool many)
{
	Root root = root_of(many, true);

	appendStringInfoString(sql, "(SELECT x.rel, x.tid");
	if (many)
		appendStringInfoString(sql,
							   ", (pg_catalog.array_agg(x.key))[1] AS key,"
							   " pg_catalog.bool_or(x.is_company) AS "
							   "is_company");
	for (int k = 1; k <= leader->n_members; k++)
		appendStringInfo(
			sql,
			", pg_catalog.bool_or(x.member OPERATOR(pg_catalog.=) "
			"%d) AS in%d",
			k, k);
	appendStringInfoString(sql, " FROM (");
	for (int k = 1; k <= leader->n_members; k++)
	{
		const ErasedScope *member = &m->erased_scopes[leader->members[k - 1]];

		appendStringInfo(
			sql, "%sSELECT t.tableoid AS rel, t.ctid AS tid, %d AS member",
			k > 1 ? " UNION ALL " : "", k);
		if (many)
			appendStringInfoString(sql, ", " C_KEY " AS key, " C_IS_COMPANY
										" AS is_company");
		appendStringInfoString(sql, " FROM ");
		append_scope_rows(sql, m, member->scope, root, ", ");
	}
	appendStringInfoString(sql, ") x GROUP BY x.rel, x.tid) m");
}

/*
 * Rule 5 for the erased scopes of one relation (leader and the others of
 * its members): one UPDATE per row, each column set as the first scope of
 * the row that sets it says; parameters as for erase_sql().  One row of
 * rows updated per scope, in the order of the members; for many, one such
 * row per customer, after its id.
 */
char *
erase_members_sql(const Mapping *m, const ErasedScope *leader, bool many)
{
	StringInfoData sql;
	const char    *is_company = many ? "m.is_company" : "$4";
	bool           first = true;

	initStringInfo(&sql);
	appendStringInfo(&sql, "WITH u AS (UPDATE %s t SET ",
					 qualified(&leader->scope->relation));
	for (int k = 0; k < leader->n_members; k++)
	{
		const ErasedScope *member = &m->erased_scopes[leader->members[k]];

		for (int i = 0; i < member->n_columns; i++)
		{
			const char *name = member->columns[i]->name;
			bool        set_before = find_column(member, name, -1) < i;

			/* set with its first entry in the first member that sets it */
			for (int e = 0; e < k && !set_before; e++)
				set_before = find_column(&m->erased_scopes[leader->members[e]],
										 name, -1) >= 0;
			if (set_before)
				continue;
			appendStringInfo(&sql, "%s%s = CASE", first ? "" : ", ",
							 quote_identifier(name));
			for (int e = k; e < leader->n_members; e++)
			{
				StringInfoData value;

				initStringInfo(&value);
				if (!append_scope_value(&value,
										&m->erased_scopes[leader->members[e]],
										name, is_company))
					continue;
				appendStringInfo(&sql, " WHEN m.in%d THEN %s", e + 1,
								 value.data);
			}
			appendStringInfo(&sql, " ELSE t.%s END", quote_identifier(name));
			first = false;
		}
	}
	appendStringInfoString(&sql, " FROM ");
	append_members_rows(&sql, m, leader, many);
	appendStringInfoString(
		&sql, " WHERE t.ctid OPERATOR(pg_catalog.=) m.tid AND t.tableoid"
			  " OPERATOR(pg_catalog.=) m.rel RETURNING");
	if (many)
		appendStringInfoString(&sql, " m.key,");
	for (int k = 1; k <= leader->n_members; k++)
		appendStringInfo(&sql, "%s m.in%d", k > 1 ? "," : "", k);
	appendStringInfoString(&sql, ") SELECT ");
	if (many)
		appendStringInfoString(&sql, "u.key, ");
	for (int k = 1; k <= leader->n_members; k++)
		appendStringInfo(&sql, "%spg_catalog.count(*) FILTER (WHERE u.in%d)",
						 k > 1 ? ", " : "", k);
	appendStringInfoString(&sql, " FROM u");
	if (many)
		appendStringInfoString(&sql, " GROUP BY u.key");
	return sql.data;
}

/* Whether the verification checks the column's value (no replacement). */
bool
is_verified_column(const ErasedColumn *column)
{
	return column->replacement == NULL;
}

/*
 * Whether each row of the scope appears once among the scope's rows of
 * append_scope_join(): the relation is joined to the customer key
 * directly, through no ancestor (whose rows could join one row twice).
 */
bool
scope_rows_are_distinct(const Mapping *m, const Scope *scope)
{
	return scope->parent < 0 ||
		   (scope->parent == 0 &&
			strcmp(scope->parent_column, m->customer.key_column) == 0);
}

/*
 * The checks of rule 6 on the row "t" of an erased scope, each a boolean
 * after "separator": for the customer the name first, then each verified
 * column (is_verified_column(), in order) that holds data although its
 * rule applies.
 */
static void
append_unerased_checks(StringInfo sql, const Mapping *m,
					   const ErasedScope *erased, Root root,
					   const char *before, const char *after)
{
	if (erased->scope == &m->scopes[0])
		appendStringInfo(sql,
						 "%st.%s::pg_catalog.text IS DISTINCT FROM "
						 "COALESCE(%s, %s)%s",
						 before, quote_identifier(m->name.name),
						 root_company(root), erased_name(m), after);
	for (int i = 0; i < erased->n_columns; i++)
	{
		const ErasedColumn *column = erased->columns[i];
		const char         *quoted = quote_identifier(column->name);

		if (!is_verified_column(column))
			continue;
		appendStringInfoString(sql, before);
		if (column->applies_to == APPLIES_INDIVIDUAL)
			appendStringInfo(sql, "NOT %s AND ", root_is_company(root));
		else if (column->applies_to == APPLIES_COMPANY)
			appendStringInfo(sql, "%s AND ", root_is_company(root));
		if (column->not_null)
			appendStringInfo(sql,
							 "t.%s::pg_catalog.text OPERATOR(pg_catalog.<>) "
							 "%s",
							 quoted, PLACEHOLDER_PARAM);
		else
			appendStringInfo(sql, "t.%s IS NOT NULL", quoted);
		appendStringInfoString(sql, after);
	}
}

/*
 * Rule 6 for an erased scope; parameters as for erase_sql().  Where the
 * scope's rows are distinct (scope_rows_are_distinct()): a row per row of
 * the scope, the checks of append_unerased_checks(), which verify.c
 * counts as they come (no aggregate: an Agg node costs more to start than
 * the scan under it).  Otherwise one row: the number of the customers'
 * rows of the scope (a row joined to two ancestor rows counts once, as
 * UPDATE does; by table and ctid), then for each check the number of rows
 * that fail it (counted the same way).
 */
char *
verify_erased_sql(const Mapping *m, const ErasedScope *erased, bool many)
{
	StringInfoData sql;
	Root           root = root_of(many, true);

	initStringInfo(&sql);
	if (scope_rows_are_distinct(m, erased->scope))
	{
		appendStringInfoString(&sql, "SELECT ");
		append_unerased_checks(&sql, m, erased, root, "", ", ");
		/* the last ", " */
		if (sql.len > 7)
			sql.data[sql.len -= 2] = '\0';
	}
	else
	{
		/* a ctid is unique within one partition or child only */
		appendStringInfoString(&sql, "SELECT pg_catalog.count(DISTINCT"
									 " (t.tableoid, t.ctid))");
		append_unerased_checks(&sql, m, erased, root,
							   ", pg_catalog.count(DISTINCT (t.tableoid,"
							   " t.ctid)) FILTER (WHERE ",
							   ")");
	}
	appendStringInfoString(&sql, " FROM ");
	append_scope_rows(&sql, m, erased->scope, root, ", ");
	return sql.data;
}

/*
 * Rule 7.  $2 the role, $3 the kind, $4 rows deleted, $5 rows updated, $6
 * the request (NULL without), $7 the mapping's fingerprint; arrays in the
 * many form but $2 and $7.
 */
char *
audit_insert_sql(bool many)
{
	return psprintf("INSERT INTO anonymize.audit_log"
					" (customer_id, anonymized_at, anonymized_by,"
					" customer_kind, rows_deleted, rows_updated,"
					" transaction_id, request_id, mapping_fingerprint) %s",
					many ? "SELECT a.id, pg_catalog.now(), $2, a.kind,"
						   " a.deleted, a.updated,"
						   " pg_catalog.pg_current_xact_id(), a.request, $7"
						   " FROM ROWS FROM (pg_catalog.unnest($1),"
						   " pg_catalog.unnest($3), pg_catalog.unnest($4),"
						   " pg_catalog.unnest($5), pg_catalog.unnest($6))"
						   " AS a (id, kind, deleted, updated, request)"
						 : "VALUES ($1, pg_catalog.now(), $2, $3, $4, $5,"
						   " pg_catalog.pg_current_xact_id(), $6, $7)");
}
