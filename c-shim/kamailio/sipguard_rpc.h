/*
 * sipguard module - RPC commands (sipguard.*)
 */

#ifndef _SIPGUARD_RPC_H_
#define _SIPGUARD_RPC_H_

#include "../../core/rpc.h"

extern rpc_export_t sipguard_rpc_cmds[];

#endif
