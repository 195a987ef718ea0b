/* sipguard OpenSIPS module - guessing defences; GPL-2.0-or-later */
#ifndef _SIPGUARD_OSIPS_GUESS_H_
#define _SIPGUARD_OSIPS_GUESS_H_

#include "../../parser/msg_parser.h"

#include "sipguard.h"

/* the request's fields for the core; -1 if msg is not a request */
int sipguard_request_fill(struct sip_msg *msg, sipguard_request *req);

/* sipguard_policy_reply(), and the mark of the module's own refusals */
int sipguard_policy_mark(struct sip_msg *msg, uint32_t flags);
int w_sipguard_policy_reply(struct sip_msg *msg);

/* script functions */
int w_sipguard_authenticated(struct sip_msg *msg);
int w_sipguard_auth_failed(struct sip_msg *msg);
int w_sipguard_auth_allowed(struct sip_msg *msg);

/* before region create: the challenge like the auth module's own, unless
 * the operator set its nonce length or expiry */
int sipguard_guess_learn_auth(
		sipguard_config *cfg, int nonce_bytes_set, int nonce_expire_set);

/* after region create: the outgoing-message callback */
int sipguard_guess_init(void);

#endif
