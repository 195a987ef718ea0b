/*
 * sipguard OpenSIPS module - defences against extension and password guessing
 *
 * Script functions sipguard_authenticated(), sipguard_auth_failed() and
 * sipguard_auth_allowed(); the request fields sipguard_check() hands to the
 * core, as OpenSIPS' parser reads them; and the outgoing-message callback
 * (register_post_raw_processing_cb) that counts authentication failures and
 * rewrites replies that would tell an existing user from a missing one.
 * Rewriting on the wire (not in the script) means no config path can send
 * such a reply unnormalized. The callback is not told where the message
 * goes: a reply goes to its top Via (its received parameter, else its host),
 * which is where OpenSIPS sends it.
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#include <string.h>
#include <dlfcn.h>

#include "../../sr_module.h"
#include "../../dprint.h"
#include "../../ip_addr.h"
#include "../../script_cb.h"
#include "../../mem/mem.h"
#include "../../parser/msg_parser.h"
#include "../../parser/parse_uri.h"
#include "../../parser/parse_from.h"
#include "../../parser/parse_to.h"
#include "../../parser/parse_cseq.h"
#include "../../parser/parse_fline.h"
#include "../../parser/digest/digest.h"
/* the auth module's nonces: to judge one by its own rules */
#include "../../lib/digest_auth/dauth_nonce.h"

#include "sipguard_ban_event.h"
#include "sipguard_ctx.h"
#include "sipguard_guess.h"

/* a parsed str into a sipguard_str */
#define SG_STR(field, val)                                   \
	do {                                                     \
		(field).s = (val).s;                                 \
		(field).len = (val).len > 0 ? (size_t)(val).len : 0; \
	} while(0)

/* The auth module's nonce check (found in it at start): whether it would
 * call a nonce stale before it looks at the password. */
static struct
{
	struct nonce_context **ncp;
	int *nonce_expire;
	/* its record of nonce indexes handed out and used (shm) */
	char **nonce_buf;
	int **sec_monit, **second, **next_index;
	int *disable_nonce_check;
	int (*decr_nonce)(const struct nonce_context *, const str_const *,
			struct nonce_params *);
	int (*is_nonce_stale)(const struct nonce_params *, int);
} sg_auth;

/* the auth module's highest nonce index (auth_mod.h) */
#define SG_AUTH_MAX_NONCE_INDEX 100000

/* Whether the auth module takes a nonce index as fresh, read without a
 * change (its is_nonce_index_valid() also marks the index used, and it
 * must still find it unused when it checks the request): inside the window
 * of indexes it handed out, and not used before; in its first 30 seconds
 * any index it handed out. A read without its lock: at worst the verdict
 * of a moment earlier. */
static int sg_nonce_index_fresh(int index)
{
	int first = (*sg_auth.sec_monit)[**sg_auth.second];
	int next = **sg_auth.next_index;

	if(index < 0 || index >= SG_AUTH_MAX_NONCE_INDEX)
		return 0;
	if(first == -1)
		return index < next;
	if(next < first ? !(index >= first || index <= next)
					: !(index >= first && index <= next))
		return 0;
	return !((*sg_auth.nonce_buf)[index >> 3] & (1 << (index % 8)));
}

/* 1 when the auth module would answer this nonce stale=true without
 * checking the password: one it cannot decrypt (made up, or from another
 * start), one past its expiry, one used before */
static int sg_nonce_stale(str *nonce)
{
	struct nonce_params np;
	str_const n;

	if(sg_auth.decr_nonce == NULL || sg_auth.ncp == NULL || *sg_auth.ncp == NULL)
		return 0;
	n.s = nonce->s;
	n.len = nonce->len;
	if(sg_auth.decr_nonce(*sg_auth.ncp, &n, &np) != 0)
		return 1;
	if(sg_auth.is_nonce_stale(&np, *sg_auth.nonce_expire))
		return 1;
	if(*sg_auth.disable_nonce_check)
		return np.index != 0;
	return !sg_nonce_index_fresh(np.index);
}

/*
 * The credentials the auth module will check: the header of the method's
 * challenge type (Authorization for REGISTER, Proxy-Authorization else),
 * or the other one when that is absent; after authentication, the ones
 * the auth module marked as authorized. NULL when none parse as digest.
 */
static struct hdr_field *sg_credentials(struct sip_msg *msg)
{
	struct hdr_field *first, *second, *h = NULL;

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

int sipguard_request_fill(struct sip_msg *msg, sipguard_request *req)
{
	struct hdr_field *hf;
	struct to_body *to;
	struct sip_uri *uri;
	auth_body_t *cred;
	int in_dialog = 0;

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
			uri = parse_to_uri(msg);
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
			if(sg_nonce_stale(&cred->digest.nonce))
				req->flags |= SIPGUARD_REQ_STALE_NONCE;
		}
	}
	return 0;
}

/* the request and its source address, or -1 */
static int sg_request_of(
		struct sip_msg *msg, sipguard_request *req, struct ip_addr **ip)
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

/* the request is refused by policy (the same for every user): its reply
 * (with SIPGUARD_POLICY_403_ONLY, its 403 only) leaves as it is and is no
 * failed guess */
int sipguard_policy_mark(struct sip_msg *msg, uint32_t flags)
{
	sipguard_request req;
	sipguard_status st;
	struct ip_addr *ip;

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

int w_sipguard_policy_reply(struct sip_msg *msg)
{
	return sipguard_policy_mark(msg, 0);
}

int w_sipguard_authenticated(struct sip_msg *msg)
{
	sipguard_request req;
	sipguard_status st;
	struct ip_addr *ip;

	if(sg_request_of(msg, &req, &ip) < 0)
		return 1;
	st = sipguard_authenticated(
			_sg_region, ip->u.addr, ip->len, &req, sipguard_clock_ns());
	if(st != SIPGUARD_OK && st != SIPGUARD_ERR_BUSY)
		SG_LOG_STATUS("sipguard_authenticated", st);
	return 1;
}

int w_sipguard_auth_failed(struct sip_msg *msg)
{
	sipguard_request req;
	sipguard_status st;
	struct ip_addr *ip;
	int banned = 0;

	if(sg_request_of(msg, &req, &ip) < 0)
		return 1;
	st = sipguard_auth_failed(_sg_region, ip->u.addr, ip->len, &req,
			sipguard_clock_ns(), &banned);
	if(st != SIPGUARD_OK && st != SIPGUARD_ERR_BUSY)
		SG_LOG_STATUS("sipguard_auth_failed", st);
	if(banned)
		sipguard_ban_event(ip, NULL, "auth", 0, 0);
	return banned ? -1 : 1;
}

int w_sipguard_auth_allowed(struct sip_msg *msg)
{
	sipguard_request req;
	sipguard_status st;
	struct ip_addr *ip;
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

/* the reply was not sent: one rate-limited line (the core's) */
static void sg_refused(const char *why)
{
	sipguard_reply_withheld(why);
}

/* where OpenSIPS sends a reply: its top Via's received address, else the
 * Via host when that is an address; 0, or -1 when neither is one */
static int sg_reply_dest(struct sip_msg *m, struct ip_addr *out)
{
	struct ip_addr *ip;
	str h;

	if(m->via1 == NULL)
		return -1;
	if(m->via1->received != NULL && m->via1->received->value.len > 0)
		h = m->via1->received->value;
	else
		h = m->via1->host;
	if(h.len >= 2 && h.s[0] == '[' && h.s[h.len - 1] == ']') {
		h.s++;
		h.len -= 2;
	}
	ip = str2ip(&h);
	if(ip == NULL)
		ip = str2ip6(&h);
	if(ip == NULL)
		return -1;
	*out = *ip;
	return 0;
}

/*
 * The reply in buf as OpenSIPS' parser reads it, into r: the values the
 * request was judged by (Call-ID, CSeq, To/From host) and the whole lines
 * the rewrite keeps. 0, or -1 if it does not parse as a reply.
 */
#define SG_KEEP_STATIC 32
static sipguard_span sg_keep_static[SG_KEEP_STATIC];

static int sg_reply_fill(struct sip_msg *m, str *buf, sipguard_reply *r,
		sipguard_span **keep)
{
	struct hdr_field *hf;
	struct sip_uri *uri;
	char *eol;
	size_t kept = 0;

	memset(r, 0, sizeof(*r));
	memset(m, 0, sizeof(*m));
	m->buf = buf->s;
	m->len = (unsigned int)buf->len;
	if(parse_msg(m->buf, m->len, m) != 0 || m->first_line.type != SIP_REPLY)
		return -1;
	if(parse_headers(m, HDR_EOH_F, 0) < 0)
		return -1;
	r->buf = buf->s;
	r->len = (size_t)buf->len;
	r->status = m->first_line.u.reply.statuscode;
	eol = memchr(buf->s, '\n', buf->len);
	r->eol.s = (eol != NULL && eol > buf->s && eol[-1] == '\r') ? "\r\n" : "\n";
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
	/* the rewrite keeps every Via, as the auth module's challenge would */
	for(hf = m->headers; hf != NULL; hf = hf->next)
		kept += (hf->type == HDR_VIA_T || hf->type == HDR_FROM_T
						|| hf->type == HDR_TO_T || hf->type == HDR_CALLID_T
						|| hf->type == HDR_CSEQ_T);
	*keep = sg_keep_static;
	if(kept > SG_KEEP_STATIC) {
		*keep = (sipguard_span *)pkg_malloc(kept * sizeof(sipguard_span));
		if(*keep == NULL)
			return -2;
	}
	r->keep = *keep;
	for(hf = m->headers; hf != NULL; hf = hf->next) {
		switch(hf->type) {
			case HDR_VIA_T:
			case HDR_FROM_T:
			case HDR_TO_T:
			case HDR_CALLID_T:
			case HDR_CSEQ_T:
				(*keep)[r->keep_count].off = (uint32_t)(hf->name.s - buf->s);
				(*keep)[r->keep_count].len = (uint32_t)hf->len;
				r->keep_count++;
				break;
			case HDR_WWW_AUTHENTICATE_T:
			case HDR_PROXY_AUTHENTICATE_T:
				if(sipguard_challenge_stale(hf->body.s, (size_t)hf->body.len))
					r->flags |= SIPGUARD_REPLY_STALE;
				break;
			default:
				/* OpenSIPS' parser gives Server no type of its own */
				if(hf->name.len == 6 && strncasecmp(hf->name.s, "Server", 6) == 0) {
					r->server.off = (uint32_t)(hf->name.s - buf->s);
					r->server.len = (uint32_t)hf->len;
				}
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

/* the status code of the reply in buf, 0 if none (a request): the form
 * OpenSIPS writes read by the core from the first bytes, any other by
 * OpenSIPS' first-line parser */
static int sg_status_of(str *buf)
{
	struct msg_start fl;
	int code;

	code = sipguard_outgoing_status(buf->s, (size_t)buf->len);
	if(code >= 0)
		return code;
	memset(&fl, 0, sizeof(fl));
	if(parse_first_line(buf->s, buf->len, &fl) == NULL || fl.type != SIP_REPLY)
		return 0;
	return fl.u.reply.statuscode;
}

/* sipguard_reply_wanted() of each status code, asked in mod_init */
#define SG_STATUS_CODES 1000
static unsigned char sg_wanted[SG_STATUS_CODES];

/* a reply the rewrite is for leaves rewritten or not at all: msg_send()
 * then sends nothing of it */
static void sg_withhold(str *data, const char *why)
{
	data->len = 0;
	sg_refused(why);
}

/* every SIP message OpenSIPS sends passes here; a new buffer (pkg) put in
 * data is sent instead, and freed by msg_send() */
static int sg_raw_out(str *data, struct sip_msg *unused)
{
	/* one reply at a time per process */
	static char rewritten[BUF_SIZE];
	sipguard_span *keep = NULL;
	struct ip_addr ip;
	struct sip_msg m;
	sipguard_reply r;
	size_t n = 0;
	char *p;
	int wanted, code, rc;
	sipguard_status st;

	if(data == NULL || data->s == NULL || data->len < 12 || _sg_region == NULL)
		return 0;
	/* the status line alone decides whether the rest needs parsing;
	 * requests (0) go out untouched */
	code = sg_status_of(data);
	wanted = (code > 0 && code < SG_STATUS_CODES) ? sg_wanted[code] : 0;
	if(!wanted)
		return 0;
	rc = sg_reply_fill(&m, data, &r, &keep);
	if(rc < 0 || sg_reply_dest(&m, &ip) < 0) {
		free_sip_msg(&m);
		sg_keep_free(keep);
		if(wanted == SIPGUARD_REPLY_REWRITABLE)
			sg_withhold(data, rc == -2 ? "no memory for its rewrite"
									   : "it does not parse");
		return 0;
	}
	st = sipguard_reply_out(_sg_region, &r, (const uint8_t *)ip.u.addr, ip.len,
			sipguard_clock_ns(), rewritten, sizeof(rewritten), &n);
	p = NULL;
	if(st == SIPGUARD_ERR_FULL && n > 0) {
		/* larger than a datagram (TCP): a buffer of its own size */
		p = (char *)pkg_malloc(n + 1);
		if(p != NULL)
			st = sipguard_reply_out(_sg_region, &r, (const uint8_t *)ip.u.addr,
					ip.len, sipguard_clock_ns(), p, n, &n);
	}
	free_sip_msg(&m);
	sg_keep_free(keep);
	if(st == SIPGUARD_ERR_FULL && p == NULL) {
		sg_withhold(data, "no memory for its rewrite");
		return 0;
	}
	if(st != SIPGUARD_OK || n == 0) {
		if(p != NULL)
			pkg_free(p);
		if(st != SIPGUARD_OK && st != SIPGUARD_ERR_BUSY)
			SG_LOG_STATUS("sipguard_reply_out", st);
		return 0;
	}
	if(p == NULL) {
		p = (char *)pkg_malloc(n + 1);
		if(p == NULL) {
			sg_withhold(data, "no memory for its rewrite");
			return 0;
		}
		memcpy(p, rewritten, n);
	}
	p[n] = '\0';
	data->s = p;
	data->len = (int)n;
	return 0;
}

/* the auth module's nonce functions and settings, when it is loaded */
static void sg_find_auth(void)
{
	struct sr_module *mod;

	for(mod = modules; mod != NULL; mod = mod->next)
		if(mod->exports != NULL && strcmp(mod->exports->name, "auth") == 0)
			break;
	if(mod == NULL || mod->handle == NULL)
		return;
	sg_auth.ncp = (struct nonce_context **)dlsym(mod->handle, "ncp");
	sg_auth.nonce_expire = (int *)dlsym(mod->handle, "nonce_expire");
	sg_auth.nonce_buf = (char **)dlsym(mod->handle, "nonce_buf");
	sg_auth.sec_monit = (int **)dlsym(mod->handle, "sec_monit");
	sg_auth.second = (int **)dlsym(mod->handle, "second");
	sg_auth.next_index = (int **)dlsym(mod->handle, "next_index");
	sg_auth.disable_nonce_check = (int *)dlsym(mod->handle, "disable_nonce_check");
	sg_auth.decr_nonce = dlsym(mod->handle, "decr_nonce");
	sg_auth.is_nonce_stale = dlsym(mod->handle, "is_nonce_stale");
	if(sg_auth.ncp == NULL || sg_auth.nonce_expire == NULL
			|| sg_auth.nonce_buf == NULL || sg_auth.sec_monit == NULL
			|| sg_auth.second == NULL || sg_auth.next_index == NULL
			|| sg_auth.disable_nonce_check == NULL
			|| sg_auth.decr_nonce == NULL || sg_auth.is_nonce_stale == NULL) {
		LM_WARN("the auth module's nonce check was not found: a made-up "
				"nonce is not told from a real one\n");
		memset(&sg_auth, 0, sizeof(sg_auth));
	}
}

/* an int parameter of the core's parameter set; -1 (logged) if refused */
static int sg_config_int(sipguard_config *cfg, const char *name, int v)
{
	char num[32];
	int n;

	n = snprintf(num, sizeof(num), "%d", v);
	if(sipguard_config_set(cfg, name, strlen(name), num, n, NULL, 0)
			!= SIPGUARD_OK) {
		LM_ERR("cannot set %s=%d\n", name, v);
		return -1;
	}
	return 0;
}

int sipguard_guess_learn_auth(
		sipguard_config *cfg, int nonce_bytes_set, int nonce_expire_set)
{
	sg_find_auth();
	/* a challenge like the auth module's own: its nonce is 33 encrypted
	 * bytes (44 characters), whatever the request */
	if(!nonce_bytes_set
			&& (sg_config_int(cfg, "challenge_nonce_bytes", 33) < 0
					|| sg_config_int(cfg, "challenge_nonce_bytes_register", 33)
							   < 0))
		return -1;
	if(!nonce_expire_set && sg_auth.nonce_expire != NULL
			&& sg_config_int(cfg, "challenge_nonce_expire", *sg_auth.nonce_expire)
					   < 0)
		return -1;
	return 0;
}

int sipguard_guess_init(void)
{
	int code, wanted;

	/* which statuses the callback hands over: fixed by the parameters, so
	 * asked once here, before the fork, not once per reply */
	for(code = 0; code < SG_STATUS_CODES; code++) {
		wanted = 0;
		if(sipguard_reply_wanted(_sg_region, code, &wanted) != SIPGUARD_OK) {
			LM_ERR("cannot tell which replies to look at\n");
			return -1;
		}
		sg_wanted[code] = (unsigned char)wanted;
	}
	if(register_post_raw_processing_cb(sg_raw_out, POST_RAW_PROCESSING, 0)
			< 0) {
		LM_ERR("cannot register the outgoing-message callback\n");
		return -1;
	}
	return 0;
}
