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
#include <time.h>
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

static void on_anomaly(void *ctx, const char *account, size_t len, const char *kind, const char *detail)
{
	int *n = ctx;
	(*n)++;
	CHECK(len == 3 && memcmp(account, "eve", 3) == 0 && strcmp(kind, "destination") == 0);
	CHECK(strcmp(detail, "+882 high-risk") == 0);
}

/* learnt baselines: seeding from a CSV, a refused first call, its event */
static void baseline_abi_check(void)
{
	CHECK(sizeof(sipguard_seed_report) == RUST_SEED_REPORT_SIZE);
	CHECK(sizeof(sipguard_anomaly_stats) == RUST_ANOMALY_STATS_SIZE);
	CHECK(sizeof(sipguard_baseline_info) == RUST_BASELINE_INFO_SIZE);
	CHECK(offsetof(sipguard_baseline_info, usual_hour) == RUST_BASELINE_INFO_USUAL_HOUR);
	char rules[] = "/tmp/sipguard-baseline-rules-XXXXXX";
	char csv[] = "/tmp/sipguard-baseline-csv-XXXXXX";
	int fd = mkstemp(rules);
	const char text[] = "prefix 1 domestic 0.01\nprefix 882 high-risk 3\naccount default all\n";
	CHECK(fd >= 0 && write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
	close(fd);
	fd = mkstemp(csv);
	char line[128];
	int len = snprintf(line, sizeof line, "eve,%llu,60,+12125551234,0.10\nbad line\n",
			(unsigned long long)(time(NULL) - 3600));
	CHECK(fd >= 0 && write(fd, line, (size_t)len) == (ssize_t)len);
	close(fd);

	sipguard_config *cfg = NULL;
	char err[256] = "";
	CHECK(sipguard_config_new(&cfg) == SIPGUARD_OK);
	CHECK(sipguard_config_set(cfg, "fraud_rules", 11, rules, strlen(rules), err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_config_set(cfg, "baseline_days", 13, "28", 2, err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_config_set(cfg, "anomaly_action", 14, "refuse", 6, err, sizeof err) == SIPGUARD_OK);
	CHECK(sipguard_config_set(cfg, "anomaly_action", 14, "maybe", 5, err, sizeof err) == SIPGUARD_ERR_INVALID
			&& strstr(err, "anomaly_action") != NULL);
	sipguard_fraud *f = NULL;
	uint64_t now = sipguard_clock_ns();
	CHECK(sipguard_fraud_create(cfg, now, &f, err, sizeof err) == SIPGUARD_OK && f != NULL);
	sipguard_config_free(cfg);
	unlink(rules);

	sipguard_seed_report r;
	CHECK(sipguard_fraud_seed_baseline(f, csv, strlen(csv), now, &r, err, sizeof err) == SIPGUARD_OK);
	CHECK(r.calls == 1 && r.accounts == 1 && r.skipped == 1);
	unlink(csv);
	CHECK(sipguard_fraud_seed_baseline(f, csv, strlen(csv), now, &r, err, sizeof err) == SIPGUARD_ERR_INVALID
			&& strstr(err, csv) != NULL);
	CHECK(sipguard_fraud_seed_baseline(f, NULL, 3, now, &r, err, sizeof err) == SIPGUARD_ERR_NULL);

	sipguard_dial_result d;
	char reason[128] = "";
	CHECK(sipguard_fraud_dial_check(f, "eve", 3, "+12125550100", 12, now, &d, reason, sizeof reason) == SIPGUARD_OK);
	CHECK(d.verdict == SIPGUARD_DIAL_ALLOWED);
	CHECK(sipguard_fraud_dial_check(f, "eve", 3, "+88212345678", 12, now, &d, reason, sizeof reason) == SIPGUARD_OK);
	CHECK(d.verdict == SIPGUARD_DIAL_ANOMALY && strcmp(reason, "anomaly: first call to +882 high-risk") == 0);
	int n = 0;
	CHECK(sipguard_fraud_anomaly_events(f, on_anomaly, &n) == SIPGUARD_OK && n == 1);
	CHECK(sipguard_fraud_anomaly_events(f, on_anomaly, &n) == SIPGUARD_OK && n == 1);
	CHECK(sipguard_fraud_anomaly_events(f, NULL, &n) == SIPGUARD_ERR_NULL);
	sipguard_baseline_info bi;
	CHECK(sipguard_fraud_baseline_get(f, "eve", 3, now, &bi) == SIPGUARD_OK);
	CHECK(bi.n_dests == 1 && bi.dests[0].country == 1 && bi.dests[0].class_id == SIPGUARD_CLASS_DOMESTIC);
	CHECK(bi.usual_week == 1000 && bi.since_unix_ms % 3600000 == 0);
	CHECK(sipguard_fraud_baseline_get(f, "nobody", 6, now, &bi) == SIPGUARD_ERR_NOT_FOUND);
	CHECK(sipguard_fraud_baseline_get(f, "eve", 3, now, NULL) == SIPGUARD_ERR_NULL);
	sipguard_anomaly_stats s;
	CHECK(sipguard_fraud_anomaly_stats_get(f, &s) == SIPGUARD_OK);
	CHECK(s.destination == 1 && s.spend == 0 && s.capacity >= 4096);
	CHECK(sipguard_fraud_anomaly_stats_get(f, NULL) == SIPGUARD_ERR_NULL);
	sipguard_fraud_destroy(f);
}

int fraud_abi_check(void)
{
	baseline_abi_check();
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
	CHECK(s.suspended_accounts <= 1); /* a gauge: as of the last tick */
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
