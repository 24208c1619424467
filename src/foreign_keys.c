/*-------------------------------------------------------------------------
 *
 * foreign_keys.c
 *	  The foreign keys of the mapped relations: the order in which the purge
 *	  deletes (children before their parents), and the referential actions
 *	  that an erasure must not set off.
 *
 * An erasure deletes and changes only rows that belong to the customer and
 * that the mapping covers.  A foreign key ON DELETE CASCADE, SET NULL or
 * SET DEFAULT that references a purged relation would delete or change
 * rows of the referencing relation that need not belong to the customer
 * (an invoice billed for a subscription still being configured, another
 * customer's attachment of the customer's email); ON UPDATE CASCADE, SET
 * NULL or SET DEFAULT on an erased column would change rows elsewhere.
 * Such a mapping is refused when a rule is set and whenever the plans are
 * built, since the schema can change later.  With RESTRICT or NO ACTION
 * instead, a referencing relation that is purged too is purged first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "anonymize.h"

/* Calls visit(m, fk, arg) for every foreign key constraint. */
static void
for_each_foreign_key(const Mapping *m,
					 void (*visit)(const Mapping *, HeapTuple, void *),
					 void *arg)
{
	Relation    rel = table_open(ConstraintRelationId, AccessShareLock);
	SysScanDesc scan =
		systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple tuple;

	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		if (((Form_pg_constraint)GETSTRUCT(tuple))->contype ==
			CONSTRAINT_FOREIGN)
			visit(m, tuple, arg);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* An edge between purge relations: rules[from] references rules[to]. */
typedef struct PurgeEdges
{
	int  n;
	int *from;
	int *to;
} PurgeEdges;

static void
collect_purge_edge(const Mapping *m, HeapTuple tuple, void *arg)
{
	Form_pg_constraint fk = (Form_pg_constraint)GETSTRUCT(tuple);
	PurgeEdges        *edges = arg;

	for (int from = 0; from < m->n_purge_rules; from++)
		for (int to = 0; to < m->n_purge_rules; to++)
			if (from != to &&
				m->purge_rules[from].relation.relid == fk->conrelid &&
				m->purge_rules[to].relation.relid == fk->confrelid)
			{
				edges->from =
					repalloc(edges->from, sizeof(int) * (edges->n + 1));
				edges->to = repalloc(edges->to, sizeof(int) * (edges->n + 1));
				edges->from[edges->n] = from;
				edges->to[edges->n] = to;
				edges->n++;
			}
}

/*
 * Orders the purge rules so that a rule whose relation references the
 * relation of another (through a foreign key) comes before it: a child's
 * rows go before the parent rows they reference.  Otherwise the order of
 * the rule names stays; a cycle of references keeps it too.
 */
void
order_purge_rules(Mapping *m)
{
	int        n = m->n_purge_rules;
	int       *level = palloc0(sizeof(int) * Max(n, 1));
	Rule      *sorted = palloc(sizeof(Rule) * Max(n, 1));
	PurgeEdges edges = {0, palloc(sizeof(int)), palloc(sizeof(int))};
	int        k = 0;
	int        max_level = 0;

	if (n < 2)
		return;
	for_each_foreign_key(m, collect_purge_edge, &edges);

	/* level: the longest chain of referencing rules above a rule */
	for (int round = 0; round < n; round++)
		for (int e = 0; e < edges.n; e++)
			if (level[edges.to[e]] < level[edges.from[e]] + 1 &&
				level[edges.from[e]] + 1 < n)
				level[edges.to[e]] = level[edges.from[e]] + 1;
	for (int i = 0; i < n; i++)
		max_level = Max(max_level, level[i]);
	for (int l = 0; l <= max_level; l++)
		for (int i = 0; i < n; i++)
			if (level[i] == l)
				sorted[k++] = m->purge_rules[i];
	memcpy(m->purge_rules, sorted, sizeof(Rule) * n);
}

static const char *
action_name(char action)
{
	switch (action)
	{
		case FKCONSTR_ACTION_CASCADE:
			return "CASCADE";
		case FKCONSTR_ACTION_SETNULL:
			return "SET NULL";
		case FKCONSTR_ACTION_SETDEFAULT:
			return "SET DEFAULT";
		default:
			return NULL;
	}
}

/* "schema.name", as the extension's other messages print relations */
static char *
relation_name(Oid relid)
{
	return psprintf("%s.%s", get_namespace_name(get_rel_namespace(relid)),
					get_rel_name(relid));
}

/*
 * True if relid is the relation or one of its partitions or inheritance
 * children, which a DELETE or UPDATE of the relation reaches too.
 */
static bool
reaches(Oid relation, Oid relid)
{
	return relid == relation ||
		   list_member_oid(find_all_inheritors(relation, NoLock, NULL), relid);
}

/* The index of the first purge rule whose delete reaches relid, or -1. */
static int
purge_rule_reaching(const Mapping *m, Oid relid)
{
	for (int i = 0; i < m->n_purge_rules; i++)
		if (reaches(m->purge_rules[i].relation.relid, relid))
			return i;
	return -1;
}

/* Errors out if a purge would set off the delete action of the key. */
static void
check_delete_action(const Mapping *m, Form_pg_constraint fk)
{
	const char *action = action_name(fk->confdeltype);
	int         rule;

	if (action == NULL)
		return;
	rule = purge_rule_reaching(m, fk->confrelid);
	if (rule < 0)
		return;
	ereport(
		ERROR,
		(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
		 errmsg("purge rule \"%s\" would cascade into relation \"%s\"",
				m->purge_rules[rule].rule_name, relation_name(fk->conrelid)),
		 errdetail("Foreign key \"%s\" of relation \"%s\" is ON DELETE %s: "
				   "deleting rows of \"%s\" would delete or change rows of "
				   "\"%s\", which need not belong to the customer.",
				   NameStr(fk->conname), relation_name(fk->conrelid), action,
				   relation_name(fk->confrelid), relation_name(fk->conrelid)),
		 errhint("Make the foreign key ON DELETE RESTRICT or NO ACTION "
				 "(and purge the referencing rows with a rule of their "
				 "own), or drop the purge rule with anonymize.drop_rule().")));
}

/*
 * True if the column of the relation is one that an erasure changes (in a
 * child of the customer or address relation, the column it inherits).
 */
static bool
is_erased_column(const Mapping *m, Oid relid, const char *column)
{
	const ErasedColumn *address[] = {&m->first_name, &m->last_name, &m->phone};

	if (reaches(m->customer.relid, relid) &&
		(strcmp(column, m->name.name) == 0 ||
		 strcmp(column, m->email.name) == 0))
		return true;
	if (!reaches(m->address.relid, relid))
		return false;
	for (size_t i = 0; i < lengthof(address); i++)
		if (strcmp(column, address[i]->name) == 0)
			return true;
	for (int i = 0; i < m->n_address_columns; i++)
		if (strcmp(column, m->address_columns[i].name) == 0)
			return true;
	return false;
}

/* Errors out if an erasure would set off the update action of the key. */
static void
check_update_action(const Mapping *m, HeapTuple tuple)
{
	Form_pg_constraint fk = (Form_pg_constraint)GETSTRUCT(tuple);
	const char        *action = action_name(fk->confupdtype);
	Datum              keys;
	bool               isnull;
	Datum             *attnums;
	int                n;

	if (action == NULL || (!reaches(m->customer.relid, fk->confrelid) &&
						   !reaches(m->address.relid, fk->confrelid)))
		return;
	keys =
		SysCacheGetAttr(CONSTROID, tuple, Anum_pg_constraint_confkey, &isnull);
	if (isnull)
		return;
	deconstruct_array(DatumGetArrayTypeP(keys), INT2OID, 2, true,
					  TYPALIGN_SHORT, &attnums, NULL, &n);
	for (int i = 0; i < n; i++)
	{
		char *column =
			get_attname(fk->confrelid, DatumGetInt16(attnums[i]), false);

		if (is_erased_column(m, fk->confrelid, column))
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("erasing column \"%s\" of relation \"%s\" would "
							"cascade into relation \"%s\"",
							column, relation_name(fk->confrelid),
							relation_name(fk->conrelid)),
					 errdetail("Foreign key \"%s\" of relation \"%s\" is ON "
							   "UPDATE %s.",
							   NameStr(fk->conname),
							   relation_name(fk->conrelid), action),
					 errhint("Make the foreign key ON UPDATE RESTRICT or NO "
							 "ACTION, or reference a key that is never "
							 "erased.")));
	}
}

static void
check_foreign_key(const Mapping *m, HeapTuple tuple, void *arg)
{
	check_delete_action(m, (Form_pg_constraint)GETSTRUCT(tuple));
	check_update_action(m, tuple);
}

/*
 * Errors out if an erasure would set off a referential action that deletes
 * or changes rows elsewhere.  Foreign keys that reference a partition or an
 * inheritance child of a mapped relation count too: its delete and update
 * reach them.
 */
void
check_cascades(const Mapping *m)
{
	for_each_foreign_key(m, check_foreign_key, NULL);
}
