/*
 * sipguard module - statistics (group "sipguard")
 */

#ifndef _SIPGUARD_STATS_H_
#define _SIPGUARD_STATS_H_

/* register the statistics; call from mod_init (before fork) */
int sipguard_stats_init(void);

#endif
