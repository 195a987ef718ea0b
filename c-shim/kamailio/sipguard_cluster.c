/*
 * sipguard module - cluster replication over Kamailio's dmq module
 *
 * With modparam("sipguard", "cluster", 1) the nodes that share a DMQ
 * share their bans. A timer process takes the changes this node queued
 * (the core's bounded queue) within 20 ms, at most once per 100 ms, and
 * broadcasts them as one or a few bodies to the "sipguard" DMQ peer of
 * every other node. A body that
 * arrives is applied by the core only when its source address is one of
 * dmq's nodes (dmq's own dmq_is_from_node(); the From URI, which anyone can
 * write, is not enough). When dmq has its node list, the node asks its
 * peers for their current state (a sync); each peer answers with snapshot
 * chunks sent to it alone.
 *
 * This file is part of sipguard, a Kamailio module whose logic is a Rust
 * core reached through include/sipguard.h.
 *
 * sipguard is free software; you can redistribute it and/or modify it under
 * the terms of the GNU General Public License as published by the Free
 * Software Foundation; either version 2 of the License, or (at your option)
 * any later version.
 */

#include <string.h>
#include <stdint.h>

#include "../../core/sr_module.h"
#include "../../core/dprint.h"
#include "../../core/rpc.h"
#include "../../core/rpc_lookup.h"
#include "../../core/counters.h"
#include "../../core/timer_proc.h"
#include "../../core/ip_addr.h"
#include "../../core/parser/msg_parser.h"
#include "../../core/parser/parse_content.h"
#include "../dmq/bind_dmq.h"

#include "sipguard_ctx.h"
#include "sipguard_cluster.h"

/* Kamailio's list of loaded modules, the latest loaded first */
extern struct sr_module *modules;

static int _sg_cluster_on = 0;
static dmq_api_t _sg_dmq;
static dmq_peer_t *_sg_dmq_peer = NULL;
/* dmq's dmq_is_from_node(): whether a message's source is a dmq node */
static cmd_function _sg_from_node = NULL;
static str _sg_ctype = str_init("text/plain");
/* the transaction's end needs no action: replies are only counted by tm */
static dmq_resp_cback_t _sg_no_resp = {0, 0};

/* a body handed out by the core, sent to one node or (node NULL) to all */
struct sg_send_ctx
{
	dmq_node_t *node;
	int failed;
};

static int sg_send_body(void *ctx, const char *body, size_t len)
{
	struct sg_send_ctx *sc = (struct sg_send_ctx *)ctx;
	str b;
	int r;

	b.s = (char *)body;
	b.len = (int)len;
	if(sc->node != NULL)
		r = _sg_dmq.send_message(
				_sg_dmq_peer, &b, sc->node, &_sg_no_resp, 1, &_sg_ctype);
	else
		r = _sg_dmq.bcast_message(
				_sg_dmq_peer, &b, NULL, &_sg_no_resp, 1, &_sg_ctype);
	if(r < 0)
		sc->failed++;
	return 0;
}

/* Every 20 ms: queued changes leave as a few bodies, at most once per
 * 100 ms. A lone change waits 20 ms at most; a burst is batched, so the
 * message rate stays bounded whatever the rate of changes. */
#define SG_CLUSTER_TICK_US 20000
#define SG_CLUSTER_BATCH_NS 100000000ULL

static void sg_cluster_timer(unsigned int ticks, void *param)
{
	static uint64_t last_sent = 0;
	struct sg_send_ctx sc = {NULL, 0};
	sipguard_cluster_figures f;
	sipguard_status st;
	uint64_t now = sipguard_clock_ns();
	uint32_t n = 0;

	if(_sg_region == NULL || _sg_dmq_peer == NULL)
		return;
	if(now - last_sent < SG_CLUSTER_BATCH_NS)
		return;
	if(sipguard_cluster_info(_sg_region, &f) != SIPGUARD_OK
			|| f.queue_depth == 0)
		return;
	last_sent = now;
	st = sipguard_cluster_outgoing(_sg_region, sg_send_body, &sc, &n);
	if(st != SIPGUARD_OK)
		SG_LOG_STATUS("sipguard_cluster_outgoing", st);
	else if(sc.failed > 0)
		LM_WARN("cluster: %d of %u messages could not be sent\n", sc.failed,
				n);
}

/* dmq has its node list (start, or after losing every node): ask the
 * peers for their bans */
static int sg_cluster_request_sync(void)
{
	struct sg_send_ctx sc = {NULL, 0};
	sipguard_status st;

	if(_sg_region == NULL || _sg_dmq_peer == NULL)
		return 0;
	st = sipguard_cluster_sync_request(_sg_region, sg_send_body, &sc);
	if(st != SIPGUARD_OK) {
		SG_LOG_STATUS("sipguard_cluster_sync_request", st);
		return -1;
	}
	LM_INFO("cluster: sync requested from the peers\n");
	return 0;
}

/* the body of a received request */
static int sg_msg_body(struct sip_msg *msg, str *body)
{
	body->s = get_body(msg);
	if(body->s == NULL)
		return -1;
	body->len = msg->len - (int)(body->s - msg->buf);
	if(msg->content_length != NULL
			&& get_content_length(msg) < (unsigned)body->len)
		body->len = (int)get_content_length(msg);
	return body->len >= 0 ? 0 : -1;
}

static void sg_reply(peer_reponse_t *resp, int code, char *reason)
{
	resp->resp_code = code;
	resp->reason.s = reason;
	resp->reason.len = strlen(reason);
}

/* a KDMQ request to the "sipguard" peer (in a dmq worker process) */
static int sg_cluster_callback(
		struct sip_msg *msg, peer_reponse_t *resp, dmq_node_t *node)
{
	sipguard_cluster_received res;
	struct sg_send_ctx sc = {NULL, 0};
	sipguard_status st;
	ip_addr_t *ip = &msg->rcv.src_ip;
	uint32_t chunks = 0;
	uint32_t trusted;
	str body;

	if(_sg_region == NULL) {
		sg_reply(resp, 500, "Server Internal Error");
		return 0;
	}
	/* the source address must be a dmq node's: the From URI dmq matched
	 * the node by is the sender's word only */
	trusted = (node != NULL && _sg_from_node != NULL
					  && _sg_from_node(msg, NULL, NULL) > 0)
					  ? 1
					  : 0;
	if(sg_msg_body(msg, &body) < 0) {
		body.s = "";
		body.len = 0;
	}
	memset(&res, 0, sizeof(res));
	st = sipguard_cluster_receive(_sg_region, _sg_fraud, ip->u.addr, ip->len,
			trusted,
			body.s, (size_t)body.len, sipguard_clock_ns(), &res);
	if(st != SIPGUARD_OK) {
		if(!trusted)
			LM_WARN("cluster: message from %s refused: not a dmq node\n",
					ip_addr2a(ip));
		sg_reply(resp, 403, "Forbidden");
		return 0;
	}
	if(res.message == 2 && node != NULL) {
		LM_INFO("cluster: peer %s joins: sending it a sync\n", ip_addr2a(ip));
		sc.node = node;
		st = sipguard_cluster_snapshot(_sg_region, _sg_fraud, sipguard_clock_ns(),
				sg_send_body, &sc, &chunks);
		if(st != SIPGUARD_OK)
			SG_LOG_STATUS("sipguard_cluster_snapshot", st);
		else
			LM_INFO("cluster: sync sent to %s in %u message(s)\n",
					ip_addr2a(ip), chunks);
	} else if(res.message == 3 && res.last) {
		LM_INFO("cluster: sync from %s completed\n", ip_addr2a(ip));
	}
	sg_reply(resp, 200, "OK");
	return 0;
}

/* ---- statistics and RPC ----------------------------------------------- */

static sipguard_cluster_figures sg_figures(void)
{
	sipguard_cluster_figures f;

	memset(&f, 0, sizeof(f));
	if(_sg_region == NULL
			|| sipguard_cluster_info(_sg_region, &f) != SIPGUARD_OK)
		memset(&f, 0, sizeof(f));
	return f;
}

#define SG_CLUSTER_STAT(field)                        \
	static counter_val_t sg_cstat_##field(void)       \
	{                                                 \
		return (counter_val_t)sg_figures().field;     \
	}

SG_CLUSTER_STAT(msgs_out)
SG_CLUSTER_STAT(msgs_in)
SG_CLUSTER_STAT(changes_out)
SG_CLUSTER_STAT(changes_in)
SG_CLUSTER_STAT(dropped)
SG_CLUSTER_STAT(refused)
SG_CLUSTER_STAT(queue_depth)

/* clang-format off */
static stat_export_t sg_cluster_stats[] = {
	{"cluster_msgs_out", STAT_IS_FUNC, (stat_var **)sg_cstat_msgs_out},
	{"cluster_msgs_in", STAT_IS_FUNC, (stat_var **)sg_cstat_msgs_in},
	{"cluster_changes_out", STAT_IS_FUNC, (stat_var **)sg_cstat_changes_out},
	{"cluster_changes_in", STAT_IS_FUNC, (stat_var **)sg_cstat_changes_in},
	{"cluster_dropped", STAT_IS_FUNC, (stat_var **)sg_cstat_dropped},
	{"cluster_refused", STAT_IS_FUNC, (stat_var **)sg_cstat_refused},
	{"cluster_queue", STAT_IS_FUNC, (stat_var **)sg_cstat_queue_depth},
	{0, 0, 0}
};
/* clang-format on */

static const char *sg_rpc_cluster_doc[] = {
		"Cluster replication: peers, last message in and out, lag, queue,"
		" drops, sync state",
		0};

static void sg_rpc_cluster(rpc_t *rpc, void *c)
{
	sipguard_cluster_figures f;
	sipguard_cluster_node p;
	void *th, *ah, *ph;
	uint32_t i;

	if(!_sg_cluster_on || _sg_region == NULL) {
		rpc->fault(c, 500, "clustering is off (modparam cluster)");
		return;
	}
	f = sg_figures();
	struct
	{
		const char *name;
		unsigned long long value;
	} figs[] = {{"peers", f.peers}, {"synced", f.synced},
			{"queue_depth", f.queue_depth},
			{"queue_capacity", f.queue_capacity}, {"queued", f.queued},
			{"dropped", f.dropped}, {"msgs_out", f.msgs_out},
			{"changes_out", f.changes_out}, {"msgs_in", f.msgs_in},
			{"changes_in", f.changes_in}, {"applied", f.applied},
			{"refused", f.refused}, {"last_out_ms", f.last_out_ms},
			{"last_in_ms", f.last_in_ms}, {"lag_last_us", f.lag_last_us},
			{"lag_max_us", f.lag_max_us}, {"syncs_served", f.syncs_served},
			{"syncs_received", f.syncs_received}};
	if(rpc->add(c, "{", &th) < 0)
		return;
	for(i = 0; i < sizeof(figs) / sizeof(figs[0]); i++)
		if(rpc->struct_add(th, "J", figs[i].name, figs[i].value) < 0)
			return;
	if(rpc->struct_add(th, "[", "nodes", &ah) < 0)
		return;
	for(i = 0; i < 64; i++) {
		memset(&p, 0, sizeof(p));
		if(sipguard_cluster_peer(_sg_region, i, &p) != SIPGUARD_OK)
			break;
		if(rpc->array_add(ah, "{", &ph) < 0)
			return;
		if(rpc->struct_add(ph, "sJJ", "address", p.addr, "last_in_ms",
				   (unsigned long long)p.last_in_ms, "msgs_in",
				   (unsigned long long)p.msgs_in)
				< 0)
			return;
	}
}

/* clang-format off */
static rpc_export_t sg_cluster_rpc[] = {
	{"sipguard.cluster", sg_rpc_cluster, sg_rpc_cluster_doc, 0},
	{0, 0, 0, 0}
};
/* clang-format on */

/* whether dmq was loaded (and so is initialized) before sipguard */
static int sg_dmq_loaded_first(void)
{
	struct sr_module *m;

	/* the list holds the latest loaded module first */
	for(m = modules; m != NULL; m = m->next) {
		if(strcmp(m->exports.name, "sipguard") == 0)
			return find_module_by_name("dmq") != NULL;
		if(strcmp(m->exports.name, "dmq") == 0)
			return 0;
	}
	return 0;
}

int sipguard_cluster_init(int enabled)
{
	dmq_peer_t peer;

	if(rpc_register_array(sg_cluster_rpc) != 0) {
		LM_ERR("cannot register the sipguard.cluster RPC command\n");
		return -1;
	}
	if(!enabled)
		return 0;
	if(!module_loaded("dmq")) {
		LM_ERR("parameter cluster: needs the dmq module: loadmodule "
			   "\"dmq.so\" before sipguard.so\n");
		return -1;
	}
	if(!sg_dmq_loaded_first()) {
		LM_ERR("parameter cluster: the dmq module must be loaded before "
			   "sipguard.so\n");
		return -1;
	}
	if(dmq_load_api(&_sg_dmq) != 0) {
		LM_ERR("parameter cluster: cannot bind the dmq module\n");
		return -1;
	}
	_sg_from_node = find_export("dmq_is_from_node", 0, 0);
	if(_sg_from_node == NULL) {
		LM_ERR("parameter cluster: the dmq module has no dmq_is_from_node\n");
		return -1;
	}
	memset(&peer, 0, sizeof(peer));
	peer.callback = sg_cluster_callback;
	peer.init_callback = sg_cluster_request_sync;
	peer.peer_id.s = "sipguard";
	peer.peer_id.len = 8;
	peer.description.s = "sipguard";
	peer.description.len = 8;
	_sg_dmq_peer = _sg_dmq.register_dmq_peer(&peer);
	if(_sg_dmq_peer == NULL) {
		LM_ERR("parameter cluster: cannot register the sipguard DMQ peer\n");
		return -1;
	}
	if(register_module_stats("sipguard", sg_cluster_stats) != 0) {
		LM_ERR("cannot register the cluster statistics\n");
		return -1;
	}
	if(register_sync_timers(1) < 0) {
		LM_ERR("cannot register the cluster timer process\n");
		return -1;
	}
	_sg_cluster_on = 1;
	return 0;
}

int sipguard_cluster_child_init(void)
{
	if(!_sg_cluster_on)
		return 0;
	if(fork_sync_utimer(PROC_TIMER, "sipguard cluster", 1, sg_cluster_timer,
			   NULL, SG_CLUSTER_TICK_US)
			< 0) {
		LM_ERR("cannot start the cluster timer process\n");
		return -1;
	}
	return 0;
}
