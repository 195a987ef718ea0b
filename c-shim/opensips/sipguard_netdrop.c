/*
 * sipguard OpenSIPS module - early drop (modparam early_drop=1)
 *
 * A message from a banned source is ended before the routing script runs,
 * silently: a pre-script callback (the way pike's automatic mode watches
 * every message) asks the core whether the source is banned and returns
 * SCB_DROP_MSG. OpenSIPS' raw pre-processing callback would run before
 * the parser, but it is not given the source address.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <stdint.h>

#include "../../dprint.h"
#include "../../ip_addr.h"
#include "../../parser/msg_parser.h"
#include "../../script_cb.h"

#include "sipguard_ctx.h"
#include "sipguard_netdrop.h"

/* before the request or reply script: SCB_DROP_MSG ends a banned source's
 * message (the core counts the drop) */
static int sg_pre_script(struct sip_msg *msg, void *param)
{
	int32_t drop = 0;
	sipguard_status st;
	const struct ip_addr *src;

	if(_sg_region == NULL || msg == NULL)
		return SCB_RUN_ALL;
	src = &msg->rcv.src_ip;
	if(src->len != 4 && src->len != 16)
		return SCB_RUN_ALL;
	st = sipguard_drop_check(_sg_region, (const uint8_t *)src->u.addr,
			src->len, sipguard_clock_ns(), &drop);
	if(st != SIPGUARD_OK) {
		/* fail open; BUSY is an expected outcome under contention */
		if(st != SIPGUARD_ERR_BUSY)
			SG_LOG_STATUS("sipguard_drop_check", st);
		return SCB_RUN_ALL;
	}
	return drop ? SCB_DROP_MSG : SCB_RUN_ALL;
}

int sipguard_netdrop_init(void)
{
	if(register_script_cb(sg_pre_script,
			   PRE_SCRIPT_CB | REQ_TYPE_CB | RPL_TYPE_CB, 0)
			!= 0) {
		LM_ERR("cannot register the pre-script callback\n");
		return -1;
	}
	return 0;
}
