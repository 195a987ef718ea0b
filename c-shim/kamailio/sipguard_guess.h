/*
 * sipguard module - defences against extension and password guessing
 */

#ifndef _SIPGUARD_GUESS_H_
#define _SIPGUARD_GUESS_H_

#include "../../core/parser/msg_parser.h"
#include "sipguard.h"

/* the header values of a request the core reads; -1 if msg is no request */
int sipguard_request_fill(sip_msg_t *msg, sipguard_request *req);

/* take the challenge form from the auth module, where the operator did not
 * set it on sipguard (call before the region is created) */
int sipguard_guess_learn_auth(sipguard_config *cfg, int nonce_bytes_set,
		int nonce_expire_set, int algorithm_set);

/* $sipguard(target_user): the user name the guessing defences judge for
 * this request (its first 255 bytes); NULL when none */
const char *sg_guess_target_user(sip_msg_t *msg);

/* register the outgoing-data hook (mod_init) */
int sipguard_guess_init(void);

/* mark msg refused by policy: its replies but a digest challenge (with
 * flags SIPGUARD_POLICY_403_ONLY, the refusal of one of the module's own
 * functions: its 403 only) leave unrewritten and uncounted (1, or -1) */
int sipguard_policy_mark(sip_msg_t *msg, uint32_t flags);

int ki_sipguard_policy_reply(sip_msg_t *msg);
int w_sipguard_policy_reply(sip_msg_t *msg, char *p1, char *p2);
int ki_sipguard_authenticated(sip_msg_t *msg);
int ki_sipguard_auth_failed(sip_msg_t *msg);
int ki_sipguard_auth_allowed(sip_msg_t *msg);
int w_sipguard_authenticated(sip_msg_t *msg, char *p1, char *p2);
int w_sipguard_auth_failed(sip_msg_t *msg, char *p1, char *p2);
int w_sipguard_auth_allowed(sip_msg_t *msg, char *p1, char *p2);

#endif
