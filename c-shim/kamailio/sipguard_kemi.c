/*
 * sipguard module - KEMI exports and events for KEMI scripts
 *
 * Every script function is exported to KEMI (KSR.sipguard.<name>) by the
 * table below; a function with optional arguments is exported once per
 * form (the KEMI name says which). sipguard's events reach a KEMI script
 * through the event_callback parameter, as in other Kamailio modules:
 *
 *   modparam("sipguard", "event_callback", "ksr_sipguard_event")
 *   function ksr_sipguard_event(evname) ... end      -- Lua
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <string.h>

#include "../../core/dprint.h"
#include "../../core/kemi.h"
#include "../../core/route.h"
#include "../../core/fmsg.h"
#include "../../core/sr_module.h"

#include "sipguard_kemi.h"
#include "sipguard_guess.h"
#include "sipguard_media.h"
#include "sipguard_fraud.h"

str _sg_event_callback = STR_NULL;

/* one exported function: KEMI name, C function, up to two parameters */
#define SG_KEMI(kname, fn, p1, p2)                                  \
	{                                                               \
		str_init("sipguard"), str_init(kname), SR_KEMIP_INT, (fn),  \
		{                                                           \
			(p1), (p2), SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE, \
					SR_KEMIP_NONE                                   \
		}                                                           \
	}
#define SG_NONE SR_KEMIP_NONE
#define SG_STR SR_KEMIP_STR
#define SG_INT SR_KEMIP_INT

/* clang-format off */
static sr_kemi_t sr_kemi_sipguard_exports[] = {
	/* floods and bans */
	SG_KEMI("sipguard_check", ki_sipguard_check, SG_NONE, SG_NONE),
	SG_KEMI("sipguard_check_ip", ki_sipguard_check_ip, SG_STR, SG_NONE),
	/* media and TLS */
	SG_KEMI("sipguard_sdp_check", ki_sipguard_sdp_check, SG_NONE, SG_NONE),
	SG_KEMI("sipguard_sdp_check_policy", ki_sipguard_sdp_check_policy,
			SG_STR, SG_NONE),
	SG_KEMI("sipguard_require_tls", ki_sipguard_require_tls, SG_NONE, SG_NONE),
	/* guessing defences */
	SG_KEMI("sipguard_authenticated", ki_sipguard_authenticated,
			SG_NONE, SG_NONE),
	SG_KEMI("sipguard_auth_failed", ki_sipguard_auth_failed, SG_NONE, SG_NONE),
	SG_KEMI("sipguard_auth_allowed", ki_sipguard_auth_allowed,
			SG_NONE, SG_NONE),
	SG_KEMI("sipguard_policy_reply", ki_sipguard_policy_reply,
			SG_NONE, SG_NONE),
	/* toll fraud */
	SG_KEMI("sipguard_dial_check", ki_sipguard_dial_check, SG_STR, SG_STR),
	SG_KEMI("sipguard_call_start", ki_sipguard_call_start_default,
			SG_STR, SG_NONE),
	SG_KEMI("sipguard_call_start_limit", ki_sipguard_call_start,
			SG_STR, SG_INT),

	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_sipguard_exports);
	return 0;
}

int sipguard_kemi_init(void)
{
	if(_sg_event_callback.s == NULL || _sg_event_callback.len <= 0)
		return 0;
	if(sr_kemi_eng_get() == NULL) {
		LM_ERR("parameter event_callback=\"%.*s\": the config is not a KEMI "
			   "script (cfgengine native): use event_route[...] blocks\n",
				_sg_event_callback.len, _sg_event_callback.s);
		return -1;
	}
	return 0;
}

int sipguard_event_run(int rt, const char *evname)
{
	sr_kemi_eng_t *keng = NULL;
	sip_msg_t *fmsg;
	str name;
	int backup_rt;
	int ret = 1;

	if(rt < 0) {
		if(_sg_event_callback.s == NULL || _sg_event_callback.len <= 0)
			return 0;
		keng = sr_kemi_eng_get();
		if(keng == NULL)
			return 0;
	}
	if(faked_msg_init() < 0) {
		LM_ERR("cannot make a message for event %s\n", evname);
		return -1;
	}
	fmsg = faked_msg_next();
	backup_rt = get_route_type();
	set_route_type(EVENT_ROUTE);
	if(rt >= 0) {
		run_top_route(event_rt.rlist[rt], fmsg, 0);
	} else {
		name.s = (char *)evname;
		name.len = strlen(evname);
		if(sr_kemi_route(keng, fmsg, EVENT_ROUTE, &_sg_event_callback, &name)
				< 0) {
			LM_ERR("event %s: the KEMI function %.*s failed\n", evname,
					_sg_event_callback.len, _sg_event_callback.s);
			ret = -1;
		}
	}
	set_route_type(backup_rt);
	return ret;
}
