/*-------------------------------------------------------------------------
 *
 * erasure_rules.c
 *	  The erasure rules, in one place: the SQL text of every statement that
 *	  anonymize runs, built from the mapping.
 *
 * The rules, as applied by anonymize_customer() in this order:
 *
 *	1. Lock the customer row FOR UPDATE.  This also holds off concurrent
 *	   inserts that reference it (their foreign key check takes FOR KEY SHARE).
 *	2. Blockers: any row matching a blocker rule (a subscription not
 *	   terminated, an invoice not paid or cancelled) or a balance rule whose
 *	   amounts do not sum to zero refuses the anonymization.  The customer's
 *	   rows of those relations are locked FOR SHARE, so nothing can turn into
 *	   a blocker before the transaction ends.
 *	3. Purge: delete the customer's rows of every purge rule (sent emails,
 *	   activity, webhook notifications, subscriptions still 'initialized').
 *	4. Billing address: first name, last name and phone are erased.  A
 *	   company (the company column holds a non-blank character) keeps its
 *	   address; an individual loses every address column but the country.
 *	5. Customer: the email is erased; the name becomes the company name for
 *	   a company and is erased for an individual.
 *	6. Audit: one row in anonymize.audit_log, which also marks the customer
 *	   as anonymized, so that a second call changes nothing (audit.c).
 *
 * "Erased" means NULL, or the configured placeholder for a NOT NULL column.
 *
 * Each statement comes in two forms: for one customer ($1 is its uuid) and
 * for many at once ($1 is a uuid[]; used by the request queue, one
 * statement per rule per batch).  Both return the customer id of every row
 * as their last column, and one row per row they touch: erasure.c counts
 * and sums, so no statement needs an aggregate.
 *
 * Every identifier is quoted, the customer id is always the parameter $1,
 * and every function and operator is schema-qualified, so that objects
 * planted in the caller's search_path never run.  Rule conditions and
 * amounts come from the extension owner and run with search_path pinned to
 * pg_catalog by the calling function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "anonymize.h"

/* Parameter holding the placeholder in the erase statements. */
#define PLACEHOLDER_PARAM "$2"

/* True for the billing address of a company, on the row aliased "t". */
static void
append_is_company(StringInfo sql, const Mapping *m)
{
	appendStringInfo(sql,
					 "COALESCE(t.%s::pg_catalog.text OPERATOR(pg_catalog.~) "
					 "'[^[:space:]]', false)",
					 quote_identifier(m->company_column));
}

/* The value an erased column gets. */
static const char *
erased_value(const ErasedColumn *column)
{
	return column->not_null ? PLACEHOLDER_PARAM : "NULL";
}

static void
append_erase(StringInfo sql, const ErasedColumn *column, bool *first)
{
	appendStringInfo(sql, "%s%s = %s", *first ? "" : ", ",
					 quote_identifier(column->name), erased_value(column));
	*first = false;
}

/* Columns of the billing address erased for companies and individuals. */
static void
append_erase_address(StringInfo sql, const Mapping *m, bool *first)
{
	append_erase(sql, &m->first_name, first);
	append_erase(sql, &m->last_name, first);
	append_erase(sql, &m->phone, first);

	/* An individual's address goes too; a company's stays. */
	for (int i = 0; i < m->n_address_columns; i++)
	{
		const ErasedColumn *column = &m->address_columns[i];
		const char         *quoted = quote_identifier(column->name);

		appendStringInfo(sql, ", %s = CASE WHEN ", quoted);
		append_is_company(sql, m);
		appendStringInfo(sql, " THEN t.%s ELSE %s END", quoted,
						 erased_value(column));
	}
}

static void
append_relation(StringInfo sql, const MappedRelation *rel)
{
	appendStringInfo(sql, "%s t",
					 quote_qualified_identifier(rel->schema, rel->name));
}

static void
append_key_match(StringInfo sql, const MappedRelation *rel, bool many)
{
	appendStringInfo(sql,
					 many ? " WHERE t.%s OPERATOR(pg_catalog.=) ANY ($1)"
						  : " WHERE t.%s OPERATOR(pg_catalog.=) $1",
					 quote_identifier(rel->key_column));
}

/* The last output column: the customer id of the row "t". */
static void
append_key_output(StringInfo sql, const MappedRelation *rel)
{
	appendStringInfo(sql, ", t.%s", quote_identifier(rel->key_column));
}

/*
 * A rule's expression, evaluated on the row "t".  The newline ends a
 * trailing "--" comment before the closing parenthesis.
 */
static void
append_expression(StringInfo sql, const char *expression)
{
	appendStringInfo(sql, "(%s\n)", expression);
}

char *
customer_exists_sql(const Mapping *m)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT 1 FROM ");
	append_relation(&sql, &m->customer);
	append_key_match(&sql, &m->customer, false);
	return sql.data;
}

/* Rule 1.  Many customers are locked in the order of their ids. */
char *
lock_customer_sql(const Mapping *m, bool many)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT 1");
	append_key_output(&sql, &m->customer);
	appendStringInfoString(&sql, " FROM ");
	append_relation(&sql, &m->customer);
	append_key_match(&sql, &m->customer, many);
	if (many)
		appendStringInfo(&sql, " ORDER BY t.%s",
						 quote_identifier(m->customer.key_column));
	appendStringInfoString(&sql, " FOR UPDATE OF t");
	return sql.data;
}

/*
 * Rule 2: one row per row of the customer in the relation of a blocker or
 * a balance rule: (rule index, blocks, amount, customer id), with "blocks"
 * the condition of a blocker rule and "amount" that of a balance rule.
 * With lock_rows, every such row is locked FOR SHARE, not only the blocking
 * ones: a row that does not block yet could be updated into one.  NULL when
 * there are no such rules.
 */
char *
blockers_sql(const Mapping *m, bool lock_rows, bool many)
{
	StringInfoData sql;

	if (m->n_blocker_rules == 0)
		return NULL;

	initStringInfo(&sql);
	for (int i = 0; i < m->n_blocker_rules; i++)
	{
		const Rule *rule = &m->blocker_rules[i];

		appendStringInfo(
			&sql,
			rule->kind == RULE_BALANCE
				? "%sSELECT %d, NULL::pg_catalog.bool, "
				  "b.value::pg_catalog.numeric, b.key"
				: "%sSELECT %d, b.value, NULL::pg_catalog.numeric, "
				  "b.key",
			i > 0 ? " UNION ALL " : "", i);
		appendStringInfoString(&sql, " FROM (SELECT ");
		append_expression(&sql, rule->expression);
		appendStringInfo(&sql, " AS value, t.%s AS key FROM ",
						 quote_identifier(rule->relation.key_column));
		append_relation(&sql, &rule->relation);
		append_key_match(&sql, &rule->relation, many);
		if (lock_rows)
			appendStringInfoString(&sql, " FOR SHARE OF t");
		appendStringInfoString(&sql, ") b");
	}
	return sql.data;
}

/*
 * Rule 3: every purge rule in one statement, returning (rule index,
 * customer id) for every row deleted.  NULL when there is nothing to purge.
 */
char *
purge_sql(const Mapping *m, bool many)
{
	StringInfoData sql;

	if (m->n_purge_rules == 0)
		return NULL;

	initStringInfo(&sql);
	for (int i = 0; i < m->n_purge_rules; i++)
	{
		const Rule *rule = &m->purge_rules[i];

		appendStringInfo(&sql, "%s p%d AS (DELETE FROM ",
						 i == 0 ? "WITH" : ",", i);
		append_relation(&sql, &rule->relation);
		append_key_match(&sql, &rule->relation, many);
		if (rule->expression)
		{
			appendStringInfoString(&sql, " AND ");
			append_expression(&sql, rule->expression);
		}
		appendStringInfo(&sql, " RETURNING t.%s AS key)",
						 quote_identifier(rule->relation.key_column));
	}
	for (int i = 0; i < m->n_purge_rules; i++)
		appendStringInfo(&sql, "%s SELECT %d, p%d.key FROM p%d",
						 i == 0 ? "" : " UNION ALL", i, i, i);
	return sql.data;
}

/*
 * Rule 4, when the billing address has a relation of its own.  Returns
 * (is_company, company) per address row; decided on the row as updated, so
 * a concurrent change of the address is seen, never overwritten blindly.
 */
char *
erase_address_sql(const Mapping *m, bool many)
{
	StringInfoData sql;
	bool           first = true;

	if (m->address_on_customer)
		return NULL;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "UPDATE ");
	append_relation(&sql, &m->address);
	appendStringInfoString(&sql, " SET ");
	append_erase_address(&sql, m, &first);
	append_key_match(&sql, &m->address, many);
	appendStringInfoString(&sql, " RETURNING ");
	append_is_company(&sql, m);
	appendStringInfo(&sql, ", t.%s::pg_catalog.text",
					 quote_identifier(m->company_column));
	append_key_output(&sql, &m->address);
	return sql.data;
}

/*
 * Rule 5, and rule 4 too when the address sits on the customer relation.
 * Returns (is_company, customer id).  $3 is the company name found by rule
 * 4, or NULL; in the many form, a text[] of them in the order of the ids in
 * $1.
 */
char *
erase_customer_sql(const Mapping *m, bool many)
{
	StringInfoData sql;
	bool           first = true;
	const char    *name = quote_identifier(m->name.name);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "UPDATE ");
	append_relation(&sql, &m->customer);
	appendStringInfoString(&sql, " SET ");
	append_erase(&sql, &m->email, &first);
	if (m->address_on_customer)
	{
		appendStringInfo(&sql, ", %s = CASE WHEN ", name);
		append_is_company(&sql, m);
		appendStringInfo(&sql, " THEN t.%s::pg_catalog.text ELSE %s END",
						 quote_identifier(m->company_column),
						 erased_value(&m->name));
		append_erase_address(&sql, m, &first);
	}
	else if (many)
		appendStringInfo(&sql,
						 ", %s = COALESCE(c.company, %s)"
						 " FROM ROWS FROM (pg_catalog.unnest($1),"
						 " pg_catalog.unnest($3)) AS c (key, company)"
						 " WHERE t.%s OPERATOR(pg_catalog.=) c.key",
						 name, erased_value(&m->name),
						 quote_identifier(m->customer.key_column));
	else
		appendStringInfo(&sql, ", %s = COALESCE($3, %s)", name,
						 erased_value(&m->name));
	if (m->address_on_customer || !many)
		append_key_match(&sql, &m->customer, many);

	appendStringInfoString(&sql, " RETURNING ");
	if (m->address_on_customer)
		append_is_company(&sql, m);
	else
		appendStringInfoString(&sql, many ? "c.company IS NOT NULL"
										  : "$3 IS NOT NULL");
	append_key_output(&sql, &m->customer);
	return sql.data;
}

/* $2 the role, $3 the kind, $4 rows deleted; arrays in the many form. */
char *
audit_insert_sql(bool many)
{
	return psprintf("INSERT INTO anonymize.audit_log"
					" (customer_id, anonymized_at, anonymized_by,"
					" customer_kind, rows_deleted) %s",
					many ? "SELECT a.id, pg_catalog.now(), $2, a.kind, a.rows"
						   " FROM ROWS FROM (pg_catalog.unnest($1),"
						   " pg_catalog.unnest($3), pg_catalog.unnest($4))"
						   " AS a (id, kind, rows)"
						 : "VALUES ($1, pg_catalog.now(), $2, $3, $4)");
}
