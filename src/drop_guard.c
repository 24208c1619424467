/*-------------------------------------------------------------------------
 *
 * drop_guard.c
 *	  Keeps DROP EXTENSION anonymize from silently destroying the proof of
 *	  erasures: the event trigger anonymize.guard_drop() refuses to drop the
 *	  extension (or its schema) while the audit log holds rows or requests
 *	  are pending, unless anonymize.allow_drop_with_data is on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/guc.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_guard_drop);

static bool allow_drop_with_data = false;

#define KEPT_DATA_SQL                                                         \
	"SELECT (SELECT pg_catalog.count(*) FROM anonymize.audit_log),"           \
	" (SELECT pg_catalog.count(*) FROM anonymize.requests"                    \
	" WHERE state OPERATOR(pg_catalog.=) 'pending')"

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

/* True if the DROP statement names the extension or its schema. */
static bool
drops_anonymize(DropStmt *stmt)
{
	ListCell *cell;

	if (stmt->removeType != OBJECT_EXTENSION &&
		stmt->removeType != OBJECT_SCHEMA)
		return false;
	foreach (cell, stmt->objects)
	{
		Node *object = lfirst(cell);

		if (IsA(object, String) && strcmp(strVal(object), "anonymize") == 0)
			return true;
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
 * Event trigger on ddl_command_start for DROP EXTENSION and DROP SCHEMA.
 */
Datum
anonymize_guard_drop(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *)fcinfo->context;
	int64             audit_rows;
	int64             pending;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR,
			 "anonymize_guard_drop: not fired by event trigger manager");
	if (allow_drop_with_data || !IsA(trigdata->parsetree, DropStmt) ||
		!drops_anonymize((DropStmt *)trigdata->parsetree))
		PG_RETURN_VOID();

	SPI_connect();
	if (SPI_execute(KEPT_DATA_SQL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count the rows of the audit log");
	audit_rows = count_of(1);
	pending = count_of(2);
	SPI_finish();

	if (audit_rows > 0 || pending > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop extension anonymize while it holds the "
						"record of erasures"),
				 errdetail("anonymize.audit_log holds %lld %s and "
						   "anonymize.requests %lld pending %s; dropping the "
						   "extension would drop them.",
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
