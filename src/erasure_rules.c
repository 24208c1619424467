/*-------------------------------------------------------------------------
 *
 * erasure_rules.c
 *	  The erasure rules, in one place: the SQL text of every statement that
 *	  anonymize runs, built from the mapping.
 *
 * The rules, as erasure.c applies them in this order:
 *
 *	1. Lock the customer row FOR UPDATE.  This also holds off concurrent
 *	   inserts that reference it (their foreign key check takes FOR KEY SHARE).
 *	2. Blockers: any row matching a blocker rule (a subscription not
 *	   terminated, an invoice not paid or cancelled) or a balance rule whose
 *	   amounts do not sum to zero refuses the anonymization.  The customer's
 *	   rows of those relations are locked FOR SHARE, so nothing can turn into
 *	   a blocker before the transaction ends.
 *	3. Billing address: its rows are locked, and the customer is a company
 *	   if one holds a company (a non-blank character in the company column),
 *	   decided before anything is rewritten.  First name, last name and
 *	   phone are erased.  A company keeps its address; an individual loses
 *	   every address column but the country.
 *	4. Customer: the email is erased; the name becomes the company name for
 *	   a company and is erased for an individual.
 *	5. Purge: delete the customer's rows of every purge rule (sent emails,
 *	   activity, webhook notifications, subscriptions still 'initialized').
 *	   It comes after the rewrites, so that rows which triggers of the
 *	   rewrites create in purged relations (a history of old names, say) go
 *	   too.
 *	6. Verify: no purged relation holds a row of the customer any more
 *	   (a trigger of the purge may have archived rows into another purged
 *	   relation: those are purged again), and every erased column holds
 *	   NULL, the placeholder or, for the name of a company, its company name.
 *	   Otherwise the erasure fails and changes nothing (verify.c).
 *	7. Audit: one row in anonymize.audit_log, which also marks the customer
 *	   as anonymized, so that a second call changes nothing (audit.c).
 *
 * "Erased" means NULL, or the configured placeholder for a NOT NULL column.
 *
 * Each statement comes in two forms: for one customer ($1 is its uuid) and
 * for many at once ($1 is a uuid[]; used by the request queue).  A statement
 * touches one relation, so that it can run as that relation's owner
 * (security.c).  No statement returns a row per row it touches: counts come
 * from SPI_processed or from aggregates per customer, so the memory of a
 * call does not grow with the customer's history.  The request queue never
 * waits for a row lock: it locks customers SKIP LOCKED and every other row
 * NOWAIT, before changing anything, in this order.
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

/* Parameter holding the placeholder in the erase and verify statements. */
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

/* The erased value as text, to compare a column with. */
static const char *
erased_text(const ErasedColumn *column)
{
	return column->not_null ? PLACEHOLDER_PARAM : "NULL::pg_catalog.text";
}

/* True when the column of row "t" holds its erased value. */
static void
append_is_erased(StringInfo sql, const ErasedColumn *column)
{
	if (column->not_null)
		appendStringInfo(sql,
						 "t.%s::pg_catalog.text OPERATOR(pg_catalog.=) %s",
						 quote_identifier(column->name), PLACEHOLDER_PARAM);
	else
		appendStringInfo(sql, "t.%s IS NULL", quote_identifier(column->name));
}

static void
append_erase(StringInfo sql, const ErasedColumn *column, bool *first)
{
	appendStringInfo(sql, "%s%s = %s", *first ? "" : ", ",
					 quote_identifier(column->name), erased_value(column));
	*first = false;
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

/*
 * A rule's expression, evaluated on the row "t".  The newline ends a
 * trailing "--" comment before the closing parenthesis.
 */
static void
append_expression(StringInfo sql, const char *expression)
{
	appendStringInfo(sql, "(%s\n)", expression);
}

/* The rows of the customer (or customers) that a rule covers. */
static void
append_rule_rows(StringInfo sql, const Rule *rule, bool many)
{
	append_relation(sql, &rule->relation);
	append_key_match(sql, &rule->relation, many);
	if (rule->expression != NULL && rule->kind == RULE_PURGE)
	{
		appendStringInfoString(sql, " AND ");
		append_expression(sql, rule->expression);
	}
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

/* The ids among $1 (a uuid[]) that are customers. */
char *
existing_customers_sql(const Mapping *m)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t.%s FROM ",
					 quote_identifier(m->customer.key_column));
	append_relation(&sql, &m->customer);
	append_key_match(&sql, &m->customer, true);
	return sql.data;
}

/*
 * The company name decided for each customer before its rewrite: "$3" for
 * one customer, "c.company" for many, joined to the rows of "t" by
 * append_customer_join().  NULL for an individual.
 */
static const char *
company_of(bool many)
{
	return many ? "c.company" : "$3";
}

/*
 * The rows of "t" that belong to the customers: for many, joined to the
 * pairs (customer id, company name) of $1 and $3; "joiner" is " FROM" in an
 * UPDATE, "," in a SELECT.
 */
static void
append_customer_join(StringInfo sql, const MappedRelation *rel, bool many,
					 const char *joiner)
{
	if (!many)
	{
		append_key_match(sql, rel, false);
		return;
	}
	appendStringInfo(sql,
					 "%s ROWS FROM (pg_catalog.unnest($1),"
					 " pg_catalog.unnest($3)) AS c (key, company)"
					 " WHERE t.%s OPERATOR(pg_catalog.=) c.key",
					 joiner, quote_identifier(rel->key_column));
}

/*
 * Rule 1: returns the id of every customer locked, and when the billing
 * address is on the customer row, whether it is a company's and the company
 * name, decided on the row before it is rewritten.  Many customers are
 * locked in the order of their ids; without waiting, a customer locked by
 * another transaction is skipped.
 */
char *
lock_customer_sql(const Mapping *m, bool many, bool nowait)
{
	StringInfoData sql;
	const char    *key = quote_identifier(m->customer.key_column);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t.%s", key);
	if (m->address_on_customer)
	{
		appendStringInfoString(&sql, ", ");
		append_is_company(&sql, m);
		appendStringInfo(&sql, ", t.%s::pg_catalog.text",
						 quote_identifier(m->company_column));
	}
	appendStringInfoString(&sql, " FROM ");
	append_relation(&sql, &m->customer);
	append_key_match(&sql, &m->customer, many);
	if (many)
		appendStringInfo(&sql, " ORDER BY t.%s", key);
	appendStringInfoString(&sql, " FOR UPDATE OF t");
	if (nowait)
		appendStringInfoString(&sql, " SKIP LOCKED");
	return sql.data;
}

/*
 * Rule 2 for one blocker or balance rule: one row (customer id, rows,
 * amount) per customer that the rule holds back.  A blocker rule holds back
 * a customer with a row whose condition is true; rows counts those rows.  A
 * balance rule holds back a customer whose amounts do not sum to zero;
 * rows counts all its rows and amount is the sum.  With lock_rows, every
 * row of the customer in the relation is locked FOR SHARE, not only the
 * blocking ones: a row that does not block yet could be updated into one.
 */
char *
blocker_sql(const Rule *rule, bool lock_rows, bool many, bool nowait)
{
	StringInfoData sql;
	bool           balance = (rule->kind == RULE_BALANCE);

	initStringInfo(&sql);
	appendStringInfoString(
		&sql, balance ? "SELECT b.key, pg_catalog.count(*), "
						"pg_catalog.sum(b.value)"
					  : "SELECT b.key, pg_catalog.count(*) FILTER (WHERE "
						"b.value), NULL::pg_catalog.numeric");
	appendStringInfo(&sql, " FROM (SELECT t.%s AS key, ",
					 quote_identifier(rule->relation.key_column));
	append_expression(&sql, rule->expression);
	appendStringInfoString(&sql, balance
									 ? "::pg_catalog.numeric AS value FROM "
									 : " AS value FROM ");
	append_rule_rows(&sql, rule, many);
	if (lock_rows)
		appendStringInfoString(&sql, nowait ? " FOR SHARE OF t NOWAIT"
											: " FOR SHARE OF t");
	appendStringInfoString(
		&sql, balance ? ") b GROUP BY b.key HAVING "
						"COALESCE(pg_catalog.sum(b.value), 0) "
						"OPERATOR(pg_catalog.<>) 0"
					  : ") b GROUP BY b.key HAVING pg_catalog.count(*) "
						"FILTER (WHERE b.value) OPERATOR(pg_catalog.>) 0");
	return sql.data;
}

/* The rows of a relation locked FOR UPDATE NOWAIT; returns their count. */
static char *
lock_rows_nowait_sql(const Rule *rule, bool many)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT pg_catalog.count(*) FROM (SELECT 1 FROM ");
	append_rule_rows(&sql, rule, many);
	appendStringInfoString(&sql, " FOR UPDATE OF t NOWAIT) s");
	return sql.data;
}

/* The queue's lock of the rows that a purge rule deletes. */
char *
lock_purge_sql(const Rule *rule, bool many)
{
	return lock_rows_nowait_sql(rule, many);
}

/*
 * Rule 3, first half, when the billing address has a relation of its own:
 * locks the customers' address rows FOR NO KEY UPDATE (the lock the rewrite
 * takes anyway, which does not conflict with foreign key checks of rows
 * referencing them; NOWAIT for the queue) and returns one row per customer:
 * (customer id, is_company, company name, company rows), decided on the
 * rows before they are rewritten, so that a trigger of the rewrite cannot
 * turn an individual into a company.  A customer with several company
 * addresses gets the least company name.
 */
char *
classify_address_sql(const Mapping *m, bool many, bool nowait)
{
	StringInfoData sql;

	if (m->address_on_customer)
		return NULL;
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT b.key, pg_catalog.bool_or(b.is_company),"
					 " pg_catalog.min(b.company) FILTER (WHERE b.is_company),"
					 " pg_catalog.count(*) FILTER (WHERE b.is_company)"
					 " FROM (SELECT t.%s AS key, ",
					 quote_identifier(m->address.key_column));
	append_is_company(&sql, m);
	appendStringInfo(&sql,
					 " AS is_company, t.%s::pg_catalog.text AS company"
					 " FROM ",
					 quote_identifier(m->company_column));
	append_relation(&sql, &m->address);
	append_key_match(&sql, &m->address, many);
	appendStringInfoString(&sql, nowait ? " FOR NO KEY UPDATE OF t NOWAIT) b"
										: " FOR NO KEY UPDATE OF t) b");
	appendStringInfoString(&sql, " GROUP BY b.key");
	return sql.data;
}

/*
 * Rule 3, second half: erases the address rows ($2 the placeholder), each
 * as a company's or an individual's, decided on the row as locked.
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
	append_erase(&sql, &m->first_name, &first);
	append_erase(&sql, &m->last_name, &first);
	append_erase(&sql, &m->phone, &first);
	for (int i = 0; i < m->n_address_columns; i++)
	{
		const ErasedColumn *column = &m->address_columns[i];
		const char         *quoted = quote_identifier(column->name);

		/* An individual's address goes too; a company's stays. */
		appendStringInfo(&sql, ", %s = CASE WHEN ", quoted);
		append_is_company(&sql, m);
		appendStringInfo(&sql, " THEN t.%s ELSE %s END", quoted,
						 erased_value(column));
	}
	append_key_match(&sql, &m->address, many);
	return sql.data;
}

/*
 * Rule 4, and rule 3 too when the address sits on the customer relation:
 * the email is erased, the name becomes the company name ($3, NULL for an
 * individual; for many a text[] in the order of the ids in $1) or is
 * erased, and an individual's address columns are erased.
 */
char *
erase_customer_sql(const Mapping *m, bool many)
{
	StringInfoData sql;
	bool           first = true;
	const char    *company = company_of(many);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "UPDATE ");
	append_relation(&sql, &m->customer);
	appendStringInfoString(&sql, " SET ");
	append_erase(&sql, &m->email, &first);
	appendStringInfo(&sql, ", %s = COALESCE(%s, %s)",
					 quote_identifier(m->name.name), company,
					 erased_value(&m->name));
	if (m->address_on_customer)
	{
		append_erase(&sql, &m->first_name, &first);
		append_erase(&sql, &m->last_name, &first);
		append_erase(&sql, &m->phone, &first);
		for (int i = 0; i < m->n_address_columns; i++)
		{
			const ErasedColumn *column = &m->address_columns[i];
			const char         *quoted = quote_identifier(column->name);

			appendStringInfo(&sql,
							 ", %s = CASE WHEN %s IS NULL THEN %s ELSE t.%s "
							 "END",
							 quoted, company, erased_value(column), quoted);
		}
	}
	append_customer_join(&sql, &m->customer, many, " FROM");
	return sql.data;
}

/*
 * Rule 5 for one purge rule.  For one customer a plain DELETE (SPI counts
 * the rows); for many, one row (customer id, rows deleted) per customer.
 */
char *
purge_sql(const Rule *rule, bool many)
{
	StringInfoData sql;

	initStringInfo(&sql);
	if (many)
		appendStringInfoString(&sql, "WITH d AS (");
	appendStringInfoString(&sql, "DELETE FROM ");
	append_rule_rows(&sql, rule, many);
	if (many)
		appendStringInfo(&sql,
						 " RETURNING t.%s AS key) SELECT d.key,"
						 " pg_catalog.count(*) FROM d GROUP BY d.key",
						 quote_identifier(rule->relation.key_column));
	return sql.data;
}

/* Rule 6 for one purge rule: true while a row it covers remains. */
char *
verify_purge_sql(const Rule *rule, bool many)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT EXISTS (SELECT 1 FROM ");
	append_rule_rows(&sql, rule, many);
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

/*
 * ", count(*) FILTER (WHERE NOT erased)" for one column, and its name.
 * With a mapping "m", only the rows of individuals count: where "company"
 * (the customer's company name) is NULL or, without it, where the row holds
 * no company (an address relation of its own decides per row, as the
 * rewrite does; verify_companies_sql() checks that no row became one).
 */
static void
append_unerased_count(StringInfo sql, const ErasedColumn *column,
					  const Mapping *m, const char *company,
					  const char **names, int *n)
{
	appendStringInfoString(sql, *n == 0 ? "pg_catalog.count(*) FILTER (WHERE "
										: ", pg_catalog.count(*) FILTER "
										  "(WHERE ");
	if (m != NULL && company != NULL)
		appendStringInfo(sql, "%s IS NULL AND ", company);
	else if (m != NULL)
	{
		appendStringInfoString(sql, "NOT ");
		append_is_company(sql, m);
		appendStringInfoString(sql, " AND ");
	}
	appendStringInfoString(sql, "NOT (");
	append_is_erased(sql, column);
	appendStringInfoString(sql, "))");
	if (names != NULL)
		names[*n] = column->name;
	(*n)++;
}

/* The counts of unerased address columns, in the order of their names. */
static int
append_unerased_address(StringInfo sql, const Mapping *m, bool many,
						const char **names, int n)
{
	append_unerased_count(sql, &m->first_name, NULL, NULL, names, &n);
	append_unerased_count(sql, &m->last_name, NULL, NULL, names, &n);
	append_unerased_count(sql, &m->phone, NULL, NULL, names, &n);
	for (int i = 0; i < m->n_address_columns; i++)
		append_unerased_count(sql, &m->address_columns[i], m,
							  m->address_on_customer ? company_of(many) : NULL,
							  names, &n);
	return n;
}

/*
 * Rule 6 for the address relation of its own: one row, the number of the
 * customers' address rows in which each erased column still holds data
 * (the address columns of rows without a company); parameters as for rule
 * 4.  NULL when the address is on the customer relation.
 */
char *
verify_address_sql(const Mapping *m, bool many)
{
	StringInfoData sql;

	if (m->address_on_customer)
		return NULL;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	append_unerased_address(&sql, m, many, NULL, 0);
	appendStringInfoString(&sql, " FROM ");
	append_relation(&sql, &m->address);
	append_customer_join(&sql, &m->address, many, ",");
	return sql.data;
}

/*
 * Rule 6 for the company decision of an address relation of its own: the
 * number of the customers' address rows that hold a company now; for many,
 * one row per customer (customer id, rows).  None may be more than rule 3
 * found before the rewrite: a trigger must not turn an individual's row
 * into a company's, whose address would then stay.
 */
char *
verify_companies_sql(const Mapping *m, bool many)
{
	StringInfoData sql;

	if (m->address_on_customer)
		return NULL;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t.%s, pg_catalog.count(*) FILTER (WHERE ",
					 quote_identifier(m->address.key_column));
	append_is_company(&sql, m);
	appendStringInfoString(&sql, ") FROM ");
	append_relation(&sql, &m->address);
	append_key_match(&sql, &m->address, many);
	appendStringInfo(&sql, " GROUP BY t.%s",
					 quote_identifier(m->address.key_column));
	return sql.data;
}

static int
append_unerased_customer(StringInfo sql, const Mapping *m, bool many,
						 const char **names)
{
	int n = 0;

	append_unerased_count(sql, &m->email, NULL, NULL, names, &n);
	appendStringInfo(sql,
					 ", pg_catalog.count(*) FILTER (WHERE t.%s::pg_catalog."
					 "text IS DISTINCT FROM COALESCE(%s, %s))",
					 quote_identifier(m->name.name), company_of(many),
					 erased_text(&m->name));
	if (names != NULL)
		names[n] = m->name.name;
	n++;
	if (m->address_on_customer)
		n = append_unerased_address(sql, m, many, names, n);
	return n;
}

/*
 * Rule 6 for the customer relation: one row, the number of customers in
 * which each erased column still holds data, the name included (it must be
 * the company name or erased); parameters as for rule 4.
 */
char *
verify_customer_sql(const Mapping *m, bool many)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	append_unerased_customer(&sql, m, many, NULL);
	appendStringInfoString(&sql, " FROM ");
	append_relation(&sql, &m->customer);
	append_customer_join(&sql, &m->customer, many, ",");
	return sql.data;
}

/*
 * The columns counted by verify_customer_sql() or, for the address
 * relation, by verify_address_sql(), in order of their counts; their number.
 */
int
verified_columns(const Mapping *m, bool customer_relation, const char **names)
{
	StringInfoData ignored;
	int            n;

	initStringInfo(&ignored);
	n = customer_relation
			? append_unerased_customer(&ignored, m, false, names)
			: append_unerased_address(&ignored, m, false, names, 0);
	pfree(ignored.data);
	return n;
}

/*
 * Rule 7.  $2 the role, $3 the kind, $4 rows deleted; arrays in the many
 * form.
 */
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
