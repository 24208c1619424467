/*-------------------------------------------------------------------------
 *
 * eligibility.c
 *	  Whether a customer may be anonymized: it exists, and no blocker or
 *	  balance rule holds it back.
 *
 * Each blocker or balance rule is one statement on its relation, run as the
 * relation's owner, whose rows a DestReceiver tallies per customer as they
 * come: no row is kept.
 *
 * In a transaction that uses one snapshot for all its statements
 * (REPEATABLE READ and SERIALIZABLE), a blocker committed after that
 * snapshot was taken is invisible to it.  As PostgreSQL's foreign key checks
 * do, the check is then run again with the latest snapshot, and a blocker
 * seen only there raises a serialization failure instead of an erasure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "anonymize.h"

char *
customer_id_text(Datum customer_id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, customer_id));
}

void
report_unknown_customer(Datum customer_id)
{
	ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
					errmsg("customer %s does not exist",
						   customer_id_text(customer_id))));
}

bool
customer_exists(AnonymizeState *state, Datum customer_id)
{
	if (run_statement(&state->mapping->customer, state->customer_exists,
					  &customer_id, NULL, InvalidSnapshot, InvalidSnapshot,
					  true) != SPI_OK_SELECT)
		elog(ERROR, "could not look up customer");
	return SPI_processed > 0;
}

/* What the rows of one customer add up to, for a blocker or balance rule. */
typedef struct Tally
{
	pg_uuid_t customer_id; /* the hash key, for many */
	int64     rows;        /* rows of the scope */
	int64     blocking;    /* blocker rule: rows whose condition is true */
	Datum     sum;         /* balance rule: the amounts; 0 until one */
} Tally;

/*
 * Receives the rows (customer id, condition or amount) of a rule's
 * statement and tallies them per customer as they come: memory grows with
 * the customers, never with their rows.
 */
typedef struct TallyReceiver
{
	DestReceiver  pub;
	bool          balance;
	MemoryContext cxt;     /* the tallies */
	MemoryContext row_cxt; /* what one row needs, reset after it */
	HTAB         *by_id;   /* many: customer id -> tally */
	List         *tallies; /* in the order of their first rows */
} TallyReceiver;

static void
tally_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	TallyReceiver *receiver = (TallyReceiver *)self;
	Oid            expected = receiver->balance ? NUMERICOID : BOOLOID;

	if (desc->natts != 2 || TupleDescAttr(desc, 0)->atttypid != UUIDOID ||
		TupleDescAttr(desc, 1)->atttypid != expected)
		elog(ERROR, "unexpected row type of a blocker rule's statement");
}

static Tally *
find_tally(TallyReceiver *receiver, Datum customer_id)
{
	Tally *tally;
	bool   found = false;

	if (receiver->by_id != NULL)
		tally = hash_search(receiver->by_id, DatumGetUUIDP(customer_id),
							HASH_ENTER, &found);
	else if (receiver->tallies != NIL)
		return linitial(receiver->tallies); /* one customer */
	else
		tally = palloc(sizeof(Tally));
	if (!found)
	{
		memcpy(&tally->customer_id, DatumGetUUIDP(customer_id), UUID_LEN);
		tally->rows = 0;
		tally->blocking = 0;
		tally->sum = (Datum)0;
		receiver->tallies = lappend(receiver->tallies, tally);
	}
	return tally;
}

static bool
tally_row(TupleTableSlot *slot, DestReceiver *self)
{
	TallyReceiver *receiver = (TallyReceiver *)self;
	MemoryContext  old = MemoryContextSwitchTo(receiver->cxt);
	bool           isnull;
	Tally *tally = find_tally(receiver, slot_getattr(slot, 1, &isnull));
	Datum  value = slot_getattr(slot, 2, &isnull);

	tally->rows++;
	if (!isnull && !receiver->balance && DatumGetBool(value))
		tally->blocking++;
	else if (!isnull && receiver->balance)
	{
		Datum previous = tally->sum;

		MemoryContextSwitchTo(receiver->row_cxt);
		value = previous == (Datum)0
					? value
					: DirectFunctionCall2(numeric_add, previous, value);
		MemoryContextSwitchTo(receiver->cxt);
		tally->sum = datumCopy(value, false, -1);
		if (previous != (Datum)0)
			pfree(DatumGetPointer(previous));
		MemoryContextReset(receiver->row_cxt);
	}
	MemoryContextSwitchTo(old);
	return true;
}

/* Whether the customer's tally makes the rule hold it back. */
static bool
tally_blocks(const TallyReceiver *receiver, const Tally *tally)
{
	if (!receiver->balance)
		return tally->blocking > 0;
	return tally->sum != (Datum)0 &&
		   !DatumGetBool(DirectFunctionCall2(
			   numeric_eq, tally->sum,
			   DirectFunctionCall1(int4_numeric, Int32GetDatum(0))));
}

/*
 * Runs the statement of one rule for one customer or many (param is a uuid
 * or a uuid[]) with the given snapshot (InvalidSnapshot: the current one),
 * and appends a Blocker per customer it holds back.
 */
static List *
run_blocker_rule(const Rule *rule, SPIPlanPtr plan, Datum param, bool many,
				 Snapshot snapshot, bool read_only, List *blockers)
{
	MemoryContext cxt = CurrentMemoryContext;
	TallyReceiver receiver = {
		.pub = row_receiver(tally_row, tally_startup),
		.balance = (rule->kind == RULE_BALANCE),
		.cxt = AllocSetContextCreate(cxt, "anonymize blocker tallies",
									 ALLOCSET_SMALL_SIZES)};
	ListCell *cell;

	receiver.row_cxt = AllocSetContextCreate(
		receiver.cxt, "anonymize blocker row", ALLOCSET_SMALL_SIZES);
	if (many)
	{
		HASHCTL hash = {.keysize = UUID_LEN,
						.entrysize = sizeof(Tally),
						.hcxt = receiver.cxt};

		receiver.by_id = hash_create("anonymize blocker tallies", 64, &hash,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	run_statement_into(&rule->scope->relation, plan, &param, NULL, snapshot,
					   read_only, &receiver.pub);
	MemoryContextSwitchTo(cxt); /* SPI left its own current */
	foreach (cell, receiver.tallies)
	{
		const Tally *tally = lfirst(cell);
		Blocker     *blocker;

		if (!tally_blocks(&receiver, tally))
			continue;
		blocker = palloc0(sizeof(Blocker));
		blocker->rule = rule;
		blocker->customer_id = UUIDPGetDatum(
			memcpy(palloc(UUID_LEN), &tally->customer_id, UUID_LEN));
		blocker->rows = receiver.balance ? tally->rows : tally->blocking;
		if (receiver.balance)
			blocker->amount =
				DatumGetCString(DirectFunctionCall1(numeric_out, tally->sum));
		blockers = lappend(blockers, blocker);
	}
	MemoryContextDelete(receiver.cxt);
	return blockers;
}

/* The blockers of every rule, in the order of the rules. */
static List *
run_blocker_rules(AnonymizeState *state, SPIPlanPtr *plans, Datum param,
				  bool many, Snapshot snapshot, bool read_only)
{
	const Mapping *m = state->mapping;
	List          *blockers = NIL;

	for (int i = 0; i < m->n_blocker_rules; i++)
		blockers = run_blocker_rule(m->blocker_rules[i], plans[i], param, many,
									snapshot, read_only, blockers);
	return blockers;
}

/*
 * The blockers of a customer, without "already anonymized", taking no row
 * locks.
 */
List *
find_blockers(AnonymizeState *state, Datum customer_id)
{
	return run_blocker_rules(state, get_statements(state, MODE_ONE)->blockers,
							 customer_id, false, InvalidSnapshot, true);
}

/* "2 rows of relation "billing.invoices" (invoice not paid or cancelled)" */
static void
append_blocker(StringInfo buf, const Blocker *blocker)
{
	const Rule *rule = blocker->rule;

	if (buf->len > 0)
		appendStringInfoString(buf, "; ");
	if (rule->kind == RULE_BALANCE)
		appendStringInfo(buf, "a balance of %s in relation \"%s.%s\" (%s)",
						 blocker->amount, rule->scope->relation.schema,
						 rule->scope->relation.name, rule->reason);
	else
		appendStringInfo(buf, "%lld %s of relation \"%s.%s\" (%s)",
						 (long long)blocker->rows,
						 blocker->rows == 1 ? "row" : "rows",
						 rule->scope->relation.schema,
						 rule->scope->relation.name, rule->reason);
}

/* The blockers as one phrase, for messages and the request queue. */
char *
describe_blockers(List *blockers)
{
	StringInfoData buf;
	ListCell      *cell;

	initStringInfo(&buf);
	foreach (cell, blockers)
		append_blocker(&buf, lfirst(cell));
	return buf.data;
}

/* A JSON string member: ,"key": "value" (the comma unless first). */
static void
append_json_member(StringInfo buf, const char *key, const char *value,
				   bool first)
{
	if (!first)
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	escape_json(buf, value);
}

/*
 * The blockers as a JSON document, for the request queue:
 * {"blockers": [{"rule", "reason", "relation", "rows" or "amount"}, ...]}
 */
char *
blockers_json(List *blockers)
{
	StringInfoData buf;
	ListCell      *cell;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"blockers\":[");
	foreach (cell, blockers)
	{
		const Blocker *blocker = lfirst(cell);
		const Rule    *rule = blocker->rule;

		if (cell != list_head(blockers))
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '{');
		append_json_member(&buf, "rule", rule->rule_name, true);
		append_json_member(&buf, "reason", rule->reason, false);
		append_json_member(
			&buf, "relation",
			quote_qualified_identifier(rule->scope->relation.schema,
									   rule->scope->relation.name),
			false);
		if (rule->kind == RULE_BALANCE)
			append_json_member(&buf, "amount", blocker->amount, false);
		else
			appendStringInfo(&buf, ",\"rows\":%lld", (long long)blocker->rows);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/* The reasons of the rules that block, each once: "a, b". */
static char *
blocker_reasons(List *blockers)
{
	StringInfoData buf;
	List          *seen = NIL;
	ListCell      *cell;

	initStringInfo(&buf);
	foreach (cell, blockers)
	{
		const char *reason = ((const Blocker *)lfirst(cell))->rule->reason;
		ListCell   *other;
		bool        repeated = false;

		foreach (other, seen)
			repeated = repeated || strcmp(lfirst(other), reason) == 0;
		if (repeated)
			continue;
		seen = lappend(seen, (char *)reason);
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", reason);
	}
	return buf.data;
}

/*
 * The blockers of customers whose rows the caller has locked, leaving
 * their rows of the blocker relations locked FOR SHARE until the end of the
 * transaction.  param is a customer id for the "one" statements, an array
 * of them for the "many".  NIL when all may be anonymized now.
 */
List *
lock_blockers(AnonymizeState *state, const StatementPlans *statements,
			  Datum param)
{
	List *blockers =
		run_blocker_rules(state, statements->blockers_locking, param,
						  statements->many, InvalidSnapshot, false);

	if (blockers != NIL || !IsolationUsesXactSnapshot())
		return blockers;

	/* Blockers committed after this transaction's snapshot was taken. */
	blockers = run_blocker_rules(state, statements->blockers, param,
								 statements->many, GetLatestSnapshot(), true);
	if (blockers != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update"),
				 errdetail("Customer %s got blocked by a transaction that "
						   "committed after this one started: %s.",
						   customer_id_text(
							   ((Blocker *)linitial(blockers))->customer_id),
						   describe_blockers(blockers)),
				 errhint("The transaction might succeed if retried.")));
	return NIL;
}

void
report_blocked_customer(Datum customer_id, List *blockers)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("customer %s cannot be anonymized",
					customer_id_text(customer_id)),
			 errdetail("Blocked by %s.", describe_blockers(blockers)),
			 errhint("Resolve what blocks it first (%s); anonymize.blockers() "
					 "lists what remains.",
					 blocker_reasons(blockers))));
}
