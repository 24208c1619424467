/*-------------------------------------------------------------------------
 *
 * drop_guard.c
 *	  Keeps DROP EXTENSION anonymize from silently destroying the proof of
 *	  erasures: the event trigger anonymize.guard_drop() refuses a command
 *	  that would drop the extension while the audit log holds rows or
 *	  requests are pending, unless anonymize.allow_drop_with_data is on.
 *
 * The commands that drop it: DROP EXTENSION anonymize, DROP SCHEMA
 * anonymize, DROP OWNED BY its owner, and DROP EXTENSION or DROP LANGUAGE
 * ... CASCADE of what its objects depend on (plpgsql).  The trigger fires at
 * ddl_command_start, while the tables still exist; an sql_drop trigger
 * would be dropped with the extension before it could fire.  A superuser
 * can still disable event triggers; the guard is against accidents.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_guard_drop);

static bool allow_drop_with_data = false;

#define KEPT_DATA_SQL                                                         \
	"SELECT (SELECT pg_catalog.count(*) FROM anonymize.audit_log),"           \
	" (SELECT pg_catalog.count(*) FROM anonymize.requests"                    \
	" WHERE state OPERATOR(pg_catalog.=) 'pending')"

/*
 * Whether a member of extension anonymize ($1) depends on an extension or
 * a language named in $2, or on a member of such an extension.
 */
#define DEPENDS_ON_SQL                                                        \
	"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_depend mine"                  \
	" JOIN pg_catalog.pg_depend uses ON uses.classid OPERATOR(pg_catalog.=)"  \
	" mine.classid AND uses.objid OPERATOR(pg_catalog.=) mine.objid"          \
	" LEFT JOIN pg_catalog.pg_depend member"                                  \
	" ON member.classid OPERATOR(pg_catalog.=) uses.refclassid"               \
	" AND member.objid OPERATOR(pg_catalog.=) uses.refobjid"                  \
	" AND member.deptype OPERATOR(pg_catalog.=) 'e'"                          \
	" LEFT JOIN pg_catalog.pg_extension e"                                    \
	" ON e.oid OPERATOR(pg_catalog.=) member.refobjid"                        \
	" LEFT JOIN pg_catalog.pg_extension d"                                    \
	" ON d.oid OPERATOR(pg_catalog.=) uses.refobjid"                          \
	" AND uses.refclassid OPERATOR(pg_catalog.=)"                             \
	" 'pg_catalog.pg_extension'::pg_catalog.regclass"                         \
	" LEFT JOIN pg_catalog.pg_language l"                                     \
	" ON l.oid OPERATOR(pg_catalog.=) uses.refobjid"                          \
	" AND uses.refclassid OPERATOR(pg_catalog.=)"                             \
	" 'pg_catalog.pg_language'::pg_catalog.regclass"                          \
	" WHERE mine.refclassid OPERATOR(pg_catalog.=)"                           \
	" 'pg_catalog.pg_extension'::pg_catalog.regclass"                         \
	" AND mine.refobjid OPERATOR(pg_catalog.=) $1"                            \
	" AND mine.deptype OPERATOR(pg_catalog.=) 'e'"                            \
	" AND (e.extname OPERATOR(pg_catalog.=) ANY ($2)"                         \
	" OR d.extname OPERATOR(pg_catalog.=) ANY ($2)"                           \
	" OR l.lanname OPERATOR(pg_catalog.=) ANY ($2)))"

void
drop_guard_define_settings(void)
{
	DefineCustomBoolVariable(
		"anonymize.allow_drop_with_data",
		"Lets DROP EXTENSION anonymize drop the audit log and pending "
		"erasure requests.",
		"Off by default: the extension then cannot be dropped while the "
		"audit log holds rows or requests are pending.",
		&allow_drop_with_data, false, PGC_SUSET, 0, NULL, NULL, NULL);
}

/* The names of a DROP statement, as a name[] for DEPENDS_ON_SQL. */
static Datum
dropped_names(DropStmt *stmt)
{
	Datum *names = palloc(sizeof(Datum) * Max(list_length(stmt->objects), 1));
	int    n = 0;
	ListCell *cell;

	foreach (cell, stmt->objects)
		if (IsA(lfirst(cell), String))
			names[n++] = DirectFunctionCall1(
				namein, CStringGetDatum(strVal(lfirst(cell))));
	return PointerGetDatum(
		construct_array(names, n, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR));
}

static bool
names_anonymize(DropStmt *stmt)
{
	ListCell *cell;

	foreach (cell, stmt->objects)
		if (IsA(lfirst(cell), String) &&
			strcmp(strVal(lfirst(cell)), "anonymize") == 0)
			return true;
	return false;
}

/* True if the extension depends on an extension or language dropped. */
static bool
cascades_to_anonymize(DropStmt *stmt, Oid extension)
{
	Oid   types[2] = {OIDOID, NAMEARRAYOID};
	Datum values[2] = {ObjectIdGetDatum(extension), dropped_names(stmt)};
	bool  isnull;

	if (SPI_execute_with_args(DEPENDS_ON_SQL, 2, types, values, NULL, true,
							  1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the dependencies of extension anonymize");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}

/* True if the command would drop the extension. */
static bool
drops_anonymize(Node *parsetree, Oid extension, Oid owner)
{
	if (IsA(parsetree, DropOwnedStmt))
	{
		ListCell *cell;

		foreach (cell, ((DropOwnedStmt *)parsetree)->roles)
			if (get_rolespec_oid(lfirst(cell), true) == owner)
				return true;
		return false;
	}
	if (IsA(parsetree, DropStmt))
	{
		DropStmt *stmt = (DropStmt *)parsetree;

		if (stmt->removeType == OBJECT_SCHEMA)
			return names_anonymize(stmt);
		if (stmt->removeType == OBJECT_EXTENSION && names_anonymize(stmt))
			return true;
		if ((stmt->removeType == OBJECT_EXTENSION ||
			 stmt->removeType == OBJECT_LANGUAGE) &&
			stmt->behavior == DROP_CASCADE)
			return cascades_to_anonymize(stmt, extension);
	}
	return false;
}

static int64
count_of(int column)
{
	bool isnull;

	return DatumGetInt64(SPI_getbinval(
		SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull));
}

/*
 * Event trigger on ddl_command_start for DROP EXTENSION, DROP SCHEMA, DROP
 * OWNED and DROP LANGUAGE.
 */
Datum
anonymize_guard_drop(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *)fcinfo->context;
	Oid               extension;
	Oid               owner;
	Oid               save_userid;
	int               save_sec_context;
	bool              drops;
	int64             audit_rows = 0;
	int64             pending = 0;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR,
			 "anonymize_guard_drop: not fired by event trigger manager");
	extension = get_extension_oid("anonymize", false);
	owner = anonymize_extension_owner();

	/*
	 * A role without the owner's privileges cannot drop the extension: it
	 * gets the usual error of its command.
	 */
	if (allow_drop_with_data || !has_privs_of_role(GetUserId(), owner))
		PG_RETURN_VOID();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	drops = drops_anonymize(trigdata->parsetree, extension, owner);
	if (drops)
	{
		if (SPI_execute(KEPT_DATA_SQL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not count the rows of the audit log");
		audit_rows = count_of(1);
		pending = count_of(2);
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);

	if (audit_rows > 0 || pending > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop extension anonymize while it holds the "
						"record of erasures"),
				 errdetail("anonymize.audit_log holds %lld %s and "
						   "anonymize.requests %lld pending %s; this command "
						   "would drop them with the extension.",
						   (long long)audit_rows,
						   audit_rows == 1 ? "erasure" : "erasures",
						   (long long)pending,
						   pending == 1 ? "request" : "requests"),
				 errhint("Export them first, e.g. with pg_dump --table "
						 "'anonymize.*' --data-only, or in psql \\copy "
						 "anonymize.audit_log TO 'audit_log.csv' CSV HEADER; "
						 "then SET anonymize.allow_drop_with_data = on and "
						 "drop again.")));
	PG_RETURN_VOID();
}
