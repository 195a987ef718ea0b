/*
 * sipguard OpenSIPS module - encrypted signalling and media:
 *   sipguard_require_tls(), sipguard_sdp_check([policy]), the value of
 *   $sipguard(sdp_reason)
 *
 * The SDP/SRTP decision is the core's (sipguard_sdp_check() in the C ABI);
 * this file finds the body, the Content-Type and the transport in the SIP
 * message as OpenSIPS parsed it and hands them over. One message is handled
 * at a time in a process, so the last reason is kept in a process-local
 * buffer.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <string.h>

#include "../../dprint.h"
#include "../../ip_addr.h"
#include "../../parser/msg_parser.h"
#include "../../parser/parse_content.h"
#include "../../sr_module.h"

#include "sipguard_ctx.h"
#include "sipguard_media.h"
#include "sipguard_guess.h"

/* sipguard_require_tls(): not over TLS / REGISTER contact not TLS */
#define SG_TLS_NO (-1)
#define SG_TLS_CONTACT_NO (-2)

/* modparam tls_contact: a REGISTER's Contact must ask for TLS too */
int _sg_tls_contact = 0;

static sipguard_sdp_policy *_sg_default_policy = NULL;

/* reason of the last check, valid only for the message it was made for */
static char _sg_sdp_reason[256];
static unsigned int _sg_sdp_reason_msg_id = 0;

/* parse a policy spec; on error log it as the named parameter's */
static sipguard_sdp_policy *sg_policy_parse(
		const char *what, const char *spec, size_t len)
{
	char err[256];
	sipguard_sdp_policy *policy = NULL;
	sipguard_status st;

	err[0] = '\0';
	st = sipguard_sdp_policy_new(spec, len, &policy, err, sizeof(err));
	if(st != SIPGUARD_OK) {
		err[sizeof(err) - 1] = '\0';
		LM_ERR("invalid %s \"%.*s\": %s\n", what, (int)len, spec,
				err[0] ? err : sipguard_status_message(st));
		return NULL;
	}
	return policy;
}

/* modparam sdp_policy: checked when set, so `opensips -c` catches it */
int sipguard_param_sdp_policy(modparam_t type, void *val)
{
	sipguard_sdp_policy *policy;

	if(val == NULL)
		return -1;
	policy = sg_policy_parse("parameter sdp_policy", (const char *)val,
			strlen((const char *)val));
	if(policy == NULL)
		return -1;
	sipguard_sdp_policy_free(_sg_default_policy);
	_sg_default_policy = policy;
	return 0;
}

int sipguard_media_init(void)
{
	if(_sg_tls_contact != 0 && _sg_tls_contact != 1) {
		LM_ERR("invalid parameter tls_contact=%d: expected 0 or 1\n",
				_sg_tls_contact);
		return -1;
	}
	if(_sg_default_policy == NULL) {
		_sg_default_policy = sg_policy_parse("default sdp policy", "", 0);
		if(_sg_default_policy == NULL)
			return -1;
	}
	return 0;
}

void sipguard_media_destroy(void)
{
	sipguard_sdp_policy_free(_sg_default_policy);
	_sg_default_policy = NULL;
}

/* fixup of sipguard_sdp_check("spec"): parse the policy once, at start-up */
int sipguard_fixup_sdp_policy(void **param)
{
	sipguard_sdp_policy *policy;
	str *spec = (str *)*param;

	policy = sg_policy_parse(
			"sipguard_sdp_check() policy", spec->s, (size_t)spec->len);
	if(policy == NULL)
		return -1;
	*param = (void *)policy;
	return 0;
}

int sipguard_fixup_free_sdp_policy(void **param)
{
	if(param != NULL && *param != NULL) {
		sipguard_sdp_policy_free((sipguard_sdp_policy *)*param);
		*param = NULL;
	}
	return 0;
}

static int sg_over_tls(struct sip_msg *msg)
{
	return msg->rcv.proto == PROTO_TLS || msg->rcv.proto == PROTO_WSS;
}

int w_sipguard_sdp_check(struct sip_msg *msg, void *policy_param)
{
	const sipguard_sdp_policy *policy;
	str ctype = {NULL, 0};
	str body = {NULL, 0};
	int32_t verdict = SIPGUARD_SDP_NO_SDP;
	sipguard_status st;

	_sg_sdp_reason[0] = '\0';
	policy = policy_param ? (const sipguard_sdp_policy *)policy_param
						  : _sg_default_policy;
	if(msg == NULL || policy == NULL)
		return SIPGUARD_RET_SDP_ERROR;
	_sg_sdp_reason_msg_id = msg->id;
	if(parse_headers(msg, HDR_CONTENTTYPE_F | HDR_CONTENTLENGTH_F, 0) == 0
			&& msg->content_type)
		ctype = msg->content_type->body;
	/* the body as OpenSIPS reads it: cut at Content-Length (RFC 3261
	 * 18.3), none over a stream without Content-Length */
	if(get_body(msg, &body) != 0 || body.s == NULL || body.len < 0) {
		body.s = NULL;
		body.len = 0;
	}
	st = sipguard_sdp_check(policy, ctype.s, ctype.s ? (size_t)ctype.len : 0,
			(const uint8_t *)body.s, (size_t)body.len,
			sg_over_tls(msg) ? SIPGUARD_SDP_SIGNALLING_TLS : 0, &verdict,
			_sg_sdp_reason, sizeof(_sg_sdp_reason));
	if(st != SIPGUARD_OK) {
		SG_LOG_STATUS("sipguard_sdp_check", st);
		return SIPGUARD_RET_SDP_ERROR;
	}
	return (int)verdict;
}

/* every Contact header's value must ask for TLS (or there is none) */
static int sg_contacts_want_tls(struct sip_msg *msg)
{
	struct hdr_field *hf;
	int32_t yes = 0;

	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return 0;
	/* no Contact: a query of the bindings, which registers nothing */
	if(msg->contact == NULL)
		return 1;
	for(hf = msg->contact; hf != NULL; hf = hf->sibling) {
		if(sipguard_contact_wants_tls(hf->body.s, (size_t)hf->body.len, &yes)
						!= SIPGUARD_OK
				|| !yes)
			return 0;
	}
	return 1;
}

static int sg_require_tls(struct sip_msg *msg)
{
	if(!sg_over_tls(msg))
		return SG_TLS_NO;
	if(_sg_tls_contact && msg->first_line.type == SIP_REQUEST
			&& msg->first_line.u.request.method_value == METHOD_REGISTER
			&& !sg_contacts_want_tls(msg))
		return SG_TLS_CONTACT_NO;
	return 1;
}

int w_sipguard_require_tls(struct sip_msg *msg)
{
	int rc;

	if(msg == NULL)
		return SG_TLS_NO;
	rc = sg_require_tls(msg);
	/* the refusal that follows is policy, whoever the user: a phone
	 * retrying it with its credentials is no password guesser */
	if(rc < 0)
		sipguard_policy_mark(msg, SIPGUARD_POLICY_403_ONLY);
	return rc;
}

const char *sipguard_media_sdp_reason(struct sip_msg *msg)
{
	if(msg == NULL || msg->id != _sg_sdp_reason_msg_id)
		return NULL;
	return _sg_sdp_reason;
}
