/*
 * Cluster replication through the C ABI: two regions as two nodes, bodies
 * carried between them by the callbacks, as the Kamailio shim carries them
 * over DMQ.
 */
#include "sipguard.h"

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

struct carry {
	const sipguard_region *to;
	uint32_t trusted;
	uint32_t applied;
	uint32_t message;
};

static const uint8_t PEER[4] = {127, 0, 1, 2};

static int deliver(void *ctx, const char *body, size_t len)
{
	struct carry *c = ctx;
	sipguard_cluster_received r;
	memset(&r, 0, sizeof r);
	if (sipguard_cluster_receive(c->to, NULL, PEER, 4, c->trusted, body, len, sipguard_clock_ns(), &r)
			== SIPGUARD_OK) {
		c->applied += r.applied;
		c->message = r.message;
	}
	return 0;
}

static sipguard_region *node(int cluster)
{
	sipguard_config *cfg = NULL;
	sipguard_region *r = NULL;
	char err[256];
	const char *on = cluster ? "1" : "0";
	CHECK(sipguard_config_new(&cfg) == SIPGUARD_OK);
	CHECK(sipguard_config_set(cfg, "table_size", 10, "1024", 4, err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_config_set(cfg, "cluster", 7, on, 1, err, sizeof err) == SIPGUARD_OK);
	sipguard_settings s;
	CHECK(sipguard_config_settings(cfg, &s) == SIPGUARD_OK && s.cluster == (uint32_t)cluster);
	CHECK(sipguard_region_create(cfg, &r, err, sizeof err) == SIPGUARD_OK);
	sipguard_config_free(cfg);
	return r;
}

int cluster_abi_check(void)
{
	sipguard_region *a = node(1), *b = node(1), *off = node(0);
	uint64_t now = sipguard_clock_ns();
	char err[128];
	uint32_t n = 0;

	CHECK(sipguard_ban(a, "192.0.2.7", 9, 600, now, err, sizeof err) == SIPGUARD_OK);
	/* untrusted: counted, nothing applied */
	struct carry untrusted = {b, 0, 0, 0};
	struct carry trusted = {b, 1, 0, 0};
	CHECK(sipguard_cluster_outgoing(a, deliver, &untrusted, &n) == SIPGUARD_OK && n == 1);
	CHECK(untrusted.applied == 0);
	CHECK(sipguard_ban(a, "192.0.2.8", 9, 600, now, err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_cluster_outgoing(a, deliver, &trusted, &n) == SIPGUARD_OK && n == 1);
	CHECK(trusted.applied == 1 && trusted.message == 1);
	/* a sync: the snapshot holds both bans of A */
	struct carry sync = {b, 1, 0, 0};
	CHECK(sipguard_cluster_sync_request(b, deliver, &(struct carry){a, 1, 0, 0}) == SIPGUARD_OK);
	CHECK(sipguard_cluster_snapshot(a, NULL, now, deliver, &sync, &n) == SIPGUARD_OK && n == 1);
	CHECK(sync.message == 3 && sync.applied == 1);

	sipguard_cluster_figures f;
	CHECK(sipguard_cluster_info(b, &f) == SIPGUARD_OK);
	CHECK(f.refused == 1 && f.msgs_in == 2 && f.peers == 1 && f.synced == 1);
	sipguard_cluster_node p;
	CHECK(sipguard_cluster_peer(b, 0, &p) == SIPGUARD_OK && strcmp(p.addr, "127.0.1.2") == 0);
	CHECK(sipguard_cluster_peer(b, 1, &p) == SIPGUARD_ERR_NOT_FOUND);
	CHECK(sipguard_cluster_info(off, &f) == SIPGUARD_ERR_NOT_FOUND);
	CHECK(sipguard_cluster_outgoing(a, NULL, NULL, &n) == SIPGUARD_ERR_NULL);
	CHECK(sipguard_cluster_receive(b, NULL, PEER, 4, 1, NULL, 5, now, NULL) == SIPGUARD_ERR_NULL);

	sipguard_region_destroy(a);
	sipguard_region_destroy(b);
	sipguard_region_destroy(off);
	return failures;
}
