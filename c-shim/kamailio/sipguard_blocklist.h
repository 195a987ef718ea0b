/*
 * sipguard module - the shared blocklist (blocklist_file)
 */

#ifndef _SIPGUARD_BLOCKLIST_H_
#define _SIPGUARD_BLOCKLIST_H_

#include "../../core/rpc.h"
#include "../../core/ip_addr.h"

/* register the blocklist's statistics (mod_init) */
int sipguard_blocklist_init(void);

/* 1 when src is on the blocklist and not allowlisted (counted), else 0 */
int sipguard_blocklisted(const ip_addr_t *src);

/* RPC sipguard.reload_blocklist and sipguard.blocklist */
void sg_blocklist_rpc_reload(rpc_t *rpc, void *c);
void sg_blocklist_rpc_info(rpc_t *rpc, void *c);
extern const char *sg_blocklist_rpc_reload_doc[];
extern const char *sg_blocklist_rpc_info_doc[];

#endif
