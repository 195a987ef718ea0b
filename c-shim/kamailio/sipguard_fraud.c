/*
 * sipguard module - toll fraud
 *
 *   sipguard_dial_check(account, number)   destination policy + velocity;
 *                                          number "$ru": what the URI dials
 *   sipguard_call_start(account[, limit])  concurrent calls, spend clock
 *   event_route[sipguard:account-suspended], event_route[sipguard:fraud-anomaly]
 *   a suspension's end of the account's calls up (suspend_ends_calls)
 *   the values of $sipguard(dial_reason|dial_class|dial_e164|call_reason|account|
 *   suspend_reason|anomaly|anomaly_detail), read by sipguard_pv.c
 *
 * The decisions are the core's (sipguard_fraud_* in include/sipguard.h).
 * This file finds the values in the SIP message, ties a call to its dialog
 * (dialog module callbacks, so the count drops however the call ends) and
 * runs the event route (or a KEMI script's event_callback) from the timer
 * process.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../core/dprint.h"
#include "../../core/fmsg.h"
#include "../../core/locking.h"
#include "../../core/mem/shm_mem.h"
#include "../../core/mod_fix.h"
#include "../../core/parser/parse_to.h"
#include "../../core/parser/parse_uri.h"
#include "../../core/route.h"
#include "../../core/rpc.h"
#include "../../core/rpc_lookup.h"
#include "../../core/ut.h"
#include "../../modules/dialog/dlg_hash.h"
#include "../../modules/dialog/dlg_load.h"

#include "sipguard_ctx.h"
#include "sipguard_fraud.h"
#include "sipguard_kemi.h"
#include "sipguard_guess.h"

/* dialog variable marking a dialog whose call is counted: the same dialog's
 * INVITE seen again (a spiral, a retransmission handled by another worker
 * before the transaction existed) is not counted twice */
#define SG_DLG_MARKER "sipguard_call"

/* the last end of a call (dialog destruction) retries a busy account
 * this often, pausing between tries */
#define SG_END_TRIES 100
#define SG_END_PAUSE_US 1000

/* dialog callbacks of an admitted call */
#define SG_DLG_ANSWER (DLGCB_CONFIRMED_NA | DLGCB_CONFIRMED)
#define SG_DLG_CBS                                                  \
	(SG_DLG_ANSWER | DLGCB_TERMINATED | DLGCB_FAILED | DLGCB_EXPIRED \
			| DLGCB_DESTROY)

/* a suspension ends at most this many calls a pass, and makes at most
 * this many passes (64 x 4096 calls) */
#define SG_ENDS_BATCH 64
#define SG_ENDS_PASSES 4096
/* longest account name (the core's) */
#define SG_NAME_MAX 64

/* what the dialog callbacks get: the core's ticket (first: the core is
 * handed its address), the account (for the log, and raw for a
 * suspension's end of its calls) and the dialog's identity; linked in
 * _sg_calls while the call is counted up */
typedef struct sg_fraud_call {
	sipguard_call ticket;
	char account[72];
	struct sg_fraud_call *prev;
	struct sg_fraud_call *next;
	int linked;
	int answered;
	/* a suspension has asked the dialog module to end it */
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
static str _sg_dlg_marked = str_init("1");
static int _sg_dlg_loaded = 0;
static int _sg_evrt_suspended = -1;
static int _sg_evrt_anomaly = -1;

/* text of the last check in this process, valid for its message only */
typedef struct sg_last {
	unsigned int msg_id;
	int msg_pid;
	char reason[128];
} sg_last_t;

static sg_last_t _sg_dial;
static sg_last_t _sg_call;
static uint64_t _sg_dial_rate = 0;
/* "+" and the canonical E.164 number of the last URI dial check, or "" */
static char _sg_dial_e164[SIPGUARD_E164_BUF + 1];
static int _sg_dial_class = 0;

/* the suspension whose event route is running (timer process) */
static char _sg_ev_account[72];
static char _sg_ev_reason[8];
static int _sg_ev_running = 0;
/* the anomaly whose event route is running (timer process) */
static char _sg_ev_anomaly[16];
static char _sg_ev_detail[64];

static void sg_last_reset(sg_last_t *last, sip_msg_t *msg)
{
	last->reason[0] = '\0';
	last->msg_id = msg ? msg->id : 0;
	last->msg_pid = msg ? msg->pid : 0;
}

static int sg_last_valid(const sg_last_t *last, sip_msg_t *msg)
{
	return msg != NULL && msg->id == last->msg_id && msg->pid == last->msg_pid;
}

/* ---- the counted calls ------------------------------------------------- */

static void sg_calls_link(sg_fraud_call_t *call)
{
	if(_sg_calls == NULL)
		return;
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
	if(_sg_calls == NULL)
		return;
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

static void sg_calls_answered(sg_fraud_call_t *call)
{
	if(_sg_calls == NULL)
		return;
	lock_get(&_sg_calls->lock);
	call->answered = 1;
	lock_release(&_sg_calls->lock);
}

/*
 * Ending a dialog by its identity. The dialog API bound here has
 * terminate_dlg(dlg), which needs the dialog's cell, and no way to find a
 * cell by identity with a reference held; a cell pointer kept from the
 * INVITE may be freed by another process meanwhile (the dialog module
 * destroys stale dialogs whatever their references). Its RPC dlg.end_dlg
 * (h_entry, h_id) looks the dialog up with a reference, runs the same
 * terminate (BYE to both sides, then the dialog's terminated callbacks,
 * which count the call down here) and releases it: it is called in
 * process, with a context that hands it the two numbers.
 */
typedef struct sg_rpc_ctx {
	unsigned int args[2];
	int next;
	int fault;
} sg_rpc_ctx_t;

static int sg_rpc_scan(void *ctx, char *fmt, ...)
{
	sg_rpc_ctx_t *c = (sg_rpc_ctx_t *)ctx;
	va_list ap;
	int n = 0;

	va_start(ap, fmt);
	for(; *fmt != '\0'; fmt++) {
		if(*fmt == '*' || *fmt == '.')
			continue;
		if(*fmt != 'd' || c->next >= 2)
			break;
		*va_arg(ap, int *) = (int)c->args[c->next++];
		n++;
	}
	va_end(ap);
	return n;
}

static void sg_rpc_fault(void *ctx, int code, char *fmt, ...)
{
	((sg_rpc_ctx_t *)ctx)->fault = code;
}

static int sg_rpc_send(void *ctx)
{
	return 0;
}

static int sg_rpc_add(void *ctx, char *fmt, ...)
{
	return 0;
}

static int sg_rpc_struct_printf(void *ctx, char *name, char *fmt, ...)
{
	return 0;
}

static rpc_capabilities_t sg_rpc_capabilities(void *ctx)
{
	return 0;
}

static struct rpc_delayed_ctx *sg_rpc_delayed_new(void *ctx)
{
	return NULL;
}

static void sg_rpc_delayed_close(struct rpc_delayed_ctx *dctx)
{
}

static rpc_t _sg_rpc = {
		.fault = sg_rpc_fault,
		.send = sg_rpc_send,
		.add = sg_rpc_add,
		.scan = sg_rpc_scan,
		.rpl_printf = sg_rpc_add,
		.struct_add = sg_rpc_add,
		.array_add = sg_rpc_add,
		.struct_scan = sg_rpc_add,
		.struct_printf = sg_rpc_struct_printf,
		.capabilities = sg_rpc_capabilities,
		.delayed_ctx_new = sg_rpc_delayed_new,
		.delayed_ctx_close = sg_rpc_delayed_close,
};

/* 0 when the dialog module took the dialog's end in hand */
static int sg_dlg_end(rpc_export_t *end, unsigned int h_entry, unsigned int h_id)
{
	sg_rpc_ctx_t c;

	memset(&c, 0, sizeof(c));
	c.args[0] = h_entry;
	c.args[1] = h_id;
	end->function(&_sg_rpc, &c);
	return c.fault == 0 ? 0 : -1;
}

/* end the answered calls up of `account` (raw bytes); how many ended */
static int sg_fraud_end_calls(const char *account, size_t len)
{
	static rpc_export_t *end = NULL;
	unsigned int ids[SG_ENDS_BATCH][2];
	sg_fraud_call_t *c;
	int ended = 0;
	int pass, n, i;

	if(_sg_calls == NULL || len == 0 || len > SG_NAME_MAX)
		return 0;
	if(end == NULL)
		end = rpc_lookup("dlg.end_dlg", sizeof("dlg.end_dlg") - 1);
	if(end == NULL || end->function == NULL) {
		LM_ERR("sipguard: cannot end calls: the dialog module's RPC "
			   "dlg.end_dlg is not there\n");
		return 0;
	}
	for(pass = 0; pass < SG_ENDS_PASSES; pass++) {
		n = 0;
		lock_get(&_sg_calls->lock);
		/* bounded by the calls counted up */
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
		for(i = 0; i < n; i++) {
			if(sg_dlg_end(end, ids[i][0], ids[i][1]) == 0)
				ended++;
		}
		if(n < SG_ENDS_BATCH)
			break;
	}
	return ended;
}

/* ---- dialog ------------------------------------------------------------ */

/* from the fixup of sipguard_call_start() (before the fork), or on first
 * use from KEMI: only a config that uses it needs the dialog module */
static int sg_fraud_load_dialog(void)
{
	if(_sg_dlg_loaded)
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
				"dialog is destroyed\n", call->account, when);
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
	if(type & SG_DLG_ANSWER) {
		sg_calls_answered(call);
		st = sipguard_fraud_call_answered(
				_sg_fraud, &call->ticket, sipguard_clock_ns());
		if(st != SIPGUARD_OK)
			SG_LOG_STATUS("sipguard_fraud_call_answered", st);
		return;
	}
	/* terminated, failed, expired or destroyed: the first one counts */
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
		sleep_us(SG_END_PAUSE_US);
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

/* the URI as Kamailio parsed it, for the core: scheme, user, user=phone and
 * the telephone-subscriber parameters the parser split off the number (a
 * tel: URI's; a user=phone URI's, which phone2tel (on by default) turns
 * into a tel: URI). With phone2tel off the parameters stay in the user
 * part and the core reads them there. */
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
			if(u->flags & URI_SIP_USER_PHONE) {
				out->scheme = SIPGUARD_URI_SIP;
				out->user_phone = 1;
			} else {
				out->scheme = SIPGUARD_URI_TEL;
			}
			out->tel_params = u->params.s;
			out->tel_params_len = u->params.len > 0 ? (size_t)u->params.len : 0;
			return 0;
		default:
			return -1;
	}
}

/* sipguard_dial_check(account, "$ru"): what the URI dials, as one E.164
 * number; the request's own R-URI is read from Kamailio's parse of it */
static int sg_fraud_dial_check_uri(sip_msg_t *msg, str *account, str *uri,
		sipguard_dial_result *res, char *e164, size_t e164_len)
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
		if(parse_sip_msg_uri(msg) < 0)
			u = NULL;
		else
			u = &msg->parsed_uri;
	} else if(parse_uri(uri->s, uri->len, &parsed) < 0) {
		u = NULL;
	}
	if(u == NULL || sg_fraud_dial_uri(&du, u) < 0) {
		snprintf(_sg_dial.reason, sizeof(_sg_dial.reason),
				"bad number: %s", u == NULL ? "the URI does not parse"
											: "not a sip, sips or tel URI");
		res->verdict = SIPGUARD_DIAL_NO_RULE;
		return SIPGUARD_OK;
	}
	return sipguard_fraud_dial_check_uri(_sg_fraud, account->s,
			(size_t)account->len, &du, sipguard_clock_ns(), res, e164, e164_len,
			_sg_dial.reason, sizeof(_sg_dial.reason));
}

int ki_sipguard_dial_check(sip_msg_t *msg, str *account, str *number)
{
	sipguard_dial_result res;
	sipguard_status st;

	sg_last_reset(&_sg_dial, msg);
	_sg_dial_rate = 0;
	_sg_dial_class = 0;
	_sg_dial_e164[0] = '\0';
	if(_sg_fraud == NULL)
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

int w_sipguard_dial_check(sip_msg_t *msg, char *account, char *number)
{
	str a = STR_NULL;
	str n = STR_NULL;

	if(fixup_get_svalue(msg, (gparam_t *)account, &a) != 0
			|| fixup_get_svalue(msg, (gparam_t *)number, &n) != 0) {
		LM_ERR("cannot get the account or the number\n");
		return SIPGUARD_DIAL_UNAVAILABLE;
	}
	return ki_sipguard_dial_check(msg, &a, &n);
}

/* rate of the call: the dial check's on this message, else the R-URI's */
static uint64_t sg_fraud_call_rate(sip_msg_t *msg)
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

int ki_sipguard_call_start(sip_msg_t *msg, str *account, int limit)
{
	struct dlg_cell *dlg;
	sg_fraud_call_t *call;
	sipguard_status st;
	int32_t verdict = SIPGUARD_CALL_UNAVAILABLE;
	uint64_t rate;

	sg_last_reset(&_sg_call, msg);
	if(_sg_fraud == NULL || msg == NULL || sg_fraud_load_dialog() < 0)
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
	/* a re-INVITE: get_dlg() would find the call's dialog */
	if(parse_to_header(msg) < 0 || get_to(msg)->tag_value.len > 0) {
		snprintf(_sg_call.reason, sizeof(_sg_call.reason),
				"not an initial INVITE (To tag)");
		return SIPGUARD_RET_CALL_NO_DIALOG;
	}
	dlg = _sg_dlgb.get_dlg(msg);
	if(dlg == NULL) {
		snprintf(_sg_call.reason, sizeof(_sg_call.reason),
				"no dialog: call dlg_manage() first");
		return SIPGUARD_RET_CALL_NO_DIALOG;
	}
	/* a spiral, or a retransmission that came before the transaction: the
	 * dialog module hands it the dialog whose call is counted already */
	if(_sg_dlgb.get_dlg_varstatus(dlg, &_sg_dlg_marker) == 1) {
		_sg_dlgb.release_dlg(dlg);
		snprintf(_sg_call.reason, sizeof(_sg_call.reason),
				"already counted (same dialog)");
		return SIPGUARD_CALL_ADMITTED;
	}
	rate = sg_fraud_call_rate(msg);
	call = (sg_fraud_call_t *)shm_malloc(sizeof(*call));
	if(call == NULL) {
		SHM_MEM_ERROR;
		_sg_dlgb.release_dlg(dlg);
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
		_sg_dlgb.release_dlg(dlg);
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
		_sg_dlgb.release_dlg(dlg);
		snprintf(_sg_call.reason, sizeof(_sg_call.reason), "dialog error");
		return SIPGUARD_CALL_UNAVAILABLE;
	}
	if(_sg_dlgb.set_dlg_var(dlg, &_sg_dlg_marker, &_sg_dlg_marked) != 0)
		LM_WARN("cannot mark the dialog of account %s: a spiral of this "
				"call would be counted again\n", call->account);
	_sg_dlgb.release_dlg(dlg);
	return SIPGUARD_CALL_ADMITTED;
}

int ki_sipguard_call_start_default(sip_msg_t *msg, str *account)
{
	return ki_sipguard_call_start(msg, account, 0);
}

int w_sipguard_call_start(sip_msg_t *msg, char *account, char *limit)
{
	str a = STR_NULL;
	int l = 0;

	if(fixup_get_svalue(msg, (gparam_t *)account, &a) != 0) {
		LM_ERR("cannot get the account\n");
		return SIPGUARD_CALL_UNAVAILABLE;
	}
	if(limit != NULL && fixup_get_ivalue(msg, (gparam_t *)limit, &l) != 0) {
		LM_ERR("cannot get the limit\n");
		return SIPGUARD_CALL_UNAVAILABLE;
	}
	return ki_sipguard_call_start(msg, &a, l);
}

int sipguard_fixup_call_start(void **param, int param_no)
{
	if(param_no == 1) {
		if(sg_fraud_load_dialog() < 0)
			return -1;
		return fixup_spve_null(param, 1);
	}
	if(param_no == 2)
		return fixup_igp_null(param, 1);
	return 0;
}

int sipguard_fixup_free_call_start(void **param, int param_no)
{
	if(param_no == 1)
		return fixup_free_spve_null(param, 1);
	if(param_no == 2)
		return fixup_free_igp_null(param, 1);
	return 0;
}

/* ---- values of $sipguard(...) --------------------------------------------- */

const char *sg_fraud_dial_reason(sip_msg_t *msg)
{
	return sg_last_valid(&_sg_dial, msg) ? _sg_dial.reason : NULL;
}

const char *sg_fraud_dial_e164(sip_msg_t *msg)
{
	if(!sg_last_valid(&_sg_dial, msg) || _sg_dial_e164[0] == '\0')
		return NULL;
	return _sg_dial_e164;
}

const char *sg_fraud_dial_class(sip_msg_t *msg)
{
	if(!sg_last_valid(&_sg_dial, msg) || _sg_dial_class == 0)
		return NULL;
	return sipguard_fraud_class_name(_sg_dial_class);
}

const char *sg_fraud_call_reason(sip_msg_t *msg)
{
	return sg_last_valid(&_sg_call, msg) ? _sg_call.reason : NULL;
}

const char *sg_fraud_suspended_account(sip_msg_t *msg)
{
	return _sg_ev_running ? _sg_ev_account : NULL;
}

const char *sg_fraud_suspend_reason(sip_msg_t *msg)
{
	return _sg_ev_running && _sg_ev_reason[0] ? _sg_ev_reason : NULL;
}

const char *sg_fraud_anomaly(sip_msg_t *msg)
{
	return _sg_ev_running && _sg_ev_anomaly[0] ? _sg_ev_anomaly : NULL;
}

const char *sg_fraud_anomaly_detail(sip_msg_t *msg)
{
	return _sg_ev_running && _sg_ev_anomaly[0] ? _sg_ev_detail : NULL;
}

/* ---- event route, timer --------------------------------------------------- */

/* run the event route rt (named name, -1: not in the config, then the
 * KEMI event_callback if any) with $sipguard(account) set */
static void sg_fraud_run_event(
		int rt, const char *name, const char *account, size_t account_len)
{
	if(account_len >= sizeof(_sg_ev_account))
		account_len = sizeof(_sg_ev_account) - 1;
	memcpy(_sg_ev_account, account, account_len);
	_sg_ev_account[account_len] = '\0';
	/* the native event route, or a KEMI script's event_callback */
	_sg_ev_running = 1;
	sipguard_event_run(rt, name);
	_sg_ev_running = 0;
}

/* run event_route[sipguard:account-suspended] for one suspension */
static void sg_fraud_event(void *ctx, const char *account, size_t account_len,
		const char *reason, int end_calls)
{
	char printable[72];
	str name;
	int ended;

	snprintf(_sg_ev_reason, sizeof(_sg_ev_reason), "%s", reason ? reason : "");
	if(end_calls) {
		/* the calls already up: money is lost while they last */
		ended = sg_fraud_end_calls(account, account_len);
		name.s = (char *)account;
		name.len = (int)account_len;
		sg_fraud_account_copy(printable, sizeof(printable), &name);
		LM_WARN("sipguard: ENDED account=%s reason=%s calls=%d\n", printable,
				_sg_ev_reason, ended);
	}
	_sg_ev_anomaly[0] = '\0';
	sg_fraud_run_event(_sg_evrt_suspended, SG_EVRT_SUSPENDED, account,
			account_len);
}

/* run event_route[sipguard:fraud-anomaly] for one anomaly */
static void sg_fraud_anomaly_event(void *ctx, const char *account,
		size_t account_len, const char *kind, const char *detail)
{
	snprintf(_sg_ev_anomaly, sizeof(_sg_ev_anomaly), "%s", kind ? kind : "");
	snprintf(_sg_ev_detail, sizeof(_sg_ev_detail), "%s", detail ? detail : "");
	_sg_ev_reason[0] = '\0';
	sg_fraud_run_event(_sg_evrt_anomaly, SG_EVRT_ANOMALY, account, account_len);
}

void sg_fraud_timer(void)
{
	sipguard_status st;

	if(_sg_fraud == NULL)
		return;
	st = sipguard_fraud_tick(_sg_fraud, sipguard_clock_ns(), sg_fraud_event, NULL);
	if(st != SIPGUARD_OK)
		SG_LOG_STATUS("sipguard_fraud_tick", st);
	st = sipguard_fraud_anomaly_events(_sg_fraud, sg_fraud_anomaly_event, NULL);
	if(st != SIPGUARD_OK)
		SG_LOG_STATUS("sipguard_fraud_anomaly_events", st);
}

/* ---- life cycle ------------------------------------------------------------ */

int sg_fraud_init(void)
{
	sipguard_fraud_settings fs;

	_sg_calls = (sg_calls_t *)shm_malloc(sizeof(sg_calls_t));
	if(_sg_calls == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(_sg_calls, 0, sizeof(*_sg_calls));
	if(lock_init(&_sg_calls->lock) == NULL) {
		LM_ERR("cannot initialize the lock of the calls list\n");
		shm_free(_sg_calls);
		_sg_calls = NULL;
		return -1;
	}
	_sg_evrt_suspended = route_lookup(&event_rt, SG_EVRT_SUSPENDED);
	if(_sg_evrt_suspended >= 0 && event_rt.rlist[_sg_evrt_suspended] == NULL)
		_sg_evrt_suspended = -1;
	_sg_evrt_anomaly = route_lookup(&event_rt, SG_EVRT_ANOMALY);
	if(_sg_evrt_anomaly >= 0 && event_rt.rlist[_sg_evrt_anomaly] == NULL)
		_sg_evrt_anomaly = -1;
	memset(&fs, 0, sizeof(fs));
	if(sipguard_fraud_settings_get(_sg_fraud, &fs) == SIPGUARD_OK)
		LM_INFO("toll fraud: %llu accounts (%llu bytes shared), rules %s, "
				"suspensions %s, event_route[" SG_EVRT_SUSPENDED "] %s\n",
				(unsigned long long)fs.account_table_size,
				(unsigned long long)fs.bytes, fs.has_rules ? "on" : "off",
				fs.has_state_file ? "saved" : "not saved",
				_sg_evrt_suspended >= 0 ? "set" : "not set");
	return 0;
}
