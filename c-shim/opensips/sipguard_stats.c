/*
 * sipguard OpenSIPS module - statistics
 *
 * Every statistic is a function (STAT_IS_FUNC) reading the shared counters
 * of the core, so all processes report the same values without any
 * per-process bookkeeping:
 *
 *   opensips-cli -x mi get_statistics sipguard:
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <string.h>

#include "../../dprint.h"
#include "../../statistics.h"

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

#define SG_STAT_FUNC(field)                               \
	static unsigned long sg_stat_##field(void *ctx)      \
	{                                                     \
		return (unsigned long)sg_stats_read().field;      \
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

static unsigned long sg_stat_fraud_denied(void *ctx)
{
	return (unsigned long)sg_fraud_stats_read().denied;
}

static unsigned long sg_stat_fraud_suspended(void *ctx)
{
	return (unsigned long)sg_fraud_stats_read().suspensions;
}

static unsigned long sg_stat_active_calls(void *ctx)
{
	return (unsigned long)sg_fraud_stats_read().active_calls;
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

static unsigned long sg_stat_blocklisted(void *ctx)
{
	return (unsigned long)sg_blocklist_read().hits;
}

static unsigned long sg_stat_blocklist_entries(void *ctx)
{
	return (unsigned long)sg_blocklist_read().entries;
}

#define SG_STAT(field) \
	{                  \
		#field, STAT_IS_FUNC, (stat_var **)sg_stat_##field \
	}

/* clang-format off */
const stat_export_t sipguard_stats_exports[] = {
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
	/* shared blocklist */
	SG_STAT(blocklisted),
	SG_STAT(blocklist_entries),
	/* toll fraud */
	SG_STAT(fraud_denied),
	SG_STAT(fraud_suspended),
	SG_STAT(active_calls),
	{0, 0, 0}
};
/* clang-format on */
