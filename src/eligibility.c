/*-------------------------------------------------------------------------
 *
 * eligibility.c
 *	  Whether a customer may be anonymized: it exists, and no blocker or
 *	  balance rule holds it back.
 *
 * Each blocker or balance rule is one statement on its relation, run as the
 * relation's owner, that returns one row per customer it holds back: rows
 * are counted in SQL, never returned.
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
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
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

/*
 * Runs the statement of one rule for one customer or many (param is a uuid
 * or a uuid[]) with the given snapshot (InvalidSnapshot: the current one),
 * and appends a Blocker per customer it holds back.
 */
static List *
run_blocker_rule(const Rule *rule, SPIPlanPtr plan, Datum param,
				 Snapshot snapshot, bool read_only, List *blockers)
{
	if (run_statement(&rule->scope->relation, plan, &param, NULL, snapshot,
					  InvalidSnapshot, read_only) != SPI_OK_SELECT)
		elog(ERROR, "could not check the blockers of a customer");

	for (uint64 row = 0; row < SPI_processed; row++)
	{
		HeapTuple tuple = SPI_tuptable->vals[row];
		TupleDesc desc = SPI_tuptable->tupdesc;
		Blocker  *blocker = palloc0(sizeof(Blocker));
		bool      isnull;

		blocker->rule = rule;
		/* a copy: the result table is freed below */
		blocker->customer_id =
			datumCopy(SPI_getbinval(tuple, desc, 1, &isnull), false, UUID_LEN);
		blocker->rows = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
		if (rule->kind == RULE_BALANCE)
			blocker->amount = SPI_getvalue(tuple, desc, 3);
		blockers = lappend(blockers, blocker);
	}
	SPI_freetuptable(SPI_tuptable);
	return blockers;
}

/* The blockers of every rule, in the order of the rules. */
static List *
run_blocker_rules(AnonymizeState *state, SPIPlanPtr *plans, Datum param,
				  Snapshot snapshot, bool read_only)
{
	const Mapping *m = state->mapping;
	List          *blockers = NIL;

	for (int i = 0; i < m->n_blocker_rules; i++)
		blockers = run_blocker_rule(m->blocker_rules[i], plans[i], param,
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
							 customer_id, InvalidSnapshot, true);
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
	List *blockers = run_blocker_rules(state, statements->blockers_locking,
									   param, InvalidSnapshot, false);

	if (blockers != NIL || !IsolationUsesXactSnapshot())
		return blockers;

	/* Blockers committed after this transaction's snapshot was taken. */
	blockers = run_blocker_rules(state, statements->blockers, param,
								 GetLatestSnapshot(), true);
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
