/*
 * sipguard OpenSIPS module - exports, parameters, init/destroy, sipguard_check()
 *
 * The one place that knows the whole module: the tables OpenSIPS reads
 * (script functions, parameters, MI commands, statistics), the life cycle
 * (mod_init, the timer process, destroy) and the core's handles it creates
 * there (sipguard_ctx.h). The other script functions are in their
 * capability's file, early drop in sipguard_netdrop.c.
 *
 * This file is part of sipguard, whose logic is a Rust core reached
 * through include/sipguard.h.
 *
 * sipguard is free software; you can redistribute it and/or modify it under
 * the terms of the GNU General Public License as published by the Free
 * Software Foundation; either version 2 of the License, or (at your option)
 * any later version.
 */

#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

#include "../../sr_module.h"
#include "../../dprint.h"
#include "../../ut.h"
#include "../../ip_addr.h"
#include "../../parser/msg_parser.h"

#include "sipguard_ban_event.h"
#include "sipguard_ctx.h"
#include "sipguard_fraud.h"
#include "sipguard_guess.h"
#include "sipguard_media.h"
#include "sipguard_netdrop.h"
#include "sipguard_pv.h"
#include "sipguard_mi.h"
#include "sipguard_stats.h"

/* settings the shim acts on, read from the parameter set in mod_init */
static sipguard_settings _sg_settings;

/* parameter set built by the modparam setters; freed in mod_init */
static sipguard_config *_sg_cfg = NULL;

static int mod_init(void);
static void mod_destroy(void);
static void sg_timer_proc(int rank);

static int w_sipguard_check(struct sip_msg *msg);
static int w_sipguard_check_ip(struct sip_msg *msg, str *addr);

/* clang-format off */
static const cmd_export_t cmds[] = {
	{"sipguard_check", (cmd_function)w_sipguard_check, {{0, 0, 0}},
		REQUEST_ROUTE|ONREPLY_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_check_ip", (cmd_function)w_sipguard_check_ip, {
		{CMD_PARAM_STR, 0, 0}, {0, 0, 0}}, ALL_ROUTES},
	{"sipguard_authenticated", (cmd_function)w_sipguard_authenticated,
		{{0, 0, 0}}, REQUEST_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_auth_failed", (cmd_function)w_sipguard_auth_failed,
		{{0, 0, 0}}, REQUEST_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_auth_allowed", (cmd_function)w_sipguard_auth_allowed,
		{{0, 0, 0}}, REQUEST_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_policy_reply", (cmd_function)w_sipguard_policy_reply,
		{{0, 0, 0}}, REQUEST_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_sdp_check", (cmd_function)w_sipguard_sdp_check, {
		{CMD_PARAM_STR|CMD_PARAM_STATIC|CMD_PARAM_OPT,
			sipguard_fixup_sdp_policy, sipguard_fixup_free_sdp_policy},
		{0, 0, 0}}, REQUEST_ROUTE|ONREPLY_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_require_tls", (cmd_function)w_sipguard_require_tls,
		{{0, 0, 0}}, REQUEST_ROUTE},
	{"sipguard_dial_check", (cmd_function)w_sipguard_dial_check, {
		{CMD_PARAM_STR, 0, 0}, {CMD_PARAM_STR, 0, 0}, {0, 0, 0}},
		REQUEST_ROUTE|FAILURE_ROUTE},
	{"sipguard_call_start", (cmd_function)w_sipguard_call_start, {
		{CMD_PARAM_STR, 0, 0},
		{CMD_PARAM_INT|CMD_PARAM_OPT, 0, 0}, {0, 0, 0}}, REQUEST_ROUTE},
	{0, 0, {{0, 0, 0}}, 0}
};

static const proc_export_t procs[] = {
	{"sipguard timer", 0, 0, sg_timer_proc, 1, 0},
	{0, 0, 0, 0, 0, 0}
};
/* clang-format on */

/* the parameter set, created on first use (first modparam, or mod_init) */
static int sg_config_ensure(void)
{
	sipguard_status st;

	if(_sg_cfg != NULL)
		return 0;
	st = sipguard_config_new(&_sg_cfg);
	if(st != SIPGUARD_OK || _sg_cfg == NULL) {
		_sg_cfg = NULL;
		SG_LOG_STATUS("sipguard_config_new", st);
		return -1;
	}
	return 0;
}

/* challenge settings the operator gave explicitly (else like the auth
 * module's) */
static int _sg_set_nonce_bytes = 0;
static int _sg_set_nonce_expire = 0;

/*
 * Hand one modparam to the core as text (an int value as its decimal
 * text); logs naming the parameter and returns -1 when refused, which
 * stops OpenSIPS.
 */
static int sg_param_set(const char *name, modparam_t type, void *val)
{
	char num[32];
	char err[256];
	const char *value;
	sipguard_status st;

	if(sg_config_ensure() < 0)
		return -1;
	if(PARAM_TYPE_MASK(type) == INT_PARAM) {
		snprintf(num, sizeof(num), "%d", (int)(long)val);
		value = num;
	} else {
		value = (const char *)val;
		if(value == NULL) {
			LM_ERR("parameter %s: missing value\n", name);
			return -1;
		}
	}
	err[0] = '\0';
	st = sipguard_config_set(_sg_cfg, name, strlen(name), value, strlen(value),
			err, sizeof(err));
	if(st != SIPGUARD_OK) {
		err[sizeof(err) - 1] = '\0';
		if(err[0] != '\0')
			LM_ERR("invalid modparam: %s\n", err);
		else
			LM_ERR("invalid modparam %s=\"%s\": %s\n", name, value,
					sipguard_status_message(st));
		return -1;
	}
	if(strcmp(name, "challenge_nonce_expire") == 0)
		_sg_set_nonce_expire = 1;
	else if(strncmp(name, "challenge_nonce_", 16) == 0)
		_sg_set_nonce_bytes = 1;
	return 0;
}

/* a setter per name: a USE_FUNC_PARAM setter is not told its name */
#define SG_PARAM_SETTER(pname)                              \
	static int sg_param_##pname(modparam_t type, void *val) \
	{                                                       \
		return sg_param_set(#pname, type, val);             \
	}

SG_PARAM_SETTER(table_size)
SG_PARAM_SETTER(rate)
SG_PARAM_SETTER(burst)
SG_PARAM_SETTER(ipv6_prefix)
SG_PARAM_SETTER(ban_time)
SG_PARAM_SETTER(ban_factor)
SG_PARAM_SETTER(ban_max)
SG_PARAM_SETTER(ban_permanent)
SG_PARAM_SETTER(ban_forget)
SG_PARAM_SETTER(allow)
SG_PARAM_SETTER(early_drop)
SG_PARAM_SETTER(state_file)
SG_PARAM_SETTER(save_interval)
SG_PARAM_SETTER(ban_prefix_v4)
SG_PARAM_SETTER(ban_prefix_v6)
SG_PARAM_SETTER(ban_prefix_threshold)
SG_PARAM_SETTER(blocklist_file)
SG_PARAM_SETTER(blocklist_max)
SG_PARAM_SETTER(normalize_replies)
SG_PARAM_SETTER(normalize_codes)
SG_PARAM_SETTER(normalize_methods)
SG_PARAM_SETTER(challenge_realm)
SG_PARAM_SETTER(challenge_qop)
SG_PARAM_SETTER(challenge_algorithm)
SG_PARAM_SETTER(challenge_nonce_bytes)
SG_PARAM_SETTER(challenge_nonce_bytes_register)
SG_PARAM_SETTER(challenge_nonce_flags)
SG_PARAM_SETTER(challenge_nonce_expire)
SG_PARAM_SETTER(scanner_user_agents)
SG_PARAM_SETTER(scanner_from_to)
SG_PARAM_SETTER(enum_threshold)
SG_PARAM_SETTER(enum_window)
SG_PARAM_SETTER(auth_maxretry)
SG_PARAM_SETTER(auth_findtime)
SG_PARAM_SETTER(user_maxretry)
SG_PARAM_SETTER(user_findtime)
SG_PARAM_SETTER(user_throttle_time)
SG_PARAM_SETTER(auth_trust_time)
SG_PARAM_SETTER(user_table_size)
SG_PARAM_SETTER(txn_table_size)
SG_PARAM_SETTER(fraud_rules)
SG_PARAM_SETTER(fraud_max_rules)
SG_PARAM_SETTER(account_table_size)
SG_PARAM_SETTER(intl_prefixes)
SG_PARAM_SETTER(home_country_code)
SG_PARAM_SETTER(national_prefix)
SG_PARAM_SETTER(cpm_warning)
SG_PARAM_SETTER(cpm_critical)
SG_PARAM_SETTER(spend_warning)
SG_PARAM_SETTER(spend_critical)
SG_PARAM_SETTER(call_limit)
SG_PARAM_SETTER(fraud_state_file)
SG_PARAM_SETTER(suspend_ends_calls)

/* one entry takes both forms: modparam("sipguard", "rate", "30/2s") and
 * modparam("sipguard", "ban_time", 300) */
#define SG_PARAM(pname)                                               \
	{                                                                 \
		#pname, STR_PARAM | INT_PARAM | USE_FUNC_PARAM,               \
				(void *)sg_param_##pname                              \
	}

/* clang-format off */
static const param_export_t params[] = {
	SG_PARAM(table_size),
	SG_PARAM(rate),
	SG_PARAM(burst),
	SG_PARAM(ipv6_prefix),
	SG_PARAM(ban_time),
	SG_PARAM(ban_factor),
	SG_PARAM(ban_max),
	SG_PARAM(ban_permanent),
	SG_PARAM(ban_forget),
	SG_PARAM(allow),
	SG_PARAM(early_drop),
	SG_PARAM(state_file),
	SG_PARAM(save_interval),
	SG_PARAM(ban_prefix_v4),
	SG_PARAM(ban_prefix_v6),
	SG_PARAM(ban_prefix_threshold),
	/* shared blocklist: loaded at start (early drop and sipguard_check()) */
	SG_PARAM(blocklist_file),
	SG_PARAM(blocklist_max),
	/* guessing defences */
	SG_PARAM(normalize_replies),
	SG_PARAM(normalize_codes),
	SG_PARAM(normalize_methods),
	SG_PARAM(challenge_realm),
	SG_PARAM(challenge_qop),
	SG_PARAM(challenge_algorithm),
	SG_PARAM(challenge_nonce_bytes),
	SG_PARAM(challenge_nonce_bytes_register),
	SG_PARAM(challenge_nonce_flags),
	SG_PARAM(challenge_nonce_expire),
	SG_PARAM(scanner_user_agents),
	SG_PARAM(scanner_from_to),
	SG_PARAM(enum_threshold),
	SG_PARAM(enum_window),
	SG_PARAM(auth_maxretry),
	SG_PARAM(auth_findtime),
	SG_PARAM(user_maxretry),
	SG_PARAM(user_findtime),
	SG_PARAM(user_throttle_time),
	SG_PARAM(auth_trust_time),
	SG_PARAM(user_table_size),
	SG_PARAM(txn_table_size),
	/* media policy: read by the shim, parsed by the core when set */
	{"sdp_policy", STR_PARAM | USE_FUNC_PARAM, (void *)sipguard_param_sdp_policy},
	{"tls_contact", INT_PARAM, &_sg_tls_contact},
	/* toll fraud */
	SG_PARAM(fraud_rules),
	SG_PARAM(fraud_max_rules),
	SG_PARAM(account_table_size),
	SG_PARAM(intl_prefixes),
	SG_PARAM(home_country_code),
	SG_PARAM(national_prefix),
	SG_PARAM(cpm_warning),
	SG_PARAM(cpm_critical),
	SG_PARAM(spend_warning),
	SG_PARAM(spend_critical),
	SG_PARAM(call_limit),
	SG_PARAM(fraud_state_file),
	SG_PARAM(suspend_ends_calls),
	{0, 0, 0}
};

struct module_exports exports = {
	"sipguard",        /* module name */
	MOD_TYPE_DEFAULT,  /* class of this module */
	MODULE_VERSION,
	DEFAULT_DLFLAGS,   /* dlopen flags */
	0,                 /* load function */
	NULL,              /* module dependencies */
	cmds,              /* script functions */
	0,                 /* async script functions */
	params,            /* modparams */
	sipguard_stats_exports, /* statistics */
	sipguard_mi_cmds,  /* MI commands */
	sipguard_pv_exports, /* pseudo-variables */
	0,                 /* transformations */
	procs,             /* extra processes */
	0,                 /* pre-init function */
	mod_init,          /* module init function */
	0,                 /* response function */
	mod_destroy,       /* destroy function */
	0,                 /* per-child init function */
	0                  /* reload confirm function */
};
/* clang-format on */

/* logger callback given to the core; may be called from any process */
static void sg_logger(int level, const char *msg, size_t msg_len)
{
	int len;

	if(msg == NULL)
		return;
	len = (msg_len > 4096) ? 4096 : (int)msg_len;
	/* the core's lines carry no newline */
	if(len > 0 && msg[len - 1] == '\n')
		len--;
	switch(level) {
		case SIPGUARD_LOG_ERR:
			LM_ERR("%.*s\n", len, msg);
			break;
		case SIPGUARD_LOG_WARN:
			LM_WARN("%.*s\n", len, msg);
			break;
		case SIPGUARD_LOG_NOTICE:
			LM_NOTICE("%.*s\n", len, msg);
			break;
		case SIPGUARD_LOG_INFO:
			LM_INFO("%.*s\n", len, msg);
			break;
		default:
			LM_DBG("%.*s\n", len, msg);
			break;
	}
}

/* periodic work, once a second: sweep, and the state file's save */
static void sg_tick(void)
{
	static unsigned int since_save = 0;
	sipguard_status st;

	sg_fraud_timer();
	st = sipguard_sweep(_sg_region, sipguard_clock_ns());
	if(st != SIPGUARD_OK && st != SIPGUARD_ERR_BUSY)
		SG_LOG_STATUS("sipguard_sweep", st);
	if(_sg_settings.has_state_file && _sg_settings.save_interval_s > 0
			&& ++since_save >= _sg_settings.save_interval_s) {
		since_save = 0;
		/* the core logs the reason of an I/O failure itself */
		st = sipguard_state_save(_sg_region, sipguard_clock_ns());
		if(st != SIPGUARD_OK && st != SIPGUARD_ERR_IO)
			SG_LOG_STATUS("sipguard_state_save", st);
	}
}

/* the module's own process: the sweep and the save may take a while on a
 * large table, and OpenSIPS' shared timer process must not wait for them */
static void sg_timer_proc(int rank)
{
	uint64_t next;
	uint64_t now;

	if(_sg_region == NULL)
		return;
	next = sipguard_clock_ns();
	for(;;) {
		next += 1000000000ULL;
		now = sipguard_clock_ns();
		if(next > now)
			usleep((useconds_t)((next - now) / 1000));
		else
			next = now;
		sg_tick();
	}
}

static int mod_init(void)
{
	char err[256];
	char ferr[512];
	sipguard_status st;
	uint32_t loaded = 0;

	sipguard_set_logger(sg_logger);
	/* no modparam given: all defaults */
	if(sg_config_ensure() < 0)
		return -1;
	if(sipguard_guess_learn_auth(
			   _sg_cfg, _sg_set_nonce_bytes, _sg_set_nonce_expire)
			< 0)
		return -1;
	memset(&_sg_settings, 0, sizeof(_sg_settings));
	st = sipguard_config_settings(_sg_cfg, &_sg_settings);
	if(st != SIPGUARD_OK) {
		SG_LOG_STATUS("sipguard_config_settings", st);
		return -1;
	}
	err[0] = '\0';
	st = sipguard_region_create(_sg_cfg, &_sg_region, err, sizeof(err));
	if(st != SIPGUARD_OK || _sg_region == NULL) {
		err[sizeof(err) - 1] = '\0';
		/* a parameter refused at start (e.g. a state_file that cannot be
		 * written): the text names it */
		if(st == SIPGUARD_ERR_INVALID && err[0])
			LM_ERR("invalid configuration: %s\n", err);
		else
			LM_ERR("cannot create the shared table (%llu bytes): %s\n",
					(unsigned long long)_sg_settings.region_bytes,
					err[0] ? err : sipguard_status_message(st));
		_sg_region = NULL;
		return -1;
	}
	ferr[0] = '\0';
	/* the toll-fraud tables are areas of the region's one mapping */
	st = sipguard_region_fraud(
			_sg_region, sipguard_clock_ns(), &_sg_fraud, ferr, sizeof(ferr));
	if(st != SIPGUARD_OK || _sg_fraud == NULL) {
		ferr[sizeof(ferr) - 1] = '\0';
		LM_ERR("%s\n", ferr[0] ? ferr : sipguard_status_message(st));
		_sg_fraud = NULL;
		return -1;
	}
	if(sg_fraud_init() < 0)
		return -1;
	sipguard_config_free(_sg_cfg);
	_sg_cfg = NULL;

	if(_sg_settings.has_state_file) {
		st = sipguard_state_load(_sg_region, sipguard_clock_ns(), &loaded);
		/* the core logs what it restored, and why it ignored a file */
		if(st != SIPGUARD_OK && st != SIPGUARD_ERR_CORRUPT
				&& st != SIPGUARD_ERR_IO)
			SG_LOG_STATUS("sipguard_state_load", st);
		/* write it once now, as every later save will: a path that cannot
		 * be written stops the start instead of failing every save */
		st = sipguard_state_save(_sg_region, sipguard_clock_ns());
		if(st != SIPGUARD_OK) {
			LM_ERR("parameter state_file: the state file cannot be written"
				   " (%s, reason above): not starting\n",
					sipguard_status_message(st));
			_sg_settings.has_state_file = 0;
			return -1;
		}
	}
	if(sipguard_guess_init() < 0 || sipguard_ban_event_init() < 0)
		return -1;
	if(sipguard_media_init() < 0)
		return -1;
	if(_sg_settings.early_drop && sipguard_netdrop_init() < 0)
		return -1;

	LM_INFO("table of %llu entries (%llu bytes), early_drop=%u, "
			"state file %s\n",
			(unsigned long long)_sg_settings.table_size,
			(unsigned long long)_sg_settings.region_bytes,
			_sg_settings.early_drop,
			_sg_settings.has_state_file ? "on" : "off");
	return 0;
}

static void mod_destroy(void)
{
	sipguard_status st;

	if(_sg_cfg != NULL) {
		sipguard_config_free(_sg_cfg);
		_sg_cfg = NULL;
	}
	if(_sg_region == NULL)
		return;
	if(_sg_settings.has_state_file) {
		st = sipguard_state_save(_sg_region, sipguard_clock_ns());
		if(st != SIPGUARD_OK)
			SG_LOG_STATUS("sipguard_state_save", st);
	}
	sipguard_region_destroy(_sg_region);
	_sg_region = NULL;
	sipguard_media_destroy();
	if(_sg_fraud != NULL) {
		/* saves suspensions that changed since the timer's last save */
		sipguard_fraud_tick(_sg_fraud, sipguard_clock_ns(), NULL, NULL);
		sipguard_fraud_destroy(_sg_fraud);
		_sg_fraud = NULL;
	}
}

/* core status -> script value; errors fail open (1). Never 0: in OpenSIPS'
 * script a function returning 0 ends the route. */
static int sg_verdict(sipguard_status st, const sipguard_check_result *res)
{
	if(st == SIPGUARD_OK)
		return (int)res->verdict;
	if(st == SIPGUARD_ERR_INVALID)
		return SIPGUARD_RET_INVALID_ADDRESS;
	if(st != SIPGUARD_ERR_BUSY)
		SG_LOG_STATUS("sipguard_check", st);
	return SIPGUARD_PASS;
}

static int w_sipguard_check(struct sip_msg *msg)
{
	sipguard_check_result res;
	sipguard_request req;
	sipguard_status st;
	struct ip_addr *ip;

	if(msg == NULL || _sg_region == NULL)
		return SIPGUARD_PASS;
	ip = &msg->rcv.src_ip;
	if(ip->len != 4 && ip->len != 16) {
		LM_ERR("unexpected source address length %u\n", ip->len);
		return SIPGUARD_PASS;
	}
	memset(&res, 0, sizeof(res));
	if(sipguard_request_fill(msg, &req) == 0)
		st = sipguard_check_request(_sg_region, ip->u.addr, ip->len, &req,
				sipguard_clock_ns(), &res);
	else
		st = sipguard_check(_sg_region, ip->u.addr, ip->len,
				sipguard_clock_ns(), &res);
	/* the verdicts of a request that banned its source now */
	if(st == SIPGUARD_OK && res.verdict == SIPGUARD_LIMITED)
		sipguard_ban_event(ip, NULL, "flood", res.ban_ms, res.offences);
	else if(st == SIPGUARD_OK && res.verdict == SIPGUARD_SCANNER)
		sipguard_ban_event(ip, NULL, "scanner", res.ban_ms, res.offences);
	else if(st == SIPGUARD_OK && res.verdict == SIPGUARD_ENUMERATION)
		sipguard_ban_event(ip, NULL, "enumeration", res.ban_ms, res.offences);
	return sg_verdict(st, &res);
}

static int w_sipguard_check_ip(struct sip_msg *msg, str *addr)
{
	sipguard_check_result res;
	sipguard_status st;

	if(addr == NULL || addr->s == NULL || addr->len <= 0) {
		LM_ERR("empty address\n");
		return SIPGUARD_RET_INVALID_ADDRESS;
	}
	if(_sg_region == NULL)
		return SIPGUARD_PASS;
	memset(&res, 0, sizeof(res));
	st = sipguard_check_text(_sg_region, addr->s, (size_t)addr->len,
			sipguard_clock_ns(), &res);
	if(st == SIPGUARD_ERR_INVALID)
		LM_ERR("invalid address [%.*s]\n", addr->len, addr->s);
	return sg_verdict(st, &res);
}
