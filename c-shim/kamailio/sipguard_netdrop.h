/*
 * sipguard module - early drop of traffic from banned sources
 */

#ifndef _SIPGUARD_NETDROP_H_
#define _SIPGUARD_NETDROP_H_

/* register the network hooks; call from mod_init (before fork) */
int sipguard_netdrop_init(void);

#endif
