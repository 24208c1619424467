/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  Processing the erasure requests: the procedure
 *	  anonymize.process_requests(), which anonymizes eligible requests in
 *	  batches, committing after each, and anonymize.process_request_batch(),
 *	  one batch in the caller's transaction; the record of every run in
 *	  anonymize.runs.
 *
 * Two jobs may process the queue at once: each claims its batch with FOR
 * UPDATE SKIP LOCKED, so no request is processed twice.  A batch is erased
 * at once; if that fails, each customer is erased in a subtransaction, so
 * that one failing customer is recorded on its request and does not stop
 * the others.  The queue never waits for billing transactions: its row locks
 * are SKIP LOCKED or NOWAIT, other waits are bounded by
 * anonymize.queue_lock_timeout, and a customer whose rows are held is left
 * busy for the next run.  A blocked request is tried again once
 * anonymize.retry_interval has passed, so that a large backlog is not
 * re-checked at every run.  A run that leaves failed or overdue requests
 * ends with an error, after its commits, so that a scheduler records it as
 * failed.  The queue's tables are written as the extension owner, like the
 * audit log; the erasure runs with the rights security.c chooses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_process_requests);
PG_FUNCTION_INFO_V1(anonymize_process_request_batch);

/*
 * Pending requests not tried since $1 (the start of the run), ordered by
 * due date; a blocked one only once its next attempt is due (set from the
 * start of the run that last tried it), a minute early at most, so that a
 * job scheduled every retry_interval retries it at every run in spite of
 * the schedule's jitter, or once $3 (retry_interval ago, as set now) has
 * passed since its last attempt.
 */
#define CLAIM_BATCH_SQL                                                       \
	"SELECT request_id, customer_id FROM anonymize.requests"                  \
	" WHERE state OPERATOR(pg_catalog.=) 'pending'"                           \
	" AND (last_attempt_at IS NULL"                                           \
	" OR last_attempt_at OPERATOR(pg_catalog.<) $1)"                          \
	" AND (next_attempt_at IS NULL OR next_attempt_at "                       \
	"OPERATOR(pg_catalog.<=)"                                                 \
	" (pg_catalog.now() OPERATOR(pg_catalog.+)"                               \
	" '1 minute'::pg_catalog.interval)"                                       \
	" OR last_attempt_at OPERATOR(pg_catalog.<=) $3)"                         \
	" ORDER BY due_at, request_id LIMIT $2 FOR UPDATE SKIP LOCKED"

/*
 * The attempts of a batch, as arrays of request ids ($1), new states ($2,
 * NULL leaves a request pending), details ($3) and outcomes ($4); $5 the
 * role, $6 when a blocked request is tried again.
 */
#define RECORD_ATTEMPTS_SQL                                                   \
	"UPDATE anonymize.requests r"                                             \
	" SET last_attempt_at = pg_catalog.clock_timestamp(),"                    \
	" attempts = r.attempts OPERATOR(pg_catalog.+) 1,"                        \
	" state = COALESCE(a.state, r.state), details = a.details,"               \
	" outcome = a.outcome,"                                                   \
	" next_attempt_at = CASE WHEN a.outcome OPERATOR(pg_catalog.=) 'blocked'" \
	" THEN $6 END,"                                                           \
	" closed_at = CASE WHEN a.state IS NULL THEN NULL ELSE pg_catalog.now() " \
	"END,"                                                                    \
	" closed_by = CASE WHEN a.state IS NULL THEN NULL ELSE $5 END"            \
	" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"          \
	" pg_catalog.unnest($3), pg_catalog.unnest($4))"                          \
	" AS a (request_id, state, details, outcome)"                             \
	" WHERE r.request_id OPERATOR(pg_catalog.=) a.request_id"

#define QUEUE_COUNTS_SQL                                                      \
	"SELECT pg_catalog.count(*),"                                             \
	" pg_catalog.count(*) FILTER (WHERE due_at OPERATOR(pg_catalog.<)"        \
	" pg_catalog.now()),"                                                     \
	" pg_catalog.count(*) FILTER (WHERE outcome OPERATOR(pg_catalog.=)"       \
	" 'failed')"                                                              \
	" FROM anonymize.requests WHERE state OPERATOR(pg_catalog.=) 'pending'"

#define OVERDUE_REQUESTS_SQL                                                  \
	"SELECT request_id, customer_id, due_at FROM anonymize.requests"          \
	" WHERE state OPERATOR(pg_catalog.=) 'pending'"                           \
	" AND due_at OPERATOR(pg_catalog.<) pg_catalog.now()"                     \
	" ORDER BY due_at, request_id LIMIT $1"

/* $1 the procedure, $2 when it started, $3 the role. */
#define START_RUN_SQL                                                         \
	"INSERT INTO anonymize.runs (procedure, started_at, run_by, backend_pid)" \
	" VALUES ($1, $2, $3, pg_catalog.pg_backend_pid()) RETURNING run_id"

/* Never waits: a run starting at the same time deletes the others. */
#define EXPIRE_RUNS_SQL                                                       \
	"DELETE FROM anonymize.runs WHERE run_id OPERATOR(pg_catalog.=) ANY"      \
	" (ARRAY(SELECT run_id FROM anonymize.runs"                               \
	" WHERE started_at OPERATOR(pg_catalog.<) $1 FOR UPDATE SKIP LOCKED))"

#define UPDATE_RUN_SQL                                                        \
	"UPDATE anonymize.runs SET batches = $2, anonymized = $3,"                \
	" already_erased = $4, unknown_customers = $5, blocked = $6, busy = $7,"  \
	" failed = $8, pending = $9, overdue = $10,"                              \
	" ended_at = CASE WHEN $11 THEN pg_catalog.clock_timestamp() END"         \
	" WHERE run_id OPERATOR(pg_catalog.=) $1"

/* The queue's statements, prepared once per backend. */
static struct
{
	SPIPlanPtr claim_batch;
	SPIPlanPtr record_attempts;
	SPIPlanPtr queue_counts;
	SPIPlanPtr overdue_requests;
	SPIPlanPtr start_run;
	SPIPlanPtr expire_runs;
	SPIPlanPtr update_run;
} plans;

/* Runs a statement of the queue as the extension owner. */
static void
run_queue_statement(SPIPlanPtr statement, Datum *values, const char *nulls,
					int expected)
{
	if (execute_as_owner(anonymize_extension_owner(), statement, values, nulls,
						 false) != expected)
		elog(ERROR, "could not run a statement of the request queue: %s",
			 SPI_result_code_string(SPI_result));
}

static Datum
first_value(int column)
{
	bool isnull;

	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column,
						 &isnull);
}

/* Counts of one run. */
typedef struct RunCounts
{
	int   batches;
	int64 anonymized;
	int64 already_erased;
	int64 unknown_customers;
	int64 blocked;
	int64 busy; /* its rows were locked; tried again next run */
	int64 failed;
	/* the queue at the end of the last batch */
	int64 pending;
	int64 overdue;
	int64 failed_left; /* pending requests whose last attempt failed */
} RunCounts;

/* One run: its row of anonymize.runs, when it started, its counts. */
typedef struct Run
{
	pg_uuid_t   run_id;
	TimestampTz started;
	Datum       not_tried_since; /* claims requests not tried since then */
	RunCounts   counts;
} Run;

/* One claimed request: its customer, and what became of it. */
typedef struct ClaimedRequest
{
	Datum           request_id;
	CustomerErasure customer;
	char           *sqlstate; /* set when anonymizing it failed */
	char           *error;
} ClaimedRequest;

/* Anonymize a batch with one statement per rule, or one customer at a time. */
static bool set_based_batches = true;

/*
 * The longest the queue waits for a lock (ms; 0: lock_timeout as it is).
 * Its row locks never wait; this bounds what they cannot cover: foreign key
 * checks of its deletes, table locks, rows it may not lock itself.
 */
static int queue_lock_timeout = 100;

/* How long a blocked request waits before it is tried again (s). */
static int retry_interval = SECS_PER_DAY;

/* How long the rows of anonymize.runs are kept (min; 0: for ever). */
static int run_retention = 90 * MINS_PER_HOUR * HOURS_PER_DAY;

/*
 * The largest batch: the customers of a batch and their outcomes are held
 * in memory until the batch commits.
 */
#define MAX_BATCH_SIZE 10000

/* The overdue requests a run names in a WARNING each; then a count. */
#define MAX_OVERDUE_WARNINGS 100

void
queue_define_settings(void)
{
	DefineCustomBoolVariable("anonymize.set_based_batches",
							 "Lets process_requests() anonymize a batch with "
							 "one statement per rule.",
							 "When off, it anonymizes one customer at a time.",
							 &set_based_batches, true, PGC_USERSET, 0, NULL,
							 NULL, NULL);
	DefineCustomIntVariable(
		"anonymize.queue_lock_timeout",
		"The longest process_requests() waits for a lock.",
		"A customer whose erasure would wait longer is left busy and tried "
		"again at the next run.  Zero leaves lock_timeout as it is.",
		&queue_lock_timeout, 100, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, NULL,
		NULL, NULL);
	DefineCustomIntVariable(
		"anonymize.retry_interval",
		"How long a blocked erasure request waits before it is tried again.",
		"A run tries a blocked request again once this long has passed since "
		"the start of the run that last tried it (a minute early at most).  "
		"Failed and busy requests are tried at every run.",
		&retry_interval, SECS_PER_DAY, 0, INT_MAX, PGC_USERSET, GUC_UNIT_S,
		NULL, NULL, NULL);
	DefineCustomIntVariable(
		"anonymize.run_retention",
		"How long the rows of anonymize.runs are kept.",
		"Older rows are deleted when a run starts.  Zero keeps them all.",
		&run_retention, 90 * MINS_PER_HOUR * HOURS_PER_DAY, 0, INT_MAX,
		PGC_USERSET, GUC_UNIT_MIN, NULL, NULL, NULL);
}

static const char *
plural(int64 n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/*
 * The settings of a batch, undone at its end: rule conditions see
 * pg_catalog only, as in the functions, and no lock is waited for long.
 */
static void
set_batch_settings(void)
{
	set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
					  PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (queue_lock_timeout > 0 &&
		(LockTimeout == 0 || LockTimeout > queue_lock_timeout))
	{
		char value[32];

		snprintf(value, sizeof(value), "%dms", queue_lock_timeout);
		set_config_option("lock_timeout", value, PGC_USERSET, PGC_S_SESSION,
						  GUC_ACTION_SAVE, true, 0, false);
	}
}

/*
 * Runs work(arg) in a subtransaction.  Returns NULL, or the error that
 * rolled it back.  A cancel or a shutdown is rethrown.
 */
static ErrorData *
run_in_subtransaction(void (*work)(void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData *volatile failure = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData *error;

		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		if (error->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			error->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			PG_RE_THROW();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		failure = error;
	}
	PG_END_TRY();
	return failure;
}

/* Errors that mean "another transaction holds the customer's rows". */
static bool
is_busy_error(const ErrorData *error)
{
	return error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		   error->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		   error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED;
}

typedef struct ClaimedBatch
{
	AnonymizeState *state;
	ClaimedRequest *requests;
	int             n;
	int             current; /* the request erase_one_customer() erases */
} ClaimedBatch;

static void
erase_whole_batch(void *arg)
{
	ClaimedBatch    *batch = arg;
	CustomerErasure *customers = palloc(sizeof(CustomerErasure) * batch->n);

	for (int i = 0; i < batch->n; i++)
		customers[i] = batch->requests[i].customer;
	erase_customers(batch->state, MODE_MANY_NOWAIT, customers, batch->n);
	for (int i = 0; i < batch->n; i++)
		batch->requests[i].customer = customers[i];
}

static void
erase_one_customer(void *arg)
{
	ClaimedBatch *batch = arg;

	erase_customers(batch->state, MODE_ONE_NOWAIT,
					&batch->requests[batch->current].customer, 1);
}

/*
 * Anonymizes the batch at once; if that fails, one customer at a time, so
 * that the failing ones are found and the others still done.  A customer
 * whose rows another transaction holds is busy, not failed.
 */
static void
erase_claimed(ClaimedBatch *batch)
{
	if (set_based_batches &&
		run_in_subtransaction(erase_whole_batch, batch) == NULL)
		return;
	for (int i = 0; i < batch->n; i++)
	{
		ClaimedRequest *request = &batch->requests[i];
		ErrorData      *error;

		batch->current = i;
		error = run_in_subtransaction(erase_one_customer, batch);
		if (error == NULL)
			continue;
		request->sqlstate = pstrdup(unpack_sql_state(error->sqlerrcode));
		request->error = pstrdup(error->message);
		if (is_busy_error(error))
			request->customer.outcome = ERASURE_BUSY;
		else
			request->customer.outcome = ERASURE_DONE; /* see error */
		FreeErrorData(error);
	}
}

/* The details of an attempt that failed: {"sqlstate", "message"}. */
static char *
error_json(const char *sqlstate, const char *message)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"sqlstate\":");
	escape_json(&buf, sqlstate);
	appendStringInfoString(&buf, ",\"message\":");
	escape_json(&buf, message);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * What an attempt did to a request: its new state (NULL: still pending),
 * its details (JSON, or NULL) and its outcome.
 */
static const char *
attempt_outcome(ClaimedRequest *request, RunCounts *counts, const char **state,
				char **details)
{
	*state = NULL;
	*details = NULL;
	if (request->customer.outcome == ERASURE_BUSY)
	{
		counts->busy++;
		*details = request->error != NULL
					   ? error_json(request->sqlstate, request->error)
					   : error_json("55P03", "the customer is locked by "
											 "another transaction");
		return "busy";
	}
	if (request->error != NULL)
	{
		counts->failed++;
		*details = error_json(request->sqlstate, request->error);
		return "failed";
	}
	switch (request->customer.outcome)
	{
		case ERASURE_DONE:
			counts->anonymized++;
			*state = "done";
			return "anonymized";
		case ERASURE_ALREADY_DONE:
			counts->already_erased++;
			*state = "done";
			return "already anonymized";
		case ERASURE_UNKNOWN_CUSTOMER:
			counts->unknown_customers++;
			*state = "done";
			return "customer does not exist";
		default:
			counts->blocked++;
			*details = blockers_json(request->customer.blockers);
			return "blocked";
	}
}

/* The server log names every failed request, for the DBA of the night. */
static void
log_failure(const ClaimedRequest *request)
{
	ereport(LOG, (errmsg("anonymize: erasure request %s of customer %s "
						 "failed: %s",
						 DatumGetCString(DirectFunctionCall1(
							 uuid_out, request->request_id)),
						 customer_id_text(request->customer.customer_id),
						 request->error),
				  errdetail("SQLSTATE %s.", request->sqlstate)));
}

static Datum
text_array(Datum *elements, bool *nulls, int n)
{
	int dims[1] = {n};
	int lbs[1] = {1};

	return PointerGetDatum(construct_md_array(
		elements, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Marks the requests of the batch done, or leaves them pending, at once. */
static void
record_attempts(ClaimedBatch *batch, Run *run)
{
	Oid    types[] = {UUIDARRAYOID, TEXTARRAYOID, JSONBARRAYOID,
					  TEXTARRAYOID, TEXTOID,      TIMESTAMPTZOID};
	int    n = batch->n;
	Datum *ids = palloc(sizeof(Datum) * n);
	Datum *states = palloc0(sizeof(Datum) * n);
	Datum *details = palloc0(sizeof(Datum) * n);
	Datum *outcomes = palloc(sizeof(Datum) * n);
	bool  *state_nulls = palloc(sizeof(bool) * n);
	bool  *detail_nulls = palloc(sizeof(bool) * n);
	int    dims[1] = {n};
	int    lbs[1] = {1};
	Datum  values[6];

	for (int i = 0; i < n; i++)
	{
		const char *state;
		char       *detail;
		const char *outcome = attempt_outcome(&batch->requests[i],
											  &run->counts, &state, &detail);

		if (strcmp(outcome, "failed") == 0)
			log_failure(&batch->requests[i]);
		ids[i] = batch->requests[i].request_id;
		state_nulls[i] = (state == NULL);
		if (state != NULL)
			states[i] = CStringGetTextDatum(state);
		detail_nulls[i] = (detail == NULL);
		if (detail != NULL)
			details[i] =
				DirectFunctionCall1(jsonb_in, CStringGetDatum(detail));
		outcomes[i] = CStringGetTextDatum(outcome);
	}

	values[0] = PointerGetDatum(
		construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	values[1] = text_array(states, state_nulls, n);
	values[2] =
		PointerGetDatum(construct_md_array(details, detail_nulls, 1, dims, lbs,
										   JSONBOID, -1, false, TYPALIGN_INT));
	values[3] = text_array(outcomes, NULL, n);
	values[4] = current_user_text();
	values[5] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(
		run->started, (int64)retry_interval * 1000));
	run_queue_statement(prepare_once_generic(&plans.record_attempts,
											 RECORD_ATTEMPTS_SQL, 6, types),
						values, NULL, SPI_OK_UPDATE);
}

/* Claims and processes one batch; returns the number of requests claimed. */
static int
process_batch(AnonymizeState *state, Run *run, int32 batch_size)
{
	Oid   types[] = {TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID};
	Datum claim_args[3] = {
		run->not_tried_since, Int32GetDatum(batch_size),
		TimestampTzGetDatum(TimestampTzPlusMilliseconds(
			GetCurrentTransactionStartTimestamp(),
			((int64)SECS_PER_MINUTE - retry_interval) * 1000))};
	ClaimedBatch batch = {state};

	run_queue_statement(
		prepare_once(&plans.claim_batch, CLAIM_BATCH_SQL, 3, types),
		claim_args, NULL, SPI_OK_SELECT);
	batch.n = (int)SPI_processed;
	if (batch.n == 0)
		return 0;

	batch.requests = palloc0(sizeof(ClaimedRequest) * batch.n);
	for (int i = 0; i < batch.n; i++)
	{
		bool isnull;

		batch.requests[i].request_id =
			datumCopy(SPI_getbinval(SPI_tuptable->vals[i],
									SPI_tuptable->tupdesc, 1, &isnull),
					  false, UUID_LEN);
		batch.requests[i].customer.customer_id =
			datumCopy(SPI_getbinval(SPI_tuptable->vals[i],
									SPI_tuptable->tupdesc, 2, &isnull),
					  false, UUID_LEN);
		batch.requests[i].customer.request_id = batch.requests[i].request_id;
	}

	erase_claimed(&batch);
	record_attempts(&batch, run);
	return batch.n;
}

/*
 * One batch with the state of this backend, held for the whole batch so
 * that nothing the batch reads is freed by a rebuild.
 */
static int
process_batch_with_state(Run *run, int32 batch_size)
{
	AnonymizeState *state = acquire_state();
	volatile int    claimed = 0;

	PG_TRY();
	{
		claimed = process_batch(state, run, batch_size);
	}
	PG_FINALLY();
	{
		release_state(state);
	}
	PG_END_TRY();
	return claimed;
}

/* Records the start of a run, and forgets the runs past their retention. */
static void
start_run(Run *run, const char *procedure)
{
	Oid   types[] = {TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum values[3] = {CStringGetTextDatum(procedure),
					   TimestampTzGetDatum(run->started), current_user_text()};

	if (run_retention > 0)
	{
		Datum oldest = TimestampTzGetDatum(TimestampTzPlusMilliseconds(
			run->started, -(int64)run_retention * SECS_PER_MINUTE * 1000));

		run_queue_statement(
			prepare_once(&plans.expire_runs, EXPIRE_RUNS_SQL, 1, &types[1]),
			&oldest, NULL, SPI_OK_DELETE);
	}
	run_queue_statement(
		prepare_once(&plans.start_run, START_RUN_SQL, 3, types), values, NULL,
		SPI_OK_INSERT_RETURNING);
	memcpy(&run->run_id, DatumGetUUIDP(first_value(1)), sizeof(pg_uuid_t));
}

/* Reads the state of the queue and writes it, with the counts, to the run. */
static void
update_run(Run *run, bool ended)
{
	RunCounts *c = &run->counts;
	Oid        types[] = {UUIDOID, INT4OID, INT8OID, INT8OID, INT8OID, INT8OID,
						  INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID};
	Datum      values[11];

	run_queue_statement(
		prepare_once(&plans.queue_counts, QUEUE_COUNTS_SQL, 0, NULL), NULL,
		NULL, SPI_OK_SELECT);
	c->pending = DatumGetInt64(first_value(1));
	c->overdue = DatumGetInt64(first_value(2));
	c->failed_left = DatumGetInt64(first_value(3));

	values[0] = UUIDPGetDatum(&run->run_id);
	values[1] = Int32GetDatum(c->batches);
	values[2] = Int64GetDatum(c->anonymized);
	values[3] = Int64GetDatum(c->already_erased);
	values[4] = Int64GetDatum(c->unknown_customers);
	values[5] = Int64GetDatum(c->blocked);
	values[6] = Int64GetDatum(c->busy);
	values[7] = Int64GetDatum(c->failed);
	values[8] = Int64GetDatum(c->pending);
	values[9] = Int64GetDatum(c->overdue);
	values[10] = BoolGetDatum(ended);
	run_queue_statement(
		prepare_once(&plans.update_run, UPDATE_RUN_SQL, 11, types), values,
		NULL, SPI_OK_UPDATE);
}

/* A WARNING for each overdue request, the first MAX_OVERDUE_WARNINGS. */
static void
warn_overdue(const RunCounts *counts)
{
	Oid   type = INT4OID;
	Datum limit = Int32GetDatum(MAX_OVERDUE_WARNINGS);

	if (counts->overdue == 0)
		return;
	run_queue_statement(
		prepare_once(&plans.overdue_requests, OVERDUE_REQUESTS_SQL, 1, &type),
		&limit, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple tuple = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;

		ereport(
			WARNING,
			(errmsg("anonymize: the erasure request of customer %s is "
					"overdue",
					SPI_getvalue(tuple, desc, 2)),
			 errdetail("It was due at %s.", SPI_getvalue(tuple, desc, 3))));
	}
	if (counts->overdue > MAX_OVERDUE_WARNINGS)
		ereport(WARNING,
				(errmsg("anonymize: " INT64_FORMAT " more erasure %s overdue",
						counts->overdue - MAX_OVERDUE_WARNINGS,
						plural(counts->overdue - MAX_OVERDUE_WARNINGS,
							   "request is", "requests are")),
				 errhint("anonymize.pending_requests lists them all.")));
}

/* "3 anonymized, 1 already erased, ... 2 failed" */
static char *
describe_counts(const RunCounts *c)
{
	return psprintf(INT64_FORMAT " anonymized, " INT64_FORMAT
								 " already erased, " INT64_FORMAT
								 " of unknown customers, " INT64_FORMAT
								 " blocked, " INT64_FORMAT
								 " busy, " INT64_FORMAT " failed",
					c->anonymized, c->already_erased, c->unknown_customers,
					c->blocked, c->busy, c->failed);
}

static void
report_run(int level, const RunCounts *c)
{
	ereport(
		level,
		(errmsg(
			"anonymize: processed erasure requests in %d %s: %s; " INT64_FORMAT
			" %s pending, " INT64_FORMAT " overdue",
			c->batches, plural(c->batches, "batch", "batches"),
			describe_counts(c), c->pending,
			plural(c->pending, "request", "requests"), c->overdue)));
}

/*
 * A run that leaves failed or overdue requests fails, after its commits,
 * so that pg_cron records it as failed with this message.
 */
static void
fail_if_unfinished(const RunCounts *c)
{
	char *failed = psprintf(INT64_FORMAT " failed %s", c->failed_left,
							plural(c->failed_left, "request", "requests"));
	char *overdue = psprintf(INT64_FORMAT " overdue %s", c->overdue,
							 plural(c->overdue, "request", "requests"));

	if (c->failed_left == 0 && c->overdue == 0)
		return;
	ereport(
		ERROR,
		(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		 errmsg("anonymize: the erasure queue holds %s%s%s",
				c->failed_left > 0 ? failed : "",
				c->failed_left > 0 && c->overdue > 0 ? " and " : "",
				c->overdue > 0 ? overdue : ""),
		 errdetail("The run committed %d %s: %s.", c->batches,
				   plural(c->batches, "batch", "batches"), describe_counts(c)),
		 errhint("anonymize.pending_requests shows the error and the due "
				 "date of each; the server log names them.  Call with "
				 "fail_on_error => false to end without an error.")));
}

static void
check_batch_size(int32 batch_size)
{
	if (batch_size <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("batch_size must be positive")));
	if (batch_size > MAX_BATCH_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be at most %d", MAX_BATCH_SIZE),
				 errdetail("A batch holds its requests in memory until it "
						   "commits."),
				 errhint("Process a larger backlog in more batches.")));
}

/*
 * When a run that started at "started" must stop: never without a budget,
 * or when the budget is too large to count.
 */
static TimestampTz
run_deadline(TimestampTz started, const Interval *budget)
{
	int64 days;
	int64 usecs;
	int64 deadline;

	if (budget == NULL)
		return DT_NOEND;
	if (budget->month < 0 || budget->day < 0 || budget->time < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("time_budget must not be negative")));
	days = (int64)budget->month * DAYS_PER_MONTH + budget->day;
	if (pg_mul_s64_overflow(days, USECS_PER_DAY, &usecs) ||
		pg_add_s64_overflow(usecs, budget->time, &usecs) ||
		pg_add_s64_overflow(started, usecs, &deadline))
		return DT_NOEND;
	return deadline;
}

/*
 * CALL anonymize.process_requests(batch_size, max_batches, time_budget,
 *                                 fail_on_error, quiet)
 */
Datum
anonymize_process_requests(PG_FUNCTION_ARGS)
{
	int32 batch_size = PG_ARGISNULL(0) ? 500 : PG_GETARG_INT32(0);
	int32 max_batches = PG_ARGISNULL(1) ? PG_INT32_MAX : PG_GETARG_INT32(1);
	bool  fail_on_error = PG_ARGISNULL(3) || PG_GETARG_BOOL(3);
	bool  quiet = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
	Run   run = {0};
	TimestampTz deadline;
	bool        ended = false;

	check_extension_version();
	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
			 errmsg("anonymize.process_requests() must be called on its own"),
			 errdetail("It commits after each batch, which it cannot do "
					   "inside a transaction block or a function."),
			 errhint("Run CALL anonymize.process_requests() outside BEGIN ... "
					 "COMMIT, or anonymize.process_request_batch() for one "
					 "batch in a transaction.")));
	check_batch_size(batch_size);
	if (max_batches <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("max_batches must be positive")));
	run.started = GetCurrentTimestamp();
	run.not_tried_since = TimestampTzGetDatum(run.started);
	deadline = run_deadline(run.started,
							PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2));

	while (!ended)
	{
		int guc_level;
		int claimed;

		/*
		 * A connection per batch: what it allocates (result tables too) is
		 * freed by SPI_finish().
		 */
		SPI_connect_ext(SPI_OPT_NONATOMIC);
		guc_level = NewGUCNestLevel();
		set_batch_settings();
		if (run.counts.batches == 0)
			start_run(&run, "process_requests");
		claimed = process_batch_with_state(&run, batch_size);
		if (claimed > 0)
			run.counts.batches++;
		ended = claimed == 0 || run.counts.batches >= max_batches ||
				GetCurrentTimestamp() >= deadline;
		update_run(&run, ended);
		if (ended)
			warn_overdue(&run.counts);
		AtEOXact_GUC(true, guc_level);
		SPI_commit();
		SPI_finish();

		if (claimed > 0 && !quiet)
			ereport(
				NOTICE,
				(errmsg("anonymize: batch %d: %s so far; " INT64_FORMAT
						" %s pending",
						run.counts.batches, describe_counts(&run.counts),
						run.counts.pending,
						plural(run.counts.pending, "request", "requests"))));
	}

	/* For the DBA in psql, and for the server log of a scheduled job. */
	if (!quiet)
		report_run(NOTICE, &run.counts);
	report_run(LOG, &run.counts);
	if (fail_on_error)
		fail_if_unfinished(&run.counts);
	PG_RETURN_VOID();
}

/*
 * SELECT * FROM anonymize.process_request_batch(batch_size, not_tried_since)
 * runs one batch in the caller's transaction.
 */
Datum
anonymize_process_request_batch(PG_FUNCTION_ARGS)
{
	Run       run = {0};
	TupleDesc desc;
	Datum     values[10];
	bool      nulls[10] = {false};
	int       guc_level;
	int       claimed;

	check_extension_version();
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("batch_size must not be null")));
	check_batch_size(PG_GETARG_INT32(0));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	run.started = GetCurrentTimestamp();
	run.not_tried_since =
		PG_ARGISNULL(1)
			? TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())
			: PG_GETARG_DATUM(1);

	SPI_connect();
	guc_level = NewGUCNestLevel();
	set_batch_settings();
	start_run(&run, "process_request_batch");
	claimed = process_batch_with_state(&run, PG_GETARG_INT32(0));
	run.counts.batches = claimed > 0 ? 1 : 0;
	update_run(&run, true);
	AtEOXact_GUC(true, guc_level);
	SPI_finish();

	values[0] = UUIDPGetDatum(&run.run_id);
	values[1] = Int32GetDatum(claimed);
	values[2] = Int32GetDatum((int32)run.counts.anonymized);
	values[3] = Int32GetDatum((int32)run.counts.already_erased);
	values[4] = Int32GetDatum((int32)run.counts.unknown_customers);
	values[5] = Int32GetDatum((int32)run.counts.blocked);
	values[6] = Int32GetDatum((int32)run.counts.busy);
	values[7] = Int32GetDatum((int32)run.counts.failed);
	values[8] = Int64GetDatum(run.counts.pending);
	values[9] = Int64GetDatum(run.counts.overdue);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
