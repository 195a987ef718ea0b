/* sipguard OpenSIPS module - $sipguard(name); GPL-2.0-or-later */
#ifndef _SIPGUARD_OSIPS_PV_H_
#define _SIPGUARD_OSIPS_PV_H_

#include "../../pvar.h"

/* the module's pseudo-variables (exports.items) */
extern const pv_export_t sipguard_pv_exports[];

#endif
