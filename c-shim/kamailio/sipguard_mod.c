/*
 * sipguard module - exports, parameters, init/destroy, script functions
 *
 * The one place that knows the whole module: the tables Kamailio reads
 * (script functions, parameters, RPC, $sipguard; the KEMI table is in
 * sipguard_kemi.c), the life cycle (mod_init, child_init, the timer
 * process, mod_destroy) and the core's
 * handles it creates there (sipguard_ctx.h). sipguard_check() and
 * sipguard_check_ip() are here too; the other script functions are in
 * their capability's file (guess, media, fraud), early drop in netdrop.
 *
 * This file is part of sipguard, a Kamailio module whose logic is a Rust
 * core reached through include/sipguard.h.
 *
 * sipguard is free software; you can redistribute it and/or modify it under
 * the terms of the GNU General Public License as published by the Free
 * Software Foundation; either version 2 of the License, or (at your option)
 * any later version.
 */

#include <stdio.h>
#include <string.h>
#include <stdint.h>

#include "../../core/sr_module.h"
#include "../../core/dprint.h"
#include "../../core/ut.h"
#include "../../core/ip_addr.h"
#include "../../core/mod_fix.h"
#include "../../core/kemi.h"
#include "../../core/timer_proc.h"
#include "../../core/parser/msg_parser.h"

#include "sipguard_ctx.h"
#include "sipguard_guess.h"
#include "sipguard_media.h"
#include "sipguard_fraud.h"
#include "sipguard_netdrop.h"
#include "sipguard_rpc.h"
#include "sipguard_stats.h"
#include "sipguard_pv.h"
#include "sipguard_cluster.h"
#include "sipguard_kemi.h"

MODULE_VERSION

/* settings the shim acts on, read from the parameter set in mod_init */
static sipguard_settings _sg_settings;

/* parameter set built by the modparam setters; freed in mod_init */
static sipguard_config *_sg_cfg = NULL;

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

static int w_sipguard_check(sip_msg_t *msg, char *p1, char *p2);
static int w_sipguard_check_ip(sip_msg_t *msg, char *addr, char *p2);

/* clang-format off */
static cmd_export_t cmds[] = {
	{"sipguard_check", (cmd_function)w_sipguard_check, 0,
		0, 0, REQUEST_ROUTE|ONREPLY_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_check_ip", (cmd_function)w_sipguard_check_ip, 1,
		fixup_spve_null, fixup_free_spve_null, ANY_ROUTE},
	{"sipguard_sdp_check", (cmd_function)w_sipguard_sdp_check, 0,
		0, 0, REQUEST_ROUTE|ONREPLY_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_sdp_check", (cmd_function)w_sipguard_sdp_check, 1,
		sipguard_fixup_sdp_policy, sipguard_fixup_free_sdp_policy,
		REQUEST_ROUTE|ONREPLY_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_require_tls", (cmd_function)w_sipguard_require_tls, 0,
		0, 0, REQUEST_ROUTE},
	{"sipguard_authenticated", (cmd_function)w_sipguard_authenticated, 0,
		0, 0, REQUEST_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_auth_failed", (cmd_function)w_sipguard_auth_failed, 0,
		0, 0, REQUEST_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_auth_allowed", (cmd_function)w_sipguard_auth_allowed, 0,
		0, 0, REQUEST_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_policy_reply", (cmd_function)w_sipguard_policy_reply, 0,
		0, 0, REQUEST_ROUTE|FAILURE_ROUTE|BRANCH_ROUTE},
	{"sipguard_dial_check", (cmd_function)w_sipguard_dial_check, 2,
		fixup_spve_spve, fixup_free_spve_spve, REQUEST_ROUTE|FAILURE_ROUTE},
	{"sipguard_call_start", (cmd_function)w_sipguard_call_start, 1,
		sipguard_fixup_call_start, sipguard_fixup_free_call_start,
		REQUEST_ROUTE},
	{"sipguard_call_start", (cmd_function)w_sipguard_call_start, 2,
		sipguard_fixup_call_start, sipguard_fixup_free_call_start,
		REQUEST_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static pv_export_t mod_pvs[] = {
	{{"sipguard", sizeof("sipguard") - 1}, PVT_OTHER, pv_get_sipguard, 0,
		pv_parse_sipguard_name, 0, 0, 0},
	{{0, 0}, 0, 0, 0, 0, 0, 0, 0}
};
/* clang-format on */

/*
 * Parameter setters. Every parameter is handed to the core as text; the int
 * form of a modparam (e.g. modparam("sipguard", "ban_time", 300)) is
 * converted to its decimal text first. One setter per name because a
 * PARAM_USE_FUNC setter is not told which name it was registered for.
 */
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

/* challenge settings the operator gave explicitly (else learnt from auth) */
static int _sg_set_nonce_bytes = 0;
static int _sg_set_nonce_expire = 0;
static int _sg_set_algorithm = 0;

/* hand one modparam to the core as text; logs and returns -1 when refused */
static int sg_param_set(const char *name, modparam_t type, void *val)
{
	char num[32];
	char err[256];
	const char *value;
	sipguard_status st;

	if(sg_config_ensure() < 0)
		return -1;

	if(PARAM_TYPE_MASK(type) == PARAM_INT) {
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
	LM_DBG("parameter %s=\"%s\" set\n", name, value);
	if(strncmp(name, "challenge_nonce_", 16) == 0
			&& strcmp(name, "challenge_nonce_expire") != 0)
		_sg_set_nonce_bytes = 1;
	else if(strcmp(name, "challenge_nonce_expire") == 0)
		_sg_set_nonce_expire = 1;
	else if(strcmp(name, "challenge_algorithm") == 0)
		_sg_set_algorithm = 1;
	return 0;
}

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
SG_PARAM_SETTER(cluster)
SG_PARAM_SETTER(blocklist_file)
SG_PARAM_SETTER(blocklist_max)
SG_PARAM_SETTER(baseline_days)
SG_PARAM_SETTER(baseline_table_size)
SG_PARAM_SETTER(anomaly_classes)
SG_PARAM_SETTER(spend_anomaly_factor)
SG_PARAM_SETTER(spend_anomaly_floor)
SG_PARAM_SETTER(anomaly_action)
SG_PARAM_SETTER(baseline_seed_file)
SG_PARAM_SETTER(phone_context_domains)

/* each name twice: find_param_export() matches on the value's type */
#define SG_PARAM(pname)                                                  \
	{#pname, PARAM_STRING | PARAM_USE_FUNC, (void *)sg_param_##pname},  \
	{                                                                    \
		#pname, PARAM_INT | PARAM_USE_FUNC, (void *)sg_param_##pname     \
	}

/* clang-format off */
static param_export_t params[] = {
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
	/* media policy: read by the shim, parsed by the core in mod_init */
	{"sdp_policy", PARAM_STRING | PARAM_USE_FUNC, (void *)sipguard_param_sdp_policy},
	{"tls_contact", PARAM_INT, &_sg_tls_contact},
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
	/* cluster replication over dmq */
	SG_PARAM(cluster),
	/* events for KEMI scripts (sipguard_kemi.c) */
	{"event_callback", PARAM_STR, &_sg_event_callback},
	/* shared blocklist */
	SG_PARAM(blocklist_file),
	SG_PARAM(blocklist_max),
	SG_PARAM(baseline_days),
	SG_PARAM(baseline_table_size),
	SG_PARAM(anomaly_classes),
	SG_PARAM(spend_anomaly_factor),
	SG_PARAM(spend_anomaly_floor),
	SG_PARAM(anomaly_action),
	SG_PARAM(baseline_seed_file),
	SG_PARAM(phone_context_domains),
	{0, 0, 0}
};

struct module_exports exports = {
	"sipguard",        /* module name */
	DEFAULT_DLFLAGS,   /* dlopen flags */
	cmds,              /* cmd (cfg function) exports */
	params,            /* param exports */
	sipguard_rpc_cmds, /* RPC method exports */
	mod_pvs,           /* pseudo-variables exports */
	0,                 /* response handling function */
	mod_init,          /* module init function */
	child_init,        /* per-child init function */
	mod_destroy        /* module destroy function */
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

/* periodic work, in the module's own timer process, once a second */
static void sg_timer(unsigned int ticks, void *param)
{
	static unsigned int since_save = 0;
	sipguard_status st;

	if(_sg_region == NULL)
		return;
	sg_fraud_timer();
	st = sipguard_sweep(_sg_region, sipguard_clock_ns());
	if(st != SIPGUARD_OK && st != SIPGUARD_ERR_BUSY)
		SG_LOG_STATUS("sipguard_sweep", st);

	if(_sg_settings.has_state_file && _sg_settings.save_interval_s > 0) {
		since_save++;
		if(since_save >= _sg_settings.save_interval_s) {
			since_save = 0;
			/* the core logs the reason of an I/O failure itself */
			st = sipguard_state_save(_sg_region, sipguard_clock_ns());
			if(st != SIPGUARD_OK && st != SIPGUARD_ERR_IO)
				SG_LOG_STATUS("sipguard_state_save", st);
		}
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

	if(sipguard_guess_learn_auth(_sg_cfg, _sg_set_nonce_bytes,
			   _sg_set_nonce_expire, _sg_set_algorithm)
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
		/* a parameter refused at start (e.g. a state_file or
		 * fraud_state_file that cannot be written): the text names it */
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
		/* the core logs what it restored, each line it skipped, and why a
		 * file it refused (corrupt, too large, unreadable) was ignored */
		if(st == SIPGUARD_OK) {
			LM_DBG("%u ban(s) restored\n", loaded);
		} else if(st != SIPGUARD_ERR_CORRUPT && st != SIPGUARD_ERR_IO) {
			SG_LOG_STATUS("sipguard_state_load", st);
		}
	}

	if(sipguard_stats_init() < 0)
		return -1;

	if(sipguard_kemi_init() < 0)
		return -1;

	if(sipguard_media_init() < 0)
		return -1;

	if(sipguard_guess_init() < 0)
		return -1;

	/* a dedicated process for the sweep and the periodic save */
	if(register_sync_timers(1) < 0) {
		LM_ERR("cannot register the timer process\n");
		return -1;
	}

	if(_sg_settings.early_drop) {
		if(sipguard_netdrop_init() < 0)
			return -1;
	}

	if(sipguard_cluster_init(_sg_settings.cluster) < 0)
		return -1;

	LM_INFO("table of %llu entries (%llu bytes), early_drop=%u, "
			"state file %s\n",
			(unsigned long long)_sg_settings.table_size,
			(unsigned long long)_sg_settings.region_bytes,
			_sg_settings.early_drop,
			_sg_settings.has_state_file ? "on" : "off");
	return 0;
}

static int child_init(int rank)
{
	sipguard_status st;

	/* In the main process, after Kamailio dropped its privileges (-u/-g)
	 * and before any worker exists: write the state file once, as every
	 * later save will, so a path that cannot be written stops the start
	 * instead of failing every save. mod_init checked the directory as
	 * the user Kamailio started as. */
	if(rank == PROC_INIT && _sg_region != NULL && _sg_settings.has_state_file) {
		st = sipguard_state_save(_sg_region, sipguard_clock_ns());
		if(st != SIPGUARD_OK) {
			LM_ERR("parameter state_file: the state file cannot be written"
				   " by this process (%s, reason above): not starting\n",
					sipguard_status_message(st));
			/* no second failed save in mod_destroy */
			_sg_settings.has_state_file = 0;
			return -1;
		}
		return 0;
	}
	if(rank != PROC_MAIN)
		return 0;
	if(fork_sync_timer(PROC_TIMER, "sipguard timer", 1, sg_timer, NULL, 1)
			< 0) {
		LM_ERR("cannot start the timer process\n");
		return -1;
	}
	if(sipguard_cluster_child_init() < 0)
		return -1;
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
		/* saves suspensions that changed since the timer's last save; with
		 * no event callback the events not yet run stay pending (the timer
		 * process may still run them) */
		sipguard_fraud_tick(_sg_fraud, sipguard_clock_ns(), NULL, NULL);
		sipguard_fraud_destroy(_sg_fraud);
		_sg_fraud = NULL;
	}
}

/* core status -> script value; errors fail open (1) */
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

int ki_sipguard_check(sip_msg_t *msg)
{
	sipguard_check_result res;
	sipguard_request req;
	sipguard_status st;
	ip_addr_t *ip;

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
	return sg_verdict(st, &res);
}

int ki_sipguard_check_ip(sip_msg_t *msg, str *addr)
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

static int w_sipguard_check(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_sipguard_check(msg);
}

static int w_sipguard_check_ip(sip_msg_t *msg, char *addr, char *p2)
{
	str s = STR_NULL;

	if(fixup_get_svalue(msg, (gparam_t *)addr, &s) != 0) {
		LM_ERR("cannot get the address value\n");
		return SIPGUARD_RET_INVALID_ADDRESS;
	}
	return ki_sipguard_check_ip(msg, &s);
}
