/*
 * sipguard module - encrypted signalling and media (TLS policy, SDP/SRTP check)
 */

#ifndef _SIPGUARD_MEDIA_H_
#define _SIPGUARD_MEDIA_H_

#include "../../core/parser/msg_parser.h"

#include "../../core/sr_module.h"

extern int _sg_tls_contact;

/* setter of the sdp_policy modparam */
int sipguard_param_sdp_policy(modparam_t type, void *val);
/* check tls_contact, make the default policy if none was set; in mod_init */
int sipguard_media_init(void);
void sipguard_media_destroy(void);

int sipguard_fixup_sdp_policy(void **param, int param_no);
int sipguard_fixup_free_sdp_policy(void **param, int param_no);

int w_sipguard_sdp_check(sip_msg_t *msg, char *policy, char *p2);
int ki_sipguard_sdp_check(sip_msg_t *msg);
int ki_sipguard_sdp_check_policy(sip_msg_t *msg, str *spec);
int w_sipguard_require_tls(sip_msg_t *msg, char *p1, char *p2);
int ki_sipguard_require_tls(sip_msg_t *msg);

/* the value of $sipguard(sdp_reason) for msg, NULL when there is none */
const char *sipguard_media_sdp_reason(sip_msg_t *msg);

#endif
