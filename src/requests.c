/*-------------------------------------------------------------------------
 *
 * requests.c
 *	  The erasure-request queue: anonymize.request(),
 *	  anonymize.cancel_request() and the procedure
 *	  anonymize.process_requests(), which anonymizes eligible requests in
 *	  batches, committing after each.
 *
 * Two jobs may process the queue at once: each claims its batch with FOR
 * UPDATE SKIP LOCKED, so no request is processed twice.  Each customer is
 * anonymized in a subtransaction, so that one failing customer is recorded
 * on its request and does not stop the others.  The queue table is written
 * as the extension owner, like the audit log; the anonymization itself runs
 * with the caller's rights.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_request);
PG_FUNCTION_INFO_V1(anonymize_cancel_request);
PG_FUNCTION_INFO_V1(anonymize_process_requests);

#define INSERT_REQUEST_SQL \
	"INSERT INTO anonymize.requests" \
	" (customer_id, requested_at, requested_by, reference, due_at)" \
	" VALUES ($1, pg_catalog.now(), $2, $3," \
	" pg_catalog.now() OPERATOR(pg_catalog.+) '1 month'::pg_catalog.interval)" \
	" ON CONFLICT (customer_id) WHERE state OPERATOR(pg_catalog.=) 'pending'" \
	" DO NOTHING RETURNING request_id"

#define PENDING_REQUEST_SQL \
	"SELECT request_id FROM anonymize.requests" \
	" WHERE customer_id OPERATOR(pg_catalog.=) $1" \
	" AND state OPERATOR(pg_catalog.=) 'pending'"

#define CANCEL_REQUEST_SQL \
	"UPDATE anonymize.requests SET state = 'cancelled'," \
	" closed_at = pg_catalog.now(), closed_by = $2" \
	" WHERE customer_id OPERATOR(pg_catalog.=) $1" \
	" AND state OPERATOR(pg_catalog.=) 'pending'"

/* Pending requests not yet tried in this run ($1: when the run started). */
#define CLAIM_BATCH_SQL \
	"SELECT request_id, customer_id FROM anonymize.requests" \
	" WHERE state OPERATOR(pg_catalog.=) 'pending'" \
	" AND (last_attempt_at IS NULL" \
	" OR last_attempt_at OPERATOR(pg_catalog.<) $1)" \
	" ORDER BY due_at, request_id LIMIT $2 FOR UPDATE SKIP LOCKED"

/* $2: NULL leaves the request pending; $3: blockers; $4: outcome. */
#define RECORD_ATTEMPT_SQL \
	"UPDATE anonymize.requests SET last_attempt_at = pg_catalog.clock_timestamp()," \
	" state = COALESCE($2, state), blockers = $3, outcome = $4," \
	" closed_at = CASE WHEN $2 IS NULL THEN NULL ELSE pg_catalog.now() END," \
	" closed_by = CASE WHEN $2 IS NULL THEN NULL ELSE $5 END" \
	" WHERE request_id OPERATOR(pg_catalog.=) $1"

#define COUNT_PENDING_SQL \
	"SELECT pg_catalog.count(*) FROM anonymize.requests" \
	" WHERE state OPERATOR(pg_catalog.=) 'pending'"

/* The queue's statements, prepared once per backend. */
typedef struct QueuePlans
{
	SPIPlanPtr	insert_request;
	SPIPlanPtr	pending_request;
	SPIPlanPtr	cancel_request;
	SPIPlanPtr	claim_batch;
	SPIPlanPtr	record_attempt;
	SPIPlanPtr	count_pending;
} QueuePlans;

static QueuePlans queue_plans;

static SPIPlanPtr
prepare_once(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	prepared = SPI_prepare(sql, nargs, argtypes);

		if (prepared == NULL || SPI_keepplan(prepared) != 0)
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		*plan = prepared;
	}
	return *plan;
}

static QueuePlans *
get_queue_plans(void)
{
	Oid			insert_types[] = {UUIDOID, TEXTOID, TEXTOID};
	Oid			claim_types[] = {TIMESTAMPTZOID, INT4OID};
	Oid			record_types[] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Oid			cancel_types[] = {UUIDOID, TEXTOID};

	prepare_once(&queue_plans.insert_request, INSERT_REQUEST_SQL, 3,
				 insert_types);
	prepare_once(&queue_plans.pending_request, PENDING_REQUEST_SQL, 1,
				 insert_types);
	prepare_once(&queue_plans.cancel_request, CANCEL_REQUEST_SQL, 2,
				 cancel_types);
	prepare_once(&queue_plans.claim_batch, CLAIM_BATCH_SQL, 2, claim_types);
	prepare_once(&queue_plans.record_attempt, RECORD_ATTEMPT_SQL, 5,
				 record_types);
	prepare_once(&queue_plans.count_pending, COUNT_PENDING_SQL, 0, NULL);
	return &queue_plans;
}

static Datum
current_user_text(void)
{
	return CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
}

static int64
first_int64(void)
{
	bool		isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/* anonymize.request(customer_id, reference) returns the request id. */
Datum
anonymize_request(PG_FUNCTION_ARGS)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', PG_ARGISNULL(1) ? 'n' : ' '};
	QueuePlans *plans;
	int64		request_id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("customer id must not be null")));
	values[0] = PG_GETARG_DATUM(0);
	values[1] = current_user_text();
	values[2] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);

	SPI_connect();
	if (!customer_exists(get_plans(), values[0]))
		report_unknown_customer(values[0]);
	plans = get_queue_plans();
	if (execute_as_owner(get_plans()->extension_owner, plans->insert_request, values, nulls, false)
		!= SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record an erasure request");
	if (SPI_processed == 0 &&
		execute_as_owner(get_plans()->extension_owner, plans->pending_request, values, NULL, false)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not read an erasure request");
	if (SPI_processed == 0)
		elog(ERROR, "erasure request vanished");
	request_id = first_int64();
	SPI_finish();
	PG_RETURN_INT64(request_id);
}

Datum
anonymize_cancel_request(PG_FUNCTION_ARGS)
{
	Datum		values[2] = {PG_GETARG_DATUM(0), current_user_text()};
	bool		cancelled;

	SPI_connect();
	if (execute_as_owner(get_plans()->extension_owner, get_queue_plans()->cancel_request, values, NULL,
						 false) != SPI_OK_UPDATE)
		elog(ERROR, "could not cancel an erasure request");
	cancelled = (SPI_processed > 0);
	SPI_finish();
	PG_RETURN_BOOL(cancelled);
}

/* Counts of one run of process_requests(). */
typedef struct RunCounts
{
	int64		anonymized;
	int64		blocked;
	int64		failed;
} RunCounts;

static void
record_attempt(QueuePlans *plans, Datum request_id, const char *state,
			   const char *blockers, const char *outcome)
{
	Datum		values[5];
	char		nulls[5] = {' ', state ? ' ' : 'n', blockers ? ' ' : 'n',
	' ', ' '};

	values[0] = request_id;
	values[1] = state ? CStringGetTextDatum(state) : (Datum) 0;
	values[2] = blockers ? CStringGetTextDatum(blockers) : (Datum) 0;
	values[3] = CStringGetTextDatum(outcome);
	values[4] = current_user_text();
	if (execute_as_owner(get_plans()->extension_owner, plans->record_attempt, values, nulls, false)
		!= SPI_OK_UPDATE)
		elog(ERROR, "could not record an erasure attempt");
}

/* Anonymizes the customer of one request and records what happened. */
static void
process_request(QueuePlans *plans, Datum request_id, Datum customer_id,
				RunCounts *counts)
{
	ErasureResult result = {0};

	initStringInfo(&result.rows_deleted);
	erase_customer(customer_id, &result);
	switch (result.outcome)
	{
		case ERASURE_DONE:
			counts->anonymized++;
			record_attempt(plans, request_id, "done", NULL, "anonymized");
			break;
		case ERASURE_ALREADY_DONE:
			record_attempt(plans, request_id, "done", NULL,
						   "already anonymized");
			break;
		case ERASURE_UNKNOWN_CUSTOMER:
			record_attempt(plans, request_id, "done", NULL,
						   "customer does not exist");
			break;
		case ERASURE_BLOCKED:
			counts->blocked++;
			record_attempt(plans, request_id, NULL,
						   describe_blockers(result.blockers), "blocked");
			break;
	}
}

/*
 * process_request() in a subtransaction: an error is recorded on the
 * request, which stays pending, and the run goes on.  A cancel or a
 * timeout still stops the run.
 */
static void
process_request_guarded(QueuePlans *plans, Datum request_id,
						Datum customer_id, RunCounts *counts)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		process_request(plans, request_id, customer_id, counts);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		if (error->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			error->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			PG_RE_THROW();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		counts->failed++;
		record_attempt(plans, request_id, NULL,
					   psprintf("error %s: %s",
								unpack_sql_state(error->sqlerrcode),
								error->message),
					   "failed");
	}
	PG_END_TRY();
}

/* Claims and processes one batch; returns the number of requests claimed. */
static uint64
process_batch(Datum run_started, int32 batch_size, RunCounts *counts)
{
	QueuePlans *plans = get_queue_plans();
	Datum		claim_args[2] = {run_started, Int32GetDatum(batch_size)};
	SPITupleTable *claimed;
	uint64		n_claimed;

	if (execute_as_owner(get_plans()->extension_owner, plans->claim_batch, claim_args, NULL, false)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not claim erasure requests");
	claimed = SPI_tuptable;
	n_claimed = SPI_processed;

	for (uint64 i = 0; i < n_claimed; i++)
	{
		bool		isnull;
		Datum		request_id = SPI_getbinval(claimed->vals[i],
											   claimed->tupdesc, 1, &isnull);
		Datum		customer_id = SPI_getbinval(claimed->vals[i],
												claimed->tupdesc, 2, &isnull);

		process_request_guarded(plans, request_id, customer_id, counts);
	}
	return n_claimed;
}

static int64
count_pending(void)
{
	if (execute_as_owner(get_plans()->extension_owner,
						 get_queue_plans()->count_pending, NULL, NULL, false)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not count erasure requests");
	return first_int64();
}

static void
report_run(int level, int batches, const RunCounts *counts)
{
	ereport(level,
			(errmsg("anonymize: processed erasure requests in %d batches: "
					INT64_FORMAT " anonymized, " INT64_FORMAT " blocked, "
					INT64_FORMAT " failed",
					batches, counts->anonymized, counts->blocked,
					counts->failed)));
}

/* Microseconds of an interval, counting a month as 30 days. */
static int64
interval_usecs(const Interval *span)
{
	return span->time +
		((int64) span->month * DAYS_PER_MONTH + span->day) * USECS_PER_DAY;
}

/*
 * CALL anonymize.process_requests(batch_size, max_batches, time_budget)
 */
Datum
anonymize_process_requests(PG_FUNCTION_ARGS)
{
	int32		batch_size = PG_ARGISNULL(0) ? 500 : PG_GETARG_INT32(0);
	int32		max_batches = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz deadline = PG_ARGISNULL(2) ? DT_NOEND
		: started + interval_usecs(PG_GETARG_INTERVAL_P(2));
	RunCounts	counts = {0};
	int			batches = 0;

	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("anonymize.process_requests() must be called on its own"),
				 errdetail("It commits after each batch, which it cannot do inside a transaction block or a function."),
				 errhint("Run CALL anonymize.process_requests() outside BEGIN ... COMMIT.")));
	if (batch_size <= 0 || max_batches < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive and max_batches must not be negative")));

	for (;;)
	{
		int			guc_level;
		uint64		claimed;
		int64		pending;

		/*
		 * A connection per batch: what it allocates (result tables too) is
		 * freed by SPI_finish().
		 */
		SPI_connect_ext(SPI_OPT_NONATOMIC);

		/* Rule conditions must see pg_catalog only, as in the functions. */
		guc_level = NewGUCNestLevel();
		set_config_option("search_path", "pg_catalog, pg_temp",
						  PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
						  true, 0, false);
		claimed = process_batch(TimestampTzGetDatum(started), batch_size,
								&counts);
		pending = count_pending();
		AtEOXact_GUC(true, guc_level);
		SPI_commit();
		SPI_finish();

		if (claimed == 0)
			break;
		batches++;
		ereport(NOTICE,
				(errmsg("anonymize: batch %d: " INT64_FORMAT " anonymized, "
						INT64_FORMAT " still blocked, " INT64_FORMAT
						" failed so far; " INT64_FORMAT " requests pending",
						batches, counts.anonymized, counts.blocked,
						counts.failed, pending)));
		if ((max_batches > 0 && batches >= max_batches) ||
			GetCurrentTimestamp() >= deadline)
			break;
	}

	/* For the DBA in psql, and for the server log of a scheduled job. */
	report_run(NOTICE, batches, &counts);
	report_run(LOG, batches, &counts);
	PG_RETURN_VOID();
}
