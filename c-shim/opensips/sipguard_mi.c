/*
 * sipguard OpenSIPS module - MI commands (opensips-cli -x mi <command>, or
 * the FIFO/HTTP MI transports)
 *
 *   sipguard_list [top] [max_bans]   bans in force and the busiest sources
 *   sipguard_ban addr [duration]     ban now; duration: seconds, 5m, permanent
 *   sipguard_unban addr              lift a ban
 *   sipguard_stats                   counters of the shared table
 *   sipguard_users [max]             user names with failures, throttles, trust
 *   sipguard_unthrottle user         lift a user name's throttle
 *   sipguard_accounts [max]          toll-fraud accounts: state, calls, spend
 *   sipguard_suspend account [note]  suspend an account's outbound calls
 *   sipguard_unsuspend account       lift a suspension
 *   sipguard_reload_rules            re-read the fraud_rules file
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <stdint.h>
#include <string.h>

#include "../../dprint.h"
#include "../../ut.h"
#include "../../mi/mi.h"

#include "sipguard_ban_event.h"
#include "sipguard_ctx.h"
#include "sipguard_mi.h"

#define SG_TOP_DEFAULT 10
#define SG_TOP_MAX 100
#define SG_LIST_BANS_DEFAULT 500
#define SG_LIST_BANS_MAX 100000

/* an optional numeric parameter in 0..max; -1 (reply sent) when bad */
static int sg_mi_uint(const mi_params_t *params, char *name, unsigned int max,
		unsigned int *out)
{
	str s;
	unsigned int v;

	if(try_get_mi_string_param(params, name, &s.s, &s.len) != 0)
		return 0; /* absent: the default stays */
	if(str2int(&s, &v) != 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* a parameter as a NUL-terminated string (truncated) for an event */
static const char *sg_mi_nt(const str *s)
{
	static char buf[64];
	int n = s->len < (int)sizeof(buf) - 1 ? s->len : (int)sizeof(buf) - 1;

	memcpy(buf, s->s, n);
	buf[n] = '\0';
	return buf;
}

static mi_response_t *sg_mi_not_ready(void)
{
	return init_mi_error(500, MI_SSTR("sipguard is not initialized"));
}

/* context of the list callbacks */
typedef struct sg_mi_list_ctx {
	mi_item_t *arr;	  /* array the entries are added to */
	int bans;		  /* 1: ban entries, 0: load entries */
	unsigned int count; /* entries added to the reply */
	unsigned int limit; /* most entries to add; the rest are only counted */
	unsigned int total; /* entries seen */
	int error;
} sg_mi_list_ctx_t;

static int sg_mi_list_entry(void *ctx, const sipguard_entry_info *e)
{
	sg_mi_list_ctx_t *lc = (sg_mi_list_ctx_t *)ctx;
	mi_item_t *o;
	int r;

	if(lc == NULL || e == NULL)
		return 1;
	lc->total++;
	if(lc->count >= lc->limit)
		return 0; /* keep counting: the reply says how many there are */
	o = add_mi_object(lc->arr, NULL, 0);
	if(o == NULL)
		goto error;
	if(add_mi_string(o, MI_SSTR("key"), (char *)e->key,
			   strnlen(e->key, sizeof(e->key)))
			< 0)
		goto error;
	if(lc->bans) {
		const char *reason = sipguard_ban_reason_name(e->reason);
		if(add_mi_string(o, MI_SSTR("reason"), (char *)reason, strlen(reason))
				< 0)
			goto error;
		if(e->ban_ms == UINT64_MAX)
			r = add_mi_string(o, MI_SSTR("remaining"), MI_SSTR("permanent"));
		else /* whole seconds, rounded up: a ban in force shows >= 1 */
			r = add_mi_number(
					o, MI_SSTR("remaining"), (double)((e->ban_ms + 999) / 1000));
		if(r < 0)
			goto error;
	} else {
		if(add_mi_number(o, MI_SSTR("load_pct"), e->load_pct) < 0
				|| add_mi_number(o, MI_SSTR("idle_ms"), (double)e->idle_ms) < 0)
			goto error;
	}
	if(add_mi_number(o, MI_SSTR("offences"), e->offences) < 0
			|| add_mi_number(o, MI_SSTR("hits"), (double)e->hits) < 0)
		goto error;
	lc->count++;
	return 0;
error:
	lc->error = 1;
	return 1;
}

static mi_response_t *sg_mi_list(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	sg_mi_list_ctx_t lc;
	mi_response_t *resp;
	mi_item_t *obj;
	sipguard_status st;
	unsigned int top = SG_TOP_DEFAULT;
	unsigned int max_bans = SG_LIST_BANS_DEFAULT;
	uint64_t now;

	if(_sg_region == NULL)
		return sg_mi_not_ready();
	if(sg_mi_uint(params, "top", SG_TOP_MAX, &top) < 0)
		return init_mi_error(400, MI_SSTR("top must be 0..100"));
	if(sg_mi_uint(params, "max_bans", SG_LIST_BANS_MAX, &max_bans) < 0)
		return init_mi_error(400, MI_SSTR("max_bans must be 0..100000"));
	resp = init_mi_result_object(&obj);
	if(resp == NULL)
		return NULL;
	now = sipguard_clock_ns();
	memset(&lc, 0, sizeof(lc));
	lc.bans = 1;
	lc.limit = max_bans;
	lc.arr = add_mi_array(obj, MI_SSTR("bans"));
	if(lc.arr == NULL)
		goto error;
	st = sipguard_list_bans(_sg_region, now, sg_mi_list_entry, &lc);
	if(st != SIPGUARD_OK || lc.error)
		goto error;
	if(add_mi_number(obj, MI_SSTR("bans_total"), lc.total) < 0
			|| add_mi_number(obj, MI_SSTR("bans_listed"), lc.count) < 0)
		goto error;
	memset(&lc, 0, sizeof(lc));
	lc.limit = top;
	lc.arr = add_mi_array(obj, MI_SSTR("top"));
	if(lc.arr == NULL)
		goto error;
	if(top > 0) {
		st = sipguard_list_top(_sg_region, now, top, sg_mi_list_entry, &lc);
		if(st != SIPGUARD_OK || lc.error)
			goto error;
	}
	return resp;
error:
	free_mi_response(resp);
	return init_mi_error(500, MI_SSTR("cannot build the reply"));
}

/* the error reply of a failed ban/unban: 400 for bad input, else 500 */
static mi_response_t *sg_mi_status_error(
		sipguard_status st, char *err, size_t err_len)
{
	const char *m;

	err[err_len - 1] = '\0';
	m = err[0] ? err : sipguard_status_message(st);
	return init_mi_error(
			st == SIPGUARD_ERR_INVALID ? 400 : 500, m, (int)strlen(m));
}

static mi_response_t *sg_mi_ban(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	str addr;
	str dur = {NULL, 0};
	uint64_t seconds = 0;
	char err[256];
	sipguard_status st;

	if(_sg_region == NULL)
		return sg_mi_not_ready();
	if(get_mi_string_param(params, "addr", &addr.s, &addr.len) < 0
			|| addr.len <= 0)
		return init_mi_param_error();
	if(try_get_mi_string_param(params, "duration", &dur.s, &dur.len) != 0) {
		dur.s = NULL;
		dur.len = 0;
	}
	if(sipguard_ban_duration_parse(dur.s, (size_t)dur.len, &seconds)
			!= SIPGUARD_OK)
		return init_mi_error(400, MI_SSTR("bad duration (seconds, 30s, 5m, "
										  "2h, 1d or permanent)"));
	err[0] = '\0';
	st = sipguard_ban(_sg_region, addr.s, (size_t)addr.len, seconds,
			sipguard_clock_ns(), err, sizeof(err));
	if(st != SIPGUARD_OK)
		return sg_mi_status_error(st, err, sizeof(err));
	sipguard_ban_event(NULL, sg_mi_nt(&addr), "manual",
			seconds == UINT64_MAX ? UINT64_MAX : seconds * 1000, 0);
	return init_mi_result_ok();
}

static mi_response_t *sg_mi_unban(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	str addr;
	char err[256];
	sipguard_status st;

	if(_sg_region == NULL)
		return sg_mi_not_ready();
	if(get_mi_string_param(params, "addr", &addr.s, &addr.len) < 0
			|| addr.len <= 0)
		return init_mi_param_error();
	err[0] = '\0';
	st = sipguard_unban(_sg_region, addr.s, (size_t)addr.len,
			sipguard_clock_ns(), err, sizeof(err));
	if(st == SIPGUARD_ERR_NOT_FOUND)
		return init_mi_error(404, MI_SSTR("not banned"));
	if(st != SIPGUARD_OK)
		return sg_mi_status_error(st, err, sizeof(err));
	return init_mi_result_ok();
}

#define SG_MI_NUM(obj, s, field) \
	add_mi_number((obj), MI_SSTR(#field), (double)(s).field)

static mi_response_t *sg_mi_stats(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	sipguard_stats s;
	mi_response_t *resp;
	mi_item_t *obj;

	if(_sg_region == NULL)
		return sg_mi_not_ready();
	memset(&s, 0, sizeof(s));
	if(sipguard_stats_get(_sg_region, &s) != SIPGUARD_OK)
		return init_mi_error(500, MI_SSTR("cannot read the counters"));
	resp = init_mi_result_object(&obj);
	if(resp == NULL)
		return NULL;
	if(SG_MI_NUM(obj, s, checked) < 0 || SG_MI_NUM(obj, s, passed) < 0
			|| SG_MI_NUM(obj, s, allowlisted) < 0
			|| SG_MI_NUM(obj, s, limited) < 0 || SG_MI_NUM(obj, s, rejected) < 0
			|| SG_MI_NUM(obj, s, bans) < 0 || SG_MI_NUM(obj, s, unbans) < 0
			|| SG_MI_NUM(obj, s, dropped) < 0
			|| SG_MI_NUM(obj, s, untracked) < 0
			|| SG_MI_NUM(obj, s, evictions) < 0
			|| SG_MI_NUM(obj, s, active_bans) < 0
			|| SG_MI_NUM(obj, s, entries_used) < 0
			|| SG_MI_NUM(obj, s, table_size) < 0
			|| SG_MI_NUM(obj, s, region_bytes) < 0
			|| SG_MI_NUM(obj, s, scanners) < 0
			|| SG_MI_NUM(obj, s, enumerations) < 0
			|| SG_MI_NUM(obj, s, auth_failures) < 0
			|| SG_MI_NUM(obj, s, auth_bans) < 0
			|| SG_MI_NUM(obj, s, throttles) < 0
			|| SG_MI_NUM(obj, s, throttled_auth) < 0
			|| SG_MI_NUM(obj, s, throttled_users) < 0
			|| SG_MI_NUM(obj, s, normalized) < 0) {
		free_mi_response(resp);
		return init_mi_error(500, MI_SSTR("cannot build the reply"));
	}
	return resp;
}

#define SG_USERS_DEFAULT 100
#define SG_USERS_MAX 1000

typedef struct sg_mi_users_ctx {
	mi_item_t *arr;
	int error;
} sg_mi_users_ctx_t;

static int sg_mi_user(void *ctx, const sipguard_user_info *u)
{
	sg_mi_users_ctx_t *uc = (sg_mi_users_ctx_t *)ctx;
	mi_item_t *o;

	if(uc == NULL || u == NULL)
		return 1;
	o = add_mi_object(uc->arr, NULL, 0);
	if(o == NULL
			|| add_mi_string(o, MI_SSTR("user"), (char *)u->name, (int)u->name_len)
					   < 0
			|| add_mi_number(o, MI_SSTR("failures"), u->failures) < 0
			|| add_mi_number(o, MI_SSTR("throttled"), u->throttled_s) < 0
			|| add_mi_number(o, MI_SSTR("throttles"), u->throttles) < 0
			|| add_mi_number(o, MI_SSTR("trusted_sources"), u->trusted_sources)
					   < 0) {
		uc->error = 1;
		return 1;
	}
	return 0;
}

static mi_response_t *sg_mi_users(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	sg_mi_users_ctx_t uc;
	mi_response_t *resp;
	sipguard_status st;
	unsigned int max = SG_USERS_DEFAULT;

	if(_sg_region == NULL)
		return sg_mi_not_ready();
	if(sg_mi_uint(params, "max", SG_USERS_MAX, &max) < 0 || max < 1)
		return init_mi_error(400, MI_SSTR("max must be 1..1000"));
	memset(&uc, 0, sizeof(uc));
	resp = init_mi_result_array(&uc.arr);
	if(resp == NULL)
		return NULL;
	st = sipguard_list_users(
			_sg_region, sipguard_clock_ns(), max, sg_mi_user, &uc);
	if(st != SIPGUARD_OK || uc.error) {
		free_mi_response(resp);
		return init_mi_error(500, MI_SSTR("cannot build the reply"));
	}
	return resp;
}

static mi_response_t *sg_mi_unthrottle(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	sipguard_status st;
	str user;

	if(_sg_region == NULL)
		return sg_mi_not_ready();
	if(get_mi_string_param(params, "user", &user.s, &user.len) < 0
			|| user.len <= 0)
		return init_mi_param_error();
	st = sipguard_unthrottle(
			_sg_region, user.s, (size_t)user.len, sipguard_clock_ns());
	if(st == SIPGUARD_ERR_NOT_FOUND)
		return init_mi_error(404, MI_SSTR("not throttled"));
	if(st != SIPGUARD_OK)
		return init_mi_error(500, MI_SSTR("cannot lift the throttle"));
	return init_mi_result_ok();
}

/* ---- toll fraud ---------------------------------------------------------- */

#define SG_ACCOUNTS_DEFAULT 500
#define SG_ACCOUNTS_MAX 100000

typedef struct sg_mi_accounts_ctx {
	mi_item_t *arr;
	unsigned int limit, listed, total;
	int error;
} sg_mi_accounts_ctx_t;

static int sg_mi_account(void *ctx, const sipguard_account_info *a)
{
	sg_mi_accounts_ctx_t *lc = (sg_mi_accounts_ctx_t *)ctx;
	mi_item_t *o;
	char spend[32];
	const char *state;

	if(lc == NULL || a == NULL)
		return 1;
	lc->total++;
	if(lc->listed >= lc->limit)
		return 0;
	if(sipguard_fraud_money_text(a->spend, spend, sizeof(spend)) != SIPGUARD_OK)
		spend[0] = '\0';
	state = a->suspended ? "suspended" : "active";
	o = add_mi_object(lc->arr, NULL, 0);
	if(o == NULL
			|| add_mi_string(o, MI_SSTR("account"), (char *)a->name,
					   strnlen(a->name, sizeof(a->name)))
					   < 0
			|| add_mi_string(o, MI_SSTR("state"), (char *)state, strlen(state))
					   < 0
			|| add_mi_string(o, MI_SSTR("reason"), (char *)a->reason,
					   strnlen(a->reason, sizeof(a->reason)))
					   < 0
			|| add_mi_number(o, MI_SSTR("calls"), a->active) < 0
			|| add_mi_number(o, MI_SSTR("cpm"), (double)a->cpm) < 0
			|| add_mi_string(o, MI_SSTR("spend_hour"), spend, strlen(spend)) < 0
			|| add_mi_number(o, MI_SSTR("since_ms"), (double)a->since_unix_ms)
					   < 0) {
		lc->error = 1;
		return 1;
	}
	lc->listed++;
	return 0;
}

static mi_response_t *sg_mi_accounts(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	sg_mi_accounts_ctx_t lc;
	sipguard_fraud_stats s;
	mi_response_t *resp;
	mi_item_t *obj;
	unsigned int max = SG_ACCOUNTS_DEFAULT;

	if(_sg_fraud == NULL)
		return sg_mi_not_ready();
	if(sg_mi_uint(params, "max", SG_ACCOUNTS_MAX, &max) < 0)
		return init_mi_error(400, MI_SSTR("max must be 0..100000"));
	resp = init_mi_result_object(&obj);
	if(resp == NULL)
		return NULL;
	memset(&lc, 0, sizeof(lc));
	lc.limit = max;
	lc.arr = add_mi_array(obj, MI_SSTR("accounts"));
	memset(&s, 0, sizeof(s));
	if(lc.arr == NULL
			|| sipguard_fraud_list(
					   _sg_fraud, sipguard_clock_ns(), sg_mi_account, &lc)
					   != SIPGUARD_OK
			|| lc.error || sipguard_fraud_stats_get(_sg_fraud, &s) != SIPGUARD_OK
			|| add_mi_number(obj, MI_SSTR("accounts_total"), lc.total) < 0
			|| add_mi_number(obj, MI_SSTR("accounts_listed"), lc.listed) < 0
			|| add_mi_number(obj, MI_SSTR("active_calls"), (double)s.active_calls)
					   < 0) {
		free_mi_response(resp);
		return init_mi_error(500, MI_SSTR("cannot build the reply"));
	}
	return resp;
}

static mi_response_t *sg_mi_suspend(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	str account;
	str note = {NULL, 0};
	int32_t changed = 0;
	sipguard_status st;

	if(_sg_fraud == NULL)
		return sg_mi_not_ready();
	if(get_mi_string_param(params, "account", &account.s, &account.len) < 0
			|| account.len <= 0)
		return init_mi_param_error();
	if(try_get_mi_string_param(params, "note", &note.s, &note.len) != 0)
		note.len = 0;
	st = sipguard_fraud_suspend(_sg_fraud, account.s, (size_t)account.len,
			sipguard_clock_ns(), &changed);
	if(st == SIPGUARD_ERR_INVALID)
		return init_mi_error(400, MI_SSTR("account name: 1..64 bytes"));
	if(st != SIPGUARD_OK)
		return init_mi_error(500, MI_SSTR("cannot suspend"));
	if(changed && note.len > 0)
		LM_NOTICE("sipguard: account %.*s suspended by MI: %.*s\n", account.len,
				account.s, note.len, note.s);
	return changed ? init_mi_result_ok()
				   : init_mi_result_string(MI_SSTR("already suspended"));
}

static mi_response_t *sg_mi_unsuspend(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	str account;
	sipguard_status st;

	if(_sg_fraud == NULL)
		return sg_mi_not_ready();
	if(get_mi_string_param(params, "account", &account.s, &account.len) < 0
			|| account.len <= 0)
		return init_mi_param_error();
	st = sipguard_fraud_unsuspend(
			_sg_fraud, account.s, (size_t)account.len, sipguard_clock_ns());
	if(st == SIPGUARD_ERR_NOT_FOUND)
		return init_mi_error(404, MI_SSTR("not suspended"));
	if(st != SIPGUARD_OK)
		return init_mi_error(500, MI_SSTR("cannot lift the suspension"));
	return init_mi_result_ok();
}

static mi_response_t *sg_mi_reload_rules(const mi_params_t *params,
		struct mi_handler *async_hdl)
{
	char err[512];
	char ok[64];
	uint32_t prefixes = 0, accounts = 0;
	sipguard_status st;
	const char *m;
	int n;

	if(_sg_fraud == NULL)
		return sg_mi_not_ready();
	err[0] = '\0';
	st = sipguard_fraud_reload(
			_sg_fraud, err, sizeof(err), &prefixes, &accounts);
	if(st != SIPGUARD_OK) {
		err[sizeof(err) - 1] = '\0';
		m = err[0] ? err : sipguard_status_message(st);
		LM_ERR("sipguard: rules reload failed, old rules kept: %s\n", m);
		return init_mi_error(500, m, (int)strlen(m));
	}
	n = snprintf(ok, sizeof(ok), "%u prefixes, %u account rules", prefixes,
			accounts);
	return init_mi_result_string(ok, n);
}

/* clang-format off */
const mi_export_t sipguard_mi_cmds[] = {
	{"sipguard_list", "bans in force (key, reason, remaining seconds or "
		"permanent, offences, hits) and the unbanned sources with the highest "
		"load; optional: top (default 10, max 100), max_bans (default 500)",
		0, 0, {
		{sg_mi_list, {0}},
		{sg_mi_list, {"top", 0}},
		{sg_mi_list, {"max_bans", 0}},
		{sg_mi_list, {"top", "max_bans", 0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_ban", "ban an address now; optional duration: seconds, "
		"30s/5m/2h/1d or permanent (absent or 0: the escalated ban_time)",
		0, 0, {
		{sg_mi_ban, {"addr", 0}},
		{sg_mi_ban, {"addr", "duration", 0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_unban", "lift the ban of an address or of a network "
		"(a prefix ban, as listed: 198.51.100.0/24)", 0, 0, {
		{sg_mi_unban, {"addr", 0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_stats", "counters of the shared table", 0, 0, {
		{sg_mi_stats, {0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_users", "user names with failures within user_findtime, "
		"remaining throttle seconds, times throttled, trusted sources; "
		"optional: max (default 100, at most 1000)", 0, 0, {
		{sg_mi_users, {0}},
		{sg_mi_users, {"max", 0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_unthrottle", "lift the throttle on a user name and forget "
		"its failures", 0, 0, {
		{sg_mi_unthrottle, {"user", 0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_accounts", "toll-fraud accounts: state, reason, calls up, "
		"attempts in the last minute, spend in the last hour, since_ms; "
		"optional: max (default 500)", 0, 0, {
		{sg_mi_accounts, {0}},
		{sg_mi_accounts, {"max", 0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_suspend", "suspend an account's outbound calls now; "
		"optional note (logged)", 0, 0, {
		{sg_mi_suspend, {"account", 0}},
		{sg_mi_suspend, {"account", "note", 0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_unsuspend", "lift an account's suspension", 0, 0, {
		{sg_mi_unsuspend, {"account", 0}},
		{EMPTY_MI_RECIPE}}
	},
	{"sipguard_reload_rules", "re-read the fraud_rules file; on an error "
		"the rules in force stay", 0, 0, {
		{sg_mi_reload_rules, {0}},
		{EMPTY_MI_RECIPE}}
	},
	{EMPTY_MI_EXPORT}
};
/* clang-format on */
