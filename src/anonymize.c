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
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "anonymize.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(anonymize_can_anonymize);
PG_FUNCTION_INFO_V1(anonymize_blockers);
PG_FUNCTION_INFO_V1(anonymize_anonymize_customer);

/* What anonymize_customer() did, allocated in the caller's context. */
typedef struct ErasureSummary
{
	bool		anonymized;		/* false: it had been already */
	bool		is_company;
	StringInfoData rows_deleted;	/* JSON object: rule name -> rows */
} ErasureSummary;

void
_PG_init(void)
{
	plan_cache_init();
}

/* Connects to SPI and returns the plans; errors out if the id is unknown. */
static AnonymizePlans *
connect_for_customer(Datum customer_id)
{
	AnonymizePlans *plans;

	SPI_connect();
	plans = get_plans();
	if (!customer_exists(plans, customer_id))
		report_unknown_customer(customer_id);
	return plans;
}

Datum
anonymize_can_anonymize(PG_FUNCTION_ARGS)
{
	Datum		customer_id = PG_GETARG_DATUM(0);
	AnonymizePlans *plans = connect_for_customer(customer_id);
	bool		is_company;
	bool		eligible;

	eligible = !audit_lookup(plans, customer_id, &is_company) &&
		find_blockers(plans, customer_id, false) == NIL;
	SPI_finish();
	PG_RETURN_BOOL(eligible);
}

static void
put_blocker_row(ReturnSetInfo *rsinfo, const char *rule_name,
				const char *reason, Oid relid, int64 rows, const char *amount)
{
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, amount == NULL};

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
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		customer_id = PG_GETARG_DATUM(0);
	AnonymizePlans *plans;
	bool		is_company;
	ListCell   *cell;

	InitMaterializedSRF(fcinfo, 0);
	plans = connect_for_customer(customer_id);

	if (audit_lookup(plans, customer_id, &is_company))
		put_blocker_row(rsinfo, "already_anonymized", "already anonymized",
						get_relname_relid("audit_log",
										  get_namespace_oid("anonymize", false)),
						1, NULL);
	else
		foreach(cell, find_blockers(plans, customer_id, false))
		{
			Blocker    *blocker = lfirst(cell);

			put_blocker_row(rsinfo, blocker->rule->rule_name,
							blocker->rule->reason, blocker->relid,
							blocker->rows, blocker->amount);
		}

	SPI_finish();
	return (Datum) 0;
}

/* Rule 3: deletes the purge rules' rows, counting them per rule. */
static void
purge_customer_rows(AnonymizePlans *plans, Datum customer_id,
					StringInfo rows_deleted)
{
	const Mapping *m = plans->mapping;

	appendStringInfoChar(rows_deleted, '{');
	if (plans->purge != NULL)
	{
		bool		isnull;

		if (SPI_execute_plan(plans->purge, &customer_id, NULL, false, 0)
			!= SPI_OK_SELECT)
			elog(ERROR, "could not purge the rows of a customer");
		for (int i = 0; i < m->n_purge_rules; i++)
		{
			int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc,
														i + 1, &isnull));

			if (i > 0)
				appendStringInfoString(rows_deleted, ", ");
			escape_json(rows_deleted, m->purge_rules[i].rule_name);
			appendStringInfo(rows_deleted, ": " INT64_FORMAT, n);
		}
	}
	appendStringInfoChar(rows_deleted, '}');
}

/*
 * Rules 4 and 5: erases the billing address and the customer.  Returns
 * whether the customer is a company.
 */
static bool
erase_personal_data(AnonymizePlans *plans, Datum customer_id)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', 'n'};
	bool		is_company = false;
	bool		isnull;

	values[0] = customer_id;
	values[1] = CStringGetTextDatum(plans->mapping->placeholder);
	values[2] = (Datum) 0;

	if (plans->erase_address != NULL)
	{
		if (SPI_execute_plan(plans->erase_address, values, nulls, false, 0)
			!= SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "could not erase the billing address of a customer");
		/* The company name of the first company address, if any. */
		for (uint64 row = 0; row < SPI_processed && !is_company; row++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[row];

			is_company = DatumGetBool(SPI_getbinval(tuple,
													SPI_tuptable->tupdesc,
													1, &isnull));
			if (is_company)
			{
				values[2] = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2,
										  &isnull);
				nulls[2] = ' ';
			}
		}
	}

	if (SPI_execute_plan(plans->erase_customer, values, nulls, false, 0)
		!= SPI_OK_UPDATE_RETURNING || SPI_processed == 0)
		elog(ERROR, "could not erase a customer");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}

static void
erase_customer(Datum customer_id, ErasureSummary *summary)
{
	AnonymizePlans *plans = get_plans();

	/* Rule 1: from here on, nothing new can reference the customer. */
	if (SPI_execute_plan(plans->lock_customer, &customer_id, NULL,
						 false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock a customer");
	if (SPI_processed == 0)
		report_unknown_customer(customer_id);

	/* A second call changes nothing. */
	if (audit_lookup(plans, customer_id, &summary->is_company))
	{
		summary->anonymized = false;
		appendStringInfoString(&summary->rows_deleted, "{}");
		return;
	}

	refuse_if_blocked(plans, customer_id);	/* rule 2 */
	purge_customer_rows(plans, customer_id, &summary->rows_deleted);
	summary->is_company = erase_personal_data(plans, customer_id);
	summary->anonymized = true;
	audit_insert(plans, customer_id, summary->is_company,
				 summary->rows_deleted.data);
}

Datum
anonymize_anonymize_customer(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	ErasureSummary summary = {0};
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("customer id must not be null")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	initStringInfo(&summary.rows_deleted);	/* in the caller's context */
	SPI_connect();
	erase_customer(PG_GETARG_DATUM(0), &summary);
	SPI_finish();

	values[0] = BoolGetDatum(summary.anonymized);
	values[1] = CStringGetTextDatum(summary.is_company ? "company"
									: "individual");
	values[2] = DirectFunctionCall1(jsonb_in,
									CStringGetDatum(summary.rows_deleted.data));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}
