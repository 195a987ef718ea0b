/* sipguard OpenSIPS module - TLS and SDP policy; GPL-2.0-or-later */
#ifndef _SIPGUARD_OSIPS_MEDIA_H_
#define _SIPGUARD_OSIPS_MEDIA_H_

#include "../../sr_module.h"
#include "../../parser/msg_parser.h"

/* modparam tls_contact */
extern int _sg_tls_contact;

/* modparam sdp_policy: parsed (and refused) when set */
int sipguard_param_sdp_policy(modparam_t type, void *val);

/* sipguard_sdp_check([policy]): the policy parsed at start-up */
int sipguard_fixup_sdp_policy(void **param);
int sipguard_fixup_free_sdp_policy(void **param);

int w_sipguard_sdp_check(struct sip_msg *msg, void *policy);
int w_sipguard_require_tls(struct sip_msg *msg);

/* mod_init: the default policy, tls_contact checked */
int sipguard_media_init(void);
void sipguard_media_destroy(void);

/* $sipguard(sdp_reason): the last check's reason if made for msg, or NULL */
const char *sipguard_media_sdp_reason(struct sip_msg *msg);

#endif
