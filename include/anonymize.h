/*-------------------------------------------------------------------------
 *
 * anonymize.h
 *	  Declarations shared by the files of the anonymize extension: the
 *	  mapping of the billing schema, the SQL built from it, the per-call
 *	  state that holds its plans, and the erasure.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ANONYMIZE_H
#define ANONYMIZE_H

#include "executor/spi.h"
#include "nodes/execnodes.h"
#include "lib/stringinfo.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

/* The version of the SQL objects this library works with. */
#define ANONYMIZE_LIBRARY_VERSION "1.3"

/* A relation of the mapping, stored by name, resolved to an OID. */
typedef struct MappedRelation
{
	char *schema;
	char *name;
	char *key_column; /* the scope's key column */
	Oid   relid;
	Oid   owner; /* statements on the relation run as this role */
} MappedRelation;

/*
 * A scope: the rows of a relation that belong to a customer.  Scope 0 is
 * the customer relation itself; every other scope's rows are those whose
 * key column equals the parent column of a row of the parent scope, and
 * that satisfy the condition.
 */
typedef struct Scope
{
	char          *name;
	MappedRelation relation;
	Oid            key_type;
	char          *parent_name;
	int            parent;        /* index of the parent scope; -1 for 0 */
	char          *parent_column; /* on the parent's relation */
	Oid            parent_type;
	char          *condition;    /* on the row "t"; NULL for every row */
	int            depth;        /* 0 for the customer */
	bool           link_changes; /* an ancestor's erasure sets a link */
} Scope;

/* Whom an erase rule applies to, as the company test decides. */
typedef enum AppliesTo
{
	APPLIES_EVERYONE,
	APPLIES_INDIVIDUAL,
	APPLIES_COMPANY
} AppliesTo;

/* A column that an erasure sets. */
typedef struct ErasedColumn
{
	char       *name;
	bool        not_null;    /* erased with the placeholder, not NULL */
	char       *replacement; /* expression on the row "t", or NULL */
	AppliesTo   applies_to;
	const char *rule_name; /* the rule that sets it; NULL: built in */
} ErasedColumn;

typedef enum RuleKind
{
	RULE_PURGE,   /* delete the scope's rows */
	RULE_ERASE,   /* set columns of the scope's rows */
	RULE_BLOCKER, /* a matching row refuses anonymization */
	RULE_BALANCE  /* amounts must sum to zero */
} RuleKind;

/* A row of anonymize.rules. */
typedef struct Rule
{
	RuleKind     kind;
	char        *rule_name;
	char        *scope_name;
	const Scope *scope;
	char        *expression;  /* condition, or amount for RULE_BALANCE;
							   * NULL for a purge of every row */
	char         *reason;     /* why it blocks */
	AppliesTo     applies_to; /* RULE_ERASE */
	int           n_columns;  /* RULE_ERASE: columns, then replacements */
	ErasedColumn *columns;
} Rule;

/*
 * The erasure of one scope: every column that its erase rules set, in one
 * UPDATE per row.  For the customer scope, the name and email come first.
 */
typedef struct ErasedScope
{
	const Scope   *scope;
	const char    *name_column; /* the customer's name; NULL elsewhere */
	int            n_columns;
	ErasedColumn **columns;
	int            n_rules; /* its erase rules, for rows_updated */
	const Rule   **rules;
	/*
	 * The erased scopes of one relation are erased in one UPDATE per row,
	 * run for the first of them, which lists them all (itself first).
	 */
	int  leader; /* index of that first one */
	int  n_members;
	int *members;
} ErasedScope;

/* One step of an erasure, in the order they run. */
typedef struct Operation
{
	bool               purge;
	const Rule        *rule;   /* purge */
	const ErasedScope *erased; /* erase */
	int                index;  /* in purge_rules or erased_scopes */
} Operation;

/* The whole mapping, as read from the configuration tables. */
typedef struct Mapping
{
	MappedRelation customer; /* = scopes[0].relation */
	ErasedColumn   name;
	ErasedColumn   email;
	char          *placeholder; /* written into erased NOT NULL columns */

	int    n_scopes;
	Scope *scopes;

	/* the company test; company_scope NULL: everyone is an individual */
	char        *company_scope_name;
	const Scope *company_scope;
	char        *company_condition;
	char        *company_name;

	int   n_rules; /* by name */
	Rule *rules;

	int           n_purge_rules; /* children before parents */
	const Rule  **purge_rules;
	int           n_blocker_rules; /* blocker and balance rules */
	const Rule  **blocker_rules;
	int           n_erased_scopes; /* the customer last */
	ErasedScope  *erased_scopes;
	int           n_operations;
	Operation    *operations;
	int           n_locked_scopes; /* ancestors of purged or erased scopes */
	const Scope **locked_scopes;
} Mapping;

/*
 * How the statements of an erasure take their row locks: waiting, as
 * anonymize_customer() does, or never waiting, as the request queue does so
 * that it cannot hold up or deadlock with billing transactions.
 */
typedef enum StatementMode
{
	MODE_ONE,        /* $1 is a customer id; locks wait */
	MODE_ONE_NOWAIT, /* $1 is a customer id; SKIP LOCKED, NOWAIT */
	MODE_MANY_NOWAIT /* $1 is a uuid[]; SKIP LOCKED, NOWAIT */
} StatementMode;

#define N_STATEMENT_MODES 3

/*
 * The prepared statements of an erasure in one mode; see erasure_rules.c.
 * Arrays are indexed by the rule's position in the mapping.  Built on first
 * use of the mode.
 */
typedef struct StatementPlans
{
	bool        built;
	bool        many; /* $1 is a uuid[] */
	bool        nowait;
	SPIPlanPtr  lock_customer;    /* FOR UPDATE [SKIP LOCKED] */
	SPIPlanPtr  existing;         /* customers that exist; many only */
	SPIPlanPtr *blockers;         /* per blocker rule: rows, amount */
	SPIPlanPtr *blockers_locking; /* the same, rows locked */
	SPIPlanPtr  classify;         /* the company test on its own scope */
	int         n_captured[2];    /* values for the residue check that
								   * lock_customer and classify return */
	SPIPlanPtr *lock_ancestors;   /* per locked scope, FOR UPDATE */
	SPIPlanPtr *purge_locking;    /* nowait only: per purge rule, the
								   * purge with its rows locked NOWAIT */
	SPIPlanPtr *lock_erased;      /* nowait only: per erased scope */
	SPIPlanPtr *purge;            /* per purge rule */
	SPIPlanPtr *verify_purge;     /* per purge rule: does a row remain? */
	SPIPlanPtr  verify_purges;    /* all of them at once; NULL unless the
								   * purged relations have one owner */
	SPIPlanPtr *erase;            /* per erased scope */
	SPIPlanPtr *verify_erased;    /* per erased scope: rows, unerased */
	SPIPlanPtr  audit_insert;
	/* MODE_ONE only, for preview() and verify(): */
	SPIPlanPtr *count_rule;   /* per rule (purge, erase): rows, no locks */
	SPIPlanPtr  company_test; /* the company test, no locks */
	/* the residue check (residue.c): MODE_ONE and MODE_MANY_NOWAIT */
	SPIPlanPtr *residue_search; /* per scope; MODE_ONE only */
	SPIPlanPtr  residue_probe;  /* does any scope hold a value? NULL
								 * unless the searched relations have
								 * one owner */
	const MappedRelation *residue_probe_rights; /* the probe runs as its
												 * owner */
} StatementPlans;

/*
 * What one SQL call works with: the mapping and the plans built from it.
 * Acquired once per call (acquire_state) and released at its end, so that
 * nothing a call reads is freed while it runs, even if an invalidation
 * arrives meanwhile (see plan_cache.c).
 */
typedef struct AnonymizeState
{
	MemoryContext          context; /* mapping, SQL texts, arrays */
	int                    refcount;
	bool                   current; /* the backend's cached state */
	struct AnonymizeState *next_retired;

	Mapping *mapping;
	Oid      extension_owner; /* reads the mapping, keeps the audit log */
	Oid      audit_relid;     /* anonymize.audit_log */
	Oid      audit_index;     /* its primary key, on customer_id */
	char    *fingerprint;     /* anonymize.mapping_fingerprint() */
	int      n_relations;     /* distinct mapped relations */
	const MappedRelation **relations;
	Oid           *watched_relids; /* invalidations that make it stale */
	int            n_watched_relids;
	SPIPlanPtr     customer_exists;
	StatementPlans modes[N_STATEMENT_MODES];
} AnonymizeState;

/* One reason why a customer cannot be anonymized. */
typedef struct Blocker
{
	const Rule *rule;
	Datum       customer_id;
	int64       rows;
	char       *amount; /* sum for balance rules, else NULL */
} Blocker;

/* mapping.c */
extern Mapping *load_mapping(bool check_assignments);
extern Oid      resolve_mapped_relation(const char *schema, const char *name);
extern Oid      extension_table_oid(const char *name);
extern Oid      anonymize_extension_owner(void);
extern void     report_no_customer_relation(void);
extern void     check_extension_version(void);
extern const Scope *find_scope(const Mapping *m, const char *name,
							   const char *referrer);

/* foreign_keys.c */
extern void order_operations(Mapping *m);
extern void check_cascades(const Mapping *m);

/* mapping_validate.c */
extern Oid  check_key_column(Oid relid, const char *column);
extern bool check_column(Oid relid, const char *column);
extern void validate_mapping(Mapping *m, bool check_assignments);
extern bool is_character_type(Oid type);
extern bool is_integer_type(Oid type);
extern void check_extension_owner(void);

/* erasure_rules.c */
extern char *customer_exists_sql(const Mapping *m);
extern char *existing_customers_sql(const Mapping *m);
extern char *lock_customer_sql(const Mapping *m, bool many, bool nowait,
							   const char *const *captured, int n_captured);
extern char *blocker_sql(const Mapping *m, const Rule *rule, bool lock_rows,
						 bool many, bool nowait);
extern char *classify_sql(const Mapping *m, bool many, bool nowait,
						  const char *const *captured, int n_captured);
extern char *lock_scope_sql(const Mapping *m, const Scope *scope,
							const char *strength, bool many, bool nowait);
extern char *purge_sql(const Mapping *m, const Rule *rule, bool many,
					   bool locking);
extern char *verify_purge_sql(const Mapping *m, const Rule *rule, bool many);
extern char *verify_purges_sql(const Mapping *m, bool many);
extern char *erase_sql(const Mapping *m, const ErasedScope *erased, bool many);
extern char *erase_members_sql(const Mapping *m, const ErasedScope *leader,
							   bool many);
extern char *verify_erased_sql(const Mapping *m, const ErasedScope *erased,
							   bool many);
extern bool  is_verified_column(const ErasedColumn *column);
extern bool  scope_rows_are_distinct(const Mapping *m, const Scope *scope);
extern char *count_rule_rows_sql(const Mapping *m, const Rule *rule);
extern char *company_test_sql(const Mapping *m);
extern char *residue_search_sql(const Mapping *m, int scope_index,
								const char *const *columns, int n);
extern char *residue_probe_sql(const Mapping *m, int scope_index,
							   const char *const *columns, int n, bool many);
extern const char *residue_probe_customers_sql(void);
extern char       *audit_insert_sql(bool many);

/* plan_cache.c */
extern void                  plan_cache_init(void);
extern AnonymizeState       *acquire_state(void);
extern void                  release_state(AnonymizeState *state);
extern const StatementPlans *get_statements(AnonymizeState *state,
											StatementMode   mode);
extern Oid                   relation_owner(Oid relid);
extern SPIPlanPtr prepare_kept(const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr prepare_once(SPIPlanPtr *plan, const char *sql, int nargs,
							   Oid *argtypes);
extern SPIPlanPtr prepare_kept_generic(const char *sql, int nargs,
									   Oid *argtypes);
extern SPIPlanPtr prepare_once_generic(SPIPlanPtr *plan, const char *sql,
									   int nargs, Oid *argtypes);

/* security.c */
typedef enum PrivilegeCheck
{
	CHECK_READ,    /* can_anonymize(), blockers() */
	CHECK_INSPECT, /* preview(), verify(): read every scope */
	CHECK_LOCK,    /* an erasure, before it locks rows */
	CHECK_ERASE    /* an erasure, before it changes rows */
} PrivilegeCheck;

extern int run_statement(const MappedRelation *rel, SPIPlanPtr plan,
						 Datum *values, const char *nulls, Snapshot snapshot,
						 Snapshot crosscheck, bool read_only);
extern DestReceiver
			row_receiver(bool (*receive_row)(TupleTableSlot *, DestReceiver *),
						 void (*startup)(DestReceiver *, int, TupleDesc));
extern void run_statement_into(const MappedRelation *rel, SPIPlanPtr plan,
							   Datum *values, const char *nulls,
							   Snapshot snapshot, bool read_only,
							   DestReceiver *dest);
extern Snapshot verifying_snapshot(void);
extern int      run_modifying(const MappedRelation *rel, SPIPlanPtr plan,
							  Datum *values, const char *nulls);
extern int      run_verifying(const MappedRelation *rel, SPIPlanPtr plan,
							  Datum *values, const char *nulls);
extern int      execute_as_owner(Oid owner, SPIPlanPtr plan, Datum *values,
								 const char *nulls, bool read_only);
extern void     run_expression_check(Oid owner, const char *sql);
extern void     check_caller_privileges(AnonymizeState *state,
										PrivilegeCheck  check);
extern void     check_rows_visible(AnonymizeState *state);
extern bool     can_lock_rows(const MappedRelation *rel);
extern Datum    current_user_text(void);

/* audit.c */
extern bool audit_lookup(AnonymizeState *state, Datum customer_id,
						 bool *is_company, bool after_lock);

/* eligibility.c */
extern bool  customer_exists(AnonymizeState *state, Datum customer_id);
extern List *find_blockers(AnonymizeState *state, Datum customer_id);
extern List *lock_blockers(AnonymizeState       *state,
						   const StatementPlans *statements, Datum param);
extern char *describe_blockers(List *blockers);
extern char *blockers_json(List *blockers);
extern void  report_blocked_customer(Datum customer_id, List *blockers);
extern void  report_unknown_customer(Datum customer_id);
extern char *customer_id_text(Datum customer_id);

/* erasure.c */
typedef enum ErasureOutcome
{
	ERASURE_DONE,
	ERASURE_ALREADY_DONE, /* anonymized before; nothing changed */
	ERASURE_BLOCKED,      /* see blockers; nothing changed */
	ERASURE_BUSY,         /* its rows are locked; nothing changed */
	ERASURE_UNKNOWN_CUSTOMER
} ErasureOutcome;

/* One customer to anonymize, and what became of it. */
typedef struct CustomerErasure
{
	Datum          customer_id;
	Datum          request_id; /* uuid of anonymize.requests; 0: none */
	ErasureOutcome outcome;
	bool           is_company;
	char          *company; /* the company name, for a company */
	List          *blockers;
	int64         *rows_deleted; /* per purge rule */
	int64         *rows_updated; /* per erased scope */
	char         **captured[2];  /* raw values for residue.c, per source */
	bool           has_residue;  /* values captured for residue.c */
	Datum          residue_needles;
	Datum          residue_fields;
} CustomerErasure;

extern void erase_customers(AnonymizeState *state, StatementMode mode,
							CustomerErasure *customers, int n);
extern int  customer_index(CustomerErasure *const *sorted, int n,
						   Datum customer_id);

/* company_test.c */
extern void classify_customers(const Mapping *m, const StatementPlans *plans,
							   CustomerErasure *const *customers, int n,
							   Datum ids);
extern void append_rows_deleted(StringInfo json, const Mapping *m,
								const int64 *counts);
extern void append_rows_updated(StringInfo json, const Mapping *m,
								const int64 *counts, bool is_company);

/* verify.c */
extern bool   purged_rows_remain(const Rule *rule, SPIPlanPtr plan, Datum ids);
extern void   all_purged_rows_remain(const Mapping *m, SPIPlanPtr plan,
									 Datum ids, bool *remain);
extern void   report_purged_rows_remain(const Rule *rule);
extern int64 *count_unerased(const Mapping *m, const ErasedScope *erased,
							 SPIPlanPtr plan, Datum *values, const char *nulls,
							 Snapshot snapshot, bool read_only);
extern void   check_scope_erased(const Mapping *m, const ErasedScope *erased,
								 SPIPlanPtr plan, Datum *values,
								 const char *nulls, int64 rows_updated);

/* inspect.c */
extern int64 data_again(AnonymizeState *state, Datum customer_id,
						bool is_company, ReturnSetInfo *rsinfo,
						Snapshot snapshot);

/* residue.c */
extern void residue_define_settings(void);
extern bool residue_check_enabled(void);
extern void build_residue_plans(StatementPlans *plans, const Mapping *m,
								SPIPlanPtr (*prepare)(const char *, int,
													  Oid *));
extern int  residue_captured_columns(const Mapping *m, int source,
									 const char ***columns);
extern void residue_capture(const Mapping          *m,
							CustomerErasure *const *customers, int n);
extern void residue_search(AnonymizeState *state, const StatementPlans *plans,
						   CustomerErasure *const *customers, int n);

/* requests.c */
extern void requests_define_settings(void);

/* queue.c */
extern void queue_define_settings(void);

/* drop_guard.c */
extern void drop_guard_define_settings(void);

#endif /* ANONYMIZE_H */
