/* sipguard OpenSIPS module - MI commands; GPL-2.0-or-later */
#ifndef _SIPGUARD_OSIPS_MI_H_
#define _SIPGUARD_OSIPS_MI_H_

#include "../../mi/mi.h"

/* the module's MI commands (exports.mi_cmds) */
extern const mi_export_t sipguard_mi_cmds[];

#endif
