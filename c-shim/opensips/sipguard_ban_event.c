/*
 * sipguard OpenSIPS module - E_SIPGUARD_BAN, for event_route or any EVI
 * subscriber (event_datagram, event_stream, ...)
 *
 * Raised where the shim sees a ban start: sipguard_check() said the
 * request banned its source (-1 flood, -3 scanner, -4 enumeration),
 * sipguard_auth_failed() banned it, or an MI command did. Parameters:
 * source (the address), reason (flood, scanner, enumeration, auth,
 * manual), duration (seconds, or "permanent"), offences. A ban the
 * outgoing-reply callback makes (a counted 401) is logged (the BAN line)
 * but raises no event. Nothing is built when nobody subscribed.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <stdio.h>
#include <string.h>

#include "../../dprint.h"
#include "../../ip_addr.h"
#include "../../evi/evi_modules.h"
#include "../../evi/evi_params.h"

#include "sipguard_ban_event.h"

static str _sg_ev_ban_name = str_init(SG_EV_BAN);
static event_id_t _sg_ev_ban = EVI_ERROR;

int sipguard_ban_event_init(void)
{
	/* an event_route[] for it, parsed before mod_init, registered it */
	_sg_ev_ban = evi_get_id(&_sg_ev_ban_name);
	if(_sg_ev_ban == EVI_ERROR)
		_sg_ev_ban = evi_publish_event(_sg_ev_ban_name);
	if(_sg_ev_ban == EVI_ERROR) {
		LM_ERR("cannot publish the event " SG_EV_BAN "\n");
		return -1;
	}
	return 0;
}

void sipguard_ban_event(const struct ip_addr *src, const char *src_text,
		const char *reason, uint64_t ban_ms, uint32_t offences)
{
	static str p_source = str_init("source");
	static str p_reason = str_init("reason");
	static str p_duration = str_init("duration");
	static str p_offences = str_init("offences");
	char dur[24];
	str s, r, d;
	int n;
	evi_params_p params;

	if(_sg_ev_ban == EVI_ERROR || !evi_probe_event(_sg_ev_ban))
		return;
	s.s = (char *)(src != NULL ? ip_addr2a((struct ip_addr *)src) : src_text);
	if(s.s == NULL)
		return;
	s.len = (int)strlen(s.s);
	r.s = (char *)reason;
	r.len = (int)strlen(reason);
	if(ban_ms == UINT64_MAX)
		n = snprintf(dur, sizeof(dur), "permanent");
	else
		n = snprintf(dur, sizeof(dur), "%llu",
				(unsigned long long)((ban_ms + 999) / 1000));
	d.s = dur;
	d.len = n;
	n = (int)offences;
	params = evi_get_params();
	if(params == NULL)
		return;
	if(evi_param_add_str(params, &p_source, &s) < 0
			|| evi_param_add_str(params, &p_reason, &r) < 0
			|| evi_param_add_str(params, &p_duration, &d) < 0
			|| evi_param_add_int(params, &p_offences, &n) < 0) {
		LM_ERR("cannot build the " SG_EV_BAN " parameters\n");
		evi_free_params(params);
		return;
	}
	if(evi_raise_event(_sg_ev_ban, params) < 0)
		LM_ERR("cannot raise " SG_EV_BAN "\n");
}
