/*
 * sipguard module - the shared blocklist
 *
 * The list (modparam blocklist_file, at most blocklist_max entries) lives in
 * the core's shared mapping: loaded in mod_init (a bad line stops Kamailio,
 * naming the parameter and <file>:<line>), reloaded by the RPC
 * sipguard.reload_blocklist in whichever process runs it, and seen by every
 * worker at once. sipguard_check() returns -5 for a listed source (the core
 * decides, see sipguard_mod.c); with early_drop=1 its packets are dropped
 * before parsing (sipguard_netdrop.c asks sipguard_blocklisted()).
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <limits.h>
#include <string.h>

#include "../../core/dprint.h"
#include "../../core/counters.h"
#include "../../core/rpc.h"

#include "sipguard_ctx.h"
#include "sipguard_blocklist.h"

/* one snapshot of the core's counts; zero when there is no region */
static sipguard_blocklist_info sg_blocklist_read(void)
{
	sipguard_blocklist_info b;

	memset(&b, 0, sizeof(b));
	if(_sg_region != NULL
			&& sipguard_blocklist_info_get(_sg_region, &b) != SIPGUARD_OK)
		memset(&b, 0, sizeof(b));
	return b;
}

static counter_val_t sg_stat_blocklisted(void)
{
	return (counter_val_t)sg_blocklist_read().hits;
}

static counter_val_t sg_stat_blocklist_entries(void)
{
	return (counter_val_t)sg_blocklist_read().entries;
}

/* clang-format off */
static stat_export_t sg_blocklist_stats[] = {
	{"blocklisted", STAT_IS_FUNC, (stat_var **)sg_stat_blocklisted},
	{"blocklist_entries", STAT_IS_FUNC, (stat_var **)sg_stat_blocklist_entries},
	{0, 0, 0}
};
/* clang-format on */

int sipguard_blocklist_init(void)
{
	if(register_module_stats("sipguard", sg_blocklist_stats) != 0) {
		LM_ERR("cannot register the blocklist statistics\n");
		return -1;
	}
	return 0;
}

int sipguard_blocklisted(const ip_addr_t *src)
{
	int32_t listed = 0;
	sipguard_status st;

	if(_sg_region == NULL || src == NULL || (src->len != 4 && src->len != 16))
		return 0;
	st = sipguard_blocklist_check(
			_sg_region, src->u.addr, src->len, &listed);
	if(st != SIPGUARD_OK) {
		SG_LOG_STATUS("sipguard_blocklist_check", st);
		return 0;
	}
	return listed != 0;
}

const char *sg_blocklist_rpc_reload_doc[] = {
	"Re-read blocklist_file and publish it to every process; on error the "
	"list in force stays.",
	0
};

void sg_blocklist_rpc_reload(rpc_t *rpc, void *c)
{
	char err[512];
	uint64_t entries = 0;
	uint64_t generation = 0;
	sipguard_status st;

	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return;
	}
	err[0] = '\0';
	st = sipguard_blocklist_reload(
			_sg_region, err, sizeof(err), &entries, &generation);
	if(st != SIPGUARD_OK) {
		err[sizeof(err) - 1] = '\0';
		LM_ERR("sipguard: blocklist reload failed, old list kept: %s\n",
				err[0] ? err : sipguard_status_message(st));
		rpc->fault(c, 500, "reload failed, old list kept: %s",
				err[0] ? err : sipguard_status_message(st));
		return;
	}
	rpc->rpl_printf(c, "Ok. %llu entries, generation %llu",
			(unsigned long long)entries, (unsigned long long)generation);
}

/* a counter as an int while it fits, else as a 64-bit value */
static int sg_blocklist_add_u64(rpc_t *rpc, void *th, char *name, uint64_t v)
{
	if(v <= (uint64_t)INT_MAX)
		return rpc->struct_add(th, "d", name, (int)v);
	return rpc->struct_add(th, "J", name, (unsigned long long)v);
}

const char *sg_blocklist_rpc_info_doc[] = {
	"The blocklist in force: entries, generation, hits, blocklist_max.", 0};

void sg_blocklist_rpc_info(rpc_t *rpc, void *c)
{
	sipguard_blocklist_info b;
	void *th;

	if(_sg_region == NULL) {
		rpc->fault(c, 500, "sipguard is not initialized");
		return;
	}
	b = sg_blocklist_read();
	if(rpc->add(c, "{", &th) < 0) {
		rpc->fault(c, 500, "Internal error creating the reply");
		return;
	}
	if(sg_blocklist_add_u64(rpc, th, "entries", b.entries) < 0
			|| sg_blocklist_add_u64(rpc, th, "generation", b.generation) < 0
			|| sg_blocklist_add_u64(rpc, th, "hits", b.hits) < 0
			|| sg_blocklist_add_u64(rpc, th, "max", b.max) < 0)
		rpc->fault(c, 500, "Internal error creating the reply");
}
