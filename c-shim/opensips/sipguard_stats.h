/* sipguard OpenSIPS module - statistics; GPL-2.0-or-later */
#ifndef _SIPGUARD_OSIPS_STATS_H_
#define _SIPGUARD_OSIPS_STATS_H_

#include "../../statistics.h"

/* the module's statistics (exports.stats) */
extern const stat_export_t sipguard_stats_exports[];

#endif
