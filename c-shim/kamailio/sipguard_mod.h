/*
 * sipguard module - shared declarations of the Kamailio shim
 *
 * The logic lives in the Rust core (include/sipguard.h); these files only
 * adapt it to Kamailio: parameters, script functions, RPC, statistics,
 * timers and the early-drop network hooks.
 */

#ifndef _SIPGUARD_MOD_H_
#define _SIPGUARD_MOD_H_

#include "../../core/sr_module.h"

#include "sipguard.h"

/* shared region handle, created in mod_init and inherited by all children */
extern sipguard_region *_sg_region;

/* settings the shim acts on, read from the config in mod_init */
extern sipguard_settings _sg_settings;

/* hand one modparam to the core as text; logs and returns -1 when refused */
int sg_param_set(const char *name, modparam_t type, void *val);

/* log a core status at error level, with the calling context */
#define SG_LOG_STATUS(ctx, st)                                   \
	LM_ERR("%s failed: %s (%d)\n", (ctx), sipguard_status_message(st), \
			(int)(st))

#endif
