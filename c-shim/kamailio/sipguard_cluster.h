/*
 * sipguard module - cluster replication over Kamailio's dmq module
 *
 * This file is part of sipguard, a Kamailio module whose logic is a Rust
 * core reached through include/sipguard.h.
 *
 * sipguard is free software; you can redistribute it and/or modify it under
 * the terms of the GNU General Public License as published by the Free
 * Software Foundation; either version 2 of the License, or (at your option)
 * any later version.
 */

#ifndef _SIPGUARD_CLUSTER_H_
#define _SIPGUARD_CLUSTER_H_

/* mod_init: the RPC command (always); with cluster=1, bind dmq (it must be
 * loaded before sipguard), register the "sipguard" DMQ peer, the
 * statistics and the sender's timer process */
int sipguard_cluster_init(int enabled);

/* child_init(PROC_MAIN): fork the sender's timer process (cluster=1) */
int sipguard_cluster_child_init(void);

#endif
