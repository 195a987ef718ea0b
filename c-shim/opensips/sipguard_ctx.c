/*
 * sipguard OpenSIPS module - the core's handles (see sipguard_ctx.h)
 *
 * Set and cleared by sipguard_mod.c (mod_init, mod_destroy) only.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include "sipguard_ctx.h"

sipguard_region *_sg_region = NULL;
sipguard_fraud *_sg_fraud = NULL;
