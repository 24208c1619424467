/*-------------------------------------------------------------------------
 *
 * anonymize.h
 *	  Declarations shared by the files of the anonymize extension: the
 *	  mapping of the billing schema, the SQL built from it, and the plans.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ANONYMIZE_H
#define ANONYMIZE_H

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/uuid.h"

/* A relation of the mapping, stored by name, resolved to an OID. */
typedef struct MappedRelation
{
	char *schema;
	char *name;
	char *key_column; /* uuid column holding the customer id */
	Oid   relid;
} MappedRelation;

/* A column that anonymization erases. */
typedef struct ErasedColumn
{
	char *name;
	bool  not_null; /* erase with the placeholder, not NULL */
} ErasedColumn;

typedef enum RuleKind
{
	RULE_PURGE,   /* delete matching rows */
	RULE_BLOCKER, /* a matching row refuses anonymization */
	RULE_BALANCE  /* amounts must sum to zero */
} RuleKind;

/* A row of anonymize.purge_rules, blocker_rules or balance_rules. */
typedef struct Rule
{
	RuleKind       kind;
	char          *rule_name;
	MappedRelation relation;
	char          *expression; /* condition, or amount for RULE_BALANCE;
								* NULL for a purge of every row */
	char *reason;              /* why it blocks; NULL for RULE_PURGE */
} Rule;

/* The whole mapping, as read from the configuration tables. */
typedef struct Mapping
{
	MappedRelation customer;
	ErasedColumn   name;
	ErasedColumn   email;

	MappedRelation address; /* may be the customer relation itself */
	bool           address_on_customer;
	char          *company_column;
	ErasedColumn   first_name;
	ErasedColumn   last_name;
	ErasedColumn   phone;
	int            n_address_columns; /* erased for individuals only */
	ErasedColumn  *address_columns;
	char          *country_column; /* never erased */
	char          *placeholder;    /* written into erased NOT NULL columns */

	int   n_purge_rules;
	Rule *purge_rules;
	int   n_blocker_rules; /* blocker and balance rules */
	Rule *blocker_rules;
} Mapping;

/*
 * The statements of an anonymization, prepared for one customer ($1 uuid)
 * or for many ($1 uuid[]); see erasure_rules.c.
 */
typedef struct StatementPlans
{
	SPIPlanPtr lock_customer;    /* FOR UPDATE */
	SPIPlanPtr blockers;         /* (rule, rows, amount, blocks) */
	SPIPlanPtr blockers_locking; /* same, rows locked FOR SHARE */
	SPIPlanPtr purge;            /* counts per purge rule; NULL if none */
	SPIPlanPtr erase_address;    /* (is_company, company); NULL when the
								  * address is on the customer relation */
	SPIPlanPtr erase_customer;   /* $2 placeholder, $3 company name */
	SPIPlanPtr audit_insert;     /* $2 user, $3 kind, $4 rows_deleted */
} StatementPlans;

/*
 * The prepared plans of one backend, built from the mapping and kept until
 * the mapping or a mapped relation changes.
 */
typedef struct AnonymizePlans
{
	Mapping   *mapping;
	Oid        extension_owner; /* reads the mapping, keeps the audit log */
	Oid        audit_relid;     /* anonymize.audit_log */
	Oid        audit_index;     /* its primary key, on customer_id */
	int        n_rls_relids;    /* mapped relations with row-level security */
	Oid       *rls_relids;
	SPIPlanPtr customer_exists;
	StatementPlans one;  /* $1 is a customer id */
	StatementPlans many; /* $1 is an array of customer ids */
} AnonymizePlans;

/* One reason why a customer cannot be anonymized. */
typedef struct Blocker
{
	const Rule *rule;
	Datum       customer_id;
	Oid         relid;
	int64       rows;
	char       *amount; /* sum for balance rules, else NULL */
} Blocker;

/* mapping.c */
extern Mapping *load_mapping(void);
extern Oid      resolve_mapped_relation(const char *schema, const char *name);
extern Oid      anonymize_extension_owner(void);

/* mapping_validate.c */
extern void check_key_column(Oid relid, const char *column);
extern bool check_column(Oid relid, const char *column);
extern void check_rule_expression(const Rule *rule);
extern void check_extension_owner(void);

/* erasure_rules.c */
extern char *customer_exists_sql(const Mapping *m);
extern char *lock_customer_sql(const Mapping *m, bool many);
extern char *blockers_sql(const Mapping *m, bool lock_rows, bool many);
extern char *purge_sql(const Mapping *m, bool many);
extern char *erase_address_sql(const Mapping *m, bool many);
extern char *erase_customer_sql(const Mapping *m, bool many);
extern char *audit_insert_sql(bool many);

/* plan_cache.c */
extern void            plan_cache_init(void);
extern AnonymizePlans *get_plans(void);
extern int execute_as_owner(Oid owner, SPIPlanPtr plan, Datum *values,
							const char *nulls, bool read_only);

/* audit.c */
extern bool audit_lookup(AnonymizePlans *plans, Datum customer_id,
						 bool *is_company, bool after_lock);

/* eligibility.c */
extern bool  customer_exists(AnonymizePlans *plans, Datum customer_id);
extern void  check_rows_visible(AnonymizePlans *plans);
extern List *find_blockers(AnonymizePlans *plans, Datum customer_id,
						   bool lock_rows);
extern List *lock_blockers(AnonymizePlans       *plans,
						   const StatementPlans *statements, Datum param);
extern int   execute_purge(SPIPlanPtr plan, Datum param);
extern char *describe_blockers(List *blockers);
extern void  report_blocked_customer(Datum customer_id, List *blockers);
extern void  report_unknown_customer(Datum customer_id);

/* erasure.c */
typedef enum ErasureOutcome
{
	ERASURE_DONE,
	ERASURE_ALREADY_DONE, /* anonymized before; nothing changed */
	ERASURE_BLOCKED,      /* see blockers; nothing changed */
	ERASURE_UNKNOWN_CUSTOMER
} ErasureOutcome;

/* One customer to anonymize, and what became of it. */
typedef struct CustomerErasure
{
	Datum          customer_id;
	ErasureOutcome outcome;
	bool           is_company;
	char          *company; /* the company name, for a company */
	List          *blockers;
	int64         *rows_deleted; /* per purge rule */
} CustomerErasure;

extern void erase_customers(CustomerErasure *customers, int n);
extern void append_rows_deleted(StringInfo json, const Mapping *m,
								const int64 *counts);

/* requests.c */
extern void requests_define_settings(void);

#endif /* ANONYMIZE_H */
