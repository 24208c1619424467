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
 *
 * "Erased" means NULL, or the configured placeholder for a NOT NULL column.
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
		const char *quoted = quote_identifier(column->name);

		appendStringInfo(sql, ", %s = CASE WHEN ", quoted);
		append_is_company(sql, m);
		appendStringInfo(sql, " THEN t.%s ELSE %s END",
						 quoted, erased_value(column));
	}
}

static void
append_relation(StringInfo sql, const MappedRelation *rel)
{
	appendStringInfo(sql, "%s t",
					 quote_qualified_identifier(rel->schema, rel->name));
}

static void
append_key_match(StringInfo sql, const MappedRelation *rel)
{
	appendStringInfo(sql, " WHERE t.%s OPERATOR(pg_catalog.=) $1",
					 quote_identifier(rel->key_column));
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
	append_key_match(&sql, &m->customer);
	return sql.data;
}

/* Rule 1. */
char *
lock_customer_sql(const Mapping *m)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT 1 FROM ");
	append_relation(&sql, &m->customer);
	append_key_match(&sql, &m->customer);
	appendStringInfoString(&sql, " FOR UPDATE OF t");
	return sql.data;
}

/*
 * Rule 2: one row per blocker or balance rule, in the mapping's order:
 * (rule index, rows, amount, blocks).  With lock_rows, every row of the
 * customer in those relations is locked FOR SHARE, not only the blocking
 * ones: a row that does not block yet could be updated into one.  NULL when
 * there are no such rules.
 */
char *
blockers_sql(const Mapping *m, bool lock_rows)
{
	StringInfoData sql;

	if (m->n_blocker_rules == 0)
		return NULL;

	initStringInfo(&sql);
	for (int i = 0; i < m->n_blocker_rules; i++)
	{
		const Rule *rule = &m->blocker_rules[i];
		bool		balance = (rule->kind == RULE_BALANCE);

		if (i > 0)
			appendStringInfoString(&sql, " UNION ALL ");
		if (balance)
			appendStringInfo(&sql,
							 "SELECT %d, pg_catalog.count(*), "
							 "pg_catalog.sum(b.value)::pg_catalog.numeric, "
							 "COALESCE(pg_catalog.sum(b.value)::pg_catalog.numeric, 0) "
							 "OPERATOR(pg_catalog.<>) 0",
							 i);
		else
			appendStringInfo(&sql,
							 "SELECT %d, pg_catalog.count(*) FILTER (WHERE b.value), "
							 "NULL::pg_catalog.numeric, "
							 "pg_catalog.count(*) FILTER (WHERE b.value) "
							 "OPERATOR(pg_catalog.>) 0",
							 i);
		appendStringInfoString(&sql, " FROM (SELECT ");
		append_expression(&sql, rule->expression);
		appendStringInfoString(&sql, " AS value FROM ");
		append_relation(&sql, &rule->relation);
		append_key_match(&sql, &rule->relation);
		if (lock_rows)
			appendStringInfoString(&sql, " FOR SHARE OF t");
		appendStringInfoString(&sql, ") b");
	}
	return sql.data;
}

/*
 * Rule 3: every purge rule in one statement, returning one count per rule.
 * NULL when there is nothing to purge.
 */
char *
purge_sql(const Mapping *m)
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
		append_key_match(&sql, &rule->relation);
		if (rule->expression)
		{
			appendStringInfoString(&sql, " AND ");
			append_expression(&sql, rule->expression);
		}
		appendStringInfoString(&sql, " RETURNING 1)");
	}
	appendStringInfoString(&sql, " SELECT ");
	for (int i = 0; i < m->n_purge_rules; i++)
		appendStringInfo(&sql, "%s(SELECT pg_catalog.count(*) FROM p%d)",
						 i == 0 ? "" : ", ", i);
	return sql.data;
}

/*
 * Rule 4, when the billing address has a relation of its own.  Returns
 * (is_company, company) per address row; decided on the row as updated, so
 * a concurrent change of the address is seen, never overwritten blindly.
 */
char *
erase_address_sql(const Mapping *m)
{
	StringInfoData sql;
	bool		first = true;

	if (m->address_on_customer)
		return NULL;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "UPDATE ");
	append_relation(&sql, &m->address);
	appendStringInfoString(&sql, " SET ");
	append_erase_address(&sql, m, &first);
	append_key_match(&sql, &m->address);
	appendStringInfoString(&sql, " RETURNING ");
	append_is_company(&sql, m);
	appendStringInfo(&sql, ", t.%s::pg_catalog.text",
					 quote_identifier(m->company_column));
	return sql.data;
}

/*
 * Rule 5, and rule 4 too when the address sits on the customer relation.
 * Returns (is_company).  $3 is the company name found by rule 4, or NULL.
 */
char *
erase_customer_sql(const Mapping *m)
{
	StringInfoData sql;
	bool		first = true;
	const char *name = quote_identifier(m->name.name);

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
	else
		appendStringInfo(&sql, ", %s = COALESCE($3, %s)",
						 name, erased_value(&m->name));
	append_key_match(&sql, &m->customer);

	appendStringInfoString(&sql, " RETURNING ");
	if (m->address_on_customer)
		append_is_company(&sql, m);
	else
		appendStringInfoString(&sql, "$3 IS NOT NULL");
	return sql.data;
}

char *
audit_lookup_sql(void)
{
	return pstrdup("SELECT a.customer_kind OPERATOR(pg_catalog.=) 'company'"
				   " FROM anonymize.audit_log a"
				   " WHERE a.customer_id OPERATOR(pg_catalog.=) $1");
}

char *
audit_insert_sql(void)
{
	return pstrdup("INSERT INTO anonymize.audit_log"
				   " (customer_id, anonymized_at, anonymized_by,"
				   " customer_kind, rows_deleted)"
				   " VALUES ($1, pg_catalog.now(), $2, $3, $4)");
}
