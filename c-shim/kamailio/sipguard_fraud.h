/*
 * sipguard module - toll fraud: sipguard_dial_check(), sipguard_call_start(),
 * event_route[sipguard:account-suspended].
 */

#ifndef _SIPGUARD_FRAUD_H_
#define _SIPGUARD_FRAUD_H_

#include "../../core/parser/msg_parser.h"
#include "../../core/pvar.h"
#include "../../core/sr_module.h"

#include "sipguard.h"

/* the event route run, in the timer process, for each new suspension */
#define SG_EVRT_SUSPENDED "sipguard:account-suspended"

int w_sipguard_dial_check(sip_msg_t *msg, char *account, char *number);
int w_sipguard_call_start(sip_msg_t *msg, char *account, char *limit);
int sipguard_fixup_call_start(void **param, int param_no);
int sipguard_fixup_free_call_start(void **param, int param_no);

/* entries of the module's cmd_export_t array */
#define SG_FRAUD_CMDS                                                          \
	{"sipguard_dial_check", (cmd_function)w_sipguard_dial_check, 2,            \
			fixup_spve_spve, fixup_free_spve_spve, REQUEST_ROUTE | FAILURE_ROUTE}, \
	{"sipguard_call_start", (cmd_function)w_sipguard_call_start, 1,        \
			sipguard_fixup_call_start, sipguard_fixup_free_call_start,         \
			REQUEST_ROUTE},                                                    \
	{                                                                          \
		"sipguard_call_start", (cmd_function)w_sipguard_call_start, 2,         \
				sipguard_fixup_call_start, sipguard_fixup_free_call_start,     \
				REQUEST_ROUTE                                                  \
	}

int ki_sipguard_dial_check(sip_msg_t *msg, str *account, str *number);
int ki_sipguard_call_start(sip_msg_t *msg, str *account, int limit);
int ki_sipguard_call_start_default(sip_msg_t *msg, str *account);

/* entries of the module's sr_kemi_t array (KSR.sipguard.*); with KEMI
 * there is no fixup: sipguard_call_start() finds the dialog API on first use */
#define SG_FRAUD_KEMI                                                          \
	{str_init("sipguard"), str_init("sipguard_dial_check"), SR_KEMIP_INT,      \
			ki_sipguard_dial_check,                                            \
			{SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,         \
					SR_KEMIP_NONE, SR_KEMIP_NONE}},                            \
	{str_init("sipguard"), str_init("sipguard_call_start"), SR_KEMIP_INT,      \
			ki_sipguard_call_start_default,                                    \
			{SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,        \
					SR_KEMIP_NONE, SR_KEMIP_NONE}},                            \
	{                                                                          \
		str_init("sipguard"), str_init("sipguard_call_start_limit"),           \
				SR_KEMIP_INT, ki_sipguard_call_start,                          \
		{                                                                      \
			SR_KEMIP_STR, SR_KEMIP_INT, SR_KEMIP_NONE, SR_KEMIP_NONE,          \
					SR_KEMIP_NONE, SR_KEMIP_NONE                               \
		}                                                                      \
	}

/* in mod_init, once _sg_fraud is created */
int sg_fraud_init(void);
/* once a second in the timer process */
void sg_fraud_timer(void);

/* $sipguard(name) for the fraud names; 0 when `in` is one of them */
int sg_fraud_pv_parse(pv_spec_t *sp, str *in);
int sg_fraud_pv_get(sip_msg_t *msg, pv_param_t *param, pv_value_t *res);
/* PV name numbers at and above this one are the fraud file's */
#define SG_FRAUD_PV_BASE 10

#endif
