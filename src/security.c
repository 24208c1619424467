/*-------------------------------------------------------------------------
 *
 * security.c
 *	  Whose rights the statements of an erasure run with.
 *
 * A statement on a mapped relation runs as the owner of that relation, in
 * a security-restricted operation, as VACUUM, ANALYZE and contrib/amcheck
 * do: triggers, rules, policies and functions that the owner wrote run with
 * the owner's rights, never with those of the caller.  A superuser (or a
 * pg_cron job scheduled by one) therefore cannot be made to run code that a
 * less privileged table owner wrote with superuser rights.  Since the
 * statements no longer run with the caller's rights, the caller's
 * privileges are checked here first, the way the executor would check them:
 * SELECT on every mapped relation, UPDATE of the erased columns, DELETE
 * where rows are purged.
 *
 * Statements on the extension's own tables (audit log, request queue) run
 * as the extension owner, so that callers cannot write those directly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "anonymize.h"

/*
 * Runs a kept plan on a mapped relation as the relation's owner, in a
 * security-restricted operation; settings that the owner's code changes
 * are undone when it ends.
 */
int
run_as_owner(const MappedRelation *rel, SPIPlanPtr plan, Datum *values,
			 const char *nulls, Snapshot snapshot, Snapshot crosscheck,
			 bool read_only)
{
	Oid save_userid;
	int save_sec_context;
	int save_nestlevel;
	int result;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(rel->owner,
						   save_sec_context | SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	result = SPI_execute_snapshot(plan, values, nulls, snapshot, crosscheck,
								  read_only, true, 0);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}

/*
 * Runs a statement that changes rows of the customer.  In a transaction
 * that uses one snapshot for all its statements (REPEATABLE READ,
 * SERIALIZABLE), it changes the rows of the latest snapshot and
 * cross-checks them against the transaction's, as PostgreSQL's foreign key
 * actions do: a row committed after the transaction's snapshot (a billing
 * address, a sent email) raises a serialization failure instead of
 * surviving the erasure unseen.
 */
int
run_modifying(const MappedRelation *rel, SPIPlanPtr plan, Datum *values,
			  const char *nulls)
{
	if (!IsolationUsesXactSnapshot())
		return run_as_owner(rel, plan, values, nulls, InvalidSnapshot,
							InvalidSnapshot, false);
	return run_as_owner(rel, plan, values, nulls, GetLatestSnapshot(),
						GetTransactionSnapshot(), false);
}

/*
 * Runs a statement that checks what is left of the customer: with the
 * latest snapshot, so that it sees what run_modifying() saw and changed.
 */
int
run_verifying(const MappedRelation *rel, SPIPlanPtr plan, Datum *values,
			  const char *nulls)
{
	return run_as_owner(rel, plan, values, nulls,
						IsolationUsesXactSnapshot() ? GetLatestSnapshot()
													: InvalidSnapshot,
						InvalidSnapshot, false);
}

/*
 * Runs a kept plan as the extension owner: for the statements on the
 * extension's own tables (audit log, request queue), which callers cannot
 * write directly.  Those tables have no triggers but the extension's.
 */
int
execute_as_owner(Oid owner, SPIPlanPtr plan, Datum *values, const char *nulls,
				 bool read_only)
{
	Oid save_userid;
	int save_sec_context;
	int result;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
									  SECURITY_LOCAL_USERID_CHANGE |
									  SECURITY_NOFORCE_RLS);
	result = SPI_execute_plan(plan, values, nulls, read_only, 0);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}

/*
 * Plans and runs the query that checks a rule's expression, as the owner of
 * its relation in a security-restricted operation: functions the
 * expression calls are planned (and may be folded) with the owner's rights.
 */
void
run_expression_check_as_owner(Oid owner, const char *sql)
{
	Oid save_userid;
	int save_sec_context;
	int save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner,
						   save_sec_context | SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not check expression \"%s\"", sql);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/* Errors out as the executor would unless the caller has the privilege. */
static void
check_relation_privilege(const MappedRelation *rel, AclMode mode)
{
	AclResult result = pg_class_aclcheck(rel->relid, GetUserId(), mode);

	if (result != ACLCHECK_OK)
		aclcheck_error(result,
					   get_relkind_objtype(get_rel_relkind(rel->relid)),
					   rel->name);
}

/* The same for a column: a privilege on the relation or on the column. */
static void
check_column_privilege(const MappedRelation *rel, const char *column,
					   AclMode mode)
{
	AttrNumber attnum = get_attnum(rel->relid, column);
	AclResult  result;

	if (pg_class_aclcheck(rel->relid, GetUserId(), mode) == ACLCHECK_OK)
		return;
	result = pg_attribute_aclcheck(rel->relid, attnum, GetUserId(), mode);
	if (result != ACLCHECK_OK)
		aclcheck_error_col(result,
						   get_relkind_objtype(get_rel_relkind(rel->relid)),
						   rel->name, column);
}

static void
check_erased_column(const MappedRelation *rel, const char *column)
{
	check_column_privilege(rel, column, ACL_SELECT);
	check_column_privilege(rel, column, ACL_UPDATE);
}

/* UPDATE of every column that the erasure of the address writes. */
static void
check_address_privileges(const Mapping *m)
{
	check_erased_column(&m->address, m->first_name.name);
	check_erased_column(&m->address, m->last_name.name);
	check_erased_column(&m->address, m->phone.name);
	for (int i = 0; i < m->n_address_columns; i++)
		check_erased_column(&m->address, m->address_columns[i].name);
}

/*
 * Errors out unless the caller may do what the call does: read the
 * customer and the relations of the blocker rules and, when erasing, update
 * the erased columns and delete the purged rows.
 */
void
check_caller_privileges(AnonymizeState *state, bool erasing)
{
	const Mapping *m = state->mapping;

	check_relation_privilege(&m->customer, ACL_SELECT);
	for (int i = 0; i < m->n_blocker_rules; i++)
		check_relation_privilege(&m->blocker_rules[i].relation, ACL_SELECT);
	if (!erasing)
		return;

	check_erased_column(&m->customer, m->name.name);
	check_erased_column(&m->customer, m->email.name);
	check_relation_privilege(&m->address, ACL_SELECT);
	check_address_privileges(m);
	for (int i = 0; i < m->n_purge_rules; i++)
	{
		check_relation_privilege(&m->purge_rules[i].relation, ACL_SELECT);
		check_relation_privilege(&m->purge_rules[i].relation, ACL_DELETE);
	}
}

/*
 * Errors out if row-level security hides rows of a mapped relation from
 * the caller, or from the owner the statements run as (FORCE ROW LEVEL
 * SECURITY): a hidden blocker would not block, and a hidden row to erase
 * would survive.  Anonymizing needs to see all of a customer.
 */
void
check_rows_visible(AnonymizeState *state)
{
	for (int i = 0; i < state->n_relations; i++)
	{
		const MappedRelation *rel = state->relations[i];

		if (check_enable_rls(rel->relid, InvalidOid, true) == RLS_ENABLED ||
			check_enable_rls(rel->relid, rel->owner, true) == RLS_ENABLED)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("row-level security hides rows of relation "
							"\"%s.%s\" from anonymize",
							rel->schema, rel->name),
					 errdetail("Checking the blockers and erasing the data of "
							   "a customer needs to see all of its rows."),
					 errhint("Run it as a role that owns the relation or "
							 "bypasses row-level security, and do not force "
							 "row-level security on its owner.")));
	}
}
