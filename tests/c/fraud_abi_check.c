/*
 * The toll-fraud part of include/sipguard.h driven as the Kamailio shim
 * drives it, and its structs checked against the Rust side's layout
 * (-D defines from tests/c_abi.rs). Called from abi_check.c's main.
 */
/* mkstemp, write, unlink under -std=c99 */
#define _POSIX_C_SOURCE 200809L

#include "sipguard.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

static int count_account(void *ctx, const sipguard_account_info *a)
{
	int *n = ctx;
	(*n)++;
	CHECK(strcmp(a->name, "alice") == 0);
	CHECK(a->suspended == 0 && a->active == 0 && a->cpm == 2);
	return 0;
}

static void on_suspension(void *ctx, const char *account, size_t len, const char *reason, int end_calls)
{
	int *n = ctx;
	(*n)++;
	CHECK(len == 3 && memcmp(account, "bob", 3) == 0 && strcmp(reason, "rpc") == 0);
	/* suspend_ends_calls is "spend" by default */
	CHECK(end_calls == 0);
}

int fraud_abi_check(void)
{
	CHECK(sizeof(sipguard_call) == RUST_CALL_SIZE);
	CHECK(sizeof(sipguard_dial_result) == RUST_DIAL_RESULT_SIZE);
	CHECK(offsetof(sipguard_dial_result, rate) == RUST_DIAL_RESULT_RATE);
	CHECK(sizeof(sipguard_account_info) == RUST_ACCOUNT_INFO_SIZE);
	CHECK(offsetof(sipguard_account_info, cpm) == RUST_ACCOUNT_INFO_CPM);
	CHECK(offsetof(sipguard_account_info, since_unix_ms) == RUST_ACCOUNT_INFO_SINCE);
	CHECK(sizeof(sipguard_fraud_settings) == RUST_FRAUD_SETTINGS_SIZE);
	CHECK(sizeof(sipguard_fraud_stats) == RUST_FRAUD_STATS_SIZE);
	CHECK(sizeof(sipguard_dial_uri) == RUST_DIAL_URI_SIZE);
	CHECK(offsetof(sipguard_dial_uri, tel_params_len) == RUST_DIAL_URI_PARAMS_LEN);

	char path[] = "/tmp/sipguard-fraud-abi-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char rules[] = "prefix 1 domestic 0.5\nprefix 44 international 1\naccount default domestic\n";
	CHECK(write(fd, rules, sizeof rules - 1) == (ssize_t)(sizeof rules - 1));
	close(fd);

	sipguard_config *cfg = NULL;
	char err[256] = "";
	CHECK(sipguard_config_new(&cfg) == SIPGUARD_OK);
	CHECK(sipguard_config_set(cfg, "fraud_rules", 11, path, strlen(path), err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_config_set(cfg, "intl_prefixes", 13, "0044", 4, err, sizeof err) == SIPGUARD_OK);
	sipguard_fraud *f = NULL;
	uint64_t now = sipguard_clock_ns();
	CHECK(sipguard_fraud_create(cfg, now, &f, err, sizeof err) == SIPGUARD_OK && f != NULL);
	sipguard_config_free(cfg);
	unlink(path);

	sipguard_fraud_settings fs;
	CHECK(sipguard_fraud_settings_get(f, &fs) == SIPGUARD_OK && fs.has_rules == 1);

	sipguard_dial_result d;
	char reason[128] = "";
	CHECK(sipguard_fraud_dial_check(f, "alice", 5, "+44 20", 6, now, &d, reason, sizeof reason) == SIPGUARD_OK);
	CHECK(d.verdict == SIPGUARD_DIAL_CLASS_DENIED && d.class_id == SIPGUARD_CLASS_INTERNATIONAL);
	CHECK(strcmp(reason, "class international not permitted") == 0);
	CHECK(strcmp(sipguard_fraud_class_name(d.class_id), "international") == 0);
	CHECK(sipguard_dial_is_uri("sip:+4420", 9) == 1 && sipguard_dial_is_uri("tel:+1", 6) == 1);
	CHECK(sipguard_dial_is_uri("+4420", 5) == 0 && sipguard_dial_is_uri("a:b", 3) == 0);
	char pr[8];
	CHECK(sipguard_account_printable("al ice\x01x", 8, pr, sizeof pr) == 7);
	CHECK(strcmp(pr, "al?ice?") == 0);
	CHECK(sipguard_fraud_dial_check(f, "alice", 5, "1212", 4, now, &d, NULL, 0) == SIPGUARD_OK);
	CHECK(d.verdict == SIPGUARD_DIAL_ALLOWED && d.rate == 5000);
	CHECK(sipguard_fraud_dial_check(f, "alice", 5, NULL, 3, now, &d, NULL, 0) == SIPGUARD_ERR_NULL);
	uint64_t rate = 1;
	CHECK(sipguard_fraud_rate(f, "1212", 4, &rate) == SIPGUARD_OK && rate == 5000);
	CHECK(sipguard_fraud_rate(f, "+44 20", 6, &rate) == SIPGUARD_OK && rate == 10000);
	CHECK(sipguard_fraud_rate(f, "999", 3, &rate) == SIPGUARD_OK && rate == 0);
	CHECK(sipguard_fraud_rate(f, "1212", 4, NULL) == SIPGUARD_ERR_NULL);

	sipguard_call *call = calloc(1, sizeof *call);
	int32_t verdict = 0, ended = -1;
	CHECK(sipguard_fraud_call_start(f, "alice", 5, 1, d.rate, now, call, &verdict, reason, sizeof reason) == SIPGUARD_OK);
	CHECK(verdict == SIPGUARD_CALL_ADMITTED);
	sipguard_call other;
	memset(&other, 0, sizeof other);
	CHECK(sipguard_fraud_call_start(f, "alice", 5, 1, 0, now, &other, &verdict, reason, sizeof reason) == SIPGUARD_OK);
	CHECK(verdict == SIPGUARD_CALL_LIMIT && strstr(reason, "1 of 1") != NULL);
	CHECK(sipguard_fraud_call_answered(f, call, now) == SIPGUARD_OK);
	CHECK(sipguard_fraud_call_end(f, call, now + 60000000000ull, &ended) == SIPGUARD_OK && ended == 1);
	CHECK(sipguard_fraud_call_end(f, call, now, &ended) == SIPGUARD_OK && ended == 0);
	free(call);

	int n = 0;
	CHECK(sipguard_fraud_list(f, now, count_account, &n) == SIPGUARD_OK && n == 1);
	int32_t changed = 0;
	CHECK(sipguard_fraud_suspend(f, "bob", 3, now, &changed) == SIPGUARD_OK && changed == 1);
	n = 0;
	CHECK(sipguard_fraud_tick(f, now, on_suspension, &n) == SIPGUARD_OK && n == 1);
	CHECK(sipguard_fraud_unsuspend(f, "bob", 3, now) == SIPGUARD_OK);
	CHECK(sipguard_fraud_unsuspend(f, "bob", 3, now) == SIPGUARD_ERR_NOT_FOUND);
	sipguard_fraud_stats s;
	CHECK(sipguard_fraud_stats_get(f, &s) == SIPGUARD_OK);
	CHECK(s.denied == 1 && s.suspensions == 1 && s.active_calls == 0);
	char money[16];
	CHECK(sipguard_fraud_money_text(15000, money, sizeof money) == SIPGUARD_OK && strcmp(money, "1.5000") == 0);

	/* the URI form: parsed parts in, the canonical number out */
	sipguard_dial_uri u;
	char e164[SIPGUARD_E164_BUF];
	memset(&u, 0, sizeof u);
	u.scheme = SIPGUARD_URI_TEL;
	u.user = "20-7123-4567";
	u.user_len = strlen(u.user);
	u.tel_params = "phone-context=+44";
	u.tel_params_len = strlen(u.tel_params);
	CHECK(sipguard_fraud_dial_check_uri(f, "alice", 5, &u, now, &d, e164, sizeof e164, reason, sizeof reason) == SIPGUARD_OK);
	CHECK(d.verdict == SIPGUARD_DIAL_CLASS_DENIED && strcmp(e164, "442071234567") == 0);
	u.scheme = SIPGUARD_URI_SIP;
	u.user = "+1212;phone-context=example.com";
	u.user_len = strlen(u.user);
	u.user_phone = 1;
	u.tel_params = NULL;
	u.tel_params_len = 0;
	CHECK(sipguard_fraud_dial_check_uri(f, "alice", 5, &u, now, &d, e164, sizeof e164, reason, sizeof reason) == SIPGUARD_OK);
	CHECK(d.verdict == SIPGUARD_DIAL_NO_RULE && e164[0] == '\0' && strncmp(reason, "bad number", 10) == 0);
	CHECK(sipguard_fraud_dial_check_uri(f, "alice", 5, &u, now, &d, e164, 15, NULL, 0) == SIPGUARD_ERR_INVALID);
	CHECK(sipguard_fraud_dial_check_uri(f, "alice", 5, NULL, now, &d, e164, sizeof e164, NULL, 0) == SIPGUARD_ERR_NULL);
	u.scheme = 9;
	CHECK(sipguard_fraud_dial_check_uri(f, "alice", 5, &u, now, &d, e164, sizeof e164, NULL, 0) == SIPGUARD_ERR_INVALID);

	uint32_t p = 0, a = 0;
	CHECK(sipguard_fraud_reload(f, err, sizeof err, &p, &a) == SIPGUARD_ERR_INVALID && strstr(err, path) != NULL);
	sipguard_fraud_destroy(f);
	return failures;
}
