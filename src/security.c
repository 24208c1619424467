/*-------------------------------------------------------------------------
 *
 * security.c
 *	  Whose rights the statements of an erasure run with.
 *
 * A caller with the privileges of a mapped relation's owner (a superuser,
 * a pg_cron job scheduled by one, the owner, a member of it) runs the
 * statements on that relation as the owner, in a security-restricted
 * operation, as VACUUM, ANALYZE and contrib/amcheck do: triggers, rules,
 * policies and functions that the owner wrote run with the owner's rights,
 * never with the caller's higher ones.  Any other caller (an operator role)
 * runs them with its own rights, as a plain statement would: running the
 * owner's code as the owner in the caller's session would let the caller
 * shadow the owner's tables with temporary ones (functions search pg_temp
 * first) and so use the owner's rights.  In both cases no code runs with
 * more rights than its author's or the caller's.  The caller's privileges
 * are checked here first, the way the executor would check them: SELECT on
 * every relation a statement reads, UPDATE of the erased columns, DELETE
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
#include "nodes/params.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "anonymize.h"

/*
 * True when statements on the relation run as its owner: the caller has the
 * owner's privileges but is not the owner.
 */
static bool
runs_as_owner(Oid owner)
{
	Oid caller = GetUserId();

	return caller != owner && has_privs_of_role(caller, owner);
}

/*
 * Runs a kept plan on a mapped relation: as the relation's owner, in a
 * security-restricted operation, when the caller has the owner's privileges
 * (settings that the owner's code changes are undone when it ends), else as
 * the caller.
 */
static ParamListInfo
plan_parameters(SPIPlanPtr plan, Datum *values, const char *nulls)
{
	int           n = SPI_getargcount(plan);
	ParamListInfo params = makeParamList(n);

	for (int i = 0; i < n; i++)
	{
		ParamExternData *param = &params->params[i];

		param->value = values[i];
		param->isnull = (nulls != NULL && nulls[i] == 'n');
		param->pflags = PARAM_FLAG_CONST;
		param->ptype = SPI_getargtypeid(plan, i);
	}
	return params;
}

/*
 * SPI_execute_snapshot(); with dest, the rows go to dest and never into a
 * tuple table.  SPI_execute_plan_extended() takes no snapshot: a given one
 * is made the active snapshot, as SPI_execute_snapshot() would use it (for
 * a statement that is not read-only, after a CommandCounterIncrement() and
 * with the new command id, so that it sees what the statements before it
 * changed), and the statement runs read-only on it.
 */
static int
execute_plan(SPIPlanPtr plan, Datum *values, const char *nulls,
			 Snapshot snapshot, Snapshot crosscheck, bool read_only,
			 DestReceiver *dest)
{
	SPIExecuteOptions options = {0};
	int               result;

	if (dest == NULL)
		return SPI_execute_snapshot(plan, values, nulls, snapshot, crosscheck,
									read_only, true, 0);
	Assert(crosscheck == InvalidSnapshot);
	options.params = plan_parameters(plan, values, nulls);
	options.read_only = read_only;
	options.dest = dest;
	if (snapshot != InvalidSnapshot && read_only)
		PushActiveSnapshot(snapshot);
	else if (snapshot != InvalidSnapshot)
	{
		CommandCounterIncrement();
		PushCopiedSnapshot(snapshot);
		UpdateActiveSnapshotCommandId();
		options.read_only = true;
	}
	result = SPI_execute_plan_extended(plan, &options);
	if (snapshot != InvalidSnapshot)
		PopActiveSnapshot();
	return result;
}

static int
run_as_rights(const MappedRelation *rel, SPIPlanPtr plan, Datum *values,
			  const char *nulls, Snapshot snapshot, Snapshot crosscheck,
			  bool read_only, DestReceiver *dest)
{
	Oid save_userid;
	int save_sec_context;
	int save_nestlevel;
	int result;

	if (!runs_as_owner(rel->owner))
		return execute_plan(plan, values, nulls, snapshot, crosscheck,
							read_only, dest);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(rel->owner,
						   save_sec_context | SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	result = execute_plan(plan, values, nulls, snapshot, crosscheck, read_only,
						  dest);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}

int
run_statement(const MappedRelation *rel, SPIPlanPtr plan, Datum *values,
			  const char *nulls, Snapshot snapshot, Snapshot crosscheck,
			  bool read_only)
{
	return run_as_rights(rel, plan, values, nulls, snapshot, crosscheck,
						 read_only, NULL);
}

static void
receiver_done(DestReceiver *self)
{
}

/*
 * A DestReceiver for run_statement_into() that hands each row to
 * receive_row and checks the row type with startup; it keeps nothing of
 * its own.
 */
DestReceiver
row_receiver(bool (*receive_row)(TupleTableSlot *, DestReceiver *),
			 void (*startup)(DestReceiver *, int, TupleDesc))
{
	return (DestReceiver){receive_row, startup, receiver_done, receiver_done,
						  DestNone};
}

/*
 * The same for a SELECT whose rows go to dest, which tallies them: no row
 * is kept, however many the statement reads.  snapshot as for
 * run_statement().
 */
void
run_statement_into(const MappedRelation *rel, SPIPlanPtr plan, Datum *values,
				   const char *nulls, Snapshot snapshot, bool read_only,
				   DestReceiver *dest)
{
	if (run_as_rights(rel, plan, values, nulls, snapshot, InvalidSnapshot,
					  read_only, dest) < 0)
		elog(ERROR, "could not run an anonymize statement");
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
		return run_statement(rel, plan, values, nulls, InvalidSnapshot,
							 InvalidSnapshot, false);
	return run_statement(rel, plan, values, nulls, GetLatestSnapshot(),
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
	return run_statement(rel, plan, values, nulls, verifying_snapshot(),
						 InvalidSnapshot, false);
}

/* The snapshot of run_verifying(), for run_statement_into(). */
Snapshot
verifying_snapshot(void)
{
	return IsolationUsesXactSnapshot() ? GetLatestSnapshot() : InvalidSnapshot;
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
 * Plans and runs the query that checks a rule's expression with the rights
 * its statements run with (run_statement): functions the expression calls
 * are planned, and may be folded, with those rights.
 */
void
run_expression_check(Oid owner, const char *sql)
{
	Oid save_userid;
	int save_sec_context;
	int save_nestlevel;

	if (!runs_as_owner(owner))
	{
		if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not check expression \"%s\"", sql);
		return;
	}
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

/* SELECT on the relations that a statement on the scope reads. */
static void
check_scope_readable(const Mapping *m, const Scope *scope)
{
	for (; scope->parent >= 0; scope = &m->scopes[scope->parent])
		check_relation_privilege(&scope->relation, ACL_SELECT);
	check_relation_privilege(&m->customer, ACL_SELECT);
}

/*
 * Whether the statements may lock rows of the relation FOR UPDATE or FOR
 * SHARE: as its owner, or as a caller with the UPDATE privilege on one of
 * its columns.
 */
bool
can_lock_rows(const MappedRelation *rel)
{
	Oid user = GetUserId();

	return runs_as_owner(rel->owner) ||
		   pg_class_aclcheck(rel->relid, user, ACL_UPDATE) == ACLCHECK_OK ||
		   pg_attribute_aclcheck_all(rel->relid, user, ACL_UPDATE,
									 ACLMASK_ANY) == ACLCHECK_OK;
}

/* Errors out unless the statements may lock rows of the relation. */
static void
check_lock_privilege(const MappedRelation *rel)
{
	if (can_lock_rows(rel))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for table %s", rel->name),
			 errdetail("anonymize locks the customer's rows of \"%s.%s\", "
					   "which needs the UPDATE privilege on one of its "
					   "columns.",
					   rel->schema, rel->name),
			 errhint("Grant UPDATE on a column that is never updated, such "
					 "as an identity key, as README.md shows.")));
}

/*
 * Errors out unless the caller may do what the call does: read the
 * customer and the scopes of the blocker rules; to erase, lock their rows
 * (CHECK_LOCK, before anything is locked), and read the scopes it changes,
 * update the erased columns and delete the purged rows (CHECK_ERASE, once
 * the customer is eligible).
 */
void
check_caller_privileges(AnonymizeState *state, PrivilegeCheck check)
{
	const Mapping *m = state->mapping;

	check_relation_privilege(&m->customer, ACL_SELECT);
	for (int i = 0; i < m->n_blocker_rules; i++)
		check_scope_readable(m, m->blocker_rules[i]->scope);
	if (check == CHECK_READ)
		return;
	if (check == CHECK_INSPECT)
	{
		for (int i = 1; i < m->n_scopes; i++)
			check_scope_readable(m, &m->scopes[i]);
		return;
	}

	check_lock_privilege(&m->customer);
	for (int i = 0; i < m->n_blocker_rules; i++)
		check_lock_privilege(&m->blocker_rules[i]->scope->relation);
	for (int i = 0; i < m->n_locked_scopes; i++)
	{
		check_scope_readable(m, m->locked_scopes[i]);
		check_lock_privilege(&m->locked_scopes[i]->relation);
	}
	if (check == CHECK_LOCK)
		return;

	if (m->company_scope != NULL)
	{
		check_scope_readable(m, m->company_scope);
		check_lock_privilege(&m->company_scope->relation);
	}

	for (int i = 0; i < m->n_erased_scopes; i++)
	{
		const ErasedScope *erased = &m->erased_scopes[i];

		check_scope_readable(m, erased->scope);
		if (erased->name_column != NULL)
			check_erased_column(&erased->scope->relation, erased->name_column);
		for (int c = 0; c < erased->n_columns; c++)
			check_erased_column(&erased->scope->relation,
								erased->columns[c]->name);
	}
	for (int i = 0; i < m->n_purge_rules; i++)
	{
		check_scope_readable(m, m->purge_rules[i]->scope);
		check_relation_privilege(&m->purge_rules[i]->scope->relation,
								 ACL_DELETE);
	}
}

/*
 * Errors out if row-level security hides rows of the relation from the
 * caller, from the owner its own statements run as, or from "reader"
 * (InvalidOid: none), another owner whose statements read it.
 */
static void
check_visible_to(const MappedRelation *rel, Oid reader)
{
	if (check_enable_rls(rel->relid, InvalidOid, true) == RLS_ENABLED ||
		(runs_as_owner(rel->owner) &&
		 check_enable_rls(rel->relid, rel->owner, true) == RLS_ENABLED) ||
		(OidIsValid(reader) &&
		 check_enable_rls(rel->relid, reader, true) == RLS_ENABLED))
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

/*
 * Errors out if row-level security hides rows of a mapped relation from
 * the caller, or from the owner the statements may run as (FORCE ROW LEVEL
 * SECURITY): a hidden blocker would not block, and a hidden row to erase
 * would survive.  Anonymizing needs to see all of a customer.
 */
void
check_rows_visible(AnonymizeState *state)
{
	const Mapping *m = state->mapping;

	for (int i = 0; i < state->n_relations; i++)
		check_visible_to(state->relations[i], InvalidOid);
	/* a statement on a scope reads its ancestors with the same rights */
	for (int i = 1; i < m->n_scopes; i++)
	{
		const Scope *scope = &m->scopes[i];

		if (!runs_as_owner(scope->relation.owner))
			continue;
		for (const Scope *up = scope; up->parent >= 0;
			 up = &m->scopes[up->parent])
			check_visible_to(&m->scopes[up->parent].relation,
							 scope->relation.owner);
	}
}

/* current_user of the caller as text, for the queue's records. */
Datum
current_user_text(void)
{
	return CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
}
