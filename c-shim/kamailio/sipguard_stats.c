/*
 * sipguard module - statistics
 *
 * Every statistic is a function (STAT_IS_FUNC) reading the shared counters
 * of the core, so all processes report the same values without any
 * per-process bookkeeping:
 *
 *   kamcmd stats.get_statistics sipguard:
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <string.h>

#include "../../core/dprint.h"
#include "../../core/counters.h"

#include "sipguard_ctx.h"
#include "sipguard_stats.h"

/* one snapshot of the core's counters; zero when there is no region */
static sipguard_stats sg_stats_read(void)
{
	sipguard_stats s;

	memset(&s, 0, sizeof(s));
	if(_sg_region != NULL && sipguard_stats_get(_sg_region, &s) != SIPGUARD_OK)
		memset(&s, 0, sizeof(s));
	return s;
}

#define SG_STAT_FUNC(field)                         \
	static counter_val_t sg_stat_##field(void)      \
	{                                               \
		return (counter_val_t)sg_stats_read().field; \
	}

SG_STAT_FUNC(checked)
SG_STAT_FUNC(passed)
SG_STAT_FUNC(allowlisted)
SG_STAT_FUNC(limited)
SG_STAT_FUNC(rejected)
SG_STAT_FUNC(bans)
SG_STAT_FUNC(unbans)
SG_STAT_FUNC(dropped)
SG_STAT_FUNC(untracked)
SG_STAT_FUNC(evictions)
SG_STAT_FUNC(active_bans)
SG_STAT_FUNC(scanners)
SG_STAT_FUNC(enumerations)
SG_STAT_FUNC(auth_failures)
SG_STAT_FUNC(auth_bans)
SG_STAT_FUNC(throttles)
SG_STAT_FUNC(throttled_auth)
SG_STAT_FUNC(throttled_users)
SG_STAT_FUNC(normalized)
SG_STAT_FUNC(entries_used)
SG_STAT_FUNC(table_size)

/* toll fraud: one snapshot of the account table's counters */
static sipguard_fraud_stats sg_fraud_stats_read(void)
{
	sipguard_fraud_stats s;

	memset(&s, 0, sizeof(s));
	if(_sg_fraud != NULL
			&& sipguard_fraud_stats_get(_sg_fraud, &s) != SIPGUARD_OK)
		memset(&s, 0, sizeof(s));
	return s;
}

static counter_val_t sg_stat_fraud_denied(void)
{
	return (counter_val_t)sg_fraud_stats_read().denied;
}

static counter_val_t sg_stat_fraud_suspended(void)
{
	return (counter_val_t)sg_fraud_stats_read().suspensions;
}

static counter_val_t sg_stat_active_calls(void)
{
	return (counter_val_t)sg_fraud_stats_read().active_calls;
}

static counter_val_t sg_stat_suspended_accounts(void)
{
	return (counter_val_t)sg_fraud_stats_read().suspended_accounts;
}

/* toll fraud: anomalies against the learnt baselines */
static sipguard_anomaly_stats sg_anomaly_stats_read(void)
{
	sipguard_anomaly_stats s;

	memset(&s, 0, sizeof(s));
	if(_sg_fraud != NULL
			&& sipguard_fraud_anomaly_stats_get(_sg_fraud, &s) != SIPGUARD_OK)
		memset(&s, 0, sizeof(s));
	return s;
}

static counter_val_t sg_stat_anomalies_destination(void)
{
	return (counter_val_t)sg_anomaly_stats_read().destination;
}

static counter_val_t sg_stat_anomalies_spend(void)
{
	return (counter_val_t)sg_anomaly_stats_read().spend;
}

/* the shared blocklist: one snapshot of its counts */
static sipguard_blocklist_info sg_blocklist_read(void)
{
	sipguard_blocklist_info b;

	memset(&b, 0, sizeof(b));
	if(_sg_region != NULL
			&& sipguard_blocklist_info_get(_sg_region, &b) != SIPGUARD_OK)
		memset(&b, 0, sizeof(b));
	return b;
}

static counter_val_t sg_stat_blocklisted(void)
{
	return (counter_val_t)sg_blocklist_read().hits;
}

static counter_val_t sg_stat_blocklist_entries(void)
{
	return (counter_val_t)sg_blocklist_read().entries;
}

#define SG_STAT(field) \
	{                  \
		#field, STAT_IS_FUNC, (stat_var **)sg_stat_##field \
	}

/* clang-format off */
static stat_export_t sg_stats[] = {
	SG_STAT(checked),
	SG_STAT(passed),
	SG_STAT(allowlisted),
	SG_STAT(limited),
	SG_STAT(rejected),
	SG_STAT(bans),
	SG_STAT(unbans),
	SG_STAT(dropped),
	SG_STAT(untracked),
	SG_STAT(evictions),
	SG_STAT(active_bans),
	SG_STAT(scanners),
	SG_STAT(enumerations),
	SG_STAT(auth_failures),
	SG_STAT(auth_bans),
	SG_STAT(throttles),
	SG_STAT(throttled_auth),
	SG_STAT(throttled_users),
	SG_STAT(normalized),
	SG_STAT(entries_used),
	SG_STAT(table_size),
	/* toll fraud */
	{"fraud_denied", STAT_IS_FUNC, (stat_var **)sg_stat_fraud_denied},
	{"fraud_suspended", STAT_IS_FUNC, (stat_var **)sg_stat_fraud_suspended},
	{"active_calls", STAT_IS_FUNC, (stat_var **)sg_stat_active_calls},
	{"suspended_accounts", STAT_IS_FUNC, (stat_var **)sg_stat_suspended_accounts},
	{"fraud_anomalies_destination", STAT_IS_FUNC, (stat_var **)sg_stat_anomalies_destination},
	{"fraud_anomalies_spend", STAT_IS_FUNC, (stat_var **)sg_stat_anomalies_spend},
	/* shared blocklist */
	{"blocklisted", STAT_IS_FUNC, (stat_var **)sg_stat_blocklisted},
	{"blocklist_entries", STAT_IS_FUNC, (stat_var **)sg_stat_blocklist_entries},
	{0, 0, 0}
};
/* clang-format on */

int sipguard_stats_init(void)
{
	if(register_module_stats("sipguard", sg_stats) != 0) {
		LM_ERR("cannot register statistics\n");
		return -1;
	}
	return 0;
}
