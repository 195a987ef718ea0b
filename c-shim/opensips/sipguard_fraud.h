/* sipguard OpenSIPS module - toll fraud; GPL-2.0-or-later */
#ifndef _SIPGUARD_OSIPS_FRAUD_H_
#define _SIPGUARD_OSIPS_FRAUD_H_

#include "../../parser/msg_parser.h"

/* the event a suspension raises, with the parameters account and reason */
#define SG_EV_SUSPENDED "E_SIPGUARD_ACCOUNT_SUSPENDED"

/* script functions */
int w_sipguard_dial_check(struct sip_msg *msg, str *account, str *number);
int w_sipguard_call_start(struct sip_msg *msg, str *account, int *limit);

/* $sipguard(...) values for msg, NULL when there is none */
const char *sg_fraud_dial_reason(struct sip_msg *msg);
const char *sg_fraud_dial_class(struct sip_msg *msg);
const char *sg_fraud_dial_e164(struct sip_msg *msg);
const char *sg_fraud_call_reason(struct sip_msg *msg);

/* the timer process, once a second: the core's tick, the event */
void sg_fraud_timer(void);

/* mod_init, after _sg_fraud exists */
int sg_fraud_init(void);

#endif
