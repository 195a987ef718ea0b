/*
 * sipguard OpenSIPS module - toll fraud
 *
 *   sipguard_dial_check(account, number)   destination policy + velocity;
 *                                          number "$ru": what the URI dials
 *   sipguard_call_start(account[, limit])  concurrent calls, spend clock
 *   event E_SIPGUARD_ACCOUNT_SUSPENDED     (account, reason), for event_route
 *   a suspension's end of the account's calls up (suspend_ends_calls)
 *   the values of $sipguard(dial_reason|dial_class|dial_e164|call_reason)
 *
 * The decisions are the core's (sipguard_fraud_* in include/sipguard.h).
 * This file finds the values in the SIP message, ties a call to its dialog
 * (dialog module callbacks, so the count drops however the call ends) and
 * raises the event from the timer process.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../dprint.h"
#include "../../locking.h"
#include "../../mem/shm_mem.h"
#include "../../parser/msg_parser.h"
#include "../../parser/parse_to.h"
#include "../../parser/parse_uri.h"
#include "../../evi/evi_modules.h"
#include "../../evi/evi_params.h"
#include "../../route.h"
#include "../dialog/dlg_load.h"

#include "sipguard_ctx.h"
#include "sipguard_fraud.h"
#include "sipguard_guess.h"

/* dialog value marking a dialog whose call is counted: the same dialog's
 * INVITE seen again (a spiral) is not counted twice */
#define SG_DLG_MARKER "sipguard_call"

/* the last end of a call (dialog destruction) retries a busy account
 * this often, pausing between tries */
#define SG_END_TRIES 100
#define SG_END_PAUSE_US 1000

/* dialog callbacks of an admitted call */
#define SG_DLG_CBS \
	(DLGCB_CONFIRMED | DLGCB_TERMINATED | DLGCB_FAILED | DLGCB_EXPIRED)

/* a suspension ends at most this many calls a pass, and makes at most
 * this many passes */
#define SG_ENDS_BATCH 64
#define SG_ENDS_PASSES 4096
/* longest account name (the core's) */
#define SG_NAME_MAX 64

/* what the dialog callbacks get: the core's ticket (first), the account
 * (printable, for the log; raw, for a suspension's end of its calls) and
 * the dialog's identity; linked in _sg_calls while counted up */
typedef struct sg_fraud_call {
	sipguard_call ticket;
	char account[72];
	struct sg_fraud_call *prev;
	struct sg_fraud_call *next;
	int linked;
	int answered;
	int ending;
	unsigned int h_entry;
	unsigned int h_id;
	int name_len;
	char name[SG_NAME_MAX];
} sg_fraud_call_t;

/* the counted calls of all processes, in shm, made in mod_init */
typedef struct sg_calls {
	gen_lock_t lock;
	sg_fraud_call_t *first;
} sg_calls_t;

static sg_calls_t *_sg_calls = NULL;

static struct dlg_binds _sg_dlgb;
static str _sg_dlg_marker = str_init(SG_DLG_MARKER);
static int _sg_dlg_loaded = 0;

static str _sg_ev_suspended_name = str_init(SG_EV_SUSPENDED);
static event_id_t _sg_ev_suspended = EVI_ERROR;
static str _sg_ev_account = str_init("account");
static str _sg_ev_reason = str_init("reason");

/* text of the last check in this process, valid for its message only */
typedef struct sg_last {
	unsigned int msg_id;
	char reason[128];
} sg_last_t;

static sg_last_t _sg_dial;
static sg_last_t _sg_call;
static uint64_t _sg_dial_rate = 0;
/* "+" and the canonical E.164 number of the last URI dial check, or "" */
static char _sg_dial_e164[SIPGUARD_E164_BUF + 1];
static int _sg_dial_class = 0;

static void sg_last_reset(sg_last_t *last, struct sip_msg *msg)
{
	last->reason[0] = '\0';
	last->msg_id = msg ? msg->id : 0;
}

static int sg_last_valid(const sg_last_t *last, struct sip_msg *msg)
{
	return msg != NULL && msg->id == last->msg_id;
}

/* ---- the counted calls ------------------------------------------------- */

static void sg_calls_link(sg_fraud_call_t *call)
{
	lock_get(&_sg_calls->lock);
	call->prev = NULL;
	call->next = _sg_calls->first;
	if(call->next != NULL)
		call->next->prev = call;
	_sg_calls->first = call;
	call->linked = 1;
	lock_release(&_sg_calls->lock);
}

/* idempotent: the first end of the call unlinks it, the free again */
static void sg_calls_unlink(sg_fraud_call_t *call)
{
	lock_get(&_sg_calls->lock);
	if(call->linked) {
		if(call->prev != NULL)
			call->prev->next = call->next;
		else
			_sg_calls->first = call->next;
		if(call->next != NULL)
			call->next->prev = call->prev;
		call->prev = call->next = NULL;
		call->linked = 0;
	}
	lock_release(&_sg_calls->lock);
}

/* end the answered calls up of `account` (raw bytes); how many ended: the
 * dialog module looks each up by its identity (with a reference), sends
 * BYE both ways, and its terminated callback counts the call down here */
static int sg_fraud_end_calls(const char *account, size_t len)
{
	static str reason = str_init("sipguard: account suspended");
	unsigned int ids[SG_ENDS_BATCH][2];
	sg_fraud_call_t *c;
	int ended = 0;
	int pass, n, i;

	if(_sg_calls == NULL || !_sg_dlg_loaded || len == 0 || len > SG_NAME_MAX)
		return 0;
	for(pass = 0; pass < SG_ENDS_PASSES; pass++) {
		n = 0;
		lock_get(&_sg_calls->lock);
		for(c = _sg_calls->first; c != NULL && n < SG_ENDS_BATCH; c = c->next) {
			if(!c->answered || c->ending || c->name_len != (int)len
					|| memcmp(c->name, account, len) != 0)
				continue;
			c->ending = 1;
			ids[n][0] = c->h_entry;
			ids[n][1] = c->h_id;
			n++;
		}
		lock_release(&_sg_calls->lock);
		/* outside the lock: the dialog module calls back into this file */
		for(i = 0; i < n; i++)
			if(_sg_dlgb.terminate_dlg(NULL, ids[i][0], ids[i][1], &reason) > 0)
				ended++;
		if(n < SG_ENDS_BATCH)
			break;
	}
	return ended;
}

/* ---- dialog ------------------------------------------------------------ */

/* in mod_init, before the fork, when the script calls
 * sipguard_call_start(): only a config that uses it needs the dialog
 * module */
static int sg_fraud_load_dialog(void)
{
	if(_sg_dlg_loaded || !is_script_func_used("sipguard_call_start", -1))
		return 0;
	if(load_dlg_api(&_sg_dlgb) != 0) {
		LM_ERR("sipguard_call_start() needs the dialog module: "
			   "loadmodule \"dialog.so\"\n");
		return -1;
	}
	_sg_dlg_loaded = 1;
	return 0;
}

static void sg_fraud_end(sg_fraud_call_t *call, const char *when)
{
	sipguard_status st;

	st = sipguard_fraud_call_end(
			_sg_fraud, &call->ticket, sipguard_clock_ns(), NULL);
	if(st == SIPGUARD_ERR_BUSY)
		LM_WARN("account %s busy at %s: the call is counted down when its "
				"dialog is destroyed\n",
				call->account, when);
	else if(st != SIPGUARD_OK)
		SG_LOG_STATUS("sipguard_fraud_call_end", st);
}

static void sg_fraud_dlg_cb(
		struct dlg_cell *dlg, int type, struct dlg_cb_params *params)
{
	sg_fraud_call_t *call;
	sipguard_status st;

	if(_sg_fraud == NULL || params == NULL || params->param == NULL
			|| *params->param == NULL)
		return;
	call = (sg_fraud_call_t *)*params->param;
	if(type & DLGCB_CONFIRMED) {
		lock_get(&_sg_calls->lock);
		call->answered = 1;
		/* the dialog's identity: final once it is in the dialog table
		 * (OpenSIPS places it there when the INVITE is relayed, after
		 * sipguard_call_start()) */
		call->h_entry = dlg->h_entry;
		call->h_id = dlg->h_id;
		lock_release(&_sg_calls->lock);
		st = sipguard_fraud_call_answered(
				_sg_fraud, &call->ticket, sipguard_clock_ns());
		if(st != SIPGUARD_OK)
			SG_LOG_STATUS("sipguard_fraud_call_answered", st);
		return;
	}
	/* terminated, failed or expired: the first one counts (the core
	 * counts a ticket down once) */
	sg_calls_unlink(call);
	sg_fraud_end(call, "the end of the call");
}

/* the dialog is gone: last resort for an end no callback saw (each may
 * have found the account busy), so a busy account is retried, then free */
static void sg_fraud_dlg_free(void *param)
{
	sg_fraud_call_t *call = (sg_fraud_call_t *)param;
	sipguard_status st = SIPGUARD_OK;
	int i;

	if(call == NULL)
		return;
	sg_calls_unlink(call);
	for(i = 0; _sg_fraud != NULL && i < SG_END_TRIES; i++) {
		st = sipguard_fraud_call_end(
				_sg_fraud, &call->ticket, sipguard_clock_ns(), NULL);
		if(st != SIPGUARD_ERR_BUSY)
			break;
		usleep(SG_END_PAUSE_US);
	}
	if(st == SIPGUARD_ERR_BUSY)
		LM_ERR("sipguard: account %s still busy after %d tries at dialog "
			   "destruction: one call of it stays counted up\n",
				call->account, SG_END_TRIES);
	else if(st != SIPGUARD_OK)
		SG_LOG_STATUS("sipguard_fraud_call_end", st);
	shm_free(call);
}

/* the account for a log line: at most 64 bytes, '?' outside printable
 * ASCII (the core's rule) */
static void sg_fraud_account_copy(char *dst, size_t size, const str *account)
{
	sipguard_account_printable(account->s,
			account->len > 0 ? (size_t)account->len : 0, dst, size);
}

/* ---- script functions --------------------------------------------------- */

/* a URI rather than a number (the core's rule: "sip:", "sips:" or "tel:"
 * first; a number has no ':') */
static int sg_fraud_is_uri(const str *v)
{
	return sipguard_dial_is_uri(v->s, v->len > 0 ? (size_t)v->len : 0);
}

/* the URI as OpenSIPS parsed it, for the core: scheme, user, user=phone,
 * and a tel: URI's parameters (a sip: URI's stay in its user part, where
 * the core reads them) */
static int sg_fraud_dial_uri(sipguard_dial_uri *out, struct sip_uri *u)
{
	memset(out, 0, sizeof(*out));
	out->user = u->user.s;
	out->user_len = u->user.len > 0 ? (size_t)u->user.len : 0;
	switch(u->type) {
		case SIP_URI_T:
		case SIPS_URI_T:
			out->scheme = u->type == SIP_URI_T ? SIPGUARD_URI_SIP
											   : SIPGUARD_URI_SIPS;
			out->user_phone = (u->user_param_val.len == 5
									  && strncasecmp(u->user_param_val.s,
												 "phone", 5)
												 == 0);
			return 0;
		case TEL_URI_T:
		case TELS_URI_T:
			out->scheme = SIPGUARD_URI_TEL;
			out->tel_params = u->params.s;
			out->tel_params_len = u->params.len > 0 ? (size_t)u->params.len : 0;
			return 0;
		default:
			return -1;
	}
}

/* sipguard_dial_check(account, $ru): what the URI dials, as one E.164
 * number; the request's own R-URI is read from OpenSIPS' parse of it */
static int sg_fraud_dial_check_uri(struct sip_msg *msg, str *account,
		str *uri, sipguard_dial_result *res, char *e164, size_t e164_len)
{
	struct sip_uri parsed;
	struct sip_uri *u = &parsed;
	sipguard_dial_uri du;
	str *ruri;

	ruri = (msg != NULL && msg->first_line.type == SIP_REQUEST)
				   ? GET_RURI(msg)
				   : NULL;
	if(ruri != NULL && ruri->len == uri->len
			&& memcmp(ruri->s, uri->s, uri->len) == 0) {
		u = parse_sip_msg_uri(msg) < 0 ? NULL : &msg->parsed_uri;
	} else if(parse_uri(uri->s, uri->len, &parsed) < 0) {
		u = NULL;
	}
	if(u == NULL || sg_fraud_dial_uri(&du, u) < 0) {
		snprintf(_sg_dial.reason, sizeof(_sg_dial.reason), "bad number: %s",
				u == NULL ? "the URI does not parse"
						  : "not a sip, sips or tel URI");
		res->verdict = SIPGUARD_DIAL_NO_RULE;
		return SIPGUARD_OK;
	}
	return sipguard_fraud_dial_check_uri(_sg_fraud, account->s,
			(size_t)account->len, &du, sipguard_clock_ns(), res, e164,
			e164_len, _sg_dial.reason, sizeof(_sg_dial.reason));
}

int w_sipguard_dial_check(struct sip_msg *msg, str *account, str *number)
{
	sipguard_dial_result res;
	sipguard_status st;

	sg_last_reset(&_sg_dial, msg);
	_sg_dial_rate = 0;
	_sg_dial_class = 0;
	_sg_dial_e164[0] = '\0';
	if(_sg_fraud == NULL || account == NULL || number == NULL)
		return SIPGUARD_DIAL_UNAVAILABLE;
	memset(&res, 0, sizeof(res));
	if(sg_fraud_is_uri(number)) {
		/* "+" then the digits */
		_sg_dial_e164[0] = '+';
		st = sg_fraud_dial_check_uri(msg, account, number, &res,
				_sg_dial_e164 + 1, sizeof(_sg_dial_e164) - 1);
		if(_sg_dial_e164[1] == '\0')
			_sg_dial_e164[0] = '\0';
	} else {
		st = sipguard_fraud_dial_check(_sg_fraud, account->s,
				(size_t)account->len, number->s, (size_t)number->len,
				sipguard_clock_ns(), &res, _sg_dial.reason,
				sizeof(_sg_dial.reason));
	}
	if(st != SIPGUARD_OK) {
		SG_LOG_STATUS("sipguard_fraud_dial_check", st);
		snprintf(_sg_dial.reason, sizeof(_sg_dial.reason), "internal error");
		_sg_dial_e164[0] = '\0';
		return SIPGUARD_DIAL_UNAVAILABLE;
	}
	_sg_dial_rate = res.rate;
	_sg_dial_class = res.class_id;
	/* a refusal of the dial check is policy: its reply is no failed guess */
	if(res.verdict < 0)
		sipguard_policy_mark(msg, SIPGUARD_POLICY_403_ONLY);
	return (int)res.verdict;
}

/* rate of the call: the dial check's on this message, else the R-URI's */
static uint64_t sg_fraud_call_rate(struct sip_msg *msg)
{
	uint64_t rate = 0;
	str *user;

	if(sg_last_valid(&_sg_dial, msg))
		return _sg_dial_rate;
	if(parse_sip_msg_uri(msg) < 0)
		return 0;
	user = &msg->parsed_uri.user;
	if(user->s != NULL && user->len > 0
			&& sipguard_fraud_rate(_sg_fraud, user->s, (size_t)user->len, &rate)
					   != SIPGUARD_OK)
		rate = 0;
	return rate;
}

int w_sipguard_call_start(struct sip_msg *msg, str *account, int *limit_p)
{
	struct dlg_cell *dlg;
	sg_fraud_call_t *call;
	sipguard_status st;
	int32_t verdict = SIPGUARD_CALL_UNAVAILABLE;
	int limit = limit_p ? *limit_p : 0;
	int type = 0;
	int_str val;
	uint64_t rate;

	sg_last_reset(&_sg_call, msg);
	if(_sg_fraud == NULL || msg == NULL || account == NULL || !_sg_dlg_loaded)
		return SIPGUARD_CALL_UNAVAILABLE;
	if(limit < 0) {
		snprintf(_sg_call.reason, sizeof(_sg_call.reason), "negative limit");
		return SIPGUARD_CALL_UNAVAILABLE;
	}
	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_INVITE) {
		snprintf(_sg_call.reason, sizeof(_sg_call.reason), "not an INVITE");
		return SIPGUARD_RET_CALL_NO_DIALOG;
	}
	if(parse_to_header(msg) < 0 || get_to(msg)->tag_value.len > 0) {
		snprintf(_sg_call.reason, sizeof(_sg_call.reason),
				"not an initial INVITE (To tag)");
		return SIPGUARD_RET_CALL_NO_DIALOG;
	}
	dlg = _sg_dlgb.get_dlg();
	if(dlg == NULL) {
		snprintf(_sg_call.reason, sizeof(_sg_call.reason),
				"no dialog: call create_dialog() first");
		return SIPGUARD_RET_CALL_NO_DIALOG;
	}
	/* a spiral: the dialog module hands it the dialog whose call is
	 * counted already */
	if(_sg_dlgb.fetch_dlg_value(dlg, &_sg_dlg_marker, &type, &val, 0) == 0) {
		snprintf(_sg_call.reason, sizeof(_sg_call.reason),
				"already counted (same dialog)");
		return SIPGUARD_CALL_ADMITTED;
	}
	rate = sg_fraud_call_rate(msg);
	call = (sg_fraud_call_t *)shm_malloc(sizeof(*call));
	if(call == NULL) {
		LM_ERR("no shared memory for a call\n");
		return SIPGUARD_CALL_UNAVAILABLE;
	}
	memset(call, 0, sizeof(*call));
	sg_fraud_account_copy(call->account, sizeof(call->account), account);
	call->h_entry = dlg->h_entry;
	call->h_id = dlg->h_id;
	call->name_len = account->len > SG_NAME_MAX ? SG_NAME_MAX : account->len;
	if(call->name_len > 0)
		memcpy(call->name, account->s, call->name_len);
	st = sipguard_fraud_call_start(_sg_fraud, account->s, (size_t)account->len,
			(uint32_t)limit, rate, sipguard_clock_ns(), &call->ticket, &verdict,
			_sg_call.reason, sizeof(_sg_call.reason));
	if(st != SIPGUARD_OK || verdict != SIPGUARD_CALL_ADMITTED) {
		if(st != SIPGUARD_OK)
			SG_LOG_STATUS("sipguard_fraud_call_start", st);
		shm_free(call);
		return st == SIPGUARD_OK ? (int)verdict : SIPGUARD_CALL_UNAVAILABLE;
	}
	/* linked first: a callback of this dialog in another process finds it */
	sg_calls_link(call);
	if(_sg_dlgb.register_dlgcb(
			   dlg, SG_DLG_CBS, sg_fraud_dlg_cb, call, sg_fraud_dlg_free)
			!= 0) {
		LM_ERR("cannot register the dialog callbacks: call not counted\n");
		sg_calls_unlink(call);
		sg_fraud_end(call, "registration failure");
		shm_free(call);
		snprintf(_sg_call.reason, sizeof(_sg_call.reason), "dialog error");
		return SIPGUARD_CALL_UNAVAILABLE;
	}
	val.n = 1;
	if(_sg_dlgb.store_dlg_value(dlg, &_sg_dlg_marker, &val, DLG_VAL_TYPE_INT)
			!= 0)
		LM_WARN("cannot mark the dialog of account %s: a spiral of this "
				"call would be counted again\n",
				call->account);
	return SIPGUARD_CALL_ADMITTED;
}

/* ---- values of $sipguard(...) --------------------------------------------- */

const char *sg_fraud_dial_reason(struct sip_msg *msg)
{
	return sg_last_valid(&_sg_dial, msg) ? _sg_dial.reason : NULL;
}

const char *sg_fraud_dial_e164(struct sip_msg *msg)
{
	if(!sg_last_valid(&_sg_dial, msg) || _sg_dial_e164[0] == '\0')
		return NULL;
	return _sg_dial_e164;
}

const char *sg_fraud_dial_class(struct sip_msg *msg)
{
	if(!sg_last_valid(&_sg_dial, msg) || _sg_dial_class == 0)
		return NULL;
	return sipguard_fraud_class_name(_sg_dial_class);
}

const char *sg_fraud_call_reason(struct sip_msg *msg)
{
	return sg_last_valid(&_sg_call, msg) ? _sg_call.reason : NULL;
}

/* ---- event, timer ------------------------------------------------------- */

/* one suspension: its calls ended if the core says so, then the event */
static void sg_fraud_event(void *ctx, const char *account, size_t account_len,
		const char *reason, int end_calls)
{
	evi_params_p params;
	char printable[72];
	str name, why;
	int ended;

	name.s = (char *)account;
	name.len = (int)account_len;
	why.s = (char *)(reason ? reason : "");
	why.len = (int)strlen(why.s);
	if(end_calls) {
		/* the calls already up: money is lost while they last */
		ended = sg_fraud_end_calls(account, account_len);
		sg_fraud_account_copy(printable, sizeof(printable), &name);
		LM_WARN("sipguard: ENDED account=%s reason=%.*s calls=%d\n", printable,
				why.len, why.s, ended);
	}
	if(_sg_ev_suspended == EVI_ERROR || !evi_probe_event(_sg_ev_suspended))
		return;
	params = evi_get_params();
	if(params == NULL)
		return;
	if(evi_param_add_str(params, &_sg_ev_account, &name) < 0
			|| evi_param_add_str(params, &_sg_ev_reason, &why) < 0) {
		LM_ERR("cannot build the " SG_EV_SUSPENDED " parameters\n");
		evi_free_params(params);
		return;
	}
	/* evi_raise_event frees the parameters */
	if(evi_raise_event(_sg_ev_suspended, params) < 0)
		LM_ERR("cannot raise " SG_EV_SUSPENDED "\n");
}

void sg_fraud_timer(void)
{
	sipguard_status st;

	if(_sg_fraud == NULL)
		return;
	st = sipguard_fraud_tick(
			_sg_fraud, sipguard_clock_ns(), sg_fraud_event, NULL);
	if(st != SIPGUARD_OK)
		SG_LOG_STATUS("sipguard_fraud_tick", st);
}

/* ---- life cycle ------------------------------------------------------------ */

int sg_fraud_init(void)
{
	sipguard_fraud_settings fs;

	if(sg_fraud_load_dialog() < 0)
		return -1;
	_sg_calls = (sg_calls_t *)shm_malloc(sizeof(sg_calls_t));
	if(_sg_calls == NULL) {
		LM_ERR("no shared memory for the calls list\n");
		return -1;
	}
	memset(_sg_calls, 0, sizeof(*_sg_calls));
	if(lock_init(&_sg_calls->lock) == NULL) {
		LM_ERR("cannot initialize the lock of the calls list\n");
		shm_free(_sg_calls);
		_sg_calls = NULL;
		return -1;
	}
	/* an event_route[] for it, parsed before mod_init, registered it */
	_sg_ev_suspended = evi_get_id(&_sg_ev_suspended_name);
	if(_sg_ev_suspended == EVI_ERROR)
		_sg_ev_suspended = evi_publish_event(_sg_ev_suspended_name);
	if(_sg_ev_suspended == EVI_ERROR) {
		LM_ERR("cannot publish the event " SG_EV_SUSPENDED "\n");
		return -1;
	}
	memset(&fs, 0, sizeof(fs));
	if(sipguard_fraud_settings_get(_sg_fraud, &fs) == SIPGUARD_OK)
		LM_INFO("toll fraud: %llu accounts (%llu bytes shared), rules %s, "
				"suspensions %s\n",
				(unsigned long long)fs.account_table_size,
				(unsigned long long)fs.bytes, fs.has_rules ? "on" : "off",
				fs.has_state_file ? "saved" : "not saved");
	return 0;
}
