/*
 * sipguard module - the pseudo-variable $sipguard(name)
 *
 *   sdp_reason                         sipguard_sdp_check() on this message
 *   dial_reason, dial_class            sipguard_dial_check() on this message
 *   dial_e164                          the number it judged ("+" E.164), URI form
 *   call_reason                        sipguard_call_start() on this message
 *   account, suspend_reason            in event_route[sipguard:account-suspended]
 *   target_user                        the user name the guessing defences
 *                                      judge for this request
 *   account, anomaly, anomaly_detail   in event_route[sipguard:fraud-anomaly]
 *
 * Each name is read from the capability that keeps it; a name with no
 * value for the message reads as the empty string.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <string.h>

#include "../../core/dprint.h"
#include "../../core/pvar.h"

#include "sipguard_media.h"
#include "sipguard_fraud.h"
#include "sipguard_guess.h"
#include "sipguard_pv.h"

typedef struct sg_pv_name {
	const char *name;
	/* the value for msg, NULL when there is none */
	const char *(*value)(sip_msg_t *msg);
} sg_pv_name_t;

static const sg_pv_name_t _sg_pv_names[] = {
		{"sdp_reason", sipguard_media_sdp_reason},
		{"dial_reason", sg_fraud_dial_reason},
		{"dial_class", sg_fraud_dial_class},
		{"dial_e164", sg_fraud_dial_e164},
		{"call_reason", sg_fraud_call_reason},
		{"account", sg_fraud_suspended_account},
		{"suspend_reason", sg_fraud_suspend_reason},
		{"target_user", sg_guess_target_user},
		{"anomaly", sg_fraud_anomaly},
		{"anomaly_detail", sg_fraud_anomaly_detail},
};
#define SG_PV_COUNT (int)(sizeof(_sg_pv_names) / sizeof(_sg_pv_names[0]))

/* the name's index in _sg_pv_names becomes the variable's name number */
int pv_parse_sipguard_name(pv_spec_t *sp, str *in)
{
	int i;

	if(sp == NULL || in == NULL || in->s == NULL)
		return -1;
	for(i = 0; i < SG_PV_COUNT; i++) {
		if(in->len == (int)strlen(_sg_pv_names[i].name)
				&& strncmp(in->s, _sg_pv_names[i].name, in->len) == 0) {
			sp->pvp.pvn.type = PV_NAME_INTSTR;
			sp->pvp.pvn.u.isname.type = 0;
			sp->pvp.pvn.u.isname.name.n = i;
			return 0;
		}
	}
	LM_ERR("unknown name $sipguard(%.*s): expected sdp_reason, dial_reason, "
		   "dial_class, dial_e164, call_reason, account, suspend_reason, anomaly, "
		   "anomaly_detail or target_user\n",
			in->len, in->s);
	return -1;
}

int pv_get_sipguard(sip_msg_t *msg, pv_param_t *param, pv_value_t *res)
{
	const char *v = NULL;
	int i;

	if(param != NULL) {
		i = param->pvn.u.isname.name.n;
		if(i >= 0 && i < SG_PV_COUNT)
			v = _sg_pv_names[i].value(msg);
	}
	if(v == NULL)
		return pv_get_strempty(msg, param, res);
	return pv_get_strzval(msg, param, res, (char *)v);
}
