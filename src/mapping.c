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
#include "utils/lsyscache.h"

#include "anonymize.h"

#define MAPPING_QUERY                                                         \
	"SELECT customer_schema, customer_table, key_column, name_column,"        \
	" email_column, address_schema, address_table, address_key_column,"       \
	" company_column, first_name_column, last_name_column, phone_column,"     \
	" address_columns, country_column, placeholder"                           \
	" FROM anonymize.customer_mapping"

/* Purge rules first, then blocker and balance rules, each by name. */
#define RULES_QUERY                                                           \
	"SELECT 0, rule_name, relation_schema, relation_name, key_column,"        \
	" condition, NULL FROM anonymize.purge_rules WHERE enabled"               \
	" UNION ALL SELECT 1, rule_name, relation_schema, relation_name,"         \
	" key_column, condition, reason FROM anonymize.blocker_rules WHERE "      \
	"enabled"                                                                 \
	" UNION ALL SELECT 2, rule_name, relation_schema, relation_name,"         \
	" key_column, amount_expression, reason"                                  \
	" FROM anonymize.balance_rules WHERE enabled"                             \
	" ORDER BY 1, 2"

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

/* The role that owns the extension, its mapping and its audit log. */
Oid
anonymize_extension_owner(void)
{
	Oid         extid = get_extension_oid("anonymize", false);
	Relation    rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple   tuple;
	Oid         owner;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "could not find tuple for extension %u", extid);
	owner = ((Form_pg_extension)GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return owner;
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
	check_key_column(rel->relid, key_column);
}

static void
resolve_erased_column(ErasedColumn *column, Oid relid, char *name)
{
	column->name = name;
	column->not_null = check_column(relid, name);
}

static void
read_address_columns(Mapping *m, Datum array)
{
	Datum *names;
	int    n;

	deconstruct_array(DatumGetArrayTypeP(array), NAMEOID, NAMEDATALEN, false,
					  TYPALIGN_CHAR, &names, NULL, &n);
	m->n_address_columns = n;
	m->address_columns = palloc0(sizeof(ErasedColumn) * Max(n, 1));
	for (int i = 0; i < n; i++)
		resolve_erased_column(&m->address_columns[i], m->address.relid,
							  pstrdup(NameStr(*DatumGetName(names[i]))));
}

static void
check_distinct(const char **columns, int n, const MappedRelation *rel)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(columns[i], columns[j]) == 0)
				ereport(
					ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" of relation \"%s.%s\" is mapped "
							"more than once",
							columns[i], rel->schema, rel->name),
					 errdetail("Every column erased from a relation, and "
							   "its country column, must be mapped once."),
					 errhint("Change the mapping with "
							 "anonymize.set_billing_address().")));
}

/*
 * The columns erased from the billing address relation, its country and,
 * when it is the customer relation, the name and email: each one once.
 */
static void
check_distinct_erased_columns(const Mapping *m)
{
	int          n = 0;
	const char **columns = palloc(sizeof(char *) * (m->n_address_columns + 6));

	columns[n++] = m->first_name.name;
	columns[n++] = m->last_name.name;
	columns[n++] = m->phone.name;
	columns[n++] = m->country_column;
	for (int i = 0; i < m->n_address_columns; i++)
		columns[n++] = m->address_columns[i].name;
	if (m->address_on_customer)
	{
		columns[n++] = m->name.name;
		columns[n++] = m->email.name;
	}
	check_distinct(columns, n, &m->address);
}

/* Reads anonymize.customer_mapping into m. */
static void
read_customer_mapping(Mapping *m, MemoryContext cxt)
{
	MemoryContext spi_cxt;
	bool          isnull;
	Datum         address_columns;

	if (SPI_execute(MAPPING_QUERY, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read anonymize.customer_mapping");
	if (SPI_processed != 1)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the anonymize mapping has no customer relation"),
			 errdetail("Table \"anonymize.customer_mapping\" must hold "
					   "exactly one row."),
			 errhint(
				 "Reinstall the extension to get the default mapping back.")));

	spi_cxt = MemoryContextSwitchTo(cxt);
	resolve_relation(&m->customer, result_text(0, 1), result_text(0, 2),
					 result_text(0, 3));
	resolve_erased_column(&m->name, m->customer.relid, result_text(0, 4));
	resolve_erased_column(&m->email, m->customer.relid, result_text(0, 5));

	resolve_relation(&m->address, result_text(0, 6), result_text(0, 7),
					 result_text(0, 8));
	m->address_on_customer = (m->address.relid == m->customer.relid);
	m->company_column = result_text(0, 9);
	check_column(m->address.relid, m->company_column);
	resolve_erased_column(&m->first_name, m->address.relid,
						  result_text(0, 10));
	resolve_erased_column(&m->last_name, m->address.relid, result_text(0, 11));
	resolve_erased_column(&m->phone, m->address.relid, result_text(0, 12));
	address_columns = SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 13, &isnull);
	read_address_columns(m, address_columns);
	m->country_column = result_text(0, 14);
	check_column(m->address.relid, m->country_column);
	m->placeholder = result_text(0, 15);
	MemoryContextSwitchTo(spi_cxt);
	check_distinct_erased_columns(m);
}

/* Reads the enabled purge, blocker and balance rules into m. */
static void
read_rules(Mapping *m, MemoryContext cxt)
{
	uint64        n_rows;
	MemoryContext spi_cxt;

	if (SPI_execute(RULES_QUERY, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the anonymize rules");
	n_rows = SPI_processed;

	spi_cxt = MemoryContextSwitchTo(cxt);
	m->purge_rules = palloc0(sizeof(Rule) * Max(n_rows, 1));
	m->blocker_rules = palloc0(sizeof(Rule) * Max(n_rows, 1));
	for (uint64 row = 0; row < n_rows; row++)
	{
		int   kind = pg_strtoint32(result_text(row, 1));
		Rule *rule = (kind == 0) ? &m->purge_rules[m->n_purge_rules++]
								 : &m->blocker_rules[m->n_blocker_rules++];

		rule->kind = (kind == 0)   ? RULE_PURGE
					 : (kind == 1) ? RULE_BLOCKER
								   : RULE_BALANCE;
		rule->rule_name = result_text(row, 2);
		resolve_relation(&rule->relation, result_text(row, 3),
						 result_text(row, 4), result_text(row, 5));
		rule->expression = result_text(row, 6);
		rule->reason = result_text(row, 7);
	}
	MemoryContextSwitchTo(spi_cxt);
}

/*
 * Reads and resolves the whole mapping into the current memory context.
 * The caller is connected to SPI.  Errors out, naming the entry, when a
 * mapped relation or column does not exist.
 */
Mapping *
load_mapping(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	Mapping      *m = palloc0(sizeof(Mapping));
	Oid           save_userid;
	int           save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(anonymize_extension_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_NOFORCE_RLS);
	read_customer_mapping(m, cxt);
	read_rules(m, cxt);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	for (int i = 0; i < m->n_purge_rules; i++)
		check_rule_expression(&m->purge_rules[i]);
	for (int i = 0; i < m->n_blocker_rules; i++)
		check_rule_expression(&m->blocker_rules[i]);
	order_purge_rules(m);
	check_cascades(m);
	return m;
}
