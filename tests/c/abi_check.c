/*
 * Drives the core through include/sipguard.h exactly as the Kamailio shim
 * does, and checks that the header's structs have the Rust side's layout
 * (sizes and offsets arrive as -D defines from tests/c_abi.rs).
 */
/* mkstemp, close, unlink under -std=c99 */
#define _POSIX_C_SOURCE 200809L

#include "sipguard.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

/* tests/c/fraud_abi_check.c */
int fraud_abi_check(void);
/* tests/c/cluster_abi_check.c */
int cluster_abi_check(void);
/* tests/c/blocklist_abi_check.c */
int blocklist_abi_check(void);
static int ban_lines;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

static void logger(int level, const char *msg, size_t len)
{
	if (len >= 13 && memcmp(msg, "sipguard: BAN", 13) == 0)
		ban_lines++;
	fprintf(stderr, "log[%d] %.*s\n", level, (int)len, msg);
}

static int count_entry(void *ctx, const sipguard_entry_info *e)
{
	int *n = ctx;
	(*n)++;
	CHECK(strcmp(e->key, "127.0.0.2") == 0 || strcmp(e->key, "192.0.2.1") == 0);
	return 0;
}

/* sipguard_list_top(): the one unbanned source with load */
static int top_entry(void *ctx, const sipguard_entry_info *e)
{
	int *n = ctx;
	(*n)++;
	CHECK(strcmp(e->key, "127.0.0.3") == 0);
	CHECK(e->banned == 0 && e->load_pct > 0 && e->hits == 5);
	return 0;
}

/* sipguard_list_users(): what it says of the guessed user name */
struct user_seen {
	int alice;
	uint32_t throttled_s, throttles, trusted_sources;
};

static int see_user(void *ctx, const sipguard_user_info *u)
{
	struct user_seen *seen = ctx;
	if (u->name_len == 5 && memcmp(u->name, "alice", 5) == 0) {
		seen->alice++;
		seen->throttled_s = u->throttled_s;
		seen->throttles = u->throttles;
		seen->trusted_sources = u->trusted_sources;
	}
	return 0;
}

static sipguard_status set(sipguard_config *cfg, const char *name, const char *value)
{
	char err[256] = "";
	sipguard_status s = sipguard_config_set(cfg, name, strlen(name), value, strlen(value), err, sizeof err);
	if (s != SIPGUARD_OK)
		fprintf(stderr, "config %s=%s: %s\n", name, value, err);
	return s;
}

int main(void)
{
	CHECK(sizeof(sipguard_check_result) == RUST_CHECK_RESULT_SIZE);
	CHECK(sizeof(sipguard_entry_info) == RUST_ENTRY_INFO_SIZE);
	CHECK(offsetof(sipguard_entry_info, ban_ms) == RUST_ENTRY_INFO_BAN_MS);
	CHECK(offsetof(sipguard_entry_info, idle_ms) == RUST_ENTRY_INFO_IDLE_MS);
	CHECK(sizeof(sipguard_stats) == RUST_STATS_SIZE);
	CHECK(offsetof(sipguard_stats, region_bytes) == RUST_STATS_REGION_BYTES);
	CHECK(sizeof(sipguard_settings) == RUST_SETTINGS_SIZE);
	CHECK(offsetof(sipguard_settings, region_bytes) == RUST_SETTINGS_REGION_BYTES);

	sipguard_set_logger(logger);
	sipguard_config *cfg = NULL;
	CHECK(sipguard_config_new(&cfg) == SIPGUARD_OK);
	CHECK(set(cfg, "table_size", "1024") == SIPGUARD_OK);
	CHECK(set(cfg, "allow", "10.0.0.0/8") == SIPGUARD_OK);
	CHECK(set(cfg, "auth_maxretry", "2") == SIPGUARD_OK);
	CHECK(set(cfg, "user_maxretry", "2") == SIPGUARD_OK);
	CHECK(set(cfg, "rate", "10/x") == SIPGUARD_ERR_INVALID);
	CHECK(set(cfg, "no_such", "1") == SIPGUARD_ERR_UNKNOWN_PARAM);

	sipguard_settings st;
	CHECK(sipguard_config_settings(cfg, &st) == SIPGUARD_OK);
	CHECK(st.table_size == 1024 && st.ipv6_prefix == 64 && st.early_drop == 0);

	sipguard_region *r = NULL;
	char err[256];
	CHECK(sipguard_region_create(cfg, &r, err, sizeof err) == SIPGUARD_OK);
	sipguard_config_free(cfg);

	/* the toll-fraud handle on the region's own mapping */
	sipguard_fraud *rf = NULL;
	sipguard_fraud_settings fs;
	CHECK(sipguard_region_fraud(NULL, 0, &rf, err, sizeof err) == SIPGUARD_ERR_NULL && rf == NULL);
	CHECK(sipguard_region_fraud(r, sipguard_clock_ns(), &rf, err, sizeof err) == SIPGUARD_OK && rf != NULL);
	CHECK(sipguard_fraud_settings_get(rf, &fs) == SIPGUARD_OK && fs.account_table_size >= 4096);
	sipguard_fraud_destroy(rf);

	uint64_t now = sipguard_clock_ns();
	const uint8_t a[4] = {127, 0, 0, 2};
	sipguard_check_result res;
	int pass = 0, limited = 0, banned = 0;
	for (int i = 0; i < 40; i++) {
		CHECK(sipguard_check(r, a, 4, now, &res) == SIPGUARD_OK);
		pass += res.verdict == SIPGUARD_PASS;
		limited += res.verdict == SIPGUARD_LIMITED;
		banned += res.verdict == SIPGUARD_BANNED;
	}
	CHECK(pass == 30 && limited == 1 && banned == 9);
	CHECK(res.ban_ms == 300000 && res.offences == 1);
	CHECK(ban_lines == 1);

	int32_t drop = -1;
	CHECK(sipguard_drop_check(r, a, 4, now, &drop) == SIPGUARD_OK && drop == 1);
	CHECK(sipguard_check_text(r, "10.1.2.3", 8, now, &res) == SIPGUARD_OK && res.verdict == SIPGUARD_ALLOWLISTED);
	CHECK(sipguard_check_text(r, "bogus", 5, now, &res) == SIPGUARD_ERR_INVALID);

	/* Null pointers with lengths are refused, never read. */
	CHECK(sipguard_check(r, NULL, 4, now, &res) == SIPGUARD_ERR_NULL);
	CHECK(sipguard_check(NULL, a, 4, now, &res) == SIPGUARD_ERR_NULL);
	CHECK(sipguard_check(r, a, 4, now, NULL) == SIPGUARD_ERR_NULL);

	CHECK(sipguard_ban(r, "192.0.2.1", 9, 60, now, err, sizeof err) == SIPGUARD_OK);
	int n = 0;
	CHECK(sipguard_list_bans(r, now, count_entry, &n) == SIPGUARD_OK && n == 2);
	CHECK(sipguard_unban(r, "192.0.2.1", 9, now, err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_unban(r, "192.0.2.1", 9, now, err, sizeof err) == SIPGUARD_ERR_NOT_FOUND);
	CHECK(strcmp(err, "not banned") == 0);

	sipguard_stats s;
	CHECK(sipguard_stats_get(r, &s) == SIPGUARD_OK);
	CHECK(s.checked == 41 && s.passed == 30 && s.limited == 1 && s.rejected == 9 && s.allowlisted == 1);
	CHECK(s.bans == 2 && s.unbans == 1 && s.dropped == 1 && s.table_size == 1024);
	CHECK(sipguard_sweep(r, now) == SIPGUARD_OK);
	CHECK(sipguard_stats_get(r, &s) == SIPGUARD_OK && s.active_bans == 1);
	CHECK(strcmp(sipguard_status_message(SIPGUARD_ERR_NOT_FOUND), "not found") == 0);
	CHECK(strcmp(sipguard_ban_reason_name(SIPGUARD_REASON_AUTH), "auth") == 0);
	CHECK(strcmp(sipguard_ban_reason_name(0), "none") == 0);
	uint64_t secs = 1;
	CHECK(sipguard_ban_duration_parse("5m", 2, &secs) == SIPGUARD_OK && secs == 300);
	CHECK(sipguard_ban_duration_parse(NULL, 0, &secs) == SIPGUARD_OK && secs == 0);
	CHECK(sipguard_ban_duration_parse("permanent", 9, &secs) == SIPGUARD_OK && secs == UINT64_MAX);
	CHECK(sipguard_ban_duration_parse("5x", 2, &secs) == SIPGUARD_ERR_INVALID);
	CHECK(sipguard_challenge_stale("Digest realm=\"r\", stale=true", 30) == 1);
	CHECK(sipguard_challenge_stale("Digest realm=\"stale=true\"", 27) == 0);
	CHECK(sipguard_challenge_stale(NULL, 5) == 0);
	CHECK(sipguard_outgoing_status("SIP/2.0 404 Not Found", 21) == 404);
	CHECK(sipguard_outgoing_status("SIP/2.0  404 x", 14) == -1);
	CHECK(sipguard_outgoing_status("OPTIONS sip:a SIP/2.0", 21) == 0);
	sipguard_reply_withheld("it does not parse");
	sipguard_reply_withheld(NULL);

	/* The top list: unbanned sources by load (the banned 127.0.0.2 is not one). */
	const uint8_t busy[4] = {127, 0, 0, 3};
	for (int i = 0; i < 5; i++)
		CHECK(sipguard_check(r, busy, 4, now, &res) == SIPGUARD_OK && res.verdict == SIPGUARD_PASS);
	n = 0;
	CHECK(sipguard_list_top(r, now, 10, top_entry, &n) == SIPGUARD_OK && n == 1);
	CHECK(sipguard_list_top(r, now, 101, top_entry, &n) == SIPGUARD_ERR_INVALID && n == 1);

	/* Guessing defences: a scanner is banned, a 404 to a REGISTER leaves as a 401. */
	CHECK(sizeof(sipguard_request) == RUST_REQUEST_SIZE);
	CHECK(sizeof(sipguard_reply) == RUST_REPLY_SIZE);
	CHECK(sizeof(sipguard_user_info) == RUST_USER_INFO_SIZE);
	uint8_t scanner[4] = {198, 51, 100, 7};
	sipguard_request req;
	memset(&req, 0, sizeof req);
	req.method = (sipguard_str){"OPTIONS", 7};
	req.user_agents[1] = (sipguard_str){"friendly-scanner", 16};
	req.user_agent_count = 2;
	CHECK(sipguard_check_request(r, scanner, 4, &req, now, &res) == SIPGUARD_OK);
	CHECK(res.verdict == SIPGUARD_SCANNER);
	CHECK(sipguard_check_request(r, scanner, 4, NULL, now, &res) == SIPGUARD_ERR_NULL);
	static const char reply[] = "SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@example.org>;tag=1\r\n"
		"To: <sip:a@example.org>;tag=2\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
	/* the spans and values a host parser would hand over */
	sipguard_span keep[5] = {{23, 20}, {43, 33}, {76, 31}, {107, 12}, {119, 18}};
	sipguard_reply rep;
	memset(&rep, 0, sizeof rep);
	rep.buf = reply; rep.len = sizeof reply - 1; rep.status = 404;
	rep.call_id = (sipguard_str){"x", 1};
	rep.cseq_num = (sipguard_str){"1", 1};
	rep.cseq_method = (sipguard_str){"REGISTER", 8};
	rep.to_host = (sipguard_str){"example.org", 11};
	rep.eol = (sipguard_str){"\r\n", 2};
	rep.keep = keep; rep.keep_count = 5;
	int wanted = 0;
	CHECK(sipguard_request_reads_to_user("register", 8, 4) == 1);
	CHECK(sipguard_request_reads_to_user("OPTIONS", 7, 0) == 1);
	CHECK(sipguard_request_reads_to_user("INVITE", 6, 4) == 0);
	CHECK(sipguard_request_reads_to_user(NULL, 3, 0) == 0);
	CHECK(sipguard_uri_lacks_user("SIP:example.org", 15) == 1);
	CHECK(sipguard_uri_lacks_user("sip:1001@example.org", 20) == 0);
	CHECK(sipguard_uri_lacks_user("tel:+12025550100", 16) == 0);
	CHECK(sipguard_uri_lacks_user(NULL, 4) == 0);
	const char *target = NULL;
	size_t target_len = 99;
	req.to_user = (sipguard_str){"1001", 4};
	CHECK(sipguard_request_target_user(&req, &target, &target_len) == SIPGUARD_OK);
	CHECK(target_len == 4 && memcmp(target, "1001", 4) == 0);
	req.ruri_user = (sipguard_str){"2002", 4};
	CHECK(sipguard_request_target_user(&req, &target, &target_len) == SIPGUARD_OK);
	CHECK(target_len == 4 && memcmp(target, "2002", 4) == 0);
	CHECK(sipguard_request_target_user(NULL, &target, &target_len) == SIPGUARD_ERR_NULL);
	/* a length without bytes, in any value (a User-Agent among them), is
	 * refused; an absent value (NULL, 0) is not */
	req.user_agent_count = 1;
	req.user_agents[0] = (sipguard_str){NULL, 3};
	CHECK(sipguard_request_target_user(&req, &target, &target_len) == SIPGUARD_ERR_NULL);
	req.user_agents[0] = (sipguard_str){NULL, 0};
	req.call_id = (sipguard_str){NULL, 8};
	CHECK(sipguard_request_target_user(&req, &target, &target_len) == SIPGUARD_ERR_NULL);
	req.call_id = (sipguard_str){NULL, 0};
	CHECK(sipguard_request_target_user(&req, &target, &target_len) == SIPGUARD_OK);
	/* values past the count are not read; a count past the array reads
	 * the array */
	req.user_agents[1] = (sipguard_str){NULL, 3};
	CHECK(sipguard_request_target_user(&req, &target, &target_len) == SIPGUARD_OK);
	req.user_agent_count = SIPGUARD_MAX_USER_AGENTS + 3;
	CHECK(sipguard_request_target_user(&req, &target, &target_len) == SIPGUARD_ERR_NULL);
	req.user_agents[1] = (sipguard_str){"x", 1};
	CHECK(sipguard_request_target_user(&req, &target, &target_len) == SIPGUARD_OK);
	req.user_agent_count = 0;
	CHECK(sipguard_reply_wanted(r, 404, &wanted) == SIPGUARD_OK && wanted == SIPGUARD_REPLY_REWRITABLE);
	CHECK(sipguard_reply_wanted(r, 401, &wanted) == SIPGUARD_OK && wanted == SIPGUARD_REPLY_COUNTED);
	CHECK(sipguard_reply_wanted(r, 200, &wanted) == SIPGUARD_OK && wanted == 0);
	char rewritten[1024];
	size_t rlen = 0;
	CHECK(sipguard_reply_out(r, &rep, scanner, 4, now, rewritten, sizeof rewritten, &rlen) == SIPGUARD_OK);
	CHECK(rlen > 0 && strncmp(rewritten, "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h\r\nFrom:", 51) == 0);
	CHECK(strstr(rewritten, "CSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"example.org\"") != NULL);
	size_t need = rlen;
	CHECK(sipguard_reply_out(r, &rep, scanner, 4, now, rewritten, 10, &rlen) == SIPGUARD_ERR_FULL);
	CHECK(rlen == need);
	keep[4].len = 500; /* a span past the buffer is refused */
	CHECK(sipguard_reply_out(r, &rep, scanner, 4, now, rewritten, sizeof rewritten, &rlen) == SIPGUARD_ERR_INVALID);
	CHECK(sipguard_reply_out(r, NULL, scanner, 4, now, rewritten, sizeof rewritten, &rlen) == SIPGUARD_ERR_NULL);
	CHECK(sipguard_unthrottle(r, "nobody", 6, now) == SIPGUARD_ERR_NOT_FOUND);

	/* Password guessing (auth_maxretry = user_maxretry = 2): the owner's phone
	 * authenticates; two failed transactions ban the guesser and throttle the
	 * user name for every source but the phone. */
	const uint8_t phone[4] = {203, 0, 113, 6}, guesser[4] = {203, 0, 113, 5},
		other[4] = {203, 0, 113, 7};
	sipguard_request login;
	memset(&login, 0, sizeof login);
	login.method = (sipguard_str){"REGISTER", 8};
	login.to_user = (sipguard_str){"alice", 5};
	login.auth_user = (sipguard_str){"alice", 5};
	login.credentials = (sipguard_str){"Digest username=\"alice\"", 23};
	login.call_id = (sipguard_str){"c1", 2};
	login.cseq_num = (sipguard_str){"1", 1};
	login.cseq_method = (sipguard_str){"REGISTER", 8};
	CHECK(sipguard_authenticated(r, phone, 4, &login, now) == SIPGUARD_OK);
	CHECK(sipguard_authenticated(r, phone, 4, NULL, now) == SIPGUARD_ERR_NULL);
	int allowed = -1, banned_now = -1;
	login.call_id = (sipguard_str){"c2", 2};
	CHECK(sipguard_auth_allowed(r, guesser, 4, &login, now, &allowed) == SIPGUARD_OK && allowed == 1);
	CHECK(sipguard_auth_failed(r, guesser, 4, &login, now, &banned_now) == SIPGUARD_OK && banned_now == 0);
	/* the same transaction again (a retransmission) counts once */
	CHECK(sipguard_auth_failed(r, guesser, 4, &login, now, &banned_now) == SIPGUARD_OK && banned_now == 0);
	login.call_id = (sipguard_str){"c3", 2};
	CHECK(sipguard_auth_failed(r, guesser, 4, &login, now, &banned_now) == SIPGUARD_OK && banned_now == 1);
	drop = -1;
	CHECK(sipguard_drop_check(r, guesser, 4, now, &drop) == SIPGUARD_OK && drop == 1);
	login.call_id = (sipguard_str){"c4", 2};
	CHECK(sipguard_auth_allowed(r, other, 4, &login, now, &allowed) == SIPGUARD_OK && allowed == 0);
	CHECK(sipguard_auth_allowed(r, phone, 4, &login, now, &allowed) == SIPGUARD_OK && allowed == 1);
	CHECK(sipguard_auth_allowed(r, other, 4, &login, now, NULL) == SIPGUARD_ERR_NULL);
	/* a policy refusal of this request: marked, and NULL refused */
	CHECK(sipguard_policy_reply(r, &login, 0, now) == SIPGUARD_OK);
	CHECK(sipguard_policy_reply(r, &login, SIPGUARD_POLICY_403_ONLY, now) == SIPGUARD_OK);
	CHECK(sipguard_policy_reply(r, NULL, 0, now) == SIPGUARD_ERR_NULL);
	CHECK(sipguard_policy_reply(NULL, &login, 0, now) == SIPGUARD_ERR_NULL);
	struct user_seen seen = {0, 0, 0, 0};
	CHECK(sipguard_list_users(r, now, 100, see_user, &seen) == SIPGUARD_OK);
	CHECK(seen.alice == 1 && seen.throttled_s > 0 && seen.throttles == 1 && seen.trusted_sources == 1);
	CHECK(sipguard_unthrottle(r, "alice", 5, now) == SIPGUARD_OK);
	CHECK(sipguard_auth_allowed(r, other, 4, &login, now, &allowed) == SIPGUARD_OK && allowed == 1);
	CHECK(sipguard_stats_get(r, &s) == SIPGUARD_OK);
	CHECK(s.auth_failures == 2 && s.auth_bans == 1 && s.throttles == 1 && s.throttled_auth == 1);

	sipguard_region_destroy(r);

	/* Bans survive a restart through state_file. */
	char state[] = "/tmp/sipguard-abi-state-XXXXXX";
	int fd = mkstemp(state);
	CHECK(fd >= 0);
	close(fd);
	CHECK(sipguard_config_new(&cfg) == SIPGUARD_OK);
	CHECK(set(cfg, "table_size", "1024") == SIPGUARD_OK);
	CHECK(set(cfg, "state_file", state) == SIPGUARD_OK);
	sipguard_region *before = NULL, *after = NULL;
	CHECK(sipguard_region_create(cfg, &before, err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_region_create(cfg, &after, err, sizeof err) == SIPGUARD_OK);
	sipguard_config_free(cfg);
	CHECK(sipguard_ban(before, "192.0.2.44", 10, 600, now, err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_state_save(before, now) == SIPGUARD_OK);
	uint32_t loaded = 0;
	CHECK(sipguard_state_load(after, now, &loaded) == SIPGUARD_OK && loaded == 1);
	const uint8_t saved[4] = {192, 0, 2, 44};
	drop = -1;
	CHECK(sipguard_drop_check(after, saved, 4, now, &drop) == SIPGUARD_OK && drop == 1);
	CHECK(sipguard_state_load(NULL, now, &loaded) == SIPGUARD_ERR_NULL);
	sipguard_region_destroy(before);
	sipguard_region_destroy(after);
	unlink(state);

	/* Media policy: a bad spec is refused with a message, a good one checks bodies. */
	sipguard_sdp_policy *pol = NULL;
	CHECK(sipguard_sdp_policy_new("suites=NOPE", 11, &pol, err, sizeof err) == SIPGUARD_ERR_INVALID);
	CHECK(strstr(err, "NOPE") != NULL);
	CHECK(sipguard_sdp_policy_new("", 0, &pol, err, sizeof err) == SIPGUARD_OK && pol != NULL);
	static const char sdp[] =
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
		"m=audio 4000 RTP/AVP 0\r\n";
	int32_t verdict = 0;
	char reason[128] = "";
	CHECK(sipguard_sdp_check(pol, "application/sdp", 15, (const uint8_t *)sdp, sizeof sdp - 1,
			SIPGUARD_SDP_SIGNALLING_TLS, &verdict, reason, sizeof reason) == SIPGUARD_OK);
	CHECK(verdict == SIPGUARD_SDP_CLEARTEXT && reason[0] != '\0');
	CHECK(sipguard_sdp_check(pol, NULL, 0, NULL, 0, 0, &verdict, NULL, 0) == SIPGUARD_OK);
	CHECK(verdict == SIPGUARD_SDP_NO_SDP);
	CHECK(sipguard_sdp_check(pol, NULL, 0, NULL, 5, 0, &verdict, NULL, 0) == SIPGUARD_ERR_NULL);
	sipguard_sdp_policy_free(pol);

	int32_t tls = -1;
	CHECK(sipguard_contact_wants_tls("<sips:a@h>", 10, &tls) == SIPGUARD_OK && tls == 1);
	CHECK(sipguard_contact_wants_tls("<sip:a@h>", 9, &tls) == SIPGUARD_OK && tls == 0);

	failures += fraud_abi_check();
	failures += cluster_abi_check();
	failures += blocklist_abi_check();
	printf("c abi: %d failures\n", failures);
	return failures != 0;
}
