/* sipguard OpenSIPS module - early drop; GPL-2.0-or-later */
#ifndef _SIPGUARD_OSIPS_NETDROP_H_
#define _SIPGUARD_OSIPS_NETDROP_H_

/* register the pre-script callback (modparam early_drop=1) */
int sipguard_netdrop_init(void);

#endif
