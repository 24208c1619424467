/*-------------------------------------------------------------------------
 *
 * foreign_keys.c
 *	  The order of an erasure's purges and erasures (children before their
 *	  parents, in the tree of scopes and along foreign keys), and the
 *	  referential actions that an erasure must not set off.
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

/* True if scope a lies below scope b in the tree of scopes. */
static bool
is_descendant(const Mapping *m, const Scope *a, const Scope *b)
{
	for (int up = a->parent; up >= 0; up = m->scopes[up].parent)
		if (&m->scopes[up] == b)
			return true;
	return false;
}

/* The pairs (referencing, referenced) of every foreign key. */
typedef struct References
{
	int  n;
	Oid *from;
	Oid *to;
} References;

static void
collect_reference(const Mapping *m, HeapTuple tuple, void *arg)
{
	Form_pg_constraint fk = (Form_pg_constraint)GETSTRUCT(tuple);
	References        *refs = arg;

	refs->from = repalloc(refs->from, sizeof(Oid) * (refs->n + 1));
	refs->to = repalloc(refs->to, sizeof(Oid) * (refs->n + 1));
	refs->from[refs->n] = fk->conrelid;
	refs->to[refs->n] = fk->confrelid;
	refs->n++;
}

static bool
references(const References *refs, Oid from, Oid to)
{
	for (int i = 0; i < refs->n; i++)
		if (refs->from[i] == from && refs->to[i] == to && from != to)
			return true;
	return false;
}

static const Scope *
operation_scope(const Operation *op)
{
	return op->purge ? op->rule->scope : op->erased->scope;
}

/*
 * Whether operation a must run before b: a's rows lie below b's (so that
 * which rows belong to the customer is decided on the data as it was when
 * the erasure started), an erasure before a purge of the same scope, and a
 * purge of rows that reference rows of another purge before it.
 */
static bool
runs_before(const Mapping *m, const References *refs, const Operation *a,
			const Operation *b)
{
	const Scope *scope_a = operation_scope(a);
	const Scope *scope_b = operation_scope(b);

	if (is_descendant(m, scope_a, scope_b))
		return true;
	if (scope_a == scope_b)
		return !a->purge && b->purge;
	return a->purge && b->purge &&
		   references(refs, scope_a->relation.relid, scope_b->relation.relid);
}

/* Scopes nearer the customer first, then by name: the order of locking. */
static int
compare_depth(const void *a, const void *b)
{
	const Scope *x = *(const Scope *const *)a;
	const Scope *y = *(const Scope *const *)b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Adds each proper ancestor of the scope but the customer, once. */
static void
add_locked_ancestors(Mapping *m, const Scope *scope)
{
	for (int up = scope->parent; up > 0; up = m->scopes[up].parent)
	{
		bool found = false;

		for (int i = 0; i < m->n_locked_scopes; i++)
			found |= (m->locked_scopes[i] == &m->scopes[up]);
		if (!found)
			m->locked_scopes[m->n_locked_scopes++] = &m->scopes[up];
	}
}

/*
 * Orders the purges and erasures of the mapping into m->operations: each
 * operation after those it must follow (runs_before), levels computed as
 * the longest chain above an operation; a cycle of foreign keys keeps the
 * order of the names.  The purge rules are reordered the same way, for the
 * repeated purges.  The ancestors of every blocker, purged or erased scope
 * go to m->locked_scopes, nearest to the customer first: their rows are
 * locked FOR UPDATE, top down, before the blockers are checked, so that no
 * row referencing them can join a scope below them meanwhile.
 */
void
order_operations(Mapping *m)
{
	int        n = m->n_purge_rules + m->n_erased_scopes;
	Operation *ops = palloc0(sizeof(Operation) * Max(n, 1));
	int       *level = palloc0(sizeof(int) * Max(n, 1));
	int        max_level = 0;
	int        k = 0;
	int        p = 0;
	bool      *before = palloc0(sizeof(bool) * Max(n * n, 1));
	References refs = {0, palloc(sizeof(Oid)), palloc(sizeof(Oid))};

	for (int i = 0; i < m->n_erased_scopes; i++)
		ops[k++] = (Operation){false, NULL, &m->erased_scopes[i], i};
	for (int i = 0; i < m->n_purge_rules; i++)
		ops[k++] = (Operation){true, m->purge_rules[i], NULL, i};

	for_each_foreign_key(m, collect_reference, &refs);
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++)
			before[a * n + b] =
				a != b && runs_before(m, &refs, &ops[a], &ops[b]);
	for (int round = 0; round < n; round++)
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++)
				if (before[a * n + b] && level[b] < level[a] + 1 &&
					level[a] + 1 < n)
					level[b] = level[a] + 1;

	m->operations = palloc(sizeof(Operation) * Max(n, 1));
	m->n_operations = 0;
	for (int i = 0; i < n; i++)
		max_level = Max(max_level, level[i]);
	for (int l = 0; l <= max_level; l++)
		for (int i = 0; i < n; i++)
			if (level[i] == l)
				m->operations[m->n_operations++] = ops[i];

	m->locked_scopes = palloc(sizeof(Scope *) * Max(m->n_scopes, 1));
	for (int i = 0; i < m->n_blocker_rules; i++)
		add_locked_ancestors(m, m->blocker_rules[i]->scope);
	for (int i = 0; i < n; i++)
	{
		Operation *op = &m->operations[i];

		add_locked_ancestors(m, operation_scope(op));
		if (op->purge)
		{
			m->purge_rules[p] = op->rule;
			op->index = p++;
		}
	}
	qsort(m->locked_scopes, m->n_locked_scopes, sizeof(Scope *),
		  compare_depth);
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

/* The first purge rule whose delete reaches relid, or NULL. */
static const Rule *
purge_rule_reaching(const Mapping *m, Oid relid)
{
	for (int i = 0; i < m->n_purge_rules; i++)
		if (reaches(m->purge_rules[i]->scope->relation.relid, relid))
			return m->purge_rules[i];
	return NULL;
}

/* Errors out if a purge would set off the delete action of the key. */
static void
check_delete_action(const Mapping *m, Form_pg_constraint fk)
{
	const char *action = action_name(fk->confdeltype);
	const Rule *rule;

	if (action == NULL)
		return;
	rule = purge_rule_reaching(m, fk->confrelid);
	if (rule == NULL)
		return;
	ereport(
		ERROR,
		(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
		 errmsg("purge rule \"%s\" would cascade into relation \"%s\"",
				rule->rule_name, relation_name(fk->conrelid)),
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
 * child of an erased relation, the column it inherits).
 */
static bool
is_erased_column(const Mapping *m, Oid relid, const char *column)
{
	for (int i = 0; i < m->n_erased_scopes; i++)
	{
		const ErasedScope *erased = &m->erased_scopes[i];

		if (!reaches(erased->scope->relation.relid, relid))
			continue;
		if (erased->scope == &m->scopes[0] &&
			strcmp(column, m->name.name) == 0)
			return true;
		for (int c = 0; c < erased->n_columns; c++)
			if (strcmp(column, erased->columns[c]->name) == 0)
				return true;
	}
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

	if (action == NULL)
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
