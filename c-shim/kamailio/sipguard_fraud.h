/*
 * sipguard module - toll fraud: sipguard_dial_check(), sipguard_call_start(),
 * event_route[sipguard:account-suspended], the values of the toll-fraud
 * names of $sipguard(...).
 */

#ifndef _SIPGUARD_FRAUD_H_
#define _SIPGUARD_FRAUD_H_

#include "../../core/parser/msg_parser.h"
#include "../../core/str.h"

/* the event route run, in the timer process, for each new suspension */
#define SG_EVRT_SUSPENDED "sipguard:account-suspended"
/* the event route run, in the timer process, for each anomaly */
#define SG_EVRT_ANOMALY "sipguard:fraud-anomaly"

/* in mod_init, once _sg_fraud is created */
int sg_fraud_init(void);
/* once a second in the timer process */
void sg_fraud_timer(void);

int w_sipguard_dial_check(sip_msg_t *msg, char *account, char *number);
int w_sipguard_call_start(sip_msg_t *msg, char *account, char *limit);
/* the fixup loads the dialog API; with KEMI there is no fixup:
 * sipguard_call_start() finds it on first use */
int sipguard_fixup_call_start(void **param, int param_no);
int sipguard_fixup_free_call_start(void **param, int param_no);

int ki_sipguard_dial_check(sip_msg_t *msg, str *account, str *number);
int ki_sipguard_call_start(sip_msg_t *msg, str *account, int limit);
int ki_sipguard_call_start_default(sip_msg_t *msg, str *account);

/* values of $sipguard(dial_reason|dial_class|dial_e164|call_reason) for this
 * message, of $sipguard(account|suspend_reason) in the event route; NULL
 * when there is none */
const char *sg_fraud_dial_reason(sip_msg_t *msg);
const char *sg_fraud_dial_class(sip_msg_t *msg);
/* "+" and the canonical E.164 number of sipguard_dial_check(account, URI) */
const char *sg_fraud_dial_e164(sip_msg_t *msg);
const char *sg_fraud_call_reason(sip_msg_t *msg);
const char *sg_fraud_suspended_account(sip_msg_t *msg);
const char *sg_fraud_suspend_reason(sip_msg_t *msg);
/* $sipguard(anomaly|anomaly_detail) in event_route[sipguard:fraud-anomaly] */
const char *sg_fraud_anomaly(sip_msg_t *msg);
const char *sg_fraud_anomaly_detail(sip_msg_t *msg);

#endif
