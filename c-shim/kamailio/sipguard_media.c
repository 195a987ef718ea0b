/*
 * sipguard module - encrypted signalling and media:
 *   sipguard_require_tls(), sipguard_sdp_check([policy]), the value of
 *   $sipguard(sdp_reason)
 *
 * The SDP/SRTP decision is the core's (sipguard_sdp_check() in the C ABI);
 * this file finds the body, the Content-Type and the transport in the SIP
 * message and hands them over. One message is handled at a time in a
 * process, so the last reason text is kept in a process-local buffer.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <string.h>

#include "../../core/dprint.h"
#include "../../core/ip_addr.h"
#include "../../core/mem/mem.h"
#include "../../core/parser/msg_parser.h"
#include "../../core/parser/parse_content.h"
#include "../../core/sr_module.h"
#include "../../core/ut.h"

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
static int _sg_sdp_reason_msg_pid = 0;

/* parse a policy spec; on error log it as the named parameter's */
static sipguard_sdp_policy *sg_policy_parse(const char *what, const char *spec)
{
	char err[256];
	sipguard_sdp_policy *policy = NULL;
	sipguard_status st;

	err[0] = '\0';
	st = sipguard_sdp_policy_new(spec, strlen(spec), &policy, err, sizeof(err));
	if(st != SIPGUARD_OK) {
		err[sizeof(err) - 1] = '\0';
		LM_ERR("invalid %s \"%s\": %s\n", what, spec,
				err[0] ? err : sipguard_status_message(st));
		return NULL;
	}
	return policy;
}

/* modparam sdp_policy: checked when set, so `kamailio -c` catches it */
int sipguard_param_sdp_policy(modparam_t type, void *val)
{
	sipguard_sdp_policy *policy;

	if(val == NULL)
		return -1;
	policy = sg_policy_parse("parameter sdp_policy", (const char *)val);
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
		_sg_default_policy = sg_policy_parse("default sdp policy", "");
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
int sipguard_fixup_sdp_policy(void **param, int param_no)
{
	sipguard_sdp_policy *policy;

	if(param_no != 1 || param == NULL || *param == NULL)
		return 0;
	policy = sg_policy_parse("sipguard_sdp_check() policy", (const char *)*param);
	if(policy == NULL)
		return -1;
	*param = (void *)policy;
	return 0;
}

int sipguard_fixup_free_sdp_policy(void **param, int param_no)
{
	if(param_no == 1 && param != NULL && *param != NULL) {
		sipguard_sdp_policy_free((sipguard_sdp_policy *)*param);
		*param = NULL;
	}
	return 0;
}

static int sg_sdp_check(sip_msg_t *msg, const sipguard_sdp_policy *policy)
{
	str ctype = STR_NULL;
	char *body;
	int body_len = 0;
	int32_t verdict = SIPGUARD_SDP_NO_SDP;
	uint32_t flags;
	sipguard_status st;

	_sg_sdp_reason[0] = '\0';
	if(msg == NULL || policy == NULL)
		return SIPGUARD_RET_SDP_ERROR;
	_sg_sdp_reason_msg_id = msg->id;
	_sg_sdp_reason_msg_pid = msg->pid;
	if(parse_headers(msg, HDR_CONTENTTYPE_F | HDR_CONTENTLENGTH_F, 0) == 0
			&& msg->content_type)
		ctype = msg->content_type->body;
	body = get_body(msg);
	if(body != NULL && body >= msg->buf && body <= msg->buf + msg->len)
		body_len = (int)(msg->buf + msg->len - body);
	else
		body = NULL;
	/* bytes after Content-Length are not body (RFC 3261 18.3) */
	if(body != NULL && msg->content_length != NULL
			&& get_content_length(msg) < body_len)
		body_len = (int)get_content_length(msg);
	flags = (msg->rcv.proto == PROTO_TLS || msg->rcv.proto == PROTO_WSS)
					? SIPGUARD_SDP_SIGNALLING_TLS
					: 0;
	st = sipguard_sdp_check(policy, ctype.s, ctype.s ? (size_t)ctype.len : 0,
			(const uint8_t *)body, (size_t)body_len, flags, &verdict,
			_sg_sdp_reason, sizeof(_sg_sdp_reason));
	if(st != SIPGUARD_OK) {
		SG_LOG_STATUS("sipguard_sdp_check", st);
		return SIPGUARD_RET_SDP_ERROR;
	}
	return (int)verdict;
}

int w_sipguard_sdp_check(sip_msg_t *msg, char *policy, char *p2)
{
	return sg_sdp_check(msg, policy ? (const sipguard_sdp_policy *)policy
									: _sg_default_policy);
}

int ki_sipguard_sdp_check(sip_msg_t *msg)
{
	return sg_sdp_check(msg, _sg_default_policy);
}

/*
 * KEMI sipguard_sdp_check_policy(spec): a KEMI script has no fixup, so each
 * process parses a spec the first time it meets it and keeps it, as the
 * fixup of the native function does once at start. A script names a few
 * constant policies; one more than SG_KEMI_POLICIES is parsed and freed on
 * each call (said once in the log).
 */
#define SG_KEMI_POLICIES 16
#define SG_KEMI_SPEC_MAX 512
static struct
{
	char spec[SG_KEMI_SPEC_MAX];
	int len;
	sipguard_sdp_policy *policy;
} _sg_kemi_policies[SG_KEMI_POLICIES];
static int _sg_kemi_policies_n = 0;

int ki_sipguard_sdp_check_policy(sip_msg_t *msg, str *spec)
{
	static int said_full = 0;
	char text[SG_KEMI_SPEC_MAX];
	sipguard_sdp_policy *policy;
	int i, ret;

	if(spec == NULL || spec->s == NULL || spec->len < 0
			|| spec->len >= SG_KEMI_SPEC_MAX) {
		LM_ERR("sipguard_sdp_check_policy(): policy missing or over %d bytes\n",
				SG_KEMI_SPEC_MAX - 1);
		return SIPGUARD_RET_SDP_ERROR;
	}
	for(i = 0; i < _sg_kemi_policies_n; i++) {
		if(_sg_kemi_policies[i].len == spec->len
				&& memcmp(_sg_kemi_policies[i].spec, spec->s, spec->len) == 0)
			return sg_sdp_check(msg, _sg_kemi_policies[i].policy);
	}
	memcpy(text, spec->s, spec->len);
	text[spec->len] = '\0';
	policy = sg_policy_parse("sipguard_sdp_check_policy() policy", text);
	if(policy == NULL)
		return SIPGUARD_RET_SDP_ERROR;
	if(_sg_kemi_policies_n < SG_KEMI_POLICIES) {
		i = _sg_kemi_policies_n++;
		memcpy(_sg_kemi_policies[i].spec, text, spec->len + 1);
		_sg_kemi_policies[i].len = spec->len;
		_sg_kemi_policies[i].policy = policy;
		return sg_sdp_check(msg, policy);
	}
	if(!said_full) {
		said_full = 1;
		LM_WARN("more than %d distinct policies given to "
				"sipguard_sdp_check_policy(): the others are parsed on each "
				"call\n",
				SG_KEMI_POLICIES);
	}
	ret = sg_sdp_check(msg, policy);
	sipguard_sdp_policy_free(policy);
	return ret;
}

/* every Contact header's value must ask for TLS (or there is none) */
static int sg_contacts_want_tls(sip_msg_t *msg)
{
	hdr_field_t *hf;
	int32_t yes = 0;

	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return 0;
	/* no Contact: a query of the bindings, which registers nothing */
	if(msg->contact == NULL)
		return 1;
	for(hf = msg->contact; hf != NULL; hf = next_sibling_hdr(hf)) {
		if(sipguard_contact_wants_tls(hf->body.s, (size_t)hf->body.len, &yes)
						!= SIPGUARD_OK
				|| !yes)
			return 0;
	}
	return 1;
}

static int sg_require_tls(sip_msg_t *msg)
{
	if(msg->rcv.proto != PROTO_TLS && msg->rcv.proto != PROTO_WSS)
		return SG_TLS_NO;
	if(_sg_tls_contact && msg->first_line.type == SIP_REQUEST
			&& msg->first_line.u.request.method_value == METHOD_REGISTER
			&& !sg_contacts_want_tls(msg))
		return SG_TLS_CONTACT_NO;
	return 1;
}

int ki_sipguard_require_tls(sip_msg_t *msg)
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

int w_sipguard_require_tls(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_sipguard_require_tls(msg);
}

/* $sipguard(sdp_reason): the reason of the last check, if made for msg */
const char *sipguard_media_sdp_reason(sip_msg_t *msg)
{
	if(msg == NULL || msg->id != _sg_sdp_reason_msg_id
			|| msg->pid != _sg_sdp_reason_msg_pid)
		return NULL;
	return _sg_sdp_reason;
}
