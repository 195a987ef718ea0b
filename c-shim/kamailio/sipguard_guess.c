/*
 * sipguard module - defences against extension and password guessing
 *
 * Script functions sipguard_authenticated(), sipguard_auth_failed(),
 * sipguard_auth_allowed() and sipguard_policy_reply(); the request fields sipguard_check() hands to the
 * core; and the outgoing-data hook that counts authentication failures and
 * rewrites replies that would tell an existing user from a missing one.
 * Rewriting on the wire (not in the script) means no config path can send
 * such a reply unnormalized.
 *
 * This file is part of sipguard; see sipguard_mod.c for the licence.
 */

#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "../../core/sr_module.h"
#include "../../core/dprint.h"
#include "../../core/events.h"
#include "../../core/globals.h"
#include "../../core/ip_addr.h"
#include "../../core/forward.h"
#include "../../core/basex.h"
#include "../../core/mem/mem.h"
#include "../../core/parser/msg_parser.h"
#include "../../core/parser/parse_uri.h"
#include "../../core/parser/parse_from.h"
#include "../../core/parser/parse_to.h"
#include "../../core/parser/parse_cseq.h"
#include "../../core/parser/digest/digest.h"
/* the auth module's nonce layout, to judge a nonce by its own rules */
#include "../auth/nonce.h"
#include "../auth/nid.h"
#include <dlfcn.h>

#include "sipguard_ctx.h"
#include "sipguard_guess.h"

/* a parsed str into a sipguard_str */
#define SG_STR(field, val)                                      \
	do {                                                        \
		(field).s = (val).s;                                    \
		(field).len = (val).len > 0 ? (size_t)(val).len : 0;    \
	} while(0)

/* What the auth module was configured with (its parameters, read at
 * start): how it judges a nonce before it looks at the password. */
static struct
{
	int loaded;
	int checks_register, checks_no_dlg, checks_in_dlg;
	int nonce_count, one_time_nonce;
	int max_drift;
	/* its nonce id counter (nid.c), when it numbers its nonces: rewritten
	 * challenges take their ids from it, so ids keep one sequence */
	struct pool_index **nid_crt;
	unsigned int *nid_pool_mask;
} sg_auth;

/* the next nonce id and its pool/flags byte, as the auth module's
 * calc_new_nonce() takes them; 0 when it does not number nonces */
static int sg_next_nonce_id(sipguard_reply *r)
{
	unsigned int pool;

	if(sg_auth.nid_crt == NULL || *sg_auth.nid_crt == NULL
			|| sg_auth.nid_pool_mask == NULL)
		return 0;
	pool = process_no & *sg_auth.nid_pool_mask;
	r->nonce_id = (uint32_t)atomic_add(&(*sg_auth.nid_crt)[pool].id, NID_INC);
	r->nonce_pool_flags = pool | (sg_auth.nonce_count ? NF_VALID_NC_ID : 0)
						  | (sg_auth.one_time_nonce ? NF_VALID_OT_ID : 0);
	r->flags |= SIPGUARD_REPLY_NONCE_ID;
	return 1;
}

/*
 * Whether the auth module would call this nonce stale before checking its
 * signature (check_nonce() in its nonce.c: too old for this start, from the
 * future, or without the nonce-count/one-time flags it wants). These are the
 * only verdicts a made-up nonce can get, and a stale one means the password
 * is never looked at, so a challenge to it says stale=true whether the user
 * exists or not.
 */
static int sg_nonce_stale(str *nonce, int checks)
{
	union bin_nonce b;
	int n;
	time_t since, t;
	unsigned char pf;

	if(!sg_auth.loaded || nonce->s == NULL || nonce->len < MIN_NONCE_LEN)
		return 0;
	b.n.nid_pf = 0;
	b.n_small.nid_pf = 0;
	n = base64_dec((unsigned char *)nonce->s, nonce->len, &b.raw[0], sizeof(b));
	if(n < MIN_BIN_NONCE_LEN)
		return 0;
	since = (time_t)ntohl(b.n.since);
	t = time(0);
	if(since < up_since && since < t)
		return 1;
	if(since > t && since - t > sg_auth.max_drift)
		return 1;
	pf = checks ? b.n.nid_pf : b.n_small.nid_pf;
	if(sg_auth.nonce_count && !(pf & NF_VALID_NC_ID))
		return 1;
	if(sg_auth.one_time_nonce && !(pf & NF_VALID_OT_ID))
		return 1;
	return 0;
}

/* the auth module's auth_checks_* for this request (its get_auth_checks()) */
static int sg_auth_checks(sip_msg_t *msg, int in_dialog)
{
	if(msg->REQ_METHOD == METHOD_REGISTER)
		return sg_auth.checks_register;
	return in_dialog ? sg_auth.checks_in_dlg : sg_auth.checks_no_dlg;
}

/*
 * The credentials the auth module will check: the header of the method's
 * challenge type (Authorization for REGISTER, Proxy-Authorization else),
 * or the other one when that is absent; after authentication, the ones
 * the auth module marked as authorized. NULL when none parse as digest.
 */
static hdr_field_t *sg_credentials(sip_msg_t *msg)
{
	hdr_field_t *first, *second, *h = NULL;

	if(msg->REQ_METHOD == METHOD_REGISTER) {
		first = msg->authorization;
		second = msg->proxy_auth;
	} else {
		first = msg->proxy_auth;
		second = msg->authorization;
	}
	if(first != NULL && parse_credentials(first) == 0
			&& get_authorized_cred(first, &h) == 0 && h != NULL)
		return h;
	if(second != NULL && parse_credentials(second) == 0
			&& get_authorized_cred(second, &h) == 0 && h != NULL)
		return h;
	h = first ? first : second;
	if(h == NULL || parse_credentials(h) != 0)
		return NULL;
	return h;
}

/*
 * A URI not parsed yet whose user part Kamailio's parser would leave
 * empty (the core's rule: a sip:/sips: URI without '@'), so parsing it is
 * spared; one already parsed is read as parsed.
 */
static int sg_uri_lacks_user(str *uri, sip_uri_t *parsed)
{
	if(parsed->user.s != NULL || parsed->host.s != NULL)
		return 0;
	return sipguard_uri_lacks_user(uri->s, (size_t)uri->len);
}

/* $rU: the URI parse_sip_msg_uri() parses (a new R-URI set by the script,
 * else the request line's), when it has a user part */
static void sg_ruri_user(sip_msg_t *msg, struct sipguard_str *out)
{
	str *uri;

	if(!msg->parsed_uri_ok) {
		uri = msg->new_uri.s ? &msg->new_uri : &msg->first_line.u.request.uri;
		if(uri->len > 0 && sipguard_uri_lacks_user(uri->s, (size_t)uri->len))
			return;
		if(parse_sip_msg_uri(msg) < 0)
			return;
	}
	SG_STR(*out, msg->parsed_uri.user);
}

int sipguard_request_fill(sip_msg_t *msg, sipguard_request *req)
{
	hdr_field_t *hf;
	struct to_body *to;
	sip_uri_t *uri;
	auth_body_t *cred;
	int in_dialog = 0;

	/* the User-Agent slots are read only up to their count: not cleared */
	memset(req, 0, offsetof(sipguard_request, user_agents));
	req->user_agent_count = 0;
	req->flags = 0;
	if(msg == NULL || msg->first_line.type != SIP_REQUEST)
		return -1;
	/* User-Agent and credentials may be anywhere: read the whole header.
	 * A parse error still leaves the headers before it usable. */
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		LM_DBG("request headers only partly parsed\n");
	SG_STR(req->method, msg->first_line.u.request.method);
	sg_ruri_user(msg, &req->ruri_user);
	/* From's value as is: no part of it is judged but by the fingerprints */
	if(msg->from != NULL)
		SG_STR(req->from, msg->from->body);
	if(msg->to != NULL) {
		SG_STR(req->to, msg->to->body);
		to = get_to(msg);
		if(to != NULL && to->tag_value.len > 0)
			in_dialog = 1;
		/* $tU is parsed only where the core reads it */
		if(sipguard_request_reads_to_user(
				   req->method.s, req->method.len, req->ruri_user.len)) {
			uri = sg_uri_lacks_user(&to->uri, &to->parsed_uri)
						  ? NULL
						  : parse_to_uri(msg);
			if(uri != NULL)
				SG_STR(req->to_user, uri->user);
		}
	}
	if(in_dialog)
		req->flags |= SIPGUARD_REQ_IN_DIALOG;
	if(msg->callid != NULL)
		SG_STR(req->call_id, msg->callid->body);
	if(msg->cseq != NULL && msg->cseq->parsed != NULL) {
		SG_STR(req->cseq_num, get_cseq(msg)->number);
		SG_STR(req->cseq_method, get_cseq(msg)->method);
	}
	/* every User-Agent header: a second one must not hide a scanner */
	for(hf = msg->headers; hf != NULL; hf = hf->next) {
		if(hf->type != HDR_USERAGENT_T)
			continue;
		if(req->user_agent_count < SIPGUARD_MAX_USER_AGENTS)
			SG_STR(req->user_agents[req->user_agent_count], hf->body);
		req->user_agent_count++;
	}
	/* digest credentials the auth module will check, as $au reads them */
	hf = sg_credentials(msg);
	if(hf != NULL) {
		cred = (auth_body_t *)hf->parsed;
		if(check_dig_cred(&cred->digest) == E_DIG_OK) {
			SG_STR(req->auth_user, cred->digest.username.user);
			SG_STR(req->credentials, hf->body);
			if(sg_nonce_stale(&cred->digest.nonce, sg_auth_checks(msg, in_dialog)))
				req->flags |= SIPGUARD_REQ_STALE_NONCE;
		}
	}
	return 0;
}

const char *sg_guess_target_user(sip_msg_t *msg)
{
	static char name[256];
	sipguard_request req;
	const char *user = NULL;
	size_t len = 0;

	if(msg == NULL || sipguard_request_fill(msg, &req) < 0)
		return NULL;
	if(sipguard_request_target_user(&req, &user, &len) != SIPGUARD_OK
			|| len == 0)
		return NULL;
	if(len >= sizeof(name))
		len = sizeof(name) - 1;
	memcpy(name, user, len);
	name[len] = '\0';
	return name;
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

int sipguard_policy_mark(sip_msg_t *msg, uint32_t flags)
{
	sipguard_request req;
	sipguard_status st;
	ip_addr_t *ip;

	if(sg_request_of(msg, &req, &ip) < 0)
		return -1;
	st = sipguard_policy_reply(_sg_region, &req, flags, sipguard_clock_ns());
	if(st != SIPGUARD_OK) {
		if(st != SIPGUARD_ERR_BUSY)
			SG_LOG_STATUS("sipguard_policy_reply", st);
		return -1;
	}
	return 1;
}

int ki_sipguard_policy_reply(sip_msg_t *msg)
{
	return sipguard_policy_mark(msg, 0);
}

int w_sipguard_policy_reply(sip_msg_t *msg, char *p1, char *p2)
{
	return ki_sipguard_policy_reply(msg);
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

/* send p (pkg, n bytes) instead of the core's copy of the reply; p NULL:
 * send nothing (the core then logs that the buffer could not be updated) */
static void sg_replace(str *obuf, char *p, size_t n)
{
	pkg_free(obuf->s);
	obuf->s = p;
	obuf->len = p ? (int)n : 0;
}

/* whether a challenge header value has a stale=true parameter outside
 * quotes (the core's rule) */
static int sg_challenge_stale(str *body)
{
	return sipguard_challenge_stale(body->s, (size_t)body->len);
}

/* the reply was not sent: one rate-limited line (the core's) */
static void sg_refused(const char *why)
{
	sipguard_reply_withheld(why);
}

/*
 * The reply in *obuf as Kamailio's parser reads it, into r: the values the
 * request was judged by (Call-ID, CSeq, From tag, To/From host) and the
 * whole lines the rewrite keeps. 0, or -1 if it does not parse as a reply.
 */
#define SG_KEEP_STATIC 32
static sipguard_span sg_keep_static[SG_KEEP_STATIC];

static int sg_reply_fill(sip_msg_t *m, str *obuf, sipguard_reply *r,
		sipguard_span **keep)
{
	hdr_field_t *hf;
	sip_uri_t *uri;
	char *eol;
	size_t kept = 0;

	memset(r, 0, sizeof(*r));
	memset(m, 0, sizeof(*m));
	m->buf = obuf->s;
	m->len = (unsigned int)obuf->len;
	if(parse_msg(m->buf, m->len, m) != 0 || m->first_line.type != SIP_REPLY)
		return -1;
	if(parse_headers(m, HDR_EOH_F, 0) < 0)
		return -1;
	r->buf = obuf->s;
	r->len = (size_t)obuf->len;
	r->status = m->first_line.u.reply.statuscode;
	eol = memchr(obuf->s, '\n', obuf->len);
	r->eol.s = (eol != NULL && eol > obuf->s && eol[-1] == '\r') ? "\r\n" : "\n";
	r->eol.len = strlen(r->eol.s);
	if(m->callid != NULL)
		SG_STR(r->call_id, m->callid->body);
	if(m->cseq != NULL && m->cseq->parsed != NULL) {
		SG_STR(r->cseq_num, get_cseq(m)->number);
		SG_STR(r->cseq_method, get_cseq(m)->method);
	}
	if(m->from != NULL && parse_from_header(m) == 0) {
		uri = parse_from_uri(m);
		if(uri != NULL)
			SG_STR(r->from_host, uri->host);
	}
	if(m->to != NULL) {
		uri = parse_to_uri(m);
		if(uri != NULL)
			SG_STR(r->to_host, uri->host);
	}
	/* the rewrite keeps every Via, as the auth module's challenge would:
	 * past the static array (a request with many Vias), a pkg one */
	for(hf = m->headers; hf != NULL; hf = hf->next)
		kept += (hf->type == HDR_VIA_T || hf->type == HDR_FROM_T
						|| hf->type == HDR_TO_T || hf->type == HDR_CALLID_T
						|| hf->type == HDR_CSEQ_T);
	*keep = sg_keep_static;
	if(kept > SG_KEEP_STATIC) {
		*keep = (sipguard_span *)pkg_malloc(kept * sizeof(sipguard_span));
		if(*keep == NULL) {
			PKG_MEM_ERROR;
			return -2;
		}
	}
	r->keep = *keep;
	for(hf = m->headers; hf != NULL; hf = hf->next) {
		switch(hf->type) {
			case HDR_VIA_T:
			case HDR_FROM_T:
			case HDR_TO_T:
			case HDR_CALLID_T:
			case HDR_CSEQ_T:
				(*keep)[r->keep_count].off = (uint32_t)(hf->name.s - obuf->s);
				(*keep)[r->keep_count].len = (uint32_t)hf->len;
				r->keep_count++;
				break;
			case HDR_SERVER_T:
				r->server.off = (uint32_t)(hf->name.s - obuf->s);
				r->server.len = (uint32_t)hf->len;
				break;
			case HDR_WWW_AUTHENTICATE_T:
			case HDR_PROXY_AUTHENTICATE_T:
				if(sg_challenge_stale(&hf->body))
					r->flags |= SIPGUARD_REPLY_STALE;
				break;
			default:
				break;
		}
	}
	return 0;
}

static void sg_keep_free(sipguard_span *keep)
{
	if(keep != NULL && keep != sg_keep_static)
		pkg_free(keep);
}

/*
 * The status code of the reply in obuf, 0 if it is none (a request). Every
 * message goes through here (a relayed 200 too), so the form Kamailio
 * itself writes, "SIP/2.0 ddd ", is read by the core from the first bytes;
 * any other form (a relayed reply's unusual spacing or case) is left to
 * Kamailio's parse_first_line, which reads that form the same way.
 */
static int sg_status_of(str *obuf)
{
	struct msg_start fl;
	int code;

	code = sipguard_outgoing_status(obuf->s, (size_t)obuf->len);
	if(code >= 0)
		return code;
	memset(&fl, 0, sizeof(fl));
	if(parse_first_line(obuf->s, obuf->len, &fl) == NULL
			|| fl.type != SIP_REPLY)
		return 0;
	return fl.u.reply.statuscode;
}

/* sipguard_reply_wanted() of each status code, asked in mod_init */
#define SG_STATUS_CODES 1000
static unsigned char sg_wanted[SG_STATUS_CODES];

/* every message Kamailio sends passes here (a pkg copy the core owns) */
static int sg_data_out(sr_event_param_t *evp)
{
	/* one reply at a time per process */
	static char rewritten[BUF_SIZE];
	sipguard_span *keep = NULL;
	str *obuf;
	ip_addr_t ip;
	sip_msg_t m;
	sipguard_reply r;
	size_t n = 0;
	char *p;
	int wanted, code, rc;
	sipguard_status st;

	if(evp == NULL || evp->data == NULL || evp->dst == NULL
			|| _sg_region == NULL)
		return 0;
	obuf = (str *)evp->data;
	if(obuf->s == NULL || obuf->len < 12)
		return 0;
	/* the status line alone decides whether the rest needs parsing;
	 * requests (0) go out untouched without further ado */
	code = sg_status_of(obuf);
	wanted = (code > 0 && code < SG_STATUS_CODES) ? sg_wanted[code] : 0;
	if(!wanted)
		return 0;
	rc = sg_reply_fill(&m, obuf, &r, &keep);
	if(rc < 0) {
		free_sip_msg(&m);
		/* a reply the rewrite is for leaves rewritten or not at all */
		if(wanted == SIPGUARD_REPLY_REWRITABLE) {
			sg_replace(obuf, NULL, 0);
			sg_refused(rc == -2 ? "no memory for its rewrite"
								: "it does not parse");
		}
		return 0;
	}
	if(wanted == SIPGUARD_REPLY_REWRITABLE)
		sg_next_nonce_id(&r);
	su2ip_addr(&ip, &evp->dst->to);
	st = sipguard_reply_out(_sg_region, &r, ip.u.addr, ip.len,
			sipguard_clock_ns(), rewritten, sizeof(rewritten), &n);
	p = NULL;
	if(st == SIPGUARD_ERR_FULL && n > 0) {
		/* larger than a datagram (TCP): a buffer of its own size; the
		 * failure, if any, was counted by the first call */
		p = (char *)pkg_malloc(n + 1);
		if(p == NULL) {
			PKG_MEM_ERROR;
			free_sip_msg(&m);
			sg_keep_free(keep);
			sg_replace(obuf, NULL, 0);
			sg_refused("no memory for its rewrite");
			return 0;
		}
		st = sipguard_reply_out(_sg_region, &r, ip.u.addr, ip.len,
				sipguard_clock_ns(), p, n, &n);
	}
	free_sip_msg(&m);
	sg_keep_free(keep);
	if(st != SIPGUARD_OK) {
		if(p != NULL)
			pkg_free(p);
		if(st == SIPGUARD_ERR_BUSY)
			return 0;
		SG_LOG_STATUS("sipguard_reply_out", st);
		return 0;
	}
	if(n == 0) {
		if(p != NULL)
			pkg_free(p);
		return 0;
	}
	if(p == NULL) {
		p = (char *)pkg_malloc(n + 1);
		if(p == NULL) {
			PKG_MEM_ERROR;
			sg_replace(obuf, NULL, 0);
			sg_refused("no memory for its rewrite");
			return 0;
		}
		memcpy(p, rewritten, n);
	}
	p[n] = '\0';
	sg_replace(obuf, p, n);
	return 0;
}

int sipguard_guess_init(void)
{
	int code, wanted;

	/* which statuses the hook hands over: fixed by the parameters, so
	 * asked once here, before the fork, not once per reply */
	for(code = 0; code < SG_STATUS_CODES; code++) {
		wanted = 0;
		if(sipguard_reply_wanted(_sg_region, code, &wanted) != SIPGUARD_OK) {
			LM_ERR("cannot tell which replies to look at\n");
			return -1;
		}
		sg_wanted[code] = (unsigned char)wanted;
	}
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
	sg_auth.loaded = 1;
	sg_auth.checks_register = sg_module_int(auth, "auth_checks_register", 0);
	sg_auth.checks_no_dlg = sg_module_int(auth, "auth_checks_no_dlg", 0);
	sg_auth.checks_in_dlg = sg_module_int(auth, "auth_checks_in_dlg", 0);
	sg_auth.nonce_count = sg_module_int(auth, "nonce_count", 0);
	sg_auth.one_time_nonce = sg_module_int(auth, "one_time_nonce", 0);
	sg_auth.max_drift = sg_module_int(auth, "nonce_auth_max_drift", 3);
	if((sg_auth.nonce_count || sg_auth.one_time_nonce) && auth->handle != NULL) {
		sg_auth.nid_crt = (struct pool_index **)dlsym(auth->handle, "nid_crt");
		sg_auth.nid_pool_mask = (unsigned int *)dlsym(auth->handle, "nid_pool_mask");
		if(sg_auth.nid_crt == NULL || sg_auth.nid_pool_mask == NULL)
			LM_WARN("auth module's nonce ids not found: rewritten challenges "
					"number their nonces on their own\n");
	}
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
