/*-------------------------------------------------------------------------
 *
 * anonymize.c
 *	  The SQL-callable functions of the anonymize extension:
 *	  anonymize.can_anonymize(), anonymize.blockers() and
 *	  anonymize.anonymize_customer().
 *
 * Each connects to SPI, acquires the state of this backend once for the
 * whole call (see plan_cache.c) and runs the statements built in
 * erasure_rules.c in the caller's transaction, each as the owner of the
 * relation it touches, after checking the caller's privileges (security.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "anonymize.h"

PG_MODULE_MAGIC;

void _PG_init(void);

PG_FUNCTION_INFO_V1(anonymize_can_anonymize);
PG_FUNCTION_INFO_V1(anonymize_blockers);
PG_FUNCTION_INFO_V1(anonymize_anonymize_customer);

#if PG_VERSION_NUM < 150000
#error "anonymize requires PostgreSQL 15 or later"
#endif

void
_PG_init(void)
{
	plan_cache_init();
	requests_define_settings();
	queue_define_settings();
	drop_guard_define_settings();
	residue_define_settings();
	/* a misspelt anonymize.* setting is an error, not a silent placeholder */
	MarkGUCPrefixReserved("anonymize");
}

/*
 * Checks what a read-only call needs; errors out if the id is unknown.  The
 * caller holds the state and is connected to SPI.
 */
static void
check_readable_customer(AnonymizeState *state, Datum customer_id)
{
	check_rows_visible(state);
	check_caller_privileges(state, CHECK_READ);
	if (!customer_exists(state, customer_id))
		report_unknown_customer(customer_id);
}

Datum
anonymize_can_anonymize(PG_FUNCTION_ARGS)
{
	Datum           customer_id = PG_GETARG_DATUM(0);
	AnonymizeState *state;
	bool            is_company;
	volatile bool   eligible = false;

	SPI_connect();
	state = acquire_state();
	PG_TRY();
	{
		check_readable_customer(state, customer_id);
		eligible = (!audit_lookup(state, customer_id, &is_company, false) ||
					data_again(state, customer_id, is_company, NULL,
							   InvalidSnapshot) > 0) &&
				   find_blockers(state, customer_id) == NIL;
	}
	PG_FINALLY();
	{
		release_state(state);
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_BOOL(eligible);
}

static void
put_blocker_row(ReturnSetInfo *rsinfo, const char *rule_name,
				const char *reason, Oid relid, int64 rows, const char *amount)
{
	Datum values[5];
	bool  nulls[5] = {false, false, false, false, amount == NULL};

	values[0] = CStringGetTextDatum(rule_name);
	values[1] = CStringGetTextDatum(reason);
	values[2] = ObjectIdGetDatum(relid);
	values[3] = Int64GetDatum(rows);
	if (amount != NULL)
		values[4] = DirectFunctionCall3(numeric_in, CStringGetDatum(amount),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static void
put_blocker_rows(ReturnSetInfo *rsinfo, AnonymizeState *state,
				 Datum customer_id)
{
	bool      is_company;
	ListCell *cell;

	if (audit_lookup(state, customer_id, &is_company, false) &&
		data_again(state, customer_id, is_company, NULL, InvalidSnapshot) == 0)
	{
		put_blocker_row(rsinfo, "already_anonymized", "already anonymized",
						state->audit_relid, 1, NULL);
		return;
	}
	foreach (cell, find_blockers(state, customer_id))
	{
		Blocker *blocker = lfirst(cell);

		put_blocker_row(rsinfo, blocker->rule->rule_name,
						blocker->rule->reason,
						blocker->rule->scope->relation.relid, blocker->rows,
						blocker->amount);
	}
}

Datum
anonymize_blockers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo  *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	Datum           customer_id = PG_GETARG_DATUM(0);
	AnonymizeState *state;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	state = acquire_state();
	PG_TRY();
	{
		check_readable_customer(state, customer_id);
		put_blocker_rows(rsinfo, state, customer_id);
	}
	PG_FINALLY();
	{
		release_state(state);
	}
	PG_END_TRY();
	SPI_finish();
	return (Datum)0;
}

/* The result row of anonymize_customer(), in the caller's context. */
static Datum
erasure_result(TupleDesc tupdesc, const CustomerErasure *customer,
			   const Mapping *m)
{
	StringInfoData rows_deleted;
	Datum          values[3];
	bool           nulls[3] = {false, false, false};

	initStringInfo(&rows_deleted);
	if (customer->outcome == ERASURE_DONE)
		append_rows_deleted(&rows_deleted, m, customer->rows_deleted);
	else
		appendStringInfoString(&rows_deleted, "{}");

	values[0] = BoolGetDatum(customer->outcome == ERASURE_DONE);
	values[1] =
		CStringGetTextDatum(customer->is_company ? "company" : "individual");
	values[2] =
		DirectFunctionCall1(jsonb_in, CStringGetDatum(rows_deleted.data));
	return HeapTupleGetDatum(
		heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

Datum
anonymize_anonymize_customer(PG_FUNCTION_ARGS)
{
	MemoryContext   caller_cxt = CurrentMemoryContext;
	CustomerErasure customer = {0};
	TupleDesc       tupdesc;
	AnonymizeState *state;
	volatile Datum  result = (Datum)0;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("customer id must not be null")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	customer.customer_id = PG_GETARG_DATUM(0);

	SPI_connect();
	state = acquire_state();
	PG_TRY();
	{
		MemoryContext spi_cxt;

		erase_customers(state, MODE_ONE, &customer, 1);
		if (customer.outcome == ERASURE_UNKNOWN_CUSTOMER)
			report_unknown_customer(customer.customer_id);
		if (customer.outcome == ERASURE_BLOCKED)
			report_blocked_customer(customer.customer_id, customer.blockers);

		/* The result outlives SPI's memory. */
		spi_cxt = MemoryContextSwitchTo(caller_cxt);
		result = erasure_result(tupdesc, &customer, state->mapping);
		MemoryContextSwitchTo(spi_cxt);
	}
	PG_FINALLY();
	{
		release_state(state);
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_DATUM(result);
}
