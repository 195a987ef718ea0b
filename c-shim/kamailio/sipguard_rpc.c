/*
 * sipguard module - RPC commands
 *
 *   sipguard.list [top_n]        bans in force and the busiest sources
 *   sipguard.ban <addr> [time]   ban now; time: seconds, "5m", "permanent"
 *   sipguard.unban <addr>        lift a ban
 *   sipguard.stats               counters of the shared table
 *   sipguard.users [max]         user names with failures, throttles, trust
 *   sipguard.unthrottle <user>   lift a user name's throttle
 *   sipguard.accounts [max]      toll-fraud accounts: state, calls, spend
 *   sipguard.suspend <account> [note]   suspend an account's outbound calls
 *   sipguard.unsuspend <account>        lift a suspension
 *   sipguard.reload_rules        re-read the fraud_rules file
 *   sipguard.seed_baseline <file>  seed the learnt baselines from past calls
 *   sipguard.baseline <account>    an account's learnt baseline
 *   sipguard.reload_blocklist    re-read blocklist_file
 *   sipguard.blocklist           the blocklist in force
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../core/dprint.h"
#include "../../core/rpc.h"
#include "../../core/str.h"
#include "../../core/ut.h"

#include "sipguard_ctx.h"
#include "sipguard_fraud.h"
#include "sipguard_rpc.h"

#define SG_TOP_DEFAULT 10
#define SG_TOP_MAX 100
/* bans listed by default: a kamcmd reply holds 128 KiB, ~800 entries */
#define SG_LIST_BANS_DEFAULT 500
#define SG_LIST_BANS_MAX 100000

/* add an unsigned 64-bit value: an int when it fits, else a (exact) double */
static int sg_rpc_add_u64(rpc_t *rpc, void *th, char *name, uint64_t v)
{
	if(v <= (uint64_t)INT_MAX)
		return rpc->struct_add(th, "d", name, (int)v);
	return rpc->struct_add(th, "J", name, (unsigned long long)v);
}

static const char *sg_reason_name(int32_t reason)
{
	return sipguard_ban_reason_name(reason);
}

/* context of the list callbacks */
typedef struct sg_rpc_list_ctx {
	rpc_t *rpc;
	void *c;
	void *ah; /* array the entries are added to */
	int bans; /* 1: ban entries, 0: load entries */
	int count; /* entries added to the reply */
	int limit; /* most entries to add; the rest are only counted */
	int total; /* entries seen */
	int error;
} sg_rpc_list_ctx_t;

static int sg_rpc_list_entry(void *ctx, const sipguard_entry_info *e)
{
	sg_rpc_list_ctx_t *lc = (sg_rpc_list_ctx_t *)ctx;
	rpc_t *rpc;
	void *eh;
	char key[sizeof(e->key) + 1];
	int r;

	if(lc == NULL || e == NULL)
		return 1;
	rpc = lc->rpc;
	lc->total++;
	if(lc->count >= lc->limit)
		return 0; /* keep counting: the reply says how many there are */
	memcpy(key, e->key, sizeof(e->key));
	key[sizeof(e->key)] = '\0';

	if(rpc->array_add(lc->ah, "{", &eh) < 0)
		goto error;
	if(rpc->struct_add(eh, "s", "key", key) < 0)
		goto error;
	if(lc->bans) {
		if(rpc->struct_add(eh, "s", "reason", sg_reason_name(e->reason)) < 0)
			goto error;
		if(e->ban_ms == UINT64_MAX) {
			r = rpc->struct_add(eh, "s", "remaining", "permanent");
		} else {
			/* whole seconds, rounded up: a ban in force shows >= 1 */
			r = sg_rpc_add_u64(rpc, eh, "remaining", (e->ban_ms + 999) / 1000);
		}
		if(r < 0)
			goto error;
		if(rpc->struct_add(eh, "u", "offences", (unsigned int)e->offences) < 0)
			goto error;
		if(sg_rpc_add_u64(rpc, eh, "hits", e->hits) < 0)
			goto error;
	} else {
		if(rpc->struct_add(eh, "u", "load_pct", (unsigned int)e->load_pct) < 0)
			goto error;
		if(rpc->struct_add(eh, "u", "offences", (unsigned int)e->offences) < 0)
			goto error;
		if(sg_rpc_add_u64(rpc, eh, "hits", e->hits) < 0)
			goto error;
		if(sg_rpc_add_u64(rpc, eh, "idle_ms", e->idle_ms) < 0)
			goto error;
	}
	lc->count++;
	return 0;

error:
	lc->error = 1;
	return 1;
}

static const char *sg_rpc_list_doc[] = {
	"List the bans in force (key, reason, remaining seconds or permanent,"
	" offences, hits) and the unbanned sources with the highest load."
	" Optional parameters: how many top sources (default 10, max 100) and"
	" how many bans at most (default 500, max 100000); bans_total counts"
	" them all.",
	0
};

static void sg_rpc_list(rpc_t *rpc, void *c)
{
	sg_rpc_list_ctx_t lc;
	sipguard_status st;
	uint64_t now;
	void *th;
	str arg = STR_NULL;
	str arg2 = STR_NULL;
	int top = SG_TOP_DEFAULT;
	int max_bans = SG_LIST_BANS_DEFAULT;
	int n;

	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return;
	}
	n = rpc->scan(c, "*.S.S", &arg, &arg2);
	if(n >= 1 && arg.s != NULL && arg.len > 0) {
		if(str2sint(&arg, &top) != 0 || top < 0 || top > SG_TOP_MAX) {
			rpc->fault(c, 400, "top_n must be 0..%d", SG_TOP_MAX);
			return;
		}
	}
	if(n >= 2 && arg2.s != NULL && arg2.len > 0) {
		if(str2sint(&arg2, &max_bans) != 0 || max_bans < 0
				|| max_bans > SG_LIST_BANS_MAX) {
			rpc->fault(c, 400, "max_bans must be 0..%d", SG_LIST_BANS_MAX);
			return;
		}
	}
	now = sipguard_clock_ns();

	if(rpc->add(c, "{", &th) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
	memset(&lc, 0, sizeof(lc));
	lc.rpc = rpc;
	lc.c = c;
	lc.bans = 1;
	lc.limit = max_bans;
	if(rpc->struct_add(th, "[", "bans", &lc.ah) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
	st = sipguard_list_bans(_sg_region, now, sg_rpc_list_entry, &lc);
	if(st != SIPGUARD_OK || lc.error) {
		rpc->fault(c, 500, "Listing bans failed: %s",
				lc.error ? "cannot build the reply" : sipguard_status_message(st));
		return;
	}
	if(rpc->struct_add(th, "dd", "bans_total", lc.total, "bans_listed",
			   lc.count)
			< 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}

	lc.bans = 0;
	lc.count = 0;
	lc.total = 0;
	lc.limit = top;
	if(rpc->struct_add(th, "[", "top", &lc.ah) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
	if(top > 0) {
		st = sipguard_list_top(_sg_region, now, (uint32_t)top,
				sg_rpc_list_entry, &lc);
		if(st != SIPGUARD_OK || lc.error) {
			rpc->fault(c, 500, "Listing sources failed: %s",
					lc.error ? "cannot build the reply" : sipguard_status_message(st));
			return;
		}
	}
}

/*
 * Ban duration from text (the core's rule): "" or "0" (escalated default),
 * "permanent", N, Ns, Nm, Nh, Nd. Returns 0 on success.
 */
static int sg_rpc_duration(str *s, uint64_t *out)
{
	*out = 0;
	if(s == NULL || s->s == NULL || s->len <= 0)
		return 0;
	return sipguard_ban_duration_parse(s->s, (size_t)s->len, out) == SIPGUARD_OK
				   ? 0
				   : -1;
}

/* the address argument of ban/unban; on failure the fault is sent */
static int sg_rpc_scan_addr(rpc_t *rpc, void *c, str *addr)
{
	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return -1;
	}
	if(rpc->scan(c, ".S", addr) < 1 || addr->s == NULL || addr->len <= 0) {
		rpc->fault(c, 400, "address required");
		return -1;
	}
	return 0;
}

/* fault reply for a failed ban/unban: 400 for bad input, else 500 */
static void sg_rpc_fault_status(
		rpc_t *rpc, void *c, sipguard_status st, char *err, size_t err_len)
{
	err[err_len - 1] = '\0';
	rpc->fault(c, (st == SIPGUARD_ERR_INVALID) ? 400 : 500, "%s",
			err[0] ? err : sipguard_status_message(st));
}

static const char *sg_rpc_ban_doc[] = {
	"Ban an address now. Parameters: address (IPv4/IPv6, an IPv6 address"
	" bans its ipv6_prefix), optional duration: seconds, 30s/5m/2h/1d or"
	" \"permanent\"; absent or 0 = the escalated ban_time.",
	0
};

static void sg_rpc_ban(rpc_t *rpc, void *c)
{
	str addr = STR_NULL;
	str dur = STR_NULL;
	uint64_t seconds = 0;
	char err[256];
	sipguard_status st;

	if(sg_rpc_scan_addr(rpc, c, &addr) < 0)
		return;
	if(rpc->scan(c, "*.S", &dur) < 1) {
		dur.s = NULL;
		dur.len = 0;
	}
	if(sg_rpc_duration(&dur, &seconds) != 0) {
		rpc->fault(c, 400,
				"bad duration: %.*s (seconds, 30s, 5m, 2h, 1d or permanent)",
				dur.len, dur.s);
		return;
	}
	err[0] = '\0';
	st = sipguard_ban(_sg_region, addr.s, (size_t)addr.len, seconds,
			sipguard_clock_ns(), err, sizeof(err));
	if(st != SIPGUARD_OK) {
		sg_rpc_fault_status(rpc, c, st, err, sizeof(err));
		return;
	}
	rpc->rpl_printf(c, "Ok. %.*s banned", addr.len, addr.s);
}

static const char *sg_rpc_unban_doc[] = {
	"Lift the ban of an address or of a network (a prefix ban, as listed: 198.51.100.0/24). Parameter: address or CIDR.",
	0
};

static void sg_rpc_unban(rpc_t *rpc, void *c)
{
	str addr = STR_NULL;
	char err[256];
	sipguard_status st;

	if(sg_rpc_scan_addr(rpc, c, &addr) < 0)
		return;
	err[0] = '\0';
	st = sipguard_unban(_sg_region, addr.s, (size_t)addr.len,
			sipguard_clock_ns(), err, sizeof(err));
	if(st == SIPGUARD_ERR_NOT_FOUND) {
		rpc->fault(c, 404, "not banned");
		return;
	}
	if(st != SIPGUARD_OK) {
		sg_rpc_fault_status(rpc, c, st, err, sizeof(err));
		return;
	}
	rpc->rpl_printf(c, "Ok. %.*s unbanned", addr.len, addr.s);
}

static const char *sg_rpc_stats_doc[] = {
	"Counters of the shared table: checks, verdicts, bans, drops, use.",
	0
};

static void sg_rpc_stats(rpc_t *rpc, void *c)
{
	sipguard_stats s;
	sipguard_status st;
	void *th;

	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return;
	}
	memset(&s, 0, sizeof(s));
	st = sipguard_stats_get(_sg_region, &s);
	if(st != SIPGUARD_OK) {
		rpc->fault(c, 500, "%s", sipguard_status_message(st));
		return;
	}
	if(rpc->add(c, "{", &th) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
	if(sg_rpc_add_u64(rpc, th, "checked", s.checked) < 0
			|| sg_rpc_add_u64(rpc, th, "passed", s.passed) < 0
			|| sg_rpc_add_u64(rpc, th, "allowlisted", s.allowlisted) < 0
			|| sg_rpc_add_u64(rpc, th, "limited", s.limited) < 0
			|| sg_rpc_add_u64(rpc, th, "rejected", s.rejected) < 0
			|| sg_rpc_add_u64(rpc, th, "bans", s.bans) < 0
			|| sg_rpc_add_u64(rpc, th, "unbans", s.unbans) < 0
			|| sg_rpc_add_u64(rpc, th, "dropped", s.dropped) < 0
			|| sg_rpc_add_u64(rpc, th, "untracked", s.untracked) < 0
			|| sg_rpc_add_u64(rpc, th, "evictions", s.evictions) < 0
			|| sg_rpc_add_u64(rpc, th, "active_bans", s.active_bans) < 0
			|| sg_rpc_add_u64(rpc, th, "entries_used", s.entries_used) < 0
			|| sg_rpc_add_u64(rpc, th, "table_size", s.table_size) < 0
			|| sg_rpc_add_u64(rpc, th, "region_bytes", s.region_bytes) < 0
			|| sg_rpc_add_u64(rpc, th, "scanners", s.scanners) < 0
			|| sg_rpc_add_u64(rpc, th, "enumerations", s.enumerations) < 0
			|| sg_rpc_add_u64(rpc, th, "auth_failures", s.auth_failures) < 0
			|| sg_rpc_add_u64(rpc, th, "auth_bans", s.auth_bans) < 0
			|| sg_rpc_add_u64(rpc, th, "throttles", s.throttles) < 0
			|| sg_rpc_add_u64(rpc, th, "throttled_auth", s.throttled_auth) < 0
			|| sg_rpc_add_u64(rpc, th, "throttled_users", s.throttled_users) < 0
			|| sg_rpc_add_u64(rpc, th, "normalized", s.normalized) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
}

#define SG_USERS_DEFAULT 100
#define SG_USERS_MAX 1000

typedef struct sg_rpc_users_ctx {
	rpc_t *rpc;
	void *ah;
	int error;
} sg_rpc_users_ctx_t;

static int sg_rpc_user(void *ctx, const sipguard_user_info *u)
{
	sg_rpc_users_ctx_t *uc = (sg_rpc_users_ctx_t *)ctx;
	str name;
	void *eh;

	if(uc == NULL || u == NULL)
		return 1;
	name.s = (char *)u->name;
	name.len = (int)u->name_len;
	if(uc->rpc->array_add(uc->ah, "{", &eh) < 0
			|| uc->rpc->struct_add(eh, "S", "user", &name) < 0
			|| uc->rpc->struct_add(eh, "u", "failures", u->failures) < 0
			|| uc->rpc->struct_add(eh, "u", "throttled", u->throttled_s) < 0
			|| uc->rpc->struct_add(eh, "u", "throttles", u->throttles) < 0
			|| uc->rpc->struct_add(
					   eh, "u", "trusted_sources", u->trusted_sources)
					   < 0) {
		uc->error = 1;
		return 1;
	}
	return 0;
}

static const char *sg_rpc_users_doc[] = {
	"List user names with authentication state: failures within"
	" user_findtime, remaining throttle seconds, times throttled, sources"
	" trusted. Optional parameter: how many (default 100).",
	0
};

static void sg_rpc_users(rpc_t *rpc, void *c)
{
	sg_rpc_users_ctx_t uc;
	sipguard_status st;
	int max = SG_USERS_DEFAULT;

	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return;
	}
	if(rpc->scan(c, "*.d", &max) < 1)
		max = SG_USERS_DEFAULT;
	if(max < 1 || max > SG_USERS_MAX) {
		rpc->fault(c, 400, "max must be 1..%d", SG_USERS_MAX);
		return;
	}
	memset(&uc, 0, sizeof(uc));
	uc.rpc = rpc;
	if(rpc->add(c, "[", &uc.ah) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
	st = sipguard_list_users(
			_sg_region, sipguard_clock_ns(), (uint32_t)max, sg_rpc_user, &uc);
	if(st != SIPGUARD_OK || uc.error)
		LM_ERR("user list incomplete: %s\n", sipguard_status_message(st));
}

static const char *sg_rpc_unthrottle_doc[] = {
	"Lift the throttle on a user name and forget its failures.", 0};

static void sg_rpc_unthrottle(rpc_t *rpc, void *c)
{
	sipguard_status st;
	str user = STR_NULL;

	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return;
	}
	if(rpc->scan(c, ".S", &user) < 1 || user.len <= 0) {
		rpc->fault(c, 400, "user name expected");
		return;
	}
	st = sipguard_unthrottle(
			_sg_region, user.s, (size_t)user.len, sipguard_clock_ns());
	if(st == SIPGUARD_ERR_NOT_FOUND) {
		rpc->fault(c, 404, "%.*s is not throttled", user.len, user.s);
		return;
	}
	if(st != SIPGUARD_OK) {
		rpc->fault(c, 500, "%s", sipguard_status_message(st));
		return;
	}
	rpc->rpl_printf(c, "Ok. %.*s unthrottled", user.len, user.s);
}

/* ---- toll fraud ---------------------------------------------------------- */

/* accounts listed by sipguard.accounts unless told */
#define SG_ACCOUNTS_DEFAULT 500
#define SG_ACCOUNTS_MAX 100000

static int sg_fraud_rpc_ready(rpc_t *rpc, void *c)
{
	if(_sg_fraud != NULL)
		return 1;
	rpc->fault(c, 500, "sipguard is not initialized");
	return 0;
}

/* the account argument; on failure the fault is sent */
static int sg_fraud_rpc_account(rpc_t *rpc, void *c, str *account)
{
	if(!sg_fraud_rpc_ready(rpc, c))
		return -1;
	if(rpc->scan(c, ".S", account) < 1 || account->s == NULL
			|| account->len <= 0) {
		rpc->fault(c, 400, "account required");
		return -1;
	}
	return 0;
}

typedef struct sg_accounts_ctx {
	rpc_t *rpc;
	void *ah;
	int limit;
	int listed;
	int total;
	int error;
} sg_accounts_ctx_t;

static int sg_fraud_rpc_account_entry(void *ctx, const sipguard_account_info *a)
{
	sg_accounts_ctx_t *lc = (sg_accounts_ctx_t *)ctx;
	rpc_t *rpc;
	void *eh;
	char spend[32];

	if(lc == NULL || a == NULL)
		return 1;
	rpc = lc->rpc;
	lc->total++;
	if(lc->listed >= lc->limit)
		return 0;
	if(sipguard_fraud_money_text(a->spend, spend, sizeof(spend)) != SIPGUARD_OK)
		spend[0] = '\0';
	if(rpc->array_add(lc->ah, "{", &eh) < 0
			|| rpc->struct_add(eh, "s", "account", a->name) < 0
			|| rpc->struct_add(eh, "s", "state",
					   a->suspended ? "suspended" : "active")
					   < 0
			|| rpc->struct_add(eh, "s", "reason", a->reason) < 0
			|| rpc->struct_add(eh, "u", "calls", (unsigned int)a->active) < 0
			|| rpc->struct_add(eh, "J", "cpm", (unsigned long long)a->cpm) < 0
			|| rpc->struct_add(eh, "s", "spend_hour", spend) < 0
			|| rpc->struct_add(eh, "J", "since_ms",
					   (unsigned long long)a->since_unix_ms)
					   < 0) {
		lc->error = 1;
		return 1;
	}
	lc->listed++;
	return 0;
}

static const char *sg_fraud_rpc_accounts_doc[] = {
		"List tracked accounts: state (active/suspended), suspension reason,"
		" calls up, call attempts in the last minute, spend in the last hour"
		" incl. calls up, since_ms (suspension time, Unix ms). Optional"
		" parameter: most accounts listed (default 500, max 100000).",
		0};

static void sg_fraud_rpc_accounts(rpc_t *rpc, void *c)
{
	sg_accounts_ctx_t lc;
	sipguard_fraud_stats s;
	sipguard_status st;
	str arg = STR_NULL;
	void *th;
	int max = SG_ACCOUNTS_DEFAULT;

	if(!sg_fraud_rpc_ready(rpc, c))
		return;
	if(rpc->scan(c, "*.S", &arg) >= 1 && arg.s != NULL && arg.len > 0) {
		if(str2sint(&arg, &max) != 0 || max < 0 || max > SG_ACCOUNTS_MAX) {
			rpc->fault(c, 400, "max must be 0..%d", SG_ACCOUNTS_MAX);
			return;
		}
	}
	memset(&lc, 0, sizeof(lc));
	lc.rpc = rpc;
	lc.limit = max;
	if(rpc->add(c, "{", &th) < 0
			|| rpc->struct_add(th, "[", "accounts", &lc.ah) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
	st = sipguard_fraud_list(
			_sg_fraud, sipguard_clock_ns(), sg_fraud_rpc_account_entry, &lc);
	if(st != SIPGUARD_OK || lc.error) {
		rpc->fault(c, 500, "Listing accounts failed: %s",
				lc.error ? "cannot build the reply" : sipguard_status_message(st));
		return;
	}
	memset(&s, 0, sizeof(s));
	sipguard_fraud_stats_get(_sg_fraud, &s);
	if(rpc->struct_add(th, "ddJ", "accounts_total", lc.total, "accounts_listed",
			   lc.listed, "active_calls", (unsigned long long)s.active_calls)
			< 0)
		rpc->fault(c, 500, "Internal error creating the reply");
}

static const char *sg_fraud_rpc_suspend_doc[] = {
		"Suspend outbound calling of an account now. Parameters: account,"
		" optional note (logged). Runs event_route[" SG_EVRT_SUSPENDED "]"
		" within a second.",
		0};

static void sg_fraud_rpc_suspend(rpc_t *rpc, void *c)
{
	str account = STR_NULL;
	str note = STR_NULL;
	int32_t changed = 0;
	sipguard_status st;

	if(sg_fraud_rpc_account(rpc, c, &account) < 0)
		return;
	if(rpc->scan(c, "*.S", &note) < 1)
		note.len = 0;
	st = sipguard_fraud_suspend(_sg_fraud, account.s, (size_t)account.len,
			sipguard_clock_ns(), &changed);
	if(st != SIPGUARD_OK) {
		rpc->fault(c, st == SIPGUARD_ERR_INVALID ? 400 : 500, "%s",
				st == SIPGUARD_ERR_INVALID ? "account name: 1..64 bytes"
										   : sipguard_status_message(st));
		return;
	}
	if(changed && note.len > 0 && note.s != NULL)
		LM_NOTICE("sipguard: account %.*s suspended by RPC: %.*s\n",
				account.len, account.s, note.len, note.s);
	rpc->rpl_printf(c, changed ? "Ok. %.*s suspended"
							   : "Ok. %.*s was already suspended",
			account.len, account.s);
}

static const char *sg_fraud_rpc_unsuspend_doc[] = {
		"Lift the suspension of an account; its attempts and spend so far"
		" are forgiven. Parameter: account.",
		0};

static void sg_fraud_rpc_unsuspend(rpc_t *rpc, void *c)
{
	str account = STR_NULL;
	sipguard_status st;

	if(sg_fraud_rpc_account(rpc, c, &account) < 0)
		return;
	st = sipguard_fraud_unsuspend(
			_sg_fraud, account.s, (size_t)account.len, sipguard_clock_ns());
	if(st == SIPGUARD_ERR_NOT_FOUND) {
		rpc->fault(c, 404, "not suspended");
		return;
	}
	if(st != SIPGUARD_OK) {
		rpc->fault(c, 500, "%s", sipguard_status_message(st));
		return;
	}
	rpc->rpl_printf(c, "Ok. %.*s unsuspended", account.len, account.s);
}

static const char *sg_fraud_rpc_reload_doc[] = {
		"Re-read the fraud_rules file and publish it to every process. On an"
		" error (file:line) the rules in force stay.",
		0};

static void sg_fraud_rpc_reload(rpc_t *rpc, void *c)
{
	char err[512];
	uint32_t prefixes = 0;
	uint32_t accounts = 0;
	sipguard_status st;

	if(!sg_fraud_rpc_ready(rpc, c))
		return;
	err[0] = '\0';
	st = sipguard_fraud_reload(
			_sg_fraud, err, sizeof(err), &prefixes, &accounts);
	if(st != SIPGUARD_OK) {
		err[sizeof(err) - 1] = '\0';
		LM_ERR("sipguard: rules reload failed, old rules kept: %s\n",
				err[0] ? err : sipguard_status_message(st));
		rpc->fault(c, 500, "reload failed, old rules kept: %s",
				err[0] ? err : sipguard_status_message(st));
		return;
	}
	rpc->rpl_printf(c, "Ok. %u prefixes, %u account rules", prefixes, accounts);
}

static const char *sg_blocklist_rpc_reload_doc[] = {
		"Re-read blocklist_file and publish it to every process; on error the "
		"list in force stays.",
		0};

static void sg_blocklist_rpc_reload(rpc_t *rpc, void *c)
{
	char err[512];
	uint64_t entries = 0;
	uint64_t generation = 0;
	sipguard_status st;

	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return;
	}
	err[0] = '\0';
	st = sipguard_blocklist_reload(
			_sg_region, err, sizeof(err), &entries, &generation);
	if(st != SIPGUARD_OK) {
		err[sizeof(err) - 1] = '\0';
		LM_ERR("sipguard: blocklist reload failed, old list kept: %s\n",
				err[0] ? err : sipguard_status_message(st));
		rpc->fault(c, 500, "reload failed, old list kept: %s",
				err[0] ? err : sipguard_status_message(st));
		return;
	}
	rpc->rpl_printf(c, "Ok. %llu entries, generation %llu",
			(unsigned long long)entries, (unsigned long long)generation);
}

static const char *sg_blocklist_rpc_info_doc[] = {
		"The blocklist in force: entries, generation, hits, blocklist_max.",
		0};

static void sg_blocklist_rpc_info(rpc_t *rpc, void *c)
{
	sipguard_blocklist_info b;
	void *th;

	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return;
	}
	if(sipguard_blocklist_info_get(_sg_region, &b) != SIPGUARD_OK) {
		rpc->fault(c, 500, "cannot read the blocklist");
		return;
	}
	if(rpc->add(c, "{", &th) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
	if(sg_rpc_add_u64(rpc, th, "entries", b.entries) < 0
			|| sg_rpc_add_u64(rpc, th, "generation", b.generation) < 0
			|| sg_rpc_add_u64(rpc, th, "hits", b.hits) < 0
			|| sg_rpc_add_u64(rpc, th, "max", b.max) < 0)
		rpc->fault(c, 500, "Internal error creating the reply");
}

/* clang-format off */
static const char *sg_fraud_rpc_seed_doc[] = {
		"Seed the learnt baselines from a CSV of past calls"
		" (account,start,duration,number,cost). Parameter: the file.",
		0};

static void sg_fraud_rpc_seed(rpc_t *rpc, void *c)
{
	str file = STR_NULL;
	char path[4096];
	char err[512] = "";
	sipguard_seed_report r;
	sipguard_status st;

	if(!sg_fraud_rpc_ready(rpc, c))
		return;
	if(rpc->scan(c, "S", &file) < 1 || file.s == NULL || file.len <= 0) {
		rpc->fault(c, 400, "file required");
		return;
	}
	if(file.len >= (int)sizeof(path)) {
		rpc->fault(c, 400, "file name too long");
		return;
	}
	memcpy(path, file.s, file.len);
	path[file.len] = '\0';
	memset(&r, 0, sizeof(r));
	st = sipguard_fraud_seed_baseline(_sg_fraud, path, (size_t)file.len,
			sipguard_clock_ns(), &r, err, sizeof(err));
	if(st != SIPGUARD_OK) {
		rpc->fault(c, 500, "%s", err[0] ? err : "seeding failed");
		return;
	}
	rpc->rpl_printf(c,
			"Ok. %llu calls of %llu accounts, %llu lines skipped, %llu calls "
			"older than baseline_days, %llu accounts not stored",
			(unsigned long long)r.calls, (unsigned long long)r.accounts,
			(unsigned long long)r.skipped, (unsigned long long)r.old,
			(unsigned long long)r.unstored);
}

static const char *sg_fraud_rpc_baseline_doc[] = {
		"An account's learnt baseline: destinations (country, class, day last"
		" called), usual spend this hour of the week and over a week."
		" Parameter: account.",
		0};

static void sg_fraud_rpc_baseline(rpc_t *rpc, void *c)
{
	str account = STR_NULL;
	sipguard_baseline_info bi;
	void *th, *ah, *dh;
	char hour[32], week[32], country[16], day[16];
	time_t t;
	struct tm tm;
	unsigned int i;

	if(sg_fraud_rpc_account(rpc, c, &account) < 0)
		return;
	if(sipguard_fraud_baseline_get(_sg_fraud, account.s, (size_t)account.len,
			   sipguard_clock_ns(), &bi)
			!= SIPGUARD_OK) {
		rpc->fault(c, 404, "no baseline");
		return;
	}
	if(sipguard_fraud_money_text(bi.usual_hour, hour, sizeof(hour)) != SIPGUARD_OK
			|| sipguard_fraud_money_text(bi.usual_week, week, sizeof(week))
					   != SIPGUARD_OK) {
		rpc->fault(c, 500, "internal error");
		return;
	}
	if(rpc->add(c, "{", &th) < 0
			|| rpc->struct_add(th, "SJss", "account", &account, "since_ms",
					   (unsigned long long)bi.since_unix_ms, "usual_hour", hour,
					   "usual_week", week)
					   < 0
			|| rpc->struct_add(th, "[", "destinations", &ah) < 0) {
		rpc->fault(c, 500, "cannot build the reply");
		return;
	}
	for(i = 0; i < bi.n_dests && i < SIPGUARD_BASELINE_DESTS; i++) {
		snprintf(country, sizeof(country), "+%u", bi.dests[i].country);
		t = (time_t)bi.dests[i].last_day * 86400;
		if(gmtime_r(&t, &tm) == NULL
				|| strftime(day, sizeof(day), "%Y-%m-%d", &tm) == 0)
			day[0] = '\0';
		if(rpc->array_add(ah, "{", &dh) < 0
				|| rpc->struct_add(dh, "sss", "country", country, "class",
						   sipguard_fraud_class_name(bi.dests[i].class_id),
						   "last_called", day)
						   < 0) {
			rpc->fault(c, 500, "cannot build the reply");
			return;
		}
	}
}

rpc_export_t sipguard_rpc_cmds[] = {
	{"sipguard.list",  sg_rpc_list,  sg_rpc_list_doc,  0},
	{"sipguard.ban",   sg_rpc_ban,   sg_rpc_ban_doc,   0},
	{"sipguard.unban", sg_rpc_unban, sg_rpc_unban_doc, 0},
	{"sipguard.stats", sg_rpc_stats, sg_rpc_stats_doc, 0},
	{"sipguard.users", sg_rpc_users, sg_rpc_users_doc, RET_ARRAY},
	{"sipguard.unthrottle", sg_rpc_unthrottle, sg_rpc_unthrottle_doc, 0},
	{"sipguard.accounts", sg_fraud_rpc_accounts, sg_fraud_rpc_accounts_doc, 0},
	{"sipguard.suspend", sg_fraud_rpc_suspend, sg_fraud_rpc_suspend_doc, 0},
	{"sipguard.unsuspend", sg_fraud_rpc_unsuspend, sg_fraud_rpc_unsuspend_doc, 0},
	{"sipguard.reload_rules", sg_fraud_rpc_reload, sg_fraud_rpc_reload_doc, 0},
	{"sipguard.reload_blocklist", sg_blocklist_rpc_reload, sg_blocklist_rpc_reload_doc, 0},
	{"sipguard.blocklist", sg_blocklist_rpc_info, sg_blocklist_rpc_info_doc, 0},
	{"sipguard.seed_baseline", sg_fraud_rpc_seed, sg_fraud_rpc_seed_doc, 0},
	{"sipguard.baseline", sg_fraud_rpc_baseline, sg_fraud_rpc_baseline_doc, 0},
	{0, 0, 0, 0}
};
/* clang-format on */
