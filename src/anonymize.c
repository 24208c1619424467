/*-------------------------------------------------------------------------
 *
 * anonymize.c
 *	  The SQL-callable functions of the anonymize extension:
 *	  anonymize.can_anonymize(), anonymize.blockers() and
 *	  anonymize.anonymize_customer().
 *
 * Each connects to SPI, takes the plans of this backend (see plan_cache.c)
 * and runs the statements built in erasure_rules.c, with the caller's
 * rights, in the caller's transaction.
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
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "anonymize.h"

PG_MODULE_MAGIC;

void _PG_init(void);

PG_FUNCTION_INFO_V1(anonymize_can_anonymize);
PG_FUNCTION_INFO_V1(anonymize_blockers);
PG_FUNCTION_INFO_V1(anonymize_anonymize_customer);

void
_PG_init(void)
{
	plan_cache_init();
	requests_define_settings();
}

/* Connects to SPI and returns the plans; errors out if the id is unknown. */
static AnonymizePlans *
connect_for_customer(Datum customer_id)
{
	AnonymizePlans *plans;

	SPI_connect();
	plans = get_plans();
	check_rows_visible(plans);
	if (!customer_exists(plans, customer_id))
		report_unknown_customer(customer_id);
	return plans;
}

Datum
anonymize_can_anonymize(PG_FUNCTION_ARGS)
{
	Datum           customer_id = PG_GETARG_DATUM(0);
	AnonymizePlans *plans = connect_for_customer(customer_id);
	bool            is_company;
	bool            eligible;

	eligible = !audit_lookup(plans, customer_id, &is_company, false) &&
			   find_blockers(plans, customer_id, false) == NIL;
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

Datum
anonymize_blockers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo  *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	Datum           customer_id = PG_GETARG_DATUM(0);
	AnonymizePlans *plans;
	bool            is_company;
	ListCell       *cell;

	InitMaterializedSRF(fcinfo, 0);
	plans = connect_for_customer(customer_id);

	if (audit_lookup(plans, customer_id, &is_company, false))
		put_blocker_row(
			rsinfo, "already_anonymized", "already anonymized",
			get_relname_relid("audit_log",
							  get_namespace_oid("anonymize", false)),
			1, NULL);
	else
		foreach (cell, find_blockers(plans, customer_id, false))
		{
			Blocker *blocker = lfirst(cell);

			put_blocker_row(rsinfo, blocker->rule->rule_name,
							blocker->rule->reason, blocker->relid,
							blocker->rows, blocker->amount);
		}

	SPI_finish();
	return (Datum)0;
}

Datum
anonymize_anonymize_customer(PG_FUNCTION_ARGS)
{
	MemoryContext   caller_cxt = CurrentMemoryContext;
	CustomerErasure customer = {0};
	TupleDesc       tupdesc;
	StringInfoData  rows_deleted;
	Datum           values[3];
	bool            nulls[3] = {false, false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("customer id must not be null")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	customer.customer_id = PG_GETARG_DATUM(0);

	SPI_connect();
	erase_customers(&customer, 1);
	if (customer.outcome == ERASURE_UNKNOWN_CUSTOMER)
		report_unknown_customer(customer.customer_id);
	if (customer.outcome == ERASURE_BLOCKED)
		report_blocked_customer(customer.customer_id, customer.blockers);

	/* The summary outlives SPI's memory. */
	MemoryContextSwitchTo(caller_cxt);
	initStringInfo(&rows_deleted);
	if (customer.outcome == ERASURE_DONE)
		append_rows_deleted(&rows_deleted, get_plans()->mapping,
							customer.rows_deleted);
	else
		appendStringInfoString(&rows_deleted, "{}");
	SPI_finish();

	values[0] = BoolGetDatum(customer.outcome == ERASURE_DONE);
	values[1] =
		CStringGetTextDatum(customer.is_company ? "company" : "individual");
	values[2] =
		DirectFunctionCall1(jsonb_in, CStringGetDatum(rows_deleted.data));
	PG_RETURN_DATUM(HeapTupleGetDatum(
		heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
