/*-------------------------------------------------------------------------
 *
 * requests.c
 *	  The erasure-request queue: anonymize.request(),
 *	  anonymize.cancel_request() and the procedure
 *	  anonymize.process_requests(), which anonymizes eligible requests in
 *	  batches, committing after each.
 *
 * Two jobs may process the queue at once: each claims its batch with FOR
 * UPDATE SKIP LOCKED, so no request is processed twice.  A batch is erased
 * at once; if that fails, each customer is erased in a subtransaction, so
 * that one failing customer is recorded on its request and does not stop
 * the others.  The queue never waits for billing transactions: its row locks
 * are SKIP LOCKED or NOWAIT, other waits are bounded by
 * anonymize.queue_lock_timeout, and a customer whose rows are held is left
 * busy for the next run.  The queue table is written as the extension
 * owner, like the audit log; the erasure runs with the rights security.c
 * chooses.  request() and cancel_request() depend on the queue and, for
 * request(), the customer relation only, not on the rest of the mapping.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_request);
PG_FUNCTION_INFO_V1(anonymize_cancel_request);
PG_FUNCTION_INFO_V1(anonymize_process_requests);

#define INSERT_REQUEST_SQL                                                    \
	"INSERT INTO anonymize.requests"                                          \
	" (customer_id, requested_at, requested_by, reference, due_at)"           \
	" VALUES ($1, pg_catalog.now(), $2, $3,"                                  \
	" pg_catalog.now() OPERATOR(pg_catalog.+) '1 "                            \
	"month'::pg_catalog.interval)"                                            \
	" ON CONFLICT (customer_id) WHERE state OPERATOR(pg_catalog.=) 'pending'" \
	" DO NOTHING RETURNING request_id"

#define PENDING_REQUEST_SQL                                                   \
	"SELECT request_id FROM anonymize.requests"                               \
	" WHERE customer_id OPERATOR(pg_catalog.=) $1"                            \
	" AND state OPERATOR(pg_catalog.=) 'pending'"

#define CANCEL_REQUEST_SQL                                                    \
	"UPDATE anonymize.requests SET state = 'cancelled',"                      \
	" closed_at = pg_catalog.now(), closed_by = $2"                           \
	" WHERE customer_id OPERATOR(pg_catalog.=) $1"                            \
	" AND state OPERATOR(pg_catalog.=) 'pending'"

/* Pending requests not yet tried in this run ($1: when the run started). */
#define CLAIM_BATCH_SQL                                                       \
	"SELECT request_id, customer_id FROM anonymize.requests"                  \
	" WHERE state OPERATOR(pg_catalog.=) 'pending'"                           \
	" AND (last_attempt_at IS NULL"                                           \
	" OR last_attempt_at OPERATOR(pg_catalog.<) $1)"                          \
	" ORDER BY due_at, request_id LIMIT $2 FOR UPDATE SKIP LOCKED"

/*
 * The attempts of a batch, as arrays of request ids ($1), new states ($2,
 * NULL leaves a request pending), blockers ($3) and outcomes ($4).
 */
#define RECORD_ATTEMPTS_SQL                                                   \
	"UPDATE anonymize.requests r"                                             \
	" SET last_attempt_at = pg_catalog.clock_timestamp(),"                    \
	" state = COALESCE(a.state, r.state), blockers = a.blockers,"             \
	" outcome = a.outcome,"                                                   \
	" closed_at = CASE WHEN a.state IS NULL THEN NULL ELSE pg_catalog.now() " \
	"END,"                                                                    \
	" closed_by = CASE WHEN a.state IS NULL THEN NULL ELSE $5 END"            \
	" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"          \
	" pg_catalog.unnest($3), pg_catalog.unnest($4))"                          \
	" AS a (request_id, state, blockers, outcome)"                            \
	" WHERE r.request_id OPERATOR(pg_catalog.=) a.request_id"

#define COUNT_PENDING_SQL                                                     \
	"SELECT pg_catalog.count(*) FROM anonymize.requests"                      \
	" WHERE state OPERATOR(pg_catalog.=) 'pending'"

/* The queue's statements, prepared once per backend. */
typedef struct QueuePlans
{
	SPIPlanPtr insert_request;
	SPIPlanPtr pending_request;
	SPIPlanPtr cancel_request;
	SPIPlanPtr claim_batch;
	SPIPlanPtr record_attempts;
	SPIPlanPtr count_pending;
} QueuePlans;

static QueuePlans queue_plans;

static SPIPlanPtr
prepare_once(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr prepared = SPI_prepare(sql, nargs, argtypes);

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
	Oid insert_types[] = {UUIDOID, TEXTOID, TEXTOID};
	Oid claim_types[] = {TIMESTAMPTZOID, INT4OID};
	Oid record_types[] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
						  TEXTARRAYOID, TEXTOID};
	Oid cancel_types[] = {UUIDOID, TEXTOID};

	prepare_once(&queue_plans.insert_request, INSERT_REQUEST_SQL, 3,
				 insert_types);
	prepare_once(&queue_plans.pending_request, PENDING_REQUEST_SQL, 1,
				 insert_types);
	prepare_once(&queue_plans.cancel_request, CANCEL_REQUEST_SQL, 2,
				 cancel_types);
	prepare_once(&queue_plans.claim_batch, CLAIM_BATCH_SQL, 2, claim_types);
	prepare_once(&queue_plans.record_attempts, RECORD_ATTEMPTS_SQL, 5,
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
	bool isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
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

/* anonymize.request(customer_id, reference) returns the request id. */
Datum
anonymize_request(PG_FUNCTION_ARGS)
{
	Datum       values[3];
	char        nulls[3] = {' ', ' ', PG_ARGISNULL(1) ? 'n' : ' '};
	QueuePlans *plans;
	Oid         owner = anonymize_extension_owner();
	int64       request_id;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("customer id must not be null")));
	values[0] = PG_GETARG_DATUM(0);
	values[1] = current_user_text();
	values[2] = PG_ARGISNULL(1) ? (Datum)0 : PG_GETARG_DATUM(1);

	SPI_connect();
	check_requested_customer(owner, values[0]);
	plans = get_queue_plans();

	/*
	 * Insert, or find the pending request; a run may close that request
	 * between the two statements, and then a new one is inserted.
	 */
	for (;;)
	{
		if (execute_as_owner(owner, plans->insert_request, values, nulls,
							 false) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not record an erasure request");
		if (SPI_processed > 0)
			break;
		if (execute_as_owner(owner, plans->pending_request, values, NULL,
							 false) != SPI_OK_SELECT)
			elog(ERROR, "could not read an erasure request");
		if (SPI_processed > 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	request_id = first_int64();
	SPI_finish();
	PG_RETURN_INT64(request_id);
}

/* Touches the queue only: works whatever state the mapping is in. */
Datum
anonymize_cancel_request(PG_FUNCTION_ARGS)
{
	Datum values[2] = {PG_GETARG_DATUM(0), current_user_text()};
	bool  cancelled;

	SPI_connect();
	if (execute_as_owner(anonymize_extension_owner(),
						 get_queue_plans()->cancel_request, values, NULL,
						 false) != SPI_OK_UPDATE)
		elog(ERROR, "could not cancel an erasure request");
	cancelled = (SPI_processed > 0);
	SPI_finish();
	PG_RETURN_BOOL(cancelled);
}

/* Counts of one run of process_requests(). */
typedef struct RunCounts
{
	int64 anonymized;
	int64 closed; /* already anonymized, or no such customer */
	int64 blocked;
	int64 busy; /* its rows were locked; tried again next run */
	int64 failed;
} RunCounts;

/* One claimed request: its customer, and what became of it. */
typedef struct ClaimedRequest
{
	Datum           request_id;
	CustomerErasure customer;
	char           *error; /* set when anonymizing it failed */
} ClaimedRequest;

/* Anonymize a batch with one statement per rule, or one customer at a time. */
static bool set_based_batches = true;

/*
 * The longest the queue waits for a lock (ms; 0: lock_timeout as it is).
 * Its row locks never wait; this bounds what they cannot cover: foreign key
 * checks of its deletes, table locks, rows it may not lock itself.
 */
static int queue_lock_timeout = 100;

/*
 * The largest batch: the customers of a batch and their outcomes are held
 * in memory until the batch commits.
 */
#define MAX_BATCH_SIZE 10000

void
requests_define_settings(void)
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
		request->error =
			psprintf("error %s: %s", unpack_sql_state(error->sqlerrcode),
					 error->message);
		if (is_busy_error(error))
			request->customer.outcome = ERASURE_BUSY;
		else
			request->customer.outcome = ERASURE_DONE; /* see error */
		FreeErrorData(error);
	}
}

/* What an attempt did to a request: its new state, its note, its outcome. */
static const char *
attempt_outcome(ClaimedRequest *request, RunCounts *counts, const char **state,
				const char **note)
{
	*state = NULL; /* still pending */
	*note = request->error;
	if (request->customer.outcome == ERASURE_BUSY)
	{
		counts->busy++;
		if (*note == NULL)
			*note = "the customer is locked by another transaction";
		return "busy";
	}
	if (request->error != NULL)
	{
		counts->failed++;
		return "failed";
	}
	switch (request->customer.outcome)
	{
		case ERASURE_DONE:
			counts->anonymized++;
			*state = "done";
			return "anonymized";
		case ERASURE_ALREADY_DONE:
			counts->closed++;
			*state = "done";
			return "already anonymized";
		case ERASURE_UNKNOWN_CUSTOMER:
			counts->closed++;
			*state = "done";
			return "customer does not exist";
		default:
			counts->blocked++;
			*note = describe_blockers(request->customer.blockers);
			return "blocked";
	}
}

/* Marks the requests of the batch done, or leaves them pending, at once. */
static void
record_attempts(QueuePlans *plans, ClaimedBatch *batch, RunCounts *counts)
{
	int    n = batch->n;
	Datum *ids = palloc(sizeof(Datum) * n);
	Datum *states = palloc0(sizeof(Datum) * n);
	Datum *notes = palloc0(sizeof(Datum) * n);
	Datum *outcomes = palloc(sizeof(Datum) * n);
	bool  *state_nulls = palloc(sizeof(bool) * n);
	bool  *note_nulls = palloc(sizeof(bool) * n);
	int    dims[1] = {n};
	int    lbs[1] = {1};
	Datum  values[5];

	for (int i = 0; i < n; i++)
	{
		const char *state;
		const char *note;
		const char *outcome =
			attempt_outcome(&batch->requests[i], counts, &state, &note);

		ids[i] = batch->requests[i].request_id;
		state_nulls[i] = (state == NULL);
		if (state != NULL)
			states[i] = CStringGetTextDatum(state);
		note_nulls[i] = (note == NULL);
		if (note != NULL)
			notes[i] = CStringGetTextDatum(note);
		outcomes[i] = CStringGetTextDatum(outcome);
	}

	values[0] = PointerGetDatum(
		construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_md_array(
		states, state_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_md_array(
		notes, note_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(
		construct_array(outcomes, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[4] = current_user_text();
	if (execute_as_owner(batch->state->extension_owner, plans->record_attempts,
						 values, NULL, false) != SPI_OK_UPDATE)
		elog(ERROR, "could not record erasure attempts");
}

/* Claims and processes one batch; returns the number of requests claimed. */
static uint64
process_batch(AnonymizeState *state, Datum run_started, int32 batch_size,
			  RunCounts *counts)
{
	QueuePlans  *plans = get_queue_plans();
	Datum        claim_args[2] = {run_started, Int32GetDatum(batch_size)};
	ClaimedBatch batch = {state};

	if (execute_as_owner(state->extension_owner, plans->claim_batch,
						 claim_args, NULL, false) != SPI_OK_SELECT)
		elog(ERROR, "could not claim erasure requests");
	batch.n = (int)SPI_processed;
	if (batch.n == 0)
		return 0;

	batch.requests = palloc0(sizeof(ClaimedRequest) * batch.n);
	for (int i = 0; i < batch.n; i++)
	{
		bool isnull;

		batch.requests[i].request_id = SPI_getbinval(
			SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		batch.requests[i].customer.customer_id = SPI_getbinval(
			SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		batch.requests[i].customer.request_id =
			DatumGetInt64(batch.requests[i].request_id);
	}

	erase_claimed(&batch);
	record_attempts(plans, &batch, counts);
	return batch.n;
}

/*
 * One batch with the state of this backend, held for the whole batch so
 * that nothing the batch reads is freed by a rebuild.
 */
static uint64
process_batch_with_state(Datum run_started, int32 batch_size,
						 RunCounts *counts)
{
	AnonymizeState *state = acquire_state();
	volatile uint64 claimed = 0;

	PG_TRY();
	{
		claimed = process_batch(state, run_started, batch_size, counts);
	}
	PG_FINALLY();
	{
		release_state(state);
	}
	PG_END_TRY();
	return claimed;
}

static int64
count_pending(void)
{
	if (execute_as_owner(anonymize_extension_owner(),
						 get_queue_plans()->count_pending, NULL, NULL,
						 false) != SPI_OK_SELECT)
		elog(ERROR, "could not count erasure requests");
	return first_int64();
}

static void
report_run(int level, int batches, const RunCounts *counts)
{
	ereport(level,
			(errmsg("anonymize: processed erasure requests in %d "
					"batches: " INT64_FORMAT " anonymized, " INT64_FORMAT
					" closed without erasure, " INT64_FORMAT
					" blocked, " INT64_FORMAT " busy, " INT64_FORMAT " failed",
					batches, counts->anonymized, counts->closed,
					counts->blocked, counts->busy, counts->failed)));
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
 * CALL anonymize.process_requests(batch_size, max_batches, time_budget)
 */
Datum
anonymize_process_requests(PG_FUNCTION_ARGS)
{
	int32 batch_size = PG_ARGISNULL(0) ? 500 : PG_GETARG_INT32(0);
	int32 max_batches = PG_ARGISNULL(1) ? PG_INT32_MAX : PG_GETARG_INT32(1);
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz deadline = run_deadline(
		started, PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2));
	RunCounts counts = {0};
	int       batches = 0;

	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
			 errmsg("anonymize.process_requests() must be called on its own"),
			 errdetail("It commits after each batch, which it cannot do "
					   "inside a transaction block or a function."),
			 errhint("Run CALL anonymize.process_requests() outside BEGIN ... "
					 "COMMIT.")));
	if (batch_size <= 0 || max_batches <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size and max_batches must be positive")));
	if (batch_size > MAX_BATCH_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be at most %d", MAX_BATCH_SIZE),
				 errdetail("A batch holds its requests in memory until it "
						   "commits."),
				 errhint("Process a larger backlog in more batches: "
						 "max_batches and time_budget bound the run.")));

	for (;;)
	{
		int    guc_level;
		uint64 claimed;
		int64  pending;

		/*
		 * A connection per batch: what it allocates (result tables too) is
		 * freed by SPI_finish().
		 */
		SPI_connect_ext(SPI_OPT_NONATOMIC);

		guc_level = NewGUCNestLevel();
		set_batch_settings();
		claimed = process_batch_with_state(TimestampTzGetDatum(started),
										   batch_size, &counts);
		pending = count_pending();
		AtEOXact_GUC(true, guc_level);
		SPI_commit();
		SPI_finish();

		if (claimed == 0)
			break;
		batches++;
		ereport(NOTICE,
				(errmsg("anonymize: batch %d: " INT64_FORMAT
						" anonymized, " INT64_FORMAT
						" closed without erasure, " INT64_FORMAT
						" still blocked, " INT64_FORMAT " busy, " INT64_FORMAT
						" failed so far; " INT64_FORMAT " requests pending",
						batches, counts.anonymized, counts.closed,
						counts.blocked, counts.busy, counts.failed, pending)));
		if (batches >= max_batches || GetCurrentTimestamp() >= deadline)
			break;
	}

	/* For the DBA in psql, and for the server log of a scheduled job. */
	report_run(NOTICE, batches, &counts);
	report_run(LOG, batches, &counts);
	PG_RETURN_VOID();
}
