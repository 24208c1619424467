/*-------------------------------------------------------------------------
 *
 * plan_cache.c
 *	  The per-backend cache of prepared plans, built from the mapping once
 *	  and kept until the mapping or a mapped relation changes.
 *
 * A relcache invalidation of a configuration table (sent by the trigger
 * anonymize.mapping_changed() on every change of the mapping, in every
 * backend at commit) or of a mapped relation (ALTER, RENAME, DROP) marks the
 * cache stale; the next call reloads the mapping and prepares the plans
 * again.  So a stale mapping is reported by name and a repaired one works
 * again without reconnecting.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "utils/inval.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "anonymize.h"

PG_FUNCTION_INFO_V1(anonymize_mapping_changed);

static AnonymizePlans *cached_plans = NULL;
static MemoryContext   plan_context = NULL;
static bool            plans_valid = false;

/* OIDs whose invalidation makes the plans stale. */
static Oid *watched_relids = NULL;
static int  n_watched_relids = 0;

static void
plan_cache_invalidate(Datum arg, Oid relid)
{
	if (!plans_valid)
		return;
	if (!OidIsValid(relid))
	{
		plans_valid = false;
		return;
	}
	for (int i = 0; i < n_watched_relids; i++)
		if (watched_relids[i] == relid)
		{
			plans_valid = false;
			return;
		}
}

/* A renamed schema changes no relation, but the mapping names it. */
static void
plan_cache_invalidate_all(Datum arg, int cacheid, uint32 hashvalue)
{
	plans_valid = false;
}

void
plan_cache_init(void)
{
	CacheRegisterRelcacheCallback(plan_cache_invalidate, (Datum)0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, plan_cache_invalidate_all,
								  (Datum)0);
}

/*
 * Trigger on the configuration tables: every backend, this one included,
 * rebuilds its plans once the change is visible to it.
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

static void
watch_relation(Oid relid)
{
	watched_relids[n_watched_relids++] = relid;
}

static void
watch_mapped_relations(const Mapping *m, Oid audit_index)
{
	static const char *const config_tables[] = {"customer_mapping",
												"purge_rules", "blocker_rules",
												"balance_rules", "audit_log"};
	int                      n =
		3 + m->n_purge_rules + m->n_blocker_rules + lengthof(config_tables);

	watched_relids = palloc(sizeof(Oid) * n);
	n_watched_relids = 0;
	watch_relation(m->customer.relid);
	watch_relation(m->address.relid);
	for (int i = 0; i < m->n_purge_rules; i++)
		watch_relation(m->purge_rules[i].relation.relid);
	for (int i = 0; i < m->n_blocker_rules; i++)
		watch_relation(m->blocker_rules[i].relation.relid);
	for (size_t i = 0; i < lengthof(config_tables); i++)
		watch_relation(resolve_mapped_relation("anonymize", config_tables[i]));
	watch_relation(audit_index);
}

/*
 * The mapped relations (watched_relids[0 .. n_mapped-1]) with row-level
 * security enabled, for check_rows_visible().
 */
static void
find_rls_relations(AnonymizePlans *plans, int n_mapped)
{
	plans->rls_relids = palloc(sizeof(Oid) * n_mapped);
	plans->n_rls_relids = 0;
	for (int i = 0; i < n_mapped; i++)
	{
		HeapTuple tuple =
			SearchSysCache1(RELOID, ObjectIdGetDatum(watched_relids[i]));

		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for relation %u",
				 watched_relids[i]);
		if (((Form_pg_class)GETSTRUCT(tuple))->relrowsecurity)
			plans->rls_relids[plans->n_rls_relids++] = watched_relids[i];
		ReleaseSysCache(tuple);
	}
}

/* The primary key of anonymize.audit_log, for audit_lookup(). */
static Oid
audit_primary_key(Oid audit_relid)
{
	Relation rel = table_open(audit_relid, AccessShareLock);
	Oid      index = RelationGetPrimaryKeyIndex(rel);

	table_close(rel, AccessShareLock);
	if (!OidIsValid(index))
		elog(ERROR, "anonymize.audit_log has no primary key");
	return index;
}

/* Prepares one statement and keeps its plan; NULL text gives NULL. */
static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr plan;

	if (sql == NULL)
		return NULL;
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

static void
free_statement_plans(StatementPlans *plans)
{
	SPIPlanPtr *all[] = {&plans->lock_customer,    &plans->blockers,
						 &plans->blockers_locking, &plans->purge,
						 &plans->erase_address,    &plans->erase_customer,
						 &plans->audit_insert};

	for (size_t i = 0; i < lengthof(all); i++)
		if (*all[i] != NULL)
		{
			SPI_freeplan(*all[i]);
			*all[i] = NULL;
		}
}

static void
free_plans(AnonymizePlans *plans)
{
	if (plans->customer_exists != NULL)
		SPI_freeplan(plans->customer_exists);
	plans->customer_exists = NULL;
	free_statement_plans(&plans->one);
	free_statement_plans(&plans->many);
}

/* The statements for one customer, or for many. */
static void
build_statement_plans(StatementPlans *plans, const Mapping *m, bool many)
{
	Oid key = many ? UUIDARRAYOID : UUIDOID;
	Oid text_or_array = many ? TEXTARRAYOID : TEXTOID;
	Oid erase[] = {key, TEXTOID, text_or_array};
	Oid audit[] = {key, TEXTOID, text_or_array,
				   many ? JSONBARRAYOID : JSONBOID};

	plans->lock_customer = prepare_kept(lock_customer_sql(m, many), 1, &key);
	plans->blockers = prepare_kept(blockers_sql(m, false, many), 1, &key);
	plans->blockers_locking =
		prepare_kept(blockers_sql(m, true, many), 1, &key);
	plans->purge = prepare_kept(purge_sql(m, many), 1, &key);
	plans->erase_address = prepare_kept(erase_address_sql(m, many), 2, erase);
	plans->erase_customer =
		prepare_kept(erase_customer_sql(m, many), 3, erase);
	plans->audit_insert = prepare_kept(audit_insert_sql(many), 4, audit);
}

static void
build_plans(AnonymizePlans *plans)
{
	MemoryContext mapping_cxt = CurrentMemoryContext;
	Mapping      *m = load_mapping();
	Oid           key = UUIDOID;

	/* SPI calls leave SPI's own context current; the mapping must last. */
	MemoryContextSwitchTo(mapping_cxt);
	plans->mapping = m;
	plans->extension_owner = anonymize_extension_owner();
	plans->audit_relid = resolve_mapped_relation("anonymize", "audit_log");
	plans->audit_index = audit_primary_key(plans->audit_relid);
	watch_mapped_relations(m, plans->audit_index);
	find_rls_relations(plans, 2 + m->n_purge_rules + m->n_blocker_rules);

	plans->customer_exists = prepare_kept(customer_exists_sql(m), 1, &key);
	build_statement_plans(&plans->one, m, false);
	build_statement_plans(&plans->many, m, true);
}

/*
 * Runs a kept plan as the extension owner: for the statements on the
 * extension's own tables (audit log, request queue), which callers cannot
 * write directly.
 */
int
execute_as_owner(Oid owner, SPIPlanPtr plan, Datum *values, const char *nulls,
				 bool read_only)
{
	Oid save_userid;
	int save_sec_context;
	int result;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
									  SECURITY_LOCAL_USERID_CHANGE |
									  SECURITY_NOFORCE_RLS);
	result = SPI_execute_plan(plan, values, nulls, read_only, 0);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}

/*
 * The plans of this backend, rebuilt first if the mapping or a mapped
 * relation changed.  The caller is connected to SPI.
 */
AnonymizePlans *
get_plans(void)
{
	MemoryContext old;

	if (plans_valid)
		return cached_plans;

	if (plan_context == NULL)
	{
		plan_context = AllocSetContextCreate(
			CacheMemoryContext, "anonymize plans", ALLOCSET_SMALL_SIZES);
		cached_plans =
			MemoryContextAllocZero(plan_context, sizeof(AnonymizePlans));
	}
	free_plans(cached_plans);

	/*
	 * The mapping, its SQL texts and the watched OIDs live in a child of
	 * plan_context, reset at each rebuild; the kept plans have their own.
	 */
	n_watched_relids = 0;
	MemoryContextDeleteChildren(plan_context);
	old = MemoryContextSwitchTo(AllocSetContextCreate(
		plan_context, "anonymize mapping", ALLOCSET_SMALL_SIZES));

	/* An invalidation that arrives while building makes it stale again. */
	plans_valid = true;
	PG_TRY();
	{
		build_plans(cached_plans);
	}
	PG_CATCH();
	{
		plans_valid = false;
		MemoryContextSwitchTo(old);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return cached_plans;
}
