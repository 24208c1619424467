/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audit log: one row per anonymized customer, with no personal data
 *	  (customer id, time, role, company or individual, rows deleted per
 *	  rule).  Its row also marks the customer as anonymized.
 *
 * The log belongs to the extension owner and is read and written as that
 * owner, so that an operator allowed to anonymize cannot forge or erase
 * audit rows.  The statements touch only anonymize.audit_log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "anonymize.h"

/*
 * True if the customer has been anonymized already; then *is_company says
 * how.  A caller that waited for the customer's row lock passes
 * after_lock, to look with a new snapshot: the audit row of the session it
 * waited for is visible only there.
 */
bool
audit_lookup(AnonymizePlans *plans, Datum customer_id, bool *is_company,
			 bool after_lock)
{
	bool isnull;

	if (execute_as_owner(plans->extension_owner, plans->one.audit_lookup,
						 &customer_id, NULL, !after_lock) != SPI_OK_SELECT)
		elog(ERROR, "could not read anonymize.audit_log");
	if (SPI_processed == 0)
		return false;
	*is_company = DatumGetBool(SPI_getbinval(
		SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return true;
}

void
audit_insert(AnonymizePlans *plans, Datum customer_id, bool is_company,
			 const char *rows_deleted_json)
{
	Datum values[4];

	/* current_user of the caller, not the owner the insert runs as */
	values[0] = customer_id;
	values[1] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	values[2] = CStringGetTextDatum(is_company ? "company" : "individual");
	values[3] =
		DirectFunctionCall1(jsonb_in, CStringGetDatum(rows_deleted_json));

	if (execute_as_owner(plans->extension_owner, plans->one.audit_insert,
						 values, NULL, false) != SPI_OK_INSERT)
		elog(ERROR, "could not write anonymize.audit_log");
}
