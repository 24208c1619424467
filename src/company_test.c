/*-------------------------------------------------------------------------
 *
 * company_test.c
 *	  Rule 3 of the erasure, when the company test is on a scope of its own
 *	  (a billing address): which customers are companies, read from the
 *	  rows the statement locks.
 *
 * The statement (classify_sql()) returns a row per row of the scope:
 * (customer id, is_company, company name, the values the residue check
 * captures).  A DestReceiver reads them as they come, without an aggregate
 * (an Agg node costs more to start than the scan under it): the first row
 * of a customer decides, and a customer with more than one row is an
 * error, since the test decides on the one row of the customer.  Nothing
 * is kept per row, only per customer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "anonymize.h"

typedef struct CompanyRowReceiver
{
	DestReceiver            pub;
	CustomerErasure *const *customers; /* sorted by id */
	int                     n;
	bool                    many;
	int                     n_captured; /* values after the company name */
	int64                  *rows;       /* per customer */
	MemoryContext           cxt;        /* of what is kept per customer */
} CompanyRowReceiver;

static void
company_rows_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	CompanyRowReceiver *receiver = (CompanyRowReceiver *)self;

	if (desc->natts != 3 + receiver->n_captured ||
		TupleDescAttr(desc, 0)->atttypid != UUIDOID ||
		TupleDescAttr(desc, 1)->atttypid != BOOLOID)
		elog(ERROR, "unexpected row type of the company test's statement");
}

/* A text column of the slot as a C string in the current context. */
static char *
slot_text(TupleTableSlot *slot, int column)
{
	bool  isnull;
	Datum value = slot_getattr(slot, column, &isnull);

	return isnull ? NULL : TextDatumGetCString(value);
}

static bool
company_row(TupleTableSlot *slot, DestReceiver *self)
{
	CompanyRowReceiver *receiver = (CompanyRowReceiver *)self;
	bool                isnull;
	Datum               id = slot_getattr(slot, 1, &isnull);
	int                 c = receiver->many
								? customer_index(receiver->customers, receiver->n, id)
								: 0;
	CustomerErasure    *customer = receiver->customers[c];
	MemoryContext       old;

	if (receiver->rows[c]++ > 0)
		return true; /* an error once all rows are in */
	old = MemoryContextSwitchTo(receiver->cxt);
	customer->is_company =
		DatumGetBool(slot_getattr(slot, 2, &isnull)) && !isnull;
	customer->company = customer->is_company ? slot_text(slot, 3) : NULL;
	if (receiver->n_captured > 0 && residue_check_enabled())
	{
		customer->captured[1] = palloc(sizeof(char *) * receiver->n_captured);
		for (int i = 0; i < receiver->n_captured; i++)
			customer->captured[1][i] = slot_text(slot, 4 + i);
	}
	MemoryContextSwitchTo(old);
	return true;
}

static void
report_several_company_rows(const Mapping *m, Datum customer_id, int64 rows)
{
	ereport(ERROR,
			(errcode(ERRCODE_CARDINALITY_VIOLATION),
			 errmsg("customer %s has %lld rows in scope \"%s\" of the "
					"company test",
					customer_id_text(customer_id), (long long)rows,
					m->company_scope->name),
			 errdetail("The company test decides on the one row of the "
					   "scope that belongs to the customer."),
			 errhint("Narrow the scope with a condition, or set the company "
					 "test on another scope with "
					 "anonymize.set_company_test().")));
}

/*
 * Locks the rows of the company test's scope of the customers (ids, as $1
 * of plans) and sets each one's is_company, company and the values the
 * residue check captures there.  customers[0 .. n-1] are sorted by id; what
 * is kept lives in the current memory context.
 */
void
classify_customers(const Mapping *m, const StatementPlans *plans,
				   CustomerErasure *const *customers, int n, Datum ids)
{
	CompanyRowReceiver receiver = {
		.pub = row_receiver(company_row, company_rows_startup),
		.customers = customers,
		.n = n,
		.many = plans->many,
		.n_captured = plans->n_captured[1],
		.rows = palloc0(sizeof(int64) * n),
		.cxt = CurrentMemoryContext};

	if (plans->classify == NULL)
		return;
	run_statement_into(&m->company_scope->relation, plans->classify, &ids,
					   NULL, InvalidSnapshot, false, &receiver.pub);
	MemoryContextSwitchTo(receiver.cxt); /* SPI left its own current */
	for (int c = 0; c < n; c++)
		if (receiver.rows[c] > 1)
			report_several_company_rows(m, customers[c]->customer_id,
										receiver.rows[c]);
	pfree(receiver.rows);
}
