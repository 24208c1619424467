/*-------------------------------------------------------------------------
 *
 * requests.c
 *	  Erasure requests: anonymize.request(), anonymize.extend_request() and
 *	  anonymize.cancel_request(), and the deadline they set.
 *
 * A customer has at most one pending request; asking again keeps it and
 * its due date (the deadline runs from the first request) and adds the new
 * reference to the request's history, as an extension adds its reason.
 * The queue's tables are written as the extension owner, like the audit
 * log.  request() depends on the customer relation only, not on the rest
 * of the mapping; extend_request() and cancel_request() on the queue only,
 * so that they work whatever state the mapping is in.  queue.c processes
 * the requests.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_request);
PG_FUNCTION_INFO_V1(anonymize_extend_request);
PG_FUNCTION_INFO_V1(anonymize_cancel_request);

#define INSERT_REQUEST_SQL                                                    \
	"INSERT INTO anonymize.requests"                                          \
	" (customer_id, requested_at, requested_by, reference, due_at)"           \
	" VALUES ($1, pg_catalog.now(), $2, $3, $4)"                              \
	" ON CONFLICT (customer_id) WHERE state OPERATOR(pg_catalog.=) 'pending'" \
	" DO NOTHING RETURNING request_id, due_at"

#define PENDING_REQUEST_SQL                                                   \
	"SELECT request_id, due_at FROM anonymize.requests"                       \
	" WHERE customer_id OPERATOR(pg_catalog.=) $1"                            \
	" AND state OPERATOR(pg_catalog.=) 'pending'"

/* $1 request, $2 event, $3 role, $4 reference, $5 due date, $6 reason */
#define RECORD_EVENT_SQL                                                      \
	"INSERT INTO anonymize.request_history"                                   \
	" (request_id, event, event_at, event_by, reference, due_at, reason)"     \
	" VALUES ($1, $2, pg_catalog.now(), $3, $4, $5, $6)"

/* The pending request, locked, with its due date and its first one. */
#define LOCK_PENDING_REQUEST_SQL                                              \
	"SELECT r.request_id, r.due_at, (SELECT pg_catalog.min(h.due_at)"         \
	" FROM anonymize.request_history h"                                       \
	" WHERE h.request_id OPERATOR(pg_catalog.=) r.request_id"                 \
	" AND h.event OPERATOR(pg_catalog.=) 'requested')"                        \
	" FROM anonymize.requests r"                                              \
	" WHERE r.customer_id OPERATOR(pg_catalog.=) $1"                          \
	" AND r.state OPERATOR(pg_catalog.=) 'pending' FOR UPDATE OF r"

#define SET_DUE_DATE_SQL                                                      \
	"UPDATE anonymize.requests SET due_at = $2"                               \
	" WHERE request_id OPERATOR(pg_catalog.=) $1"

#define CANCEL_REQUEST_SQL                                                    \
	"UPDATE anonymize.requests SET state = 'cancelled',"                      \
	" closed_at = pg_catalog.now(), closed_by = $2"                           \
	" WHERE customer_id OPERATOR(pg_catalog.=) $1"                            \
	" AND state OPERATOR(pg_catalog.=) 'pending'"

/* What GDPR Art. 12(3) allows beyond the first due date, with a reason. */
#define MAX_EXTENSION_MONTHS 2

/* The statements of this file, prepared once per backend. */
static struct
{
	SPIPlanPtr insert_request;
	SPIPlanPtr pending_request;
	SPIPlanPtr record_event;
	SPIPlanPtr lock_pending_request;
	SPIPlanPtr set_due_date;
	SPIPlanPtr cancel_request;
} plans;

/* The default deadline of a request, anonymize.request_deadline. */
static char *request_deadline = NULL;

/* Parses an interval as interval_in() does, without raising an error. */
static bool
parse_interval(const char *text, Interval *result)
{
	char             workbuf[MAXDATELEN + MAXDATEFIELDS];
	char            *field[MAXDATEFIELDS];
	int              ftype[MAXDATEFIELDS];
	int              nf;
	int              dtype;
	struct pg_itm_in itm;
	char            *copy = pstrdup(text);

	if (strlen(text) >= MAXDATELEN ||
		ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0 ||
		(DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm) !=
			 0 &&
		 DecodeISO8601Interval(copy, &dtype, &itm) != 0))
		return false;
	return dtype == DTK_DELTA && itmin2interval(&itm, result) == 0;
}

static bool
check_request_deadline(char **newval, void **extra, GucSource source)
{
	Interval span;

	if (!parse_interval(*newval, &span))
	{
		GUC_check_errdetail("\"%s\" is not an interval.", *newval);
		return false;
	}
	if (span.month < 0 || span.day < 0 || span.time < 0 ||
		(span.month == 0 && span.day == 0 && span.time == 0))
	{
		GUC_check_errdetail("The deadline must be positive.");
		return false;
	}
	return true;
}

void
requests_define_settings(void)
{
	DefineCustomStringVariable(
		"anonymize.request_deadline",
		"How long after a request its answer is due.",
		"anonymize.request() sets the due date to now plus this interval "
		"unless given one.  GDPR Art. 12(3): one month.",
		&request_deadline, "1 month", PGC_SUSET, 0, check_request_deadline,
		NULL, NULL);
}

/* The value of column "column" of the first row of the last result. */
static Datum
result_value(int column)
{
	bool isnull;

	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column,
						 &isnull);
}

static bool
result_is_null(int column)
{
	bool isnull;

	SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column,
				  &isnull);
	return isnull;
}

/* A uuid of the last result, copied to "result" (allocated by the caller). */
static void
copy_uuid(int column, pg_uuid_t *result)
{
	memcpy(result, DatumGetUUIDP(result_value(column)), sizeof(pg_uuid_t));
}

static void
require_finite(TimestampTz time, const char *argument)
{
	if (TIMESTAMP_NOT_FINITE(time))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must be a finite time", argument)));
}

/* When a request made now is due: now plus anonymize.request_deadline. */
static TimestampTz
default_due_date(void)
{
	Interval deadline;

	if (!parse_interval(request_deadline, &deadline))
		elog(ERROR, "invalid anonymize.request_deadline \"%s\"",
			 request_deadline);
	return DatumGetTimestampTz(DirectFunctionCall2(
		timestamptz_pl_interval,
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
		IntervalPGetDatum(&deadline)));
}

/* Adds an event to the request's history. */
static void
record_event(Oid owner, pg_uuid_t *request_id, const char *event,
			 Datum reference, TimestampTz due_at, Datum reason)
{
	Oid   types[] = {UUIDOID, TEXTOID,        TEXTOID,
					 TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum values[6] = {UUIDPGetDatum(request_id),   CStringGetTextDatum(event),
					   current_user_text(),         reference,
					   TimestampTzGetDatum(due_at), reason};
	char  nulls[7] = "      ";

	nulls[3] = reference == (Datum)0 ? 'n' : ' ';
	nulls[5] = reason == (Datum)0 ? 'n' : ' ';
	if (execute_as_owner(
			owner,
			prepare_once(&plans.record_event, RECORD_EVENT_SQL, 6, types),
			values, nulls, false) != SPI_OK_INSERT)
		elog(ERROR, "could not write anonymize.request_history");
}

#define CUSTOMER_RELATION_SQL                                                 \
	"SELECT relation_schema, relation_name, key_column"                       \
	" FROM anonymize.customer_relation"

/*
 * The check that a customer exists, for request(): the queue depends on
 * the customer relation of the mapping only, so that recording a request
 * works while the rest of the mapping is broken, and needs no privilege on
 * other relations.  The plan is kept for the relation and key it was made
 * for.
 */
static struct
{
	Oid        relid;
	char       key_column[NAMEDATALEN];
	SPIPlanPtr plan;
} customer_check;

static MappedRelation
customer_relation(Oid extension_owner)
{
	MappedRelation rel;
	Oid            save_userid;
	int            save_sec_context;

	check_extension_version();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(extension_owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute(CUSTOMER_RELATION_SQL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read anonymize.customer_relation");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (SPI_processed != 1)
		report_no_customer_relation();
	rel.schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	rel.name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	rel.key_column =
		SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	rel.relid = resolve_mapped_relation(rel.schema, rel.name);
	rel.owner = relation_owner(rel.relid);
	check_key_column(rel.relid, rel.key_column);
	return rel;
}

static SPIPlanPtr
customer_check_plan(const MappedRelation *rel)
{
	Oid        key = UUIDOID;
	char      *sql;
	SPIPlanPtr plan;

	if (customer_check.plan != NULL && customer_check.relid == rel->relid &&
		strcmp(customer_check.key_column, rel->key_column) == 0)
		return customer_check.plan;
	if (customer_check.plan != NULL)
		SPI_freeplan(customer_check.plan);
	customer_check.plan = NULL;

	sql = psprintf("SELECT 1 FROM %s t WHERE t.%s OPERATOR(pg_catalog.=) $1",
				   quote_qualified_identifier(rel->schema, rel->name),
				   quote_identifier(rel->key_column));
	plan = SPI_prepare(sql, 1, &key);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	customer_check.plan = plan;
	customer_check.relid = rel->relid;
	strlcpy(customer_check.key_column, rel->key_column, NAMEDATALEN);
	return plan;
}

/* Errors out unless the caller may read the customer and it exists. */
static void
check_requested_customer(Oid extension_owner, Datum customer_id)
{
	MappedRelation rel = customer_relation(extension_owner);
	AclResult      acl = pg_class_aclcheck(rel.relid, GetUserId(), ACL_SELECT);

	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, rel.name);
	if (run_statement(&rel, customer_check_plan(&rel), &customer_id, NULL,
					  InvalidSnapshot, InvalidSnapshot, true) != SPI_OK_SELECT)
		elog(ERROR, "could not look up customer");
	if (SPI_processed == 0)
		report_unknown_customer(customer_id);
}

/*
 * anonymize.request(customer_id, reference, due_at) returns the request id.
 */
Datum
anonymize_request(PG_FUNCTION_ARGS)
{
	Oid         types[] = {UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum       values[4];
	char        nulls[5] = {' ', ' ', PG_ARGISNULL(1) ? 'n' : ' ', ' ', '\0'};
	Oid         owner = anonymize_extension_owner();
	pg_uuid_t  *request_id = palloc(sizeof(pg_uuid_t));
	TimestampTz due_at;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("customer id must not be null")));
	due_at = PG_ARGISNULL(2) ? default_due_date() : PG_GETARG_TIMESTAMPTZ(2);
	require_finite(due_at, "due_at");
	values[0] = PG_GETARG_DATUM(0);
	values[1] = current_user_text();
	values[2] = PG_ARGISNULL(1) ? (Datum)0 : PG_GETARG_DATUM(1);
	values[3] = TimestampTzGetDatum(due_at);

	SPI_connect();
	check_requested_customer(owner, values[0]);

	/*
	 * Insert, or find the pending request (without waiting for a run that
	 * has claimed it); a run may close that request between the two
	 * statements, and then a new one is inserted.
	 */
	for (;;)
	{
		if (execute_as_owner(owner,
							 prepare_once(&plans.insert_request,
										  INSERT_REQUEST_SQL, 4, types),
							 values, nulls, false) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not record an erasure request");
		if (SPI_processed > 0)
			break;
		if (execute_as_owner(owner,
							 prepare_once(&plans.pending_request,
										  PENDING_REQUEST_SQL, 1, types),
							 values, NULL, false) != SPI_OK_SELECT)
			elog(ERROR, "could not read an erasure request");
		if (SPI_processed > 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	copy_uuid(1, request_id);
	due_at = DatumGetTimestampTz(result_value(2));
	record_event(owner, request_id, "requested", values[2], due_at, (Datum)0);
	SPI_finish();
	PG_RETURN_UUID_P(request_id);
}

/*
 * anonymize.extend_request(customer_id, until, reason) moves the due date
 * of the pending request later, within what GDPR Art. 12(3) allows.
 */
Datum
anonymize_extend_request(PG_FUNCTION_ARGS)
{
	Oid         types[] = {UUIDOID, TIMESTAMPTZOID};
	Oid         owner = anonymize_extension_owner();
	pg_uuid_t  *request_id = palloc(sizeof(pg_uuid_t));
	TimestampTz until;
	TimestampTz due_at;
	TimestampTz latest;
	Datum       values[2];
	Interval    allowed = {0, 0, MAX_EXTENSION_MONTHS};
	Datum       first_due; /* without a history, its own due date */
	char       *reason;

	check_extension_version();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("customer_id, until and reason must not be null")));
	until = PG_GETARG_TIMESTAMPTZ(1);
	require_finite(until, "until");
	reason = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (reason[strspn(reason, " \t\r\n")] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the reason of an extension must not be empty"),
				 errdetail("GDPR Art. 12(3) requires the data subject to be "
						   "told why the answer is delayed.")));

	SPI_connect();
	values[0] = PG_GETARG_DATUM(0);
	if (execute_as_owner(owner,
						 prepare_once(&plans.lock_pending_request,
									  LOCK_PENDING_REQUEST_SQL, 1, types),
						 values, NULL, false) != SPI_OK_SELECT)
		elog(ERROR, "could not read an erasure request");
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("customer %s has no pending erasure request",
							   customer_id_text(values[0])),
						errhint("Record one with anonymize.request().")));
	copy_uuid(1, request_id);
	due_at = DatumGetTimestampTz(result_value(2));
	first_due = result_is_null(3) ? result_value(2) : result_value(3);
	latest = DatumGetTimestampTz(DirectFunctionCall2(
		timestamptz_pl_interval, first_due, IntervalPGetDatum(&allowed)));
	if (until <= due_at)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("an extension must move the due date later"),
						errdetail("The request of customer %s is due at %s.",
								  customer_id_text(values[0]),
								  timestamptz_to_str(due_at))));
	if (until > latest)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an erasure request may be extended by at most %d "
						"months",
						MAX_EXTENSION_MONTHS),
				 errdetail("The request of customer %s was first due at %s; "
						   "GDPR Art. 12(3) allows two further months.",
						   customer_id_text(values[0]),
						   timestamptz_to_str(DatumGetTimestampTz(first_due))),
				 errhint("Extend it until %s at the latest.",
						 timestamptz_to_str(latest))));

	values[0] = UUIDPGetDatum(request_id);
	values[1] = TimestampTzGetDatum(until);
	types[0] = UUIDOID;
	if (execute_as_owner(
			owner,
			prepare_once(&plans.set_due_date, SET_DUE_DATE_SQL, 2, types),
			values, NULL, false) != SPI_OK_UPDATE)
		elog(ERROR, "could not extend an erasure request");
	record_event(owner, request_id, "extended", (Datum)0, until,
				 PG_GETARG_DATUM(2));
	SPI_finish();
	PG_RETURN_UUID_P(request_id);
}

/* Touches the queue only: works whatever state the mapping is in. */
Datum
anonymize_cancel_request(PG_FUNCTION_ARGS)
{
	Oid   types[] = {UUIDOID, TEXTOID};
	Datum values[2] = {PG_GETARG_DATUM(0), current_user_text()};
	bool  cancelled;

	check_extension_version();
	SPI_connect();
	if (execute_as_owner(
			anonymize_extension_owner(),
			prepare_once(&plans.cancel_request, CANCEL_REQUEST_SQL, 2, types),
			values, NULL, false) != SPI_OK_UPDATE)
		elog(ERROR, "could not cancel an erasure request");
	cancelled = (SPI_processed > 0);
	SPI_finish();
	PG_RETURN_BOOL(cancelled);
}
