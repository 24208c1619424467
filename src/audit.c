/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  Whether a customer is anonymized already: the audit log holds one row
 *	  per anonymized customer, with no personal data (customer id, time,
 *	  role, company or individual, rows deleted per rule), written by
 *	  erasure.c.
 *
 * The log belongs to the extension owner and is read and written as that
 * owner, so that an operator allowed to anonymize cannot forge or erase
 * audit rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* anonymize.audit_log.customer_kind */
#define AUDIT_KIND_ATTNUM 4

#include "anonymize.h"

/*
 * True if the customer has been anonymized already; then *is_company says
 * how, the last time.  A caller that waited for the customer's row lock passes
 * after_lock, to look with a new snapshot (at READ COMMITTED): the audit row
 * of the session it waited for is visible only there.
 *
 * The lookup goes straight through the primary key, not through a plan: a
 * plan cached while the log was small could scan it whole, at every call.
 */
bool
audit_lookup(AnonymizeState *state, Datum customer_id, bool *is_company,
			 bool after_lock)
{
	Snapshot snapshot = RegisterSnapshot(after_lock ? GetTransactionSnapshot()
													: GetActiveSnapshot());
	Relation rel = table_open(state->audit_relid, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple   tuple;
	bool        found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, customer_id);
	scan =
		systable_beginscan(rel, state->audit_index, true, snapshot, 1, &key);
	found = false;
	/* (customer_id, event_id): the last row is the latest erasure */
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool  isnull;
		Datum kind = heap_getattr(tuple, AUDIT_KIND_ATTNUM,
								  RelationGetDescr(rel), &isnull);

		*is_company = (strcmp(TextDatumGetCString(kind), "company") == 0);
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snapshot);
	return found;
}
