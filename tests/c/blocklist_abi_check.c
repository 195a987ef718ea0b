/*
 * The shared blocklist through include/sipguard.h, as the Kamailio shim
 * drives it: loaded at region creation, checked, reloaded, refused.
 */
/* mkstemp, close, unlink under -std=c99 */
#define _POSIX_C_SOURCE 200809L

#include "sipguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

static sipguard_status set(sipguard_config *cfg, const char *name, const char *value)
{
	return sipguard_config_set(cfg, name, strlen(name), value, strlen(value), NULL, 0);
}

int blocklist_abi_check(void)
{
	char path[] = "/tmp/sipguard-abi-blocklist-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	write_file(path, "# test list\n192.0.2.0/24\n2001:db8::1\n");

	sipguard_config *cfg = NULL;
	char err[256] = "";
	CHECK(sipguard_config_new(&cfg) == SIPGUARD_OK);
	CHECK(set(cfg, "table_size", "1024") == SIPGUARD_OK);
	CHECK(set(cfg, "allow", "192.0.2.250/32") == SIPGUARD_OK);
	CHECK(set(cfg, "blocklist_max", "3") == SIPGUARD_OK);
	CHECK(set(cfg, "blocklist_max", "0") == SIPGUARD_ERR_INVALID);
	CHECK(set(cfg, "blocklist_file", path) == SIPGUARD_OK);
	sipguard_region *r = NULL;
	CHECK(sipguard_region_create(cfg, &r, err, sizeof err) == SIPGUARD_OK);

	const uint64_t now = 1000000000ull;
	const uint8_t listed[4] = {192, 0, 2, 7}, allowed[4] = {192, 0, 2, 250},
				  other[4] = {198, 51, 100, 1};
	const uint8_t listed6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	int32_t hit = -1;
	CHECK(sipguard_drop_check(r, listed, 4, now, &hit) == SIPGUARD_OK && hit == 1);
	CHECK(sipguard_drop_check(r, listed6, 16, now, &hit) == SIPGUARD_OK && hit == 1);
	CHECK(sipguard_drop_check(r, allowed, 4, now, &hit) == SIPGUARD_OK && hit == 0);
	CHECK(sipguard_drop_check(r, other, 4, now, &hit) == SIPGUARD_OK && hit == 0);
	CHECK(sipguard_drop_check(r, listed, 3, now, &hit) == SIPGUARD_ERR_INVALID);
	CHECK(sipguard_drop_check(r, listed, 4, now, NULL) == SIPGUARD_ERR_NULL);
	CHECK(sipguard_drop_check(NULL, listed, 4, now, &hit) == SIPGUARD_ERR_NULL);

	/* sipguard_check() has its own verdict for a listed source */
	sipguard_check_result res;
	memset(&res, 0, sizeof res);
	CHECK(sipguard_check(r, listed, 4, now, &res) == SIPGUARD_OK);
	CHECK(res.verdict == SIPGUARD_BLOCKLISTED && res.ban_ms == 0);
	CHECK(sipguard_check(r, allowed, 4, now, &res) == SIPGUARD_OK && res.verdict == SIPGUARD_ALLOWLISTED);

	sipguard_blocklist_info info;
	memset(&info, 0, sizeof info);
	CHECK(sipguard_blocklist_info_get(r, &info) == SIPGUARD_OK);
	CHECK(info.entries == 2 && info.generation == 1 && info.hits == 3 && info.max == 3);
	CHECK(sipguard_blocklist_info_get(r, NULL) == SIPGUARD_ERR_NULL);

	/* a bad line refuses the reload, naming file:line; the old list stays */
	write_file(path, "198.51.100.0/24\nnot-an-address\n");
	uint64_t entries = 0, generation = 0;
	CHECK(sipguard_blocklist_reload(r, err, sizeof err, &entries, &generation) == SIPGUARD_ERR_INVALID);
	CHECK(strstr(err, ":2:") != NULL && strstr(err, "not-an-address") != NULL);
	CHECK(sipguard_drop_check(r, listed, 4, now, &hit) == SIPGUARD_OK && hit == 1);
	/* more than blocklist_max */
	write_file(path, "10.0.0.1\n10.0.0.2\n10.0.0.3\n10.0.0.4\n");
	CHECK(sipguard_blocklist_reload(r, err, sizeof err, NULL, NULL) == SIPGUARD_ERR_INVALID);
	CHECK(strstr(err, "blocklist_max") != NULL);
	/* a good one replaces the list */
	write_file(path, "198.51.100.0/24\n");
	CHECK(sipguard_blocklist_reload(r, err, sizeof err, &entries, &generation) == SIPGUARD_OK);
	CHECK(entries == 1 && generation == 2);
	CHECK(sipguard_drop_check(r, listed, 4, now, &hit) == SIPGUARD_OK && hit == 0);
	CHECK(sipguard_drop_check(r, other, 4, now, &hit) == SIPGUARD_OK && hit == 1);
	CHECK(sipguard_blocklist_reload(NULL, err, sizeof err, NULL, NULL) == SIPGUARD_ERR_NULL);
	sipguard_region_destroy(r);

	/* at start, a bad line refuses the region, naming the parameter */
	write_file(path, "192.0.2.1\n192.0.2.1/40\n");
	r = NULL;
	CHECK(sipguard_region_create(cfg, &r, err, sizeof err) == SIPGUARD_ERR_INVALID && r == NULL);
	CHECK(strncmp(err, "parameter blocklist_file: ", 26) == 0 && strstr(err, ":2:") != NULL);
	sipguard_config_free(cfg);
	unlink(path);
	return failures;
}
