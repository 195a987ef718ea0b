/*
 * sipguard.h - the C ABI between a host shim (Kamailio module) and the Rust core.
 *
 * This header is the only contract between the two sides. The core knows
 * nothing about Kamailio: it receives plain bytes, lengths, addresses and
 * monotonic times, and reports through return codes, out-parameters and a
 * logging callback.
 *
 * Rules every function follows:
 *   - No panic or unwind crosses this boundary: a caught panic returns
 *     SIPGUARD_ERR_PANIC (and is logged through the logger).
 *   - A NULL pointer with a non-zero length, or a NULL required pointer,
 *     returns SIPGUARD_ERR_NULL and dereferences nothing.
 *   - Buffers are pointer + length and need not be NUL-terminated.
 *   - An `err` buffer may be NULL (or err_len 0): the message is then dropped.
 *   - Status and verdict values are never renumbered.
 *
 * Life cycle in a forking host:
 *   1. parameters:  sipguard_config_new(), sipguard_config_set() per parameter
 *   2. mod_init:    sipguard_region_create() maps the shared region (before fork),
 *                   sipguard_state_load() restores saved bans
 *   3. workers:     sipguard_check(), sipguard_drop_check() per packet/request
 *   4. timer:       sipguard_sweep() every second, sipguard_state_save() periodically
 *   5. shutdown:    sipguard_state_save(), sipguard_region_destroy()
 */
#ifndef SIPGUARD_H
#define SIPGUARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result of every call. */
typedef enum sipguard_status {
	SIPGUARD_OK = 0,
	SIPGUARD_ERR_NULL = 1,          /* a required pointer was NULL */
	SIPGUARD_ERR_INVALID = 2,       /* an argument or parameter value is invalid */
	SIPGUARD_ERR_UNKNOWN_PARAM = 3, /* sipguard_config_set(): no such parameter */
	SIPGUARD_ERR_SYSTEM = 4,        /* the OS refused (e.g. mmap failed) */
	SIPGUARD_ERR_PANIC = 5,         /* the core panicked; the call had no effect */
	SIPGUARD_ERR_NOT_FOUND = 6,     /* no such ban (unban) */
	SIPGUARD_ERR_IO = 7,            /* state file could not be read or written */
	SIPGUARD_ERR_CORRUPT = 8,       /* state file is corrupt; it was ignored */
	SIPGUARD_ERR_FULL = 9,          /* output buffer too small */
	SIPGUARD_ERR_BUSY = 10          /* entry lock not obtained in time; nothing changed */
} sipguard_status;

/* Verdict of sipguard_check(); the Kamailio shim returns it to the script as is. */
typedef enum sipguard_verdict {
	SIPGUARD_PASS = 1,         /* counted, under the rate */
	SIPGUARD_ALLOWLISTED = 2,  /* source matches an `allow` CIDR; never limited */
	SIPGUARD_UNTRACKED = 3,    /* passed without counting: its bucket was busy */
	SIPGUARD_LIMITED = -1,     /* this request exceeded the rate: the source is banned now */
	SIPGUARD_BANNED = -2,      /* the source was already banned */
	SIPGUARD_SCANNER = -3,     /* a scanner fingerprint: the source is banned now */
	SIPGUARD_ENUMERATION = -4  /* too many distinct user names: the source is banned now */
} sipguard_verdict;

/* Log levels passed to the logger callback (map to L_ERR .. L_DBG). */
typedef enum sipguard_log_level {
	SIPGUARD_LOG_ERR = 1,
	SIPGUARD_LOG_WARN = 2,
	SIPGUARD_LOG_NOTICE = 3,
	SIPGUARD_LOG_INFO = 4,
	SIPGUARD_LOG_DEBUG = 5
} sipguard_log_level;

/* Why a source was banned. */
typedef enum sipguard_ban_reason {
	SIPGUARD_REASON_FLOOD = 1,    /* exceeded `rate` */
	SIPGUARD_REASON_MANUAL = 2,   /* sipguard.ban RPC */
	SIPGUARD_REASON_RESTORED = 3, /* loaded from state_file (keeps original reason when known) */
	SIPGUARD_REASON_SCANNER = 4,  /* a known scanner's User-Agent or From/To */
	SIPGUARD_REASON_ENUMERATION = 5, /* more distinct user names than enum_threshold */
	SIPGUARD_REASON_AUTH = 6      /* auth_maxretry authentication failures */
} sipguard_ban_reason;

/* Opaque, process-local parameter set (built before mod_init). */
typedef struct sipguard_config sipguard_config;
/* Opaque, process-local handle to the shared region (inherited across fork). */
typedef struct sipguard_region sipguard_region;

/*
 * Logger: the core sends every log line here (ban/unban lines, state file
 * reports, panic messages). `msg` is not NUL-terminated. Set once, before
 * anything else; NULL disables logging. Called from any process.
 */
typedef void (*sipguard_log_fn)(int level, const char *msg, size_t msg_len);
void sipguard_set_logger(sipguard_log_fn logger);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC, a vDSO read). */
uint64_t sipguard_clock_ns(void);

/* Static, NUL-terminated description of a status code. */
const char *sipguard_status_message(int status);

/* ---- configuration ---------------------------------------------------- */

sipguard_status sipguard_config_new(sipguard_config **out);
void sipguard_config_free(sipguard_config *cfg);

/*
 * Set one parameter from its text form. On SIPGUARD_ERR_INVALID or
 * SIPGUARD_ERR_UNKNOWN_PARAM a NUL-terminated message naming the parameter
 * and the bad token is written to err (truncated to err_len).
 *
 * Parameters (name: form, default):
 *   table_size    : entries, 64..2^26, rounded up to a power of two        (65536)
 *   rate          : "N/s", "N/m", "N/h" or "N/Ts" e.g. "30/2s"              ("30/2s")
 *   burst         : requests allowed back to back, integer >= 1            (N of rate)
 *   ipv6_prefix   : IPv6 sources are keyed per this prefix, 1..128          (64)
 *   ban_time      : first ban; duration "300", "300s", "5m", "1h", "1d"    (300s)
 *   ban_factor    : each further ban multiplies the duration, 1..1000       (2)
 *   ban_max       : cap of an escalated ban, duration                      (1d)
 *   ban_permanent : 0/1: a ban that reaches ban_max is permanent instead   (0)
 *   ban_forget    : offences are forgotten this long after a ban ends      (1d)
 *   allow         : CIDR or address, v4 or v6; repeatable, or a list
 *                   separated by commas/spaces                               (none)
 *   early_drop    : 0/1: drop traffic of banned sources before parsing     (0)
 *   state_file    : path where bans are saved and restored ("" = off)      ("")
 *   save_interval : duration between periodic saves                        (60s)
 *   ban_prefix_threshold : first offences in one network within ban_time
 *                   that ban the network; 0 = no prefix bans                 (16)
 *   ban_prefix_v4 : network length of an IPv4 prefix ban, 8..32             (24)
 *   ban_prefix_v6 : network length of an IPv6 prefix ban, 16..128           (48)
 */
sipguard_status sipguard_config_set(sipguard_config *cfg,
		const char *name, size_t name_len,
		const char *value, size_t value_len,
		char *err, size_t err_len);

/* Settings the shim itself acts on. */
typedef struct sipguard_settings {
	uint32_t early_drop;          /* 1: register the network-data hook */
	uint32_t save_interval_s;     /* seconds between sipguard_state_save() calls */
	uint32_t has_state_file;      /* 1: state_file is set */
	uint32_t ipv6_prefix;
	uint64_t table_size;          /* entries, after rounding */
	uint64_t region_bytes;        /* bytes the shared region will map */
} sipguard_settings;

sipguard_status sipguard_config_settings(const sipguard_config *cfg,
		sipguard_settings *out);

/* ---- shared region ---------------------------------------------------- */

/*
 * Map the shared region (MAP_SHARED|MAP_ANONYMOUS) sized from cfg, and copy
 * cfg into the handle. Call in the parent before forking workers; children
 * inherit both. cfg may be freed afterwards. On error, a message is written
 * to err.
 */
sipguard_status sipguard_region_create(const sipguard_config *cfg,
		sipguard_region **out, char *err, size_t err_len);
void sipguard_region_destroy(sipguard_region *region);

/* ---- per request ------------------------------------------------------ */

typedef struct sipguard_check_result {
	int32_t verdict;      /* sipguard_verdict */
	uint32_t offences;    /* bans of this source so far (incl. a new one) */
	uint64_t ban_ms;      /* remaining ban in ms; UINT64_MAX = permanent; 0 = none */
} sipguard_check_result;

/*
 * Count one request from addr (4 bytes IPv4 or 16 bytes IPv6, network
 * order) at monotonic time now_ns. Allocates nothing; takes one bucket
 * lock for a few loads and stores; no syscall.
 */
sipguard_status sipguard_check(sipguard_region *region,
		const uint8_t *addr, size_t addr_len, uint64_t now_ns,
		sipguard_check_result *out);

/* Same, with the address as text ("192.0.2.1", "2001:db8::1", "[::1]"). */
sipguard_status sipguard_check_text(sipguard_region *region,
		const char *addr, size_t addr_len, uint64_t now_ns,
		sipguard_check_result *out);

/*
 * Early-drop test for the network hook: *drop_out = 1 when addr is banned
 * (the drop is counted in statistics and in the ban's hits), else 0.
 * Does not count a request against the rate.
 */
sipguard_status sipguard_drop_check(sipguard_region *region,
		const uint8_t *addr, size_t addr_len, uint64_t now_ns,
		int32_t *drop_out);

/* ---- operations (RPC, timer) ------------------------------------------ */

/*
 * Ban addr (text) now. seconds == 0: the escalated ban_time for this
 * source; seconds == UINT64_MAX: permanent. Logs the ban line.
 */
sipguard_status sipguard_ban(sipguard_region *region,
		const char *addr, size_t addr_len, uint64_t seconds, uint64_t now_ns,
		char *err, size_t err_len);

/* Lift a ban on addr (text: an address, or a prefix ban as a CIDR).
 * SIPGUARD_ERR_NOT_FOUND when not banned. Logs. */
sipguard_status sipguard_unban(sipguard_region *region,
		const char *addr, size_t addr_len, uint64_t now_ns,
		char *err, size_t err_len);

/* One entry as reported by the list calls. Strings are NUL-terminated. */
typedef struct sipguard_entry_info {
	char key[64];         /* "192.0.2.1", "2001:db8::/64", or a prefix ban "198.51.100.0/24" */
	int32_t banned;       /* 1 while banned */
	int32_t reason;       /* sipguard_ban_reason of the current/last ban, 0 none */
	uint64_t ban_ms;      /* remaining ban in ms; UINT64_MAX = permanent */
	uint32_t offences;    /* bans so far */
	uint32_t load_pct;    /* share of the burst allowance in use now, 0..100+ */
	uint64_t hits;        /* requests and dropped packets seen from this key */
	uint64_t idle_ms;     /* since the last request */
} sipguard_entry_info;

/* Called once per entry; return 0 to continue, non-zero to stop. */
typedef int (*sipguard_entry_fn)(void *ctx, const sipguard_entry_info *entry);

/* Every active ban, in table order. */
sipguard_status sipguard_list_bans(sipguard_region *region, uint64_t now_ns,
		sipguard_entry_fn fn, void *ctx);

/* Up to max unbanned sources with the highest load, highest first. max <= 100. */
sipguard_status sipguard_list_top(sipguard_region *region, uint64_t now_ns,
		uint32_t max, sipguard_entry_fn fn, void *ctx);

typedef struct sipguard_stats {
	uint64_t checked;       /* sipguard_check() calls */
	uint64_t passed;        /* verdict PASS or UNTRACKED */
	uint64_t allowlisted;   /* verdict ALLOWLISTED */
	uint64_t limited;       /* verdict LIMITED (new bans by rate) */
	uint64_t rejected;      /* verdict BANNED */
	uint64_t bans;          /* bans created, all reasons */
	uint64_t unbans;        /* bans lifted (expired or RPC) */
	uint64_t dropped;       /* packets dropped early */
	uint64_t untracked;     /* verdict UNTRACKED */
	uint64_t evictions;     /* entries recycled for new sources */
	uint64_t active_bans;   /* bans in force now (counted by the sweep) */
	uint64_t entries_used;  /* occupied entries */
	uint64_t table_size;    /* capacity in entries */
	uint64_t region_bytes;  /* mapped bytes, fixed (all shared tables) */
	uint64_t scanners;      /* requests with a scanner fingerprint */
	uint64_t enumerations;  /* sources caught enumerating user names */
	uint64_t auth_failures; /* authentication failures counted */
	uint64_t auth_bans;     /* sources over auth_maxretry */
	uint64_t throttles;     /* user names throttled (distributed guess) */
	uint64_t throttled_auth;/* credentials not checked: user name throttled */
	uint64_t throttled_users;/* user names throttled now (counted by the sweep) */
	uint64_t normalized;    /* replies rewritten into a challenge */
} sipguard_stats;

sipguard_status sipguard_stats_get(sipguard_region *region, sipguard_stats *out);

/*
 * Timer work, once a second from one process: logs expired bans (once),
 * forgets stale offences, recounts active bans and used entries.
 */
sipguard_status sipguard_sweep(sipguard_region *region, uint64_t now_ns);

/* Write active bans and offence history to state_file (atomic rename). */
sipguard_status sipguard_state_save(sipguard_region *region, uint64_t now_ns);

/*
 * Restore from state_file. A missing file returns SIPGUARD_OK (nothing
 * loaded); a corrupt one is logged and ignored (SIPGUARD_ERR_CORRUPT).
 * *loaded_out (may be NULL) receives the number of bans restored.
 */
sipguard_status sipguard_state_load(sipguard_region *region, uint64_t now_ns,
		uint32_t *loaded_out);


/* ---- encrypted signalling and media ------------------------------------ */

/* Verdict of sipguard_sdp_check(); the shim returns it to the script as is. */
typedef enum sipguard_sdp_verdict {
	SIPGUARD_SDP_OK = 1,           /* every active stream is SRTP (or allowed DTLS-SRTP) */
	SIPGUARD_SDP_NO_SDP = -1,      /* no SDP body (plain or inside multipart)   -> 400 */
	SIPGUARD_SDP_CLEARTEXT = -2,   /* an active stream is not encrypted         -> 488 */
	SIPGUARD_SDP_BAD_CRYPTO = -3,  /* weak, unknown or malformed crypto         -> 488 */
	SIPGUARD_SDP_TOO_COMPLEX = -4  /* over the limits, or ambiguous / malformed -> 488 */
} sipguard_sdp_verdict;

/* Opaque, process-local, read-only SDP policy (built at start-up). */
typedef struct sipguard_sdp_policy sipguard_sdp_policy;

/*
 * Parse a policy spec such as
 *   "suites=AES_CM_128_HMAC_SHA1_80,AEAD_AES_256_GCM;dtls=1;optimistic=0;sdes_tls=1"
 * An empty spec is the default policy. On error a message naming the bad
 * token is written to err.
 */
sipguard_status sipguard_sdp_policy_new(const char *spec, size_t spec_len,
		sipguard_sdp_policy **out, char *err, size_t err_len);
void sipguard_sdp_policy_free(sipguard_sdp_policy *policy);

/* sipguard_sdp_check() flags */
#define SIPGUARD_SDP_SIGNALLING_TLS 1u /* the message came over TLS or WSS */

/*
 * Check a message body against policy. content_type is the Content-Type
 * header value (may be empty: then the body is taken as SDP if it looks
 * like SDP). flags: SIPGUARD_SDP_SIGNALLING_TLS when the message came over
 * TLS (with the policy's sdes_tls, SDES keys need it). *verdict_out
 * receives a sipguard_sdp_verdict; reason (may be NULL) a NUL-terminated
 * explanation such as "stream 2 (video) is RTP/AVP: cleartext". Allocates
 * nothing.
 */
sipguard_status sipguard_sdp_check(const sipguard_sdp_policy *policy,
		const char *content_type, size_t content_type_len,
		const uint8_t *body, size_t body_len, uint32_t flags,
		int32_t *verdict_out, char *reason, size_t reason_len);

/*
 * Whether a Contact header value asks for TLS: every contact URI is
 * "sips:" or its last transport parameter is "tls" or "wss"
 * (case-insensitive); "*" counts as yes. *out = 1 yes, 0 no.
 */
sipguard_status sipguard_contact_wants_tls(const char *contact, size_t contact_len,
		int32_t *out);

/* ---- guessing defences: enumeration, scanners, password guessing ------- */

/* Borrowed bytes: NULL with length 0 when absent. */
typedef struct sipguard_str {
	const char *s;
	size_t len;
} sipguard_str;

#define SIPGUARD_MAX_USER_AGENTS 8

/* sipguard_request.flags */
#define SIPGUARD_REQ_IN_DIALOG 1   /* it has a To tag: replies left alone */
#define SIPGUARD_REQ_STALE_NONCE 2 /* the auth module calls its nonce stale
									* before looking at the password */

/*
 * One request, each value as the host's parser gives it to the script (the
 * core parses none of them again). Borrowed for the call.
 */
typedef struct sipguard_request {
	sipguard_str method;
	sipguard_str ruri_user;   /* $rU */
	sipguard_str to_user;     /* $tU */
	sipguard_str from;        /* From header value (fingerprints only) */
	sipguard_str to;          /* To header value (fingerprints only) */
	sipguard_str call_id;     /* $ci */
	sipguard_str cseq_num;    /* CSeq number */
	sipguard_str cseq_method; /* CSeq method */
	sipguard_str from_tag;    /* $ft */
	sipguard_str auth_user;   /* digest user name the auth module will check;
							   * empty: no well-formed digest credentials */
	sipguard_str credentials; /* their whole header value (hashed only) */
	sipguard_str user_agents[SIPGUARD_MAX_USER_AGENTS];
	uint32_t user_agent_count; /* User-Agent headers in the request (may be
								* more than the array holds: a scanner) */
	uint32_t flags;            /* SIPGUARD_REQ_* */
} sipguard_request;

/*
 * sipguard_check() plus the request-time defences: a scanner fingerprint
 * (SIPGUARD_SCANNER) or too many distinct user names without credentials
 * (SIPGUARD_ENUMERATION) bans the source now; a request with credentials
 * is noted so that a 401/407/403 reply to it counts as a failure.
 */
sipguard_status sipguard_check_request(const sipguard_region *region,
		const uint8_t *addr, size_t addr_len, const sipguard_request *req,
		uint64_t now_ns, sipguard_check_result *out);

/* The script authenticated this request: its replies are left alone and the
 * source is trusted for its user name (auth_trust_time). */
sipguard_status sipguard_authenticated(const sipguard_region *region,
		const uint8_t *addr, size_t addr_len, const sipguard_request *req,
		uint64_t now_ns);

/* Count a failed authentication (once per transaction); *banned = 1 if it
 * banned the source. */
sipguard_status sipguard_auth_failed(const sipguard_region *region,
		const uint8_t *addr, size_t addr_len, const sipguard_request *req,
		uint64_t now_ns, int *banned);

/* *allowed = 0 when the request's user name is throttled and this source has
 * not authenticated as it recently: its credentials must not be checked. */
sipguard_status sipguard_auth_allowed(const sipguard_region *region,
		const uint8_t *addr, size_t addr_len, const sipguard_request *req,
		uint64_t now_ns, int *allowed);

/* One whole header of a reply (line end included): bytes off..off+len. */
typedef struct sipguard_span {
	uint32_t off;
	uint32_t len;
} sipguard_span;

/* sipguard_reply.flags */
#define SIPGUARD_REPLY_STALE 1   /* it carries a stale=true challenge */
#define SIPGUARD_REPLY_NONCE_ID 2 /* nonce_id/nonce_pool_flags are set */

/* A reply about to leave, as the host's parser read it. */
typedef struct sipguard_reply {
	const char *buf;
	size_t len;
	uint32_t status;
	uint32_t flags;           /* SIPGUARD_REPLY_* */
	sipguard_str call_id;     /* parsed as for sipguard_request */
	sipguard_str cseq_num;
	sipguard_str cseq_method;
	sipguard_str from_tag;
	sipguard_str to_host;     /* host of the To URI ($td) */
	sipguard_str from_host;   /* host of the From URI ($fd) */
	sipguard_str eol;         /* the reply's line end: "\r\n" or "\n" */
	const sipguard_span *keep; /* Via, From, To, Call-ID, CSeq in order */
	size_t keep_count;
	sipguard_span server;      /* the Server header; len 0: none */
	uint32_t nonce_id;         /* next id of the auth module's nonce counter */
	uint32_t nonce_pool_flags; /* its pool number | nonce-count/one-time flags */
} sipguard_reply;

/* *wanted: whether replies with this status need sipguard_reply_out(): 0
 * no (no parsing needed), SIPGUARD_REPLY_COUNTED (it may be a failure to
 * count), SIPGUARD_REPLY_REWRITABLE (it may be rewritten: if it cannot be,
 * it must not leave). */
#define SIPGUARD_REPLY_COUNTED 1
#define SIPGUARD_REPLY_REWRITABLE 2
sipguard_status sipguard_reply_wanted(const sipguard_region *region,
		uint32_t status, int *wanted);

/*
 * A reply is about to be sent to dst (4 or 16 address bytes). Counts it as
 * an authentication failure when it is one, and when it would tell an
 * existing user from a missing one, writes its replacement (a digest
 * challenge) into buf and sets *out_len; *out_len = 0: send it unchanged.
 * SIPGUARD_ERR_FULL: buf too small, *out_len is the size needed (call
 * again with a buffer that large; the failure is not counted twice).
 */
sipguard_status sipguard_reply_out(const sipguard_region *region,
		const sipguard_reply *reply, const uint8_t *dst, size_t dst_len,
		uint64_t now_ns, char *buf, size_t cap, size_t *out_len);

typedef struct sipguard_user_info {
	const char *name; size_t name_len;  /* valid during the callback only */
	uint32_t failures;         /* within user_findtime */
	uint32_t throttled_s;      /* remaining throttle; 0 = not throttled */
	uint32_t throttles;        /* times throttled */
	uint32_t trusted_sources;  /* sources that authenticated as it recently */
} sipguard_user_info;

typedef int (*sipguard_user_fn)(void *ctx, const sipguard_user_info *user);

/* Up to max user names with state; return non-zero from fn to stop. */
sipguard_status sipguard_list_users(const sipguard_region *region, uint64_t now_ns,
		uint32_t max, sipguard_user_fn fn, void *ctx);

/* Lift a user name's throttle; SIPGUARD_ERR_NOT_FOUND if it had none. */
sipguard_status sipguard_unthrottle(const sipguard_region *region,
		const char *name, size_t len, uint64_t now_ns);
/* ==== toll fraud ========================================================
 * Destination policy, per-account concurrent calls, spend velocity.
 * Built from the same sipguard_config (parameters below) in mod_init,
 * before the fork; children inherit the handle and its shared memory.
 *
 * Parameters (sipguard_config_set):
 *   fraud_rules        : rules file path; "" = none (every dial check fails closed) ("")
 *   fraud_max_rules    : most prefix rules, and most account rules, 1..2^20  (4096)
 *   account_table_size : accounts tracked, 8..2^24, rounded up               (4096)
 *   intl_prefixes      : international access prefixes, comma separated      ("00,011")
 *   home_country_code  : country code given to national numbers; "" = off    ("")
 *   national_prefix    : national trunk prefix, used with home_country_code  ("0")
 *   cpm_warning        : call attempts per minute per account that warn; 0 off (0)
 *   cpm_critical       : ... that suspend the account; 0 = off              (0)
 *   spend_warning      : spend per hour (currency units, 4 decimals) that warns (0)
 *   spend_critical     : ... that suspends the account; 0 = off             (0)
 *   call_limit         : concurrent calls per account when neither the
 *                        function nor the account's rule gives one; 0 = none (0)
 *   fraud_state_file   : suspended accounts saved here, restored at start   ("")
 *
 * Money is in ten-thousandths of the currency unit (1.5 = 15000).
 */

/* sipguard_fraud_dial_check() verdicts; the shim returns them as is. */
typedef enum sipguard_dial_verdict {
	SIPGUARD_DIAL_ALLOWED = 1,
	SIPGUARD_DIAL_CLASS_DENIED = -1, /* the account may not dial this class (or has no rule, no default) */
	SIPGUARD_DIAL_SUSPENDED = -2,    /* the account is suspended */
	SIPGUARD_DIAL_VELOCITY = -3,     /* this attempt crossed a critical threshold: suspended now */
	SIPGUARD_DIAL_NO_RULE = -4,      /* bad number, or no prefix rule matches it */
	SIPGUARD_DIAL_TABLE_FULL = -5,   /* the account's table bucket holds only live accounts */
	SIPGUARD_DIAL_UNAVAILABLE = -6   /* bad account name, busy, rules mid-reload, internal error */
} sipguard_dial_verdict;

/* sipguard_fraud_call_start() verdicts. */
typedef enum sipguard_call_verdict {
	SIPGUARD_CALL_ADMITTED = 1,
	SIPGUARD_CALL_LIMIT = -1,        /* the account has `limit` calls up */
	SIPGUARD_CALL_SUSPENDED = -2,
	SIPGUARD_CALL_TABLE_FULL = -5,   /* the account's table bucket holds only live accounts */
	SIPGUARD_CALL_UNAVAILABLE = -6   /* bad account name, busy, rules mid-reload, internal error */
} sipguard_call_verdict;

/* Destination classes (sipguard_dial_result.class_id); 0 = none matched. */
typedef enum sipguard_dial_class {
	SIPGUARD_CLASS_DOMESTIC = 1,
	SIPGUARD_CLASS_MOBILE = 2,
	SIPGUARD_CLASS_INTERNATIONAL = 3,
	SIPGUARD_CLASS_PREMIUM = 4,
	SIPGUARD_CLASS_HIGH_RISK = 5
} sipguard_dial_class;

/* Opaque handle (process-local, inherited across fork). */
typedef struct sipguard_fraud sipguard_fraud;

/*
 * One call. The host allocates it in memory shared by all its processes
 * (Kamailio shm), zeroed, and passes it to start, answered and end; the
 * contents are the core's. The end counts the call down exactly once,
 * whichever process and however many times it is called.
 */
typedef struct sipguard_call {
	uint64_t opaque[5];
} sipguard_call;

/* Map the shared state, load fraud_rules (errors: "file:line: message")
 * and fraud_state_file. Before the fork. */
sipguard_status sipguard_fraud_create(const sipguard_config *cfg, uint64_t now_ns,
		sipguard_fraud **out, char *err, size_t err_len);
void sipguard_fraud_destroy(sipguard_fraud *fraud);

typedef struct sipguard_fraud_settings {
	uint32_t has_rules;           /* fraud_rules is set */
	uint32_t has_state_file;      /* fraud_state_file is set */
	uint64_t account_table_size;  /* accounts, after rounding */
	uint64_t bytes;               /* shared bytes mapped */
} sipguard_fraud_settings;

sipguard_status sipguard_fraud_settings_get(const sipguard_fraud *fraud,
		sipguard_fraud_settings *out);

typedef struct sipguard_dial_result {
	int32_t verdict;   /* sipguard_dial_verdict */
	int32_t class_id;  /* sipguard_dial_class of the matched prefix, 0 none */
	uint64_t rate;     /* rate per minute of the matched prefix (money) */
} sipguard_dial_result;

/*
 * May `account` call `number` (a dialled number: the R-URI user) now?
 * Counts a call attempt of the account (velocity). reason (may be NULL)
 * receives a NUL-terminated text: the class when allowed, else why not.
 * Allocates nothing; one account bucket lock; no file read.
 */
sipguard_status sipguard_fraud_dial_check(const sipguard_fraud *fraud,
		const char *account, size_t account_len,
		const char *number, size_t number_len, uint64_t now_ns,
		sipguard_dial_result *out, char *reason, size_t reason_len);

/* Static name of a class ("premium"), "" for 0 or unknown. */
const char *sipguard_fraud_class_name(int class_id);

/* Rate per minute of the prefix `number` matches (0 when none). */
sipguard_status sipguard_fraud_rate(const sipguard_fraud *fraud,
		const char *number, size_t number_len, uint64_t *rate_out);

/*
 * Admit a call of `account` while it has fewer than `limit` calls up
 * (limit 0: the account's rule, else call_limit; 0 there = no limit).
 * On SIPGUARD_CALL_ADMITTED `call` is armed; rate is the call's rate per
 * minute for spend (money). Allocates nothing.
 */
sipguard_status sipguard_fraud_call_start(const sipguard_fraud *fraud,
		const char *account, size_t account_len, uint32_t limit, uint64_t rate,
		uint64_t now_ns, sipguard_call *call, int32_t *verdict_out,
		char *reason, size_t reason_len);

/* The call was answered: its spend runs from now. Idempotent. */
sipguard_status sipguard_fraud_call_answered(const sipguard_fraud *fraud,
		sipguard_call *call, uint64_t now_ns);

/*
 * The call ended (any way). *ended_out (may be NULL) = 1 when this call
 * counted it down, 0 when it already was (or never admitted).
 * SIPGUARD_ERR_BUSY: nothing changed; call again later.
 */
sipguard_status sipguard_fraud_call_end(const sipguard_fraud *fraud,
		sipguard_call *call, uint64_t now_ns, int32_t *ended_out);

/* Suspend an account now (reason rpc); logs the SUSPEND line; the event
 * is handed over by the next tick. *changed_out = 0: it already was. */
sipguard_status sipguard_fraud_suspend(const sipguard_fraud *fraud,
		const char *account, size_t account_len, uint64_t now_ns,
		int32_t *changed_out);

/* Lift a suspension and forgive what was counted so far. Logs.
 * SIPGUARD_ERR_NOT_FOUND: not suspended. */
sipguard_status sipguard_fraud_unsuspend(const sipguard_fraud *fraud,
		const char *account, size_t account_len, uint64_t now_ns);

/* Re-read fraud_rules and publish it to every process. On error (message
 * in err, "file:line: ...") the rules in force stay. */
sipguard_status sipguard_fraud_reload(const sipguard_fraud *fraud,
		char *err, size_t err_len, uint32_t *prefixes_out, uint32_t *accounts_out);

typedef struct sipguard_account_info {
	char name[72];          /* NUL-terminated, cut at 64 bytes */
	uint32_t active;        /* calls up */
	int32_t suspended;      /* 1 while suspended */
	char reason[8];         /* "cpm", "spend", "rpc" or "" */
	uint64_t cpm;           /* call attempts in the last minute (sliding) */
	uint64_t spend;         /* spend in the last hour incl. calls up (money) */
	uint64_t since_unix_ms; /* when suspended */
} sipguard_account_info;

typedef int (*sipguard_account_fn)(void *ctx, const sipguard_account_info *a);

/* Every tracked account; fn returns non-zero to stop. fn runs with no lock
 * of the account table held (on copies taken a bucket at a time), so it may
 * allocate: workers are not held up while it builds a reply. */
sipguard_status sipguard_fraud_list(const sipguard_fraud *fraud, uint64_t now_ns,
		sipguard_account_fn fn, void *ctx);

/* Called once per new suspension; account is not NUL-terminated. */
typedef void (*sipguard_suspend_event_fn)(void *ctx, const char *account,
		size_t account_len, const char *reason);

/*
 * Timer work, once a second from one process: suspends accounts whose
 * spend with calls up crossed spend_critical, calls fn for every suspension
 * made since the last tick (from any process), saves fraud_state_file when
 * suspensions changed. fn NULL (shutdown): the same, but the suspensions'
 * events stay pending for a later tick with fn.
 */
sipguard_status sipguard_fraud_tick(const sipguard_fraud *fraud, uint64_t now_ns,
		sipguard_suspend_event_fn fn, void *ctx);

typedef struct sipguard_fraud_stats {
	uint64_t denied;        /* dial checks not allowed */
	uint64_t suspensions;   /* accounts suspended (all reasons) */
	uint64_t active_calls;  /* calls up, all accounts */
} sipguard_fraud_stats;

sipguard_status sipguard_fraud_stats_get(const sipguard_fraud *fraud,
		sipguard_fraud_stats *out);

/* "1.5000" for 15000; NUL-terminated, truncated to len. */
sipguard_status sipguard_fraud_money_text(uint64_t amount, char *buf, size_t len);

/* ==== end of toll fraud ================================================ */


#ifdef __cplusplus
}
#endif

#endif /* SIPGUARD_H */
