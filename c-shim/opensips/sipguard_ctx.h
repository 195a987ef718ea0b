/*
 * sipguard OpenSIPS module - the context every part of the shim works in
 *
 * The logic lives in the Rust core (include/sipguard.h); these files only
 * adapt it to OpenSIPS. sipguard_mod.c creates the core's handles in
 * mod_init (before the fork, so every process shares them) and destroys
 * them; the other files use them through this header.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#ifndef _SIPGUARD_OSIPS_CTX_H_
#define _SIPGUARD_OSIPS_CTX_H_

#include "../../dprint.h"

#include "sipguard.h"

/* the shared table (bans, rates, guessing state); NULL until mod_init */
extern sipguard_region *_sg_region;

/* the toll-fraud accounts and rules; NULL until mod_init */
extern sipguard_fraud *_sg_fraud;

/* log a core status at error level, with the calling context */
#define SG_LOG_STATUS(ctx, st) \
	LM_ERR("%s failed: %s (%d)\n", (ctx), sipguard_status_message(st), \
			(int)(st))

#endif
