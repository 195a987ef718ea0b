/*
 * sipguard module - the context every part of the shim works in
 *
 * The logic lives in the Rust core (include/sipguard.h); these files only
 * adapt it to Kamailio. sipguard_mod.c creates the core's handles in
 * mod_init (before the fork, so every process shares them) and destroys
 * them; the capability files (guess, media, fraud, netdrop) and the
 * RPC/statistics/pseudo-variable files use them through this header and
 * include nothing else of the shim but their own header.
 */

#ifndef _SIPGUARD_CTX_H_
#define _SIPGUARD_CTX_H_

#include "../../core/dprint.h"

#include "sipguard.h"

/* the shared table (bans, rates, guessing state); NULL until mod_init */
extern sipguard_region *_sg_region;

/* the toll-fraud accounts and rules; NULL until mod_init */
extern sipguard_fraud *_sg_fraud;

/* log a core status at error level, with the calling context */
#define SG_LOG_STATUS(ctx, st)                                   \
	LM_ERR("%s failed: %s (%d)\n", (ctx), sipguard_status_message(st), \
			(int)(st))

#endif
