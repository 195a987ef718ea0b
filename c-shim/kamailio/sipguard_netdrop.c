/*
 * sipguard module - early drop (modparam early_drop=1)
 *
 * Traffic from a banned source, or one on the blocklist (blocklist_file),
 * is discarded before the routing script, and for UDP before the SIP parser:
 *
 *  - UDP: SREV_NET_DGRAM_IN runs in the UDP receiver right after recvfrom();
 *    a negative return makes the receiver skip the datagram, silently and
 *    before any allocation or parsing. This hook has a single slot; when
 *    another module holds it, UDP takes the path below.
 *  - everything that reaches receive_msg() (TCP, TLS, WS, raw sockets, and
 *    UDP without the datagram hook): SREV_NET_DATA_IN checks the source and
 *    marks the buffer of a banned one. The core parses it, then a pre-script
 *    callback ends a marked message before the script runs, silently. The
 *    single-slot SREV_RCV_NOSIP hook is left to modules that need it (nosip,
 *    sipcapture): non-SIP data from a banned TCP source gets the core's
 *    parse-error handling.
 *
 *    (Cutting the buffer length to 0 in SREV_NET_DATA_IN would skip the
 *    parser too, but Kamailio 5.6 then logs "message too short" at INFO and
 *    two parse errors at sip_parser_log level for every dropped message.)
 *
 * Everything here runs in the receiving process; the marker is
 * process-local and only ever refers to the message being received.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <stdint.h>

#include "../../core/dprint.h"
#include "../../core/events.h"
#include "../../core/ip_addr.h"
#include "../../core/parser/msg_parser.h"
#include "../../core/script_cb.h"

#include "sipguard_ctx.h"
#include "sipguard_netdrop.h"

/* this module holds the SREV_NET_DGRAM_IN slot */
static int _sg_dgram_hook = 0;
/* receive info of the last datagram the UDP hook passed (process-local) */
static const receive_info_t *_sg_dgram_passed = NULL;
/* buffer of the message being received from a banned source, or NULL */
static const char *_sg_drop_buf = NULL;

/* 1 when src is on the blocklist or banned (the core counts the drop),
 * 0 otherwise */
static int sg_banned(const ip_addr_t *src)
{
	int32_t drop = 0;
	sipguard_status st;

	if(_sg_region == NULL || src == NULL || (src->len != 4 && src->len != 16))
		return 0;
	/* the shared blocklist (blocklist_file), then the bans */
	st = sipguard_drop_check(_sg_region, src->u.addr, src->len,
			sipguard_clock_ns(), &drop);
	if(st != SIPGUARD_OK) {
		/* fail open; BUSY is an expected outcome under contention */
		if(st != SIPGUARD_ERR_BUSY)
			SG_LOG_STATUS("sipguard_drop_check", st);
		return 0;
	}
	return drop != 0;
}

/* UDP receiver, before receive_msg(): data is {buf, &len, &rcv_info} */
static int sg_dgram_in(sr_event_param_t *evp)
{
	void **d;
	receive_info_t *rcv;

	if(evp == NULL || evp->data == NULL)
		return 0;
	d = (void **)evp->data;
	rcv = (receive_info_t *)d[2];
	if(rcv == NULL)
		return 0;
	if(sg_banned(&rcv->src_ip)) {
		_sg_dgram_passed = NULL;
		return -1; /* handled: the receiver skips the datagram */
	}
	_sg_dgram_passed = rcv;
	return 0;
}

/* receive_msg(), before parsing: data is the str of the buffer */
static int sg_net_data_in(sr_event_param_t *evp)
{
	str *buf;
	receive_info_t *rcv;

	_sg_drop_buf = NULL;
	if(evp == NULL || evp->data == NULL || evp->rcv == NULL)
		return 0;
	rcv = evp->rcv;
	if(rcv == _sg_dgram_passed) {
		/* this datagram was checked a moment ago by sg_dgram_in() */
		_sg_dgram_passed = NULL;
		return 0;
	}
	if(!sg_banned(&rcv->src_ip))
		return 0;
	buf = (str *)evp->data;
	_sg_drop_buf = buf->s;
	return 0;
}

/* 1 when msg is the marked message (and clears the mark) */
static int sg_take_mark(const sip_msg_t *msg)
{
	const char *mark;

	mark = _sg_drop_buf;
	if(mark == NULL || msg == NULL)
		return 0;
	_sg_drop_buf = NULL;
	return msg->buf == mark;
}

/* before the request/reply script: 0 ends the message quietly */
static int sg_pre_script(sip_msg_t *msg, unsigned int flags, void *param)
{
	return sg_take_mark(msg) ? 0 : 1;
}

int sipguard_netdrop_init(void)
{
	if(sr_event_register_cb(SREV_NET_DGRAM_IN, sg_dgram_in) == 0) {
		_sg_dgram_hook = 1;
	} else {
		LM_INFO("SREV_NET_DGRAM_IN is taken by another module: UDP from "
				"banned sources is dropped after receive\n");
	}
	if(sr_event_register_cb(SREV_NET_DATA_IN, sg_net_data_in) != 0) {
		LM_ERR("cannot register the SREV_NET_DATA_IN callback "
				"(all slots taken)\n");
		return -1;
	}
	if(register_script_cb(
			   sg_pre_script, PRE_SCRIPT_CB | REQUEST_CB | ONREPLY_CB, 0)
			< 0) {
		LM_ERR("cannot register the pre-script callback\n");
		return -1;
	}
	LM_DBG("early drop enabled (datagram hook: %s)\n",
			_sg_dgram_hook ? "yes" : "no");
	return 0;
}
