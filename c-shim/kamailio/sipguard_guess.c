/*
 * sipguard module - defences against extension and password guessing
 *
 * Script functions sipguard_authenticated(), sipguard_auth_failed() and
 * sipguard_auth_allowed(); the request fields sipguard_check() hands to the
 * core; and the outgoing-data hook that counts authentication failures and
 * rewrites replies that would tell an existing user from a missing one.
 * Rewriting on the wire (not in the script) means no config path can send
 * such a reply unnormalized.
 *
 * This file is part of sipguard; see sipguard_mod.c for the licence.
 */

#include <string.h>

#include "../../core/sr_module.h"
#include "../../core/dprint.h"
#include "../../core/events.h"
#include "../../core/ip_addr.h"
#include "../../core/forward.h"
#include "../../core/mem/mem.h"
#include "../../core/parser/msg_parser.h"
#include "../../core/parser/parse_uri.h"

#include "sipguard_mod.h"
#include "sipguard_guess.h"

/* a parsed str into a pointer + length field pair of sipguard_request */
#define SG_STR(field, val)                                      \
	do {                                                        \
		field = (val).s;                                        \
		field##_len = (val).len > 0 ? (size_t)(val).len : 0;    \
	} while(0)

/* the value of header h, if present */
#define SG_HDR(field, h)              \
	do {                              \
		if((h) != NULL)               \
			SG_STR(field, (h)->body); \
	} while(0)

int sipguard_request_fill(sip_msg_t *msg, sipguard_request *req)
{
	memset(req, 0, sizeof(*req));
	if(msg == NULL || msg->first_line.type != SIP_REQUEST)
		return -1;
	/* User-Agent and credentials may be anywhere: read the whole header.
	 * A parse error still leaves the headers before it usable. */
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		LM_DBG("request headers only partly parsed\n");
	SG_STR(req->method, msg->first_line.u.request.method);
	if(parse_sip_msg_uri(msg) == 0)
		SG_STR(req->ruri_user, msg->parsed_uri.user);
	SG_HDR(req->from, msg->from);
	SG_HDR(req->to, msg->to);
	SG_HDR(req->call_id, msg->callid);
	SG_HDR(req->cseq, msg->cseq);
	SG_HDR(req->user_agent, msg->user_agent);
	/* the header $au reads: Proxy-Authorization first */
	if(msg->proxy_auth != NULL)
		SG_HDR(req->credentials, msg->proxy_auth);
	else
		SG_HDR(req->credentials, msg->authorization);
	return 0;
}

/* the request and its source address, or -1 */
static int sg_request_of(sip_msg_t *msg, sipguard_request *req, ip_addr_t **ip)
{
	if(msg == NULL || _sg_region == NULL)
		return -1;
	*ip = &msg->rcv.src_ip;
	if((*ip)->len != 4 && (*ip)->len != 16)
		return -1;
	if(sipguard_request_fill(msg, req) < 0) {
		LM_ERR("not a request\n");
		return -1;
	}
	return 0;
}

int ki_sipguard_authenticated(sip_msg_t *msg)
{
	sipguard_request req;
	sipguard_status st;
	ip_addr_t *ip;

	if(sg_request_of(msg, &req, &ip) < 0)
		return 1;
	st = sipguard_authenticated(
			_sg_region, ip->u.addr, ip->len, &req, sipguard_clock_ns());
	if(st != SIPGUARD_OK && st != SIPGUARD_ERR_BUSY)
		SG_LOG_STATUS("sipguard_authenticated", st);
	return 1;
}

int ki_sipguard_auth_failed(sip_msg_t *msg)
{
	sipguard_request req;
	sipguard_status st;
	ip_addr_t *ip;
	int banned = 0;

	if(sg_request_of(msg, &req, &ip) < 0)
		return 1;
	st = sipguard_auth_failed(_sg_region, ip->u.addr, ip->len, &req,
			sipguard_clock_ns(), &banned);
	if(st != SIPGUARD_OK && st != SIPGUARD_ERR_BUSY)
		SG_LOG_STATUS("sipguard_auth_failed", st);
	return banned ? -1 : 1;
}

int ki_sipguard_auth_allowed(sip_msg_t *msg)
{
	sipguard_request req;
	sipguard_status st;
	ip_addr_t *ip;
	int allowed = 1;

	if(sg_request_of(msg, &req, &ip) < 0)
		return 1;
	st = sipguard_auth_allowed(_sg_region, ip->u.addr, ip->len, &req,
			sipguard_clock_ns(), &allowed);
	if(st != SIPGUARD_OK) {
		if(st != SIPGUARD_ERR_BUSY)
			SG_LOG_STATUS("sipguard_auth_allowed", st);
		return 1;
	}
	return allowed ? 1 : -1;
}

int w_sipguard_authenticated(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_sipguard_authenticated(msg);
}

int w_sipguard_auth_failed(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_sipguard_auth_failed(msg);
}

int w_sipguard_auth_allowed(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_sipguard_auth_allowed(msg);
}

/* send p (pkg, n bytes) instead of the core's copy of the reply */
static void sg_replace(str *obuf, char *p, size_t n)
{
	pkg_free(obuf->s);
	obuf->s = p;
	obuf->len = (int)n;
}

/* every message Kamailio sends passes here (a pkg copy the core owns) */
static int sg_data_out(sr_event_param_t *evp)
{
	/* one reply at a time per process; a rewrite is never larger than
	 * the headers it keeps plus one challenge */
	static char rewritten[BUF_SIZE];
	str *obuf;
	ip_addr_t ip;
	size_t n = 0;
	char *p;
	sipguard_status st;

	if(evp == NULL || evp->data == NULL || evp->dst == NULL
			|| _sg_region == NULL)
		return 0;
	obuf = (str *)evp->data;
	/* requests go out untouched without further ado */
	if(obuf->s == NULL || obuf->len < 12
			|| memcmp(obuf->s, "SIP/2.0 ", 8) != 0)
		return 0;
	su2ip_addr(&ip, &evp->dst->to);
	st = sipguard_reply_out(_sg_region, obuf->s, (size_t)obuf->len,
			ip.u.addr, ip.len, sipguard_clock_ns(), rewritten,
			sizeof(rewritten), &n);
	if(st == SIPGUARD_ERR_FULL) {
		/* a huge reply (TCP): rewrite into a buffer of its own size;
		 * the rewrite keeps a subset of its headers plus one challenge */
		p = (char *)pkg_malloc(obuf->len + 1024);
		if(p == NULL) {
			PKG_MEM_ERROR;
			return 0;
		}
		st = sipguard_reply_out(_sg_region, obuf->s, (size_t)obuf->len,
				ip.u.addr, ip.len, sipguard_clock_ns(), p,
				(size_t)obuf->len + 1024, &n);
		if(st != SIPGUARD_OK || n == 0) {
			pkg_free(p);
			if(st != SIPGUARD_OK)
				SG_LOG_STATUS("sipguard_reply_out", st);
			return 0;
		}
		sg_replace(obuf, p, n);
		return 0;
	}
	if(st != SIPGUARD_OK) {
		if(st != SIPGUARD_ERR_BUSY)
			SG_LOG_STATUS("sipguard_reply_out", st);
		return 0;
	}
	if(n == 0)
		return 0;
	p = (char *)pkg_malloc(n + 1);
	if(p == NULL) {
		PKG_MEM_ERROR;
		return 0;
	}
	memcpy(p, rewritten, n);
	p[n] = '\0';
	sg_replace(obuf, p, n);
	return 0;
}

int sipguard_guess_init(void)
{
	if(sr_event_register_cb(SREV_NET_DATA_OUT, sg_data_out) < 0) {
		LM_ERR("cannot register the outgoing-data hook\n");
		return -1;
	}
	return 0;
}

/* an int parameter of a loaded module, or def */
static int sg_module_int(struct sr_module *mod, char *name, int def)
{
	modparam_t type;
	int *v;

	v = (int *)find_param_export(mod, name, PARAM_INT, &type);
	return v ? *v : def;
}

/* set a core parameter to an int; -1 (logged) if refused */
static int sg_config_int(sipguard_config *cfg, const char *name, int v)
{
	char num[32];
	int n;

	n = snprintf(num, sizeof(num), "%d", v);
	if(sipguard_config_set(cfg, name, strlen(name), num, n, NULL, 0)
			!= SIPGUARD_OK) {
		LM_ERR("cannot take %s=%d from the auth module\n", name, v);
		return -1;
	}
	return 0;
}

/*
 * The challenge must look like the auth module's own: its nonce length
 * follows nonce_count/one_time_nonce (nonce id) and auth_checks_* (second
 * digest); its lifetime is nonce_expire; its algorithm parameter is
 * "algorithm". Values the operator set on sipguard win.
 */
int sipguard_guess_learn_auth(sipguard_config *cfg, int nonce_bytes_set,
		int nonce_expire_set, int algorithm_set)
{
	struct sr_module *auth;
	modparam_t type;
	str *algorithm;
	int bytes;
	int flags;

	auth = find_module_by_name("auth");
	if(auth == NULL)
		return 0;
	if(!nonce_bytes_set) {
		/* base: expiry, creation, digest; + nonce id; + second digest
		 * where auth_checks_* apply (REGISTER and out-of-dialog apart) */
		bytes = 24;
		flags = (sg_module_int(auth, "nonce_count", 0) ? 0x80 : 0)
				| (sg_module_int(auth, "one_time_nonce", 0) ? 0x40 : 0);
		if(flags) {
			bytes += 5;
			if(sg_config_int(cfg, "challenge_nonce_flags", flags) < 0)
				return -1;
		}
		if(sg_config_int(cfg, "challenge_nonce_bytes",
				   bytes + (sg_module_int(auth, "auth_checks_no_dlg", 0) ? 16 : 0))
						< 0
				|| sg_config_int(cfg, "challenge_nonce_bytes_register",
						   bytes
								   + (sg_module_int(auth, "auth_checks_register", 0)
												   ? 16
												   : 0))
						   < 0)
			return -1;
	}
	if(!nonce_expire_set
			&& sg_config_int(cfg, "challenge_nonce_expire",
					   sg_module_int(auth, "nonce_expire", 300))
					   < 0)
		return -1;
	if(!algorithm_set) {
		algorithm = (str *)find_param_export(auth, "algorithm", PARAM_STR, &type);
		if(algorithm != NULL && algorithm->s != NULL && algorithm->len > 0
				&& sipguard_config_set(cfg, "challenge_algorithm",
						   sizeof("challenge_algorithm") - 1, algorithm->s,
						   algorithm->len, NULL, 0)
						   != SIPGUARD_OK) {
			LM_ERR("auth module algorithm \"%.*s\" is not one sipguard can "
				   "imitate\n",
					algorithm->len, algorithm->s);
			return -1;
		}
	}
	return 0;
}
