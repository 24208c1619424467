/*-------------------------------------------------------------------------
 *
 * plan_cache.c
 *	  The per-backend state: the mapping and the prepared plans built from
 *	  it, kept until the mapping or a mapped relation changes.
 *
 * A relcache invalidation of a configuration table (sent by the trigger
 * anonymize.mapping_changed() on every change of the mapping, from any
 * source, logical replication included) or of a mapped relation (ALTER,
 * RENAME, DROP) marks the state stale; the next call builds a new one.  So a
 * stale mapping is reported by name and a repaired one works again without
 * reconnecting.
 *
 * Every SQL call acquires the state once and releases it at its end.  A
 * state that goes stale while a call uses it (a trigger changed the mapping,
 * autovacuum analyzed a table) stays intact until its last user releases
 * it: nothing a call reads is freed under it.  Such a retired state is
 * freed by the next acquire_state() that finds it unused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_mapping_changed);

static AnonymizeState *current_state = NULL;
static bool            current_state_valid = false;
static AnonymizeState *retired_states = NULL;

static void
plan_cache_invalidate(Datum arg, Oid relid)
{
	if (!current_state_valid)
		return;
	/* While a state is being built, any invalidation makes it stale. */
	if (current_state == NULL || !OidIsValid(relid))
	{
		current_state_valid = false;
		return;
	}
	for (int i = 0; i < current_state->n_watched_relids; i++)
		if (current_state->watched_relids[i] == relid)
		{
			current_state_valid = false;
			return;
		}
}

/* A renamed schema changes no relation, but the mapping names it. */
static void
plan_cache_invalidate_all(Datum arg, int cacheid, uint32 hashvalue)
{
	current_state_valid = false;
}

void
plan_cache_init(void)
{
	CacheRegisterRelcacheCallback(plan_cache_invalidate, (Datum)0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, plan_cache_invalidate_all,
								  (Datum)0);
}

/*
 * Trigger on the configuration tables, row-level and enabled ALWAYS so that
 * it fires in logical replication apply workers too: every backend, this
 * one included, rebuilds its plans once the change is visible to it.
 */
Datum
anonymize_mapping_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *)fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR,
			 "anonymize_mapping_changed: not called by trigger manager");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/* The owner of a relation. */
Oid
relation_owner(Oid relid)
{
	HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid       owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class)GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/* Adds a mapped relation to state->relations, once. */
static void
add_relation(AnonymizeState *state, const MappedRelation *rel)
{
	for (int i = 0; i < state->n_relations; i++)
		if (state->relations[i]->relid == rel->relid)
			return;
	state->relations[state->n_relations++] = rel;
}

/*
 * The distinct mapped relations, and every OID whose invalidation makes the
 * state stale: those and the extension's own tables.
 */
static void
collect_relations(AnonymizeState *state)
{
	static const char *const config_tables[] = {"customer_relation", "scopes",
												"rules", "audit_log"};
	const Mapping           *m = state->mapping;

	state->relations = palloc(sizeof(MappedRelation *) * m->n_scopes);
	for (int i = 0; i < m->n_scopes; i++)
		add_relation(state, &m->scopes[i].relation);

	state->watched_relids = palloc(
		sizeof(Oid) * (state->n_relations + lengthof(config_tables) + 1));
	for (int i = 0; i < state->n_relations; i++)
		state->watched_relids[state->n_watched_relids++] =
			state->relations[i]->relid;
	for (size_t i = 0; i < lengthof(config_tables); i++)
		state->watched_relids[state->n_watched_relids++] =
			extension_table_oid(config_tables[i]);
	state->watched_relids[state->n_watched_relids++] = state->audit_index;
}

/* The index of anonymize.audit_log on customer_id, for audit_lookup(). */
static Oid
audit_customer_index(void)
{
	return extension_table_oid("audit_log_customer_id");
}

static SPIPlanPtr
prepare_with_options(const char *sql, int nargs, Oid *argtypes, int options)
{
	SPIPlanPtr plan;

	if (sql == NULL)
		return NULL;
	plan = SPI_prepare_cursor(sql, nargs, argtypes, options);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/* Prepares one statement and keeps its plan; NULL text gives NULL. */
SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	return prepare_with_options(sql, nargs, argtypes, 0);
}

/*
 * The same, for a statement driven by an array (the customers or the
 * requests of a batch), whose plan is always the generic one.  A custom
 * plan sees how many ids $1 holds and, for a batch of hundreds on tables of
 * a few hundred thousand rows, plans hash joins over a sequential scan of
 * each table, at every batch: the cost model takes the index probes for
 * uncached reads.  Measured on 30,000 customers with the data cached, such
 * a batch took twice as long.  The generic plan follows the key through
 * the indexes whatever the table's size, and is planned once per backend.
 */
SPIPlanPtr
prepare_kept_generic(const char *sql, int nargs, Oid *argtypes)
{
	return prepare_with_options(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
}

/* The kept plan *plan, prepared at the first call of the backend. */
SPIPlanPtr
prepare_once(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
		*plan = prepare_kept(sql, nargs, argtypes);
	return *plan;
}

/* The same, with the generic plan of prepare_kept_generic(). */
SPIPlanPtr
prepare_once_generic(SPIPlanPtr *plan, const char *sql, int nargs,
					 Oid *argtypes)
{
	if (*plan == NULL)
		*plan = prepare_kept_generic(sql, nargs, argtypes);
	return *plan;
}

static void
free_plan(SPIPlanPtr *plan)
{
	if (*plan != NULL)
		SPI_freeplan(*plan);
	*plan = NULL;
}

static void
free_plan_array(SPIPlanPtr *plans, int n)
{
	if (plans != NULL)
		for (int i = 0; i < n; i++)
			free_plan(&plans[i]);
}

static void
free_statement_plans(StatementPlans *plans, const Mapping *m)
{
	SPIPlanPtr *single[] = {&plans->lock_customer, &plans->existing,
							&plans->classify,      &plans->audit_insert,
							&plans->company_test,  &plans->verify_purges,
							&plans->residue_probe};

	for (size_t i = 0; i < lengthof(single); i++)
		free_plan(single[i]);
	free_plan_array(plans->blockers, m->n_blocker_rules);
	free_plan_array(plans->blockers_locking, m->n_blocker_rules);
	free_plan_array(plans->lock_ancestors, m->n_locked_scopes);
	free_plan_array(plans->purge_locking, m->n_purge_rules);
	free_plan_array(plans->lock_erased, m->n_erased_scopes);
	free_plan_array(plans->purge, m->n_purge_rules);
	free_plan_array(plans->verify_purge, m->n_purge_rules);
	free_plan_array(plans->erase, m->n_erased_scopes);
	free_plan_array(plans->verify_erased, m->n_erased_scopes);
	free_plan_array(plans->count_rule, m->n_rules);
	free_plan_array(plans->residue_search, m->n_scopes);
	plans->built = false;
}

/* Frees a state that no call uses any more: its plans and its context. */
static void
free_state(AnonymizeState *state)
{
	if (state->mapping != NULL)
	{
		free_plan(&state->customer_exists);
		for (int i = 0; i < N_STATEMENT_MODES; i++)
			free_statement_plans(&state->modes[i], state->mapping);
	}
	MemoryContextDelete(state->context);
}

static SPIPlanPtr *
plan_array(int n)
{
	return palloc0(sizeof(SPIPlanPtr) * Max(n, 1));
}

/* The statements of one mode, prepared and kept. */
/*
 * Whether the relations of the purge rules have one owner, so that their
 * verification can run as one statement, as that owner (security.c).
 */
static bool
purged_relations_have_one_owner(const Mapping *m)
{
	for (int i = 1; i < m->n_purge_rules; i++)
		if (m->purge_rules[i]->scope->relation.owner !=
			m->purge_rules[0]->scope->relation.owner)
			return false;
	return true;
}

static void
build_statement_plans(StatementPlans *plans, const Mapping *m)
{
	bool many = plans->many;
	bool nowait = plans->nowait;
	SPIPlanPtr (*prepare)(const char *, int, Oid *) =
		many ? prepare_kept_generic : prepare_kept;
	const char **captured;
	int          n_captured;
	Oid          key = many ? UUIDARRAYOID : UUIDOID;
	Oid          erase[] = {key, TEXTOID, many ? TEXTARRAYOID : TEXTOID,
                   many ? BOOLARRAYOID : BOOLOID};
	Oid          jsonb = many ? JSONBARRAYOID : JSONBOID;
	Oid          audit[] = {key,    TEXTOID, many ? TEXTARRAYOID : TEXTOID,
							jsonb,  jsonb,   many ? UUIDARRAYOID : UUIDOID,
							TEXTOID};

	plans->blockers = plan_array(m->n_blocker_rules);
	plans->blockers_locking = plan_array(m->n_blocker_rules);
	plans->lock_ancestors = plan_array(m->n_locked_scopes);
	plans->purge_locking = plan_array(m->n_purge_rules);
	plans->lock_erased = plan_array(m->n_erased_scopes);
	plans->purge = plan_array(m->n_purge_rules);
	plans->verify_purge = plan_array(m->n_purge_rules);
	plans->erase = plan_array(m->n_erased_scopes);
	plans->verify_erased = plan_array(m->n_erased_scopes);
	/* before any SPI_prepare(), which leaves SPI's context current */
	plans->count_rule = plan_array(m->n_rules);
	plans->residue_search = plan_array(m->n_scopes);

	n_captured = residue_captured_columns(m, 0, &captured);
	plans->n_captured[0] = n_captured;
	plans->lock_customer = prepare(
		lock_customer_sql(m, many, nowait, captured, n_captured), 1, &key);
	if (many)
		plans->existing = prepare(existing_customers_sql(m), 1, &key);
	for (int i = 0; i < m->n_blocker_rules; i++)
	{
		const Rule *rule = m->blocker_rules[i];

		plans->blockers[i] =
			prepare(blocker_sql(m, rule, false, many, false), 1, &key);
		plans->blockers_locking[i] =
			prepare(blocker_sql(m, rule, true, many, nowait), 1, &key);
	}
	n_captured = residue_captured_columns(m, 1, &captured);
	plans->n_captured[1] = n_captured;
	plans->classify =
		prepare(classify_sql(m, many, nowait, captured, n_captured), 1, &key);
	for (int i = 0; i < m->n_locked_scopes; i++)
		plans->lock_ancestors[i] = prepare(
			lock_scope_sql(m, m->locked_scopes[i], "UPDATE", many, nowait), 1,
			&key);
	for (int i = 0; i < m->n_purge_rules; i++)
	{
		const Rule *rule = m->purge_rules[i];

		if (nowait)
			plans->purge_locking[i] =
				prepare(purge_sql(m, rule, many, true), 1, &key);
		plans->purge[i] = prepare(purge_sql(m, rule, many, false), 1, &key);
		plans->verify_purge[i] =
			prepare(verify_purge_sql(m, rule, many), 1, &key);
	}
	if (m->n_purge_rules > 1 && purged_relations_have_one_owner(m))
		plans->verify_purges = prepare(verify_purges_sql(m, many), 1, &key);
	for (int i = 0; i < m->n_erased_scopes; i++)
	{
		const ErasedScope *erased = &m->erased_scopes[i];

		if (nowait && erased->scope != &m->scopes[0])
			plans->lock_erased[i] = prepare(
				lock_scope_sql(m, erased->scope, "NO KEY UPDATE", many, true),
				1, &key);
		if (erased->leader == i)
			plans->erase[i] = prepare(erased->n_members > 1
										  ? erase_members_sql(m, erased, many)
										  : erase_sql(m, erased, many),
									  4, erase);
		plans->verify_erased[i] =
			prepare(verify_erased_sql(m, erased, many), 4, erase);
	}
	plans->audit_insert = prepare(audit_insert_sql(many), 7, audit);
	if (!many && !nowait)
	{
		for (int i = 0; i < m->n_rules; i++)
			if (m->rules[i].kind == RULE_PURGE ||
				m->rules[i].kind == RULE_ERASE)
				plans->count_rule[i] =
					prepare(count_rule_rows_sql(m, &m->rules[i]), 1, &key);
		plans->company_test = prepare(company_test_sql(m), 1, &key);
		build_residue_plans(plans, m, prepare);
	}
	else if (many)
		build_residue_plans(plans, m, prepare);
	plans->built = true;
}

/*
 * The statements of a mode, built on first use.  The caller holds the state
 * and is connected to SPI.
 */
const StatementPlans *
get_statements(AnonymizeState *state, StatementMode mode)
{
	StatementPlans *plans = &state->modes[mode];

	if (!plans->built)
	{
		MemoryContext old = MemoryContextSwitchTo(state->context);

		PG_TRY();
		{
			build_statement_plans(plans, state->mapping);
		}
		PG_CATCH();
		{
			free_statement_plans(plans, state->mapping);
			PG_RE_THROW();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);
	}
	return plans;
}

/* The fingerprint of the mapping in force, for the audit rows. */
static char *
mapping_fingerprint(MemoryContext cxt)
{
	if (SPI_execute("SELECT anonymize.mapping_fingerprint()", true, 1) !=
			SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not compute the mapping's fingerprint");
	return MemoryContextStrdup(
		cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

/* Reads the mapping and prepares what every call needs. */
static void
build_state(AnonymizeState *state)
{
	Mapping *m = load_mapping(false);
	Oid      key = UUIDOID;

	/* SPI calls leave SPI's own context current; the mapping must last. */
	MemoryContextSwitchTo(state->context);
	state->mapping = m;
	state->extension_owner = anonymize_extension_owner();
	state->audit_relid = extension_table_oid("audit_log");
	state->audit_index = audit_customer_index();
	collect_relations(state);
	state->fingerprint = mapping_fingerprint(state->context);
	/* last: SPI_prepare() leaves SPI's context current */
	state->customer_exists = prepare_kept(customer_exists_sql(m), 1, &key);
	state->modes[MODE_ONE].many = false;
	state->modes[MODE_ONE].nowait = false;
	state->modes[MODE_ONE_NOWAIT].many = false;
	state->modes[MODE_ONE_NOWAIT].nowait = true;
	state->modes[MODE_MANY_NOWAIT].many = true;
	state->modes[MODE_MANY_NOWAIT].nowait = true;
}

/* Frees the retired states that no call uses any more. */
static void
free_unused_retired_states(void)
{
	AnonymizeState **link = &retired_states;

	while (*link != NULL)
	{
		AnonymizeState *state = *link;

		if (state->refcount > 0)
		{
			link = &state->next_retired;
			continue;
		}
		*link = state->next_retired;
		free_state(state);
	}
}

/*
 * The state for one SQL call, built anew first if the mapping or a mapped
 * relation changed.  The caller is connected to SPI, and must call
 * release_state() when the call ends, on error too (PG_FINALLY).
 */
AnonymizeState *
acquire_state(void)
{
	AnonymizeState *state;
	MemoryContext   context;
	MemoryContext   old = CurrentMemoryContext;

	if (current_state != NULL && current_state_valid)
	{
		current_state->refcount++;
		return current_state;
	}

	if (current_state != NULL)
	{
		current_state->current = false;
		current_state->next_retired = retired_states;
		retired_states = current_state;
		current_state = NULL;
	}
	free_unused_retired_states();

	/* The state lives in its own context, freed with it. */
	context = AllocSetContextCreate(CacheMemoryContext, "anonymize state",
									ALLOCSET_SMALL_SIZES);
	state = MemoryContextAllocZero(context, sizeof(AnonymizeState));
	state->context = context;

	/* An invalidation that arrives while building makes it stale again. */
	current_state_valid = true;
	PG_TRY();
	{
		MemoryContextSwitchTo(context);
		build_state(state);
	}
	PG_CATCH();
	{
		current_state_valid = false;
		MemoryContextSwitchTo(old);
		free_state(state);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	state->current = true;
	state->refcount = 1;
	current_state = state;
	return state;
}

void
release_state(AnonymizeState *state)
{
	Assert(state->refcount > 0);
	state->refcount--;
}
