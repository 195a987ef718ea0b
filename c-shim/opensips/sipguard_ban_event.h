/* sipguard OpenSIPS module - the ban event; GPL-2.0-or-later */
#ifndef _SIPGUARD_OSIPS_BAN_EVENT_H_
#define _SIPGUARD_OSIPS_BAN_EVENT_H_

#include <stdint.h>

#include "../../ip_addr.h"

/* the event a ban raises: source, reason, duration, offences */
#define SG_EV_BAN "E_SIPGUARD_BAN"

/* mod_init: publish the event */
int sipguard_ban_event_init(void);

/* a ban of src the shim saw start (a request's verdict, a failed
 * authentication, an MI ban): ban_ms UINT64_MAX is permanent */
void sipguard_ban_event(const struct ip_addr *src, const char *src_text,
		const char *reason, uint64_t ban_ms, uint32_t offences);

#endif
