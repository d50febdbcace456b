/* test_topology.c: the topology loader, its validation, secrets and environment overrides. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "topology.h"

/* A small valid topology; the error cases below edit one line of it. */
static const char base_yaml[] =
    "version: 1\n"                                                              /* 1 */
    "regions:\n"                                                                /* 2 */
    "  - name: a\n"                                                             /* 3 */
    "    front: { id: NUVL_A, listen: \"127.0.0.1:8000\" }\n"                   /* 4 */
    "    hub: { id: HUB_A, listen: \"127.0.0.1:8100\" }\n"                      /* 5 */
    "providers:\n"                                                              /* 6 */
    "  - { id: PROVIDER_A, listen: \"127.0.0.1:9001\", score_secret: A_KEY }\n" /* 7 */
    "  - { id: PROVIDER_B, listen: \"127.0.0.1:9002\", score_secret: B_KEY }\n" /* 8 */
    "auditor: { id: AUDITOR, listen: \"127.0.0.1:8200\" }\n";                   /* 9 */

static const char *const env_vars[] = {"TOTAL_REQUESTS",   "FAILOVER_AT",     "QUORUM_THRESHOLD",
                                       "EXPECTED_CONTEXT", "RANDOM_SEED",     "BYZANTINE_PROVIDER",
                                       "BYZANTINE_AT",     "WORKER_COUNT",    "POST_QUEUE_MAX",
                                       "NUVL_A_PORT",      "NUVL_B_PORT",     "HUB_A_PORT",
                                       "HUB_B_PORT",       "PROVIDER_A_PORT", "PROVIDER_B_PORT",
                                       "PROVIDER_C_PORT",  "AUDITOR_PORT",    NULL};

static void clear_env(void) {
  size_t i;
  for (i = 0; env_vars[i]; i++) unsetenv(env_vars[i]);
}

static int secret_is(const struct qm_provider *p, const char *want) {
  return p && p->score_secret_len == strlen(want) && !memcmp(p->score_secret, want, strlen(want));
}

static int secret_is_clear(const struct qm_provider *p) {
  size_t i;
  if (!p || p->score_secret_len) return 0;
  for (i = 0; i < QM_SECRET_MAX; i++)
    if (p->score_secret[i]) return 0;
  return 1;
}

/* expect_error: loading |yaml| fails with "t.yaml:<where>: " followed by |fragment| somewhere. */
static void expect_error_at(int line, const char *yaml, size_t len, const char *where,
                            const char *fragment) {
  struct qm_topology *t = NULL;
  struct qm_err err;
  char prefix[64];
  int rc;
  qm_err_clear(&err);
  rc = qm_topology_load_buffer("t.yaml", yaml, len, "PROVIDER_A", &t, &err);
  snprintf(prefix, sizeof prefix, "t.yaml:%s: ", where);
  CHECKF_AT(__FILE__, line,
            rc < 0 && t == NULL && !strncmp(err.msg, prefix, strlen(prefix)) &&
                strstr(err.msg, fragment),
            "expected rc < 0 and \"%s...%s\", got rc=%d \"%s\"", prefix, fragment, rc, err.msg);
  qm_topology_free(t);
}
#define EXPECT_ERROR(yaml, where, fragment) \
  expect_error_at(__LINE__, yaml, strlen(yaml), where, fragment)

/* edit: base_yaml with its 1-based |line| replaced by |text| ("" drops the line). */
static const char *edit(int line, const char *text) {
  static char buf[4096];
  const char *p = base_yaml;
  size_t o = 0;
  int n = 1;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = (size_t)(nl - p) + 1;
    if (n == line) {
      if (text[0]) o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\n", text);
    } else {
      memcpy(buf + o, p, len);
      o += len;
    }
    p += len;
    n++;
  }
  buf[o] = '\0';
  return buf;
}

static void test_default(void) {
  struct qm_topology *t = NULL;
  struct qm_err err;
  const struct qm_region *r;
  int rc = qm_topology_load_buffer("<built-in>", qm_default_topology_yaml,
                                   qm_default_topology_yaml_len, NULL, &t, &err);
  CHECKF(rc == 0 && t, "default topology: %s", err.msg);
  if (!t) return;
  CHECKF(t->nregions == 2 && t->nproviders == 3, "%zu regions, %zu providers", t->nregions,
         t->nproviders);
  CHECKF(!strcmp(t->regions[0].name, "a") && !strcmp(t->regions[1].name, "b"), "region names");
  CHECKF(!strcmp(t->regions[0].front.id, "NUVL_A") &&
             !strcmp(t->regions[0].front.listen, "127.0.0.1:8000"),
         "NUVL_A %s", t->regions[0].front.listen);
  CHECKF(!strcmp(t->regions[1].front.id, "NUVL_B") &&
             !strcmp(t->regions[1].front.listen, "127.0.0.1:8001"),
         "NUVL_B %s", t->regions[1].front.listen);
  CHECKF(
      !strcmp(t->regions[0].hub.id, "HUB_A") && !strcmp(t->regions[0].hub.listen, "127.0.0.1:8100"),
      "HUB_A");
  CHECKF(
      !strcmp(t->regions[1].hub.id, "HUB_B") && !strcmp(t->regions[1].hub.listen, "127.0.0.1:8101"),
      "HUB_B");
  CHECKF(!strcmp(t->providers[0].ep.id, "PROVIDER_A") &&
             !strcmp(t->providers[0].ep.listen, "127.0.0.1:9001"),
         "PA");
  CHECKF(!strcmp(t->providers[1].ep.id, "PROVIDER_B") &&
             !strcmp(t->providers[1].ep.listen, "127.0.0.1:9002"),
         "PB");
  CHECKF(!strcmp(t->providers[2].ep.id, "PROVIDER_C") &&
             !strcmp(t->providers[2].ep.listen, "127.0.0.1:9003"),
         "PC");
  CHECKF(!strcmp(t->auditor.id, "AUDITOR") && !strcmp(t->auditor.listen, "127.0.0.1:8200"),
         "auditor");
  CHECKF(!strcmp(t->regions[1].hub.advertise, "127.0.0.1:8101") &&
             !strcmp(t->providers[2].ep.advertise, "127.0.0.1:9003") &&
             !strcmp(t->auditor.advertise, "127.0.0.1:8200"),
         "advertise defaults to listen");
  CHECKF(t->quorum_threshold == 2 && t->deadline_ms == 3000, "quorum %u/%u", t->quorum_threshold,
         t->deadline_ms);
  CHECKF(t->total_requests == 100 && t->failover_at == -1, "requests");
  CHECKF(t->worker_count == 12 && t->post_queue_max == 5000, "workers");
  CHECKF(t->random_seed[0] == '\0', "no seed: '%s'", t->random_seed);
  CHECK_EQ_S(t->expected_context, "CTX_ALPHA");
  CHECKF(t->byzantine_provider[0] == '\0' && t->byzantine_at == -1, "byzantine drawn");
  CHECKF(t->ndomains == 3 && !strcmp(t->domains[0].name, "payments") &&
             !strcmp(t->domains[1].name, "identity") && !strcmp(t->domains[2].name, "storage"),
         "domain order");
  CHECKF(qm_topology_threshold(t, "payments") == 0.55 &&
             qm_topology_threshold(t, "identity") == 0.60 &&
             qm_topology_threshold(t, "storage") == 0.50 &&
             qm_topology_threshold(t, "other") == 0.60 && qm_topology_threshold(t, NULL) == 0.60,
         "thresholds");
  CHECKF(!t->tls.enabled && !t->keys_dir[0], "no tls, no keys_dir");
  CHECK_EQ_S(t->source, "<built-in>");
  CHECKF(secret_is_clear(&t->providers[0]) && secret_is_clear(&t->providers[1]) &&
             secret_is_clear(&t->providers[2]),
         "no secrets without an id");
  r = qm_topology_find_region_of(t, "HUB_B");
  CHECKF(r && !strcmp(r->name, "b"), "region of HUB_B");
  r = qm_topology_find_region_of(t, "NUVL_A");
  CHECKF(r && !strcmp(r->name, "a"), "region of NUVL_A");
  CHECKF(!qm_topology_find_region_of(t, "PROVIDER_A"), "providers have no region");
  CHECKF(qm_topology_find_provider(t, "PROVIDER_C") == &t->providers[2], "find PROVIDER_C");
  CHECKF(!qm_topology_find_provider(t, "HUB_A") && !qm_topology_find_provider(t, NULL),
         "find misses");
  CHECKF(!strcmp(qm_topology_role_of(t, "NUVL_B"), "front") &&
             !strcmp(qm_topology_role_of(t, "HUB_A"), "hub") &&
             !strcmp(qm_topology_role_of(t, "PROVIDER_B"), "provider") &&
             !strcmp(qm_topology_role_of(t, "AUDITOR"), "auditor") &&
             !qm_topology_role_of(t, "NOBODY"),
         "roles");
  CHECKF(t->providers[0].ep.id_pos.line > 1 && t->providers[0].ep.id_pos.column > 1,
         "positions kept");
  CHECKF(qm_topology_validate(t, &err) == 0, "validate: %s", err.msg);
  qm_topology_free(t);
  qm_topology_free(NULL);

  /* the file on disk is the same text */
  t = NULL;
  rc = qm_topology_load("../deploy/topology.yaml", NULL, &t, &err);
  CHECKF(rc == 0 && t && t->nproviders == 3, "deploy/topology.yaml: %s", err.msg);
  qm_topology_free(t);
}

static void test_secrets(void) {
  struct qm_topology *t = NULL;
  struct qm_err err;
  char dir[] = "/tmp/qm_topo_XXXXXX", path[PATH_MAX], want[PATH_MAX + 64];
  const char *ids[] = {"PROVIDER_A", "PROVIDER_B", "PROVIDER_C"};
  const char *keys[] = {"A_KEY", "B_KEY", "C_KEY"};
  FILE *f;
  size_t i, j;
  int rc;

  for (i = 0; i < 3; i++) {
    t = NULL;
    rc = qm_topology_load_buffer("<built-in>", qm_default_topology_yaml,
                                 qm_default_topology_yaml_len, ids[i], &t, &err);
    CHECKF(rc == 0, "load for %s: %s", ids[i], err.msg);
    if (rc) continue;
    for (j = 0; j < 3; j++) {
      if (j == i)
        CHECKF(secret_is(&t->providers[j], keys[j]), "%s has its secret", ids[j]);
      else
        CHECKF(secret_is_clear(&t->providers[j]), "%s secret not loaded for %s", ids[j], ids[i]);
    }
    qm_topology_free(t);
  }
  t = NULL;
  rc = qm_topology_load_buffer("<built-in>", qm_default_topology_yaml, qm_default_topology_yaml_len,
                               "NUVL_A", &t, &err);
  CHECKF(rc == 0 && secret_is_clear(&t->providers[0]) && secret_is_clear(&t->providers[1]) &&
             secret_is_clear(&t->providers[2]),
         "a front loads no secret");
  qm_topology_free(t);

  /* score_secret_file and key paths, relative to the topology file's directory */
  if (!mkdtemp(dir)) {
    CHECKF(0, "mkdtemp: %s", strerror(errno));
    return;
  }
  snprintf(path, sizeof path, "%s/b.secret", dir);
  f = fopen(path, "w");
  if (f) {
    fputs("file-secret-B\n", f);
    fclose(f);
  }
  snprintf(path, sizeof path, "%s/topo.yaml", dir);
  f = fopen(path, "w");
  if (f) {
    fputs(
        "version: 1\n"
        "regions:\n"
        "  - { name: a, front: { id: NUVL_A, listen: \"127.0.0.1:8000\", advertise: "
        "\"front-a:8000\" },\n"
        "      hub: { id: HUB_A, listen: \"0.0.0.0:8100\", advertise: \"hub-a.mesh.svc:8100\" } }\n"
        "providers:\n"
        "  - { id: PROVIDER_A, listen: \"127.0.0.1:9001\", score_secret: A_KEY }\n"
        "  - id: PROVIDER_B\n"
        "    listen: \"127.0.0.1:9002\"\n"
        "    score_secret_file: b.secret\n"
        "    signing_key: keys/b.key\n"
        "    public_key: /etc/qmesh/b.pub\n"
        "  - { id: PROVIDER_C, listen: \"127.0.0.1:9003\", score_secret_file: missing.secret }\n"
        "auditor: { id: AUDITOR, listen: \"127.0.0.1:8200\" }\n"
        "keys_dir: keys\n"
        "tls: { ca: tls/ca.pem, certs_dir: /etc/qmesh/tls }\n",
        f);
    fclose(f);
  }
  t = NULL;
  rc = qm_topology_load(path, "PROVIDER_B", &t, &err);
  CHECKF(rc == 0, "load for PROVIDER_B: %s", err.msg);
  if (rc == 0) {
    CHECKF(secret_is(&t->providers[1], "file-secret-B"),
           "secret read from the file, newline dropped");
    CHECKF(secret_is_clear(&t->providers[0]) && secret_is_clear(&t->providers[2]),
           "others not loaded");
    snprintf(want, sizeof want, "%s/b.secret", dir);
    CHECK_EQ_S(t->providers[1].score_secret_file, want);
    snprintf(want, sizeof want, "%s/keys/b.key", dir);
    CHECK_EQ_S(t->providers[1].signing_key, want);
    CHECK_EQ_S(t->providers[1].public_key, "/etc/qmesh/b.pub"); /* absolute: kept */
    snprintf(want, sizeof want, "%s/keys", dir);
    CHECK_EQ_S(t->keys_dir, want);
    snprintf(want, sizeof want, "%s/tls/ca.pem", dir);
    CHECKF(t->tls.enabled && !strcmp(t->tls.ca, want) &&
               !strcmp(t->tls.certs_dir, "/etc/qmesh/tls"),
           "tls");
    CHECKF(!strcmp(t->regions[0].front.advertise, "front-a:8000") &&
               !strcmp(t->regions[0].hub.advertise, "hub-a.mesh.svc:8100"),
           "advertise kept");
    CHECKF(t->quorum_pos.line == 6 && t->quorum_pos.column == 3,
           "quorum defaulted: points at providers");
  }
  qm_topology_free(t);
  t = NULL;
  rc = qm_topology_load(path, NULL, &t, &err);
  CHECKF(rc == 0 && secret_is_clear(&t->providers[1]), "no id: no secret file read: %s", err.msg);
  qm_topology_free(t);
  t = NULL;
  rc = qm_topology_load(path, "PROVIDER_C", &t, &err);
  snprintf(want, sizeof want, "%s:12:68: cannot read score_secret_file", path);
  CHECKF(rc == -ENOENT && !t && !strncmp(err.msg, want, strlen(want)), "missing secret file: %d %s",
         rc, err.msg);
  snprintf(want, sizeof want, "%s/b.secret", dir);
  unlink(want);
  unlink(path);
  rmdir(dir);

  t = NULL;
  rc = qm_topology_load("/nonexistent/topology.yaml", NULL, &t, &err);
  CHECKF(rc == -ENOENT && !t && strstr(err.msg, "/nonexistent/topology.yaml: "), "missing file: %s",
         err.msg);
}

static void test_errors(void) {
  static char big[QM_YAML_FILE_MAX + 2];
  struct qm_topology *t = NULL, *sentinel = (struct qm_topology *)&big;
  struct qm_err err;
  const char *y;
  int rc;

  /* the base itself is fine */
  rc = qm_topology_load_buffer("t.yaml", base_yaml, strlen(base_yaml), NULL, &t, &err);
  CHECKF(rc == 0, "base: %s", err.msg);
  qm_topology_free(t);

  /* unknown keys at every level */
  EXPECT_ERROR(
      edit(8, "  - { id: PROVIDER_B, listen: \"127.0.0.1:9002\", score_secret: B_KEY, foo: 1 }"),
      "8:70", "unknown key 'foo' in providers[1]");
  EXPECT_ERROR(edit(1, "version: 1\ncolour: blue"), "2:1", "unknown top-level key 'colour'");
  EXPECT_ERROR(edit(5, "    hub: { id: HUB_A, listen: \"127.0.0.1:8100\", port: 1 }"), "5:49",
               "unknown key 'port' in regions[0].hub");
  EXPECT_ERROR(edit(1, "version: 1\nrequests: { totl: 5 }"), "2:13",
               "unknown key 'totl' in requests");
  /* wrong types */
  EXPECT_ERROR(edit(1, "version: 1\nrequests:\n  total: abc"), "3:10",
               "requests.total: expected a non-negative integer, got 'abc'");
  EXPECT_ERROR(edit(1, "version: 1\nrequests:\n  total: \"100\""), "3:10",
               "expected a non-negative integer");
  EXPECT_ERROR(edit(1, "version: 1\nrequests:\n  failover_at: -5"), "3:16", "got '-5'");
  EXPECT_ERROR(edit(1, "version: 1\nrequests:\n  worker_count: 0"), "3:17", "out of range 1..1024");
  EXPECT_ERROR(edit(1, "version: 1\nrequests:\n  total: 99999999999999999999"), "3:10",
               "out of range");
  EXPECT_ERROR(edit(1, "version: 1\nrequests:\n  random_seed: 7x"), "3:16",
               "expected a decimal integer");
  EXPECT_ERROR(edit(1, "version: 1\nquorum: 2"), "2:9", "quorum: expected a mapping, got '2'");
  EXPECT_ERROR(edit(1, "version: 1\ndomains: { payments: high }"), "2:22",
               "domains.payments: expected a number");
  EXPECT_ERROR(edit(1, "version: 1\ndefault_threshold: 1.5"), "2:20",
               "default_threshold: expected a number");
  EXPECT_ERROR(edit(1, "version: 1\nexpected_context: [a]"), "2:19",
               "expected a string, got a sequence");
  EXPECT_ERROR(edit(1, "version: 1\nexpected_context:"), "2:18", "expected a string, got null");
  EXPECT_ERROR("version: 1\nregions: a\nproviders: []\nauditor: {}\n", "2:10",
               "regions: expected a sequence, got 'a'");
  EXPECT_ERROR(edit(9, "auditor: [a]"), "9:10", "auditor: expected a mapping, got a sequence");
  EXPECT_ERROR("- a\n", "1:1", "expected a mapping, got a sequence");
  EXPECT_ERROR("", "1:1", "empty topology");
  EXPECT_ERROR(edit(1, "version: 2"), "1:10", "unsupported version '2' (expected 1)");
  EXPECT_ERROR(edit(1, "version: \"1\""), "1:10", "unsupported version '1'");
  /* missing required fields */
  EXPECT_ERROR(edit(1, ""), "1:1", "missing required top-level key 'version'");
  EXPECT_ERROR(edit(9, ""), "1:1", "missing required top-level key 'auditor'");
  EXPECT_ERROR(edit(5, "    hub: { id: HUB_A }"), "5:10",
               "missing required key 'listen' in regions[0].hub");
  EXPECT_ERROR(edit(3, "  - nme: a"), "3:5", "unknown key 'nme' in regions[0]");
  EXPECT_ERROR(edit(8, "  - { listen: \"127.0.0.1:9002\", score_secret: B_KEY }"), "8:5",
               "missing required key 'id' in providers[1]");
  EXPECT_ERROR(edit(8, "  - { id: PROVIDER_B, listen: \"127.0.0.1:9002\" }"), "8:5",
               "providers[1] needs score_secret or score_secret_file");
  EXPECT_ERROR(edit(9, "auditor: { id: AUDITOR, listen: \"127.0.0.1:8200\" }\ntls: { ca: ca.pem }"),
               "10:6", "missing required key 'certs_dir' in tls");
  /* duplicate keys */
  EXPECT_ERROR(edit(1, "version: 1\nquorum:\n  threshold: 2\n  threshold: 1"), "4:3",
               "duplicate key 'threshold' in quorum (first at 3:3)");
  EXPECT_ERROR(edit(1, "version: 1\nversion: 1"), "2:1",
               "duplicate key 'version' in topology (first at 1:1)");
  EXPECT_ERROR(edit(1, "version: 1\ndomains: { payments: 0.5, storage: 0.5, payments: 0.6 }"),
               "2:41", "duplicate key 'payments' in domains (first at 2:12)");
  /* duplicate ids across roles */
  EXPECT_ERROR(edit(8, "  - { id: HUB_A, listen: \"127.0.0.1:9002\", score_secret: B_KEY }"),
               "8:11", "duplicate id 'HUB_A' (already the hub at 5:16)");
  EXPECT_ERROR(edit(9, "auditor: { id: PROVIDER_A, listen: \"127.0.0.1:8200\" }"), "9:16",
               "duplicate id 'PROVIDER_A' (already the provider at 7:11)");
  EXPECT_ERROR(edit(5,
                    "    hub: { id: HUB_A, listen: \"127.0.0.1:8100\" }\n  - name: a\n"
                    "    front: { id: NUVL_B, listen: \"127.0.0.1:8001\" }\n"
                    "    hub: { id: HUB_B, listen: \"127.0.0.1:8101\" }"),
               "6:11", "duplicate region name 'a'");
  EXPECT_ERROR(edit(5, ""), "3:5", "missing required key 'hub' in regions[0]");
  /* duplicate listen ports on the same host; 0.0.0.0 clashes with every host */
  EXPECT_ERROR(edit(8, "  - { id: PROVIDER_B, listen: \"127.0.0.1:9001\", score_secret: B_KEY }"),
               "8:31",
               "PROVIDER_B listen address '127.0.0.1:9001' clashes with PROVIDER_A's "
               "'127.0.0.1:9001' (port 9001)");
  EXPECT_ERROR(edit(8, "  - { id: PROVIDER_B, listen: \"0.0.0.0:8000\", score_secret: B_KEY }"),
               "8:31", "clashes with NUVL_A's '127.0.0.1:8000'");
  EXPECT_ERROR(edit(8,
                    "  - { id: PROVIDER_B, listen: \"LOCALHOST:9002\", score_secret: B_KEY }\n"
                    "  - { id: PROVIDER_C, listen: \"localhost:9002\", score_secret: C_KEY }"),
               "9:31", "clashes with PROVIDER_B");
  y = edit(8, "  - { id: PROVIDER_B, listen: \"127.0.0.2:9001\", score_secret: B_KEY }");
  rc = qm_topology_load_buffer("t.yaml", y, strlen(y), NULL, &t, &err);
  CHECKF(rc == 0, "same port on another host is fine: %s", err.msg);
  qm_topology_free(t);
  t = NULL;
  /* k out of 1..n */
  EXPECT_ERROR(edit(1, "version: 1\nquorum: { threshold: 3 }"), "2:22",
               "quorum threshold 3 must be between 1 and the number of providers (2)");
  EXPECT_ERROR(edit(1, "version: 1\nquorum: { threshold: 0 }"), "2:22",
               "quorum threshold 0 must be between 1");
  EXPECT_ERROR(edit(8, ""), "7:3",
               "quorum threshold 2 must be between 1 and the number of providers (1)");
  /* the Byzantine provider */
  EXPECT_ERROR(edit(1, "version: 1\nbyzantine: { provider: PROVIDER_Z, at: 5 }"), "2:24",
               "unknown byzantine provider 'PROVIDER_Z'");
  EXPECT_ERROR(edit(1, "version: 1\nbyzantine: { provider: NUVL_A }"), "2:24",
               "unknown byzantine provider 'NUVL_A'");
  EXPECT_ERROR(edit(1, "version: 1\nbyzantine: { at: -1 }"), "2:18",
               "byzantine.at: expected a non-negative");
  /* ports and addresses */
  EXPECT_ERROR(edit(8, "  - { id: PROVIDER_B, listen: \"127.0.0.1:70000\", score_secret: B_KEY }"),
               "8:31", "PROVIDER_B listen address '127.0.0.1:70000': port out of range 1..65535");
  EXPECT_ERROR(edit(8, "  - { id: PROVIDER_B, listen: \"127.0.0.1:0\", score_secret: B_KEY }"),
               "8:31", "port out of range 1..65535");
  EXPECT_ERROR(edit(8,
                    "  - { id: PROVIDER_B, listen: \"127.0.0.1:9002\", advertise: \"b:x\", "
                    "score_secret: B_KEY }"),
               "8:60", "PROVIDER_B advertise address 'b:x': expected host:port");
  EXPECT_ERROR(edit(8, "  - { id: PROVIDER_B, listen: \"9002\", score_secret: B_KEY }"), "8:31",
               "expected host:port");
  EXPECT_ERROR(edit(8, "  - { id: PROVIDER_B, listen: \"::1:9002\", score_secret: B_KEY }"), "8:31",
               "expected host:port");
  y = edit(8, "  - { id: PROVIDER_B, listen: \"[::1]:9002\", score_secret: B_KEY }");
  rc = qm_topology_load_buffer("t.yaml", y, strlen(y), NULL, &t, &err);
  CHECKF(rc == 0 && !strcmp(t->providers[1].ep.listen, "[::1]:9002"), "IPv6 literal: %s", err.msg);
  qm_topology_free(t);
  t = NULL;
  /* ids */
  EXPECT_ERROR(
      edit(7, "  - { id: \"PROVIDER/A\", listen: \"127.0.0.1:9001\", score_secret: A_KEY }"),
      "7:11", "providers[0].id: invalid id 'PROVIDER/A' (expected [A-Za-z0-9_.-]{1,63})");
  EXPECT_ERROR(edit(7, "  - { id: \"\", listen: \"127.0.0.1:9001\", score_secret: A_KEY }"), "7:11",
               "invalid id ''");
  EXPECT_ERROR(
      edit(9,
           "auditor: { id: A123456789012345678901234567890123456789012345678901234567890123, "
           "listen: \"127.0.0.1:8200\" }"),
      "9:16", "auditor.id: invalid id");
  EXPECT_ERROR(edit(3, "  - name: \"a b\""), "3:11", "regions[0].name: invalid id 'a b'");
  /* secrets */
  EXPECT_ERROR(edit(7,
                    "  - { id: PROVIDER_A, listen: \"127.0.0.1:9001\", score_secret: A_KEY, "
                    "score_secret_file: a }"),
               "7:70", "score_secret and score_secret_file are both set in providers[0]");
  EXPECT_ERROR(edit(7,
                    "  - { id: PROVIDER_A, listen: \"127.0.0.1:9001\", score_secret_file: a, "
                    "score_secret: A }"),
               "7:71", "score_secret and score_secret_file are both set in providers[0]");
  EXPECT_ERROR(edit(7, "  - { id: PROVIDER_A, listen: \"127.0.0.1:9001\", score_secret: \"\" }"),
               "7:63", "providers[0].score_secret: the secret must be 1..256 bytes");
  EXPECT_ERROR(
      edit(7, "  - { id: PROVIDER_A, listen: \"127.0.0.1:9001\", score_secret_file: /dev/null }"),
      "7:68", "score_secret_file '/dev/null' is not a regular file");
  /* YAML features that are refused */
  EXPECT_ERROR(edit(1, "version: 1\nexpected_context: &c CTX\ndefault_threshold: 0.6"), "2:19",
               "anchors and aliases are not allowed");
  EXPECT_ERROR(edit(1, "version: 1\nexpected_context: *c"), "2:19",
               "anchors and aliases are not allowed");
  EXPECT_ERROR(edit(1, "version: !!int 1"), "1:10", "tags are not allowed");
  EXPECT_ERROR(
      edit(1, "version: 1\nx: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
      "2:19", "nesting deeper than 16 levels");
  EXPECT_ERROR(edit(1, "version: 1\nx: [[[[[[[[[[[[[[[]]]]]]]]]]]]]]]"), "2:1",
               "unknown top-level key 'x'");
  EXPECT_ERROR(edit(9, "auditor: { id: AUDITOR, listen: \"127.0.0.1:8200\" }\n---\nversion: 1"),
               "10:1", "multiple documents are not allowed");
  y = edit(9, "auditor: { id: AUDITOR, listen: \"127.0.0.1:8200\" }\n...\n# trailing comment");
  rc = qm_topology_load_buffer("t.yaml", y, strlen(y), NULL, &t, &err);
  CHECKF(rc == 0, "one document with an end marker: %s", err.msg);
  qm_topology_free(t);
  t = NULL;
  EXPECT_ERROR(edit(1, "version: 1\nexpected_context: CTX_\xff"), "2:23",
               "invalid leading UTF-8 octet");
  EXPECT_ERROR(edit(1, "version: 1\nexpected_context: \"CTX\\0\""), "2:19", "contains a NUL byte");
  EXPECT_ERROR(edit(1, "version: 1\n[a]: 1"), "2:1", "mapping keys must be scalars");
  EXPECT_ERROR(edit(1, "version: 1\n  x: 1"), "2:4", "mapping values are not allowed");
  /* too many nodes: refused while parsing */
  memcpy(big, "version: 1\nx: [", 15);
  for (rc = 0; rc < 20010; rc++) memcpy(big + 15 + 2 * rc, "1,", 2);
  memcpy(big + 15 + 2 * rc, "1]\n", 4);
  expect_error_at(__LINE__, big, strlen(big), "2:39995", "more than 20000 YAML nodes");
  /* too large: refused before parsing */
  memset(big, ' ', sizeof big);
  rc = qm_topology_load_buffer("t.yaml", big, QM_YAML_FILE_MAX + 1, NULL, &sentinel, &err);
  CHECKF(rc == -EFBIG && sentinel == (struct qm_topology *)&big &&
             strstr(err.msg, "larger than 1048576 bytes"),
         "too large: %d %s", rc, err.msg);
}

/* The fixtures other tests feed to `qmesh validate`: "# expect: L:C: fragment" on line 1. */
static void test_fixtures(void) {
  DIR *d = opendir("fixtures/bad");
  struct dirent *e;
  int n = 0;
  CHECKF(d != NULL, "opendir fixtures/bad: %s", strerror(errno));
  if (!d) return;
  while ((e = readdir(d))) {
    char path[512], first[512], want[1100], *nl;
    struct qm_topology *t = NULL;
    struct qm_err err;
    FILE *f;
    size_t len = strlen(e->d_name);
    int rc;
    if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
    snprintf(path, sizeof path, "fixtures/bad/%s", e->d_name);
    f = fopen(path, "r");
    if (!f || !fgets(first, sizeof first, f) || strncmp(first, "# expect: ", 10)) {
      CHECKF(0, "%s: no '# expect: ' line", path);
      if (f) fclose(f);
      continue;
    }
    fclose(f);
    if ((nl = strchr(first, '\n'))) *nl = '\0';
    snprintf(want, sizeof want, "%s:%s", path, first + 10);
    rc = qm_topology_load(path, NULL, &t, &err);
    CHECKF(rc < 0 && !t && !strncmp(err.msg, want, strlen(want)), "%s:\n  want %s\n  got  %s", path,
           want, err.msg);
    qm_topology_free(t);
    n++;
  }
  closedir(d);
  CHECKF(n >= 20, "only %d fixtures", n);
}

static void test_three_regions(void) {
  struct qm_topology *t = NULL;
  struct qm_err err;
  const char *fronts[] = {"NUVL_A", "NUVL_B", "NUVL_C"}, *hubs[] = {"HUB_A", "HUB_B", "HUB_C"};
  char want[64];
  size_t i;
  int rc = qm_topology_load("../deploy/examples/three-regions.yaml", "PROVIDER_E", &t, &err);
  CHECKF(rc == 0 && t, "three-regions: %s", err.msg);
  if (!t) return;
  CHECKF(t->nregions == 3 && t->nproviders == 5 && t->quorum_threshold == 3,
         "3 regions, 5 providers, 3 of 5");
  for (i = 0; i < 3; i++) {
    snprintf(want, sizeof want, "127.0.0.1:%zu", 8000 + i);
    CHECKF(!strcmp(t->regions[i].front.id, fronts[i]) && !strcmp(t->regions[i].front.listen, want),
           "front %zu", i);
    snprintf(want, sizeof want, "127.0.0.1:%zu", 8100 + i);
    CHECKF(!strcmp(t->regions[i].hub.id, hubs[i]) && !strcmp(t->regions[i].hub.listen, want),
           "hub %zu", i);
  }
  for (i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "PROVIDER_%c", (char)('A' + i));
    snprintf(want, sizeof want, "127.0.0.1:%zu", 9001 + i);
    CHECKF(!strcmp(t->providers[i].ep.id, id) && !strcmp(t->providers[i].ep.listen, want),
           "provider %zu", i);
  }
  CHECKF(secret_is(&t->providers[4], "E_KEY") && secret_is_clear(&t->providers[0]),
         "only E's secret");
  CHECK_EQ_S(t->auditor.listen, "127.0.0.1:8200");
  CHECK_EQ_S(qm_topology_find_region_of(t, "HUB_C")->name, "c");
  qm_topology_free(t);
}

/* env_error: apply_env fails with exactly |want| and leaves |t| as it was. */
static void env_error_at(int line, struct qm_topology *t, const char *var, const char *value,
                         const char *want) {
  struct qm_topology before;
  struct qm_err err;
  int rc;
  memcpy(&before, t, sizeof before);
  setenv(var, value, 1);
  rc = qm_topology_apply_env(t, &err);
  unsetenv(var);
  CHECKF_AT(__FILE__, line, rc < 0 && strstr(err.msg, want) && !memcmp(&before, t, sizeof before),
            "%s='%s': expected \"%s\", got rc=%d \"%s\"%s", var, value, want, rc, err.msg,
            memcmp(&before, t, sizeof before) ? " (topology changed)" : "");
}
#define ENV_ERROR(t, var, value, want) env_error_at(__LINE__, t, var, value, want)

static void test_env(void) {
  struct qm_topology *t = NULL;
  struct qm_err err;
  int rc;

  clear_env();
  rc = qm_topology_load_buffer("<built-in>", qm_default_topology_yaml, qm_default_topology_yaml_len,
                               NULL, &t, &err);
  CHECKF(rc == 0, "load: %s", err.msg);
  if (rc) return;
  CHECKF(qm_topology_apply_env(t, &err) == 0 && t->total_requests == 100,
         "no variables: nothing changes");

  setenv("TOTAL_REQUESTS", "250", 1);
  setenv("FAILOVER_AT", "10", 1);
  setenv("QUORUM_THRESHOLD", "3", 1);
  setenv("EXPECTED_CONTEXT", "CTX_BETA", 1);
  setenv("RANDOM_SEED", "7", 1);
  setenv("BYZANTINE_PROVIDER", "PROVIDER_C", 1);
  setenv("BYZANTINE_AT", "75", 1);
  setenv("WORKER_COUNT", "4", 1);
  setenv("POST_QUEUE_MAX", "100", 1);
  setenv("NUVL_A_PORT", "18000", 1);
  setenv("HUB_B_PORT", "18101", 1);
  setenv("PROVIDER_C_PORT", "19003", 1);
  setenv("AUDITOR_PORT", "18200", 1);
  rc = qm_topology_apply_env(t, &err);
  CHECKF(rc == 0, "apply_env: %s", err.msg);
  CHECKF(t->total_requests == 250 && t->failover_at == 10 && t->quorum_threshold == 3, "numbers");
  CHECKF(!strcmp(t->expected_context, "CTX_BETA") && !strcmp(t->random_seed, "7"), "texts");
  CHECKF(!strcmp(t->byzantine_provider, "PROVIDER_C") && t->byzantine_at == 75, "byzantine");
  CHECKF(t->worker_count == 4 && t->post_queue_max == 100, "queues");
  CHECKF(!strcmp(t->regions[0].front.listen, "127.0.0.1:18000") &&
             !strcmp(t->regions[0].front.advertise, "127.0.0.1:18000"),
         "NUVL_A %s %s", t->regions[0].front.listen, t->regions[0].front.advertise);
  CHECK_EQ_S(t->regions[1].hub.listen, "127.0.0.1:18101");
  CHECKF(!strcmp(t->providers[2].ep.listen, "127.0.0.1:19003") &&
             !strcmp(t->providers[2].ep.advertise, "127.0.0.1:19003"),
         "PROVIDER_C");
  CHECK_EQ_S(t->auditor.listen, "127.0.0.1:18200");
  CHECK_EQ_S(t->regions[1].front.listen, "127.0.0.1:8001"); /* NUVL_B untouched */
  clear_env();

  /* empty values: the seed cleared, the Byzantine draw restored, other numbers unset */
  setenv("RANDOM_SEED", "", 1);
  setenv("BYZANTINE_PROVIDER", "", 1);
  setenv("BYZANTINE_AT", "", 1);
  setenv("TOTAL_REQUESTS", "", 1);
  rc = qm_topology_apply_env(t, &err);
  CHECKF(rc == 0 && !t->random_seed[0] && !t->byzantine_provider[0] && t->byzantine_at == -1 &&
             t->total_requests == 250,
         "empty values: %s", err.msg);
  clear_env();
  setenv("BYZANTINE_PROVIDER", "none", 1);
  setenv("RANDOM_SEED", "-12345678901234567890123456789", 1);
  rc = qm_topology_apply_env(t, &err);
  CHECKF(rc == 0 && !strcmp(t->byzantine_provider, "none") && t->random_seed[0] == '-',
         "none, big seed: %s", err.msg);
  clear_env();

  /* nonsense is an error naming the variable and value; the topology stays as it was */
  ENV_ERROR(t, "TOTAL_REQUESTS", "abc",
            "environment TOTAL_REQUESTS='abc': not a non-negative integer");
  ENV_ERROR(t, "TOTAL_REQUESTS", "-5",
            "environment TOTAL_REQUESTS='-5': not a non-negative integer");
  ENV_ERROR(t, "TOTAL_REQUESTS", "99999999999999999999",
            "environment TOTAL_REQUESTS='99999999999999999999': not a non-negative integer");
  ENV_ERROR(t, "TOTAL_REQUESTS", " 5", "not a non-negative integer");
  ENV_ERROR(t, "FAILOVER_AT", "1e3", "environment FAILOVER_AT='1e3': not a non-negative integer");
  ENV_ERROR(t, "QUORUM_THRESHOLD", "4",
            "environment QUORUM_THRESHOLD='4': must be between 1 and the number of providers (3)");
  ENV_ERROR(t, "QUORUM_THRESHOLD", "0", "environment QUORUM_THRESHOLD='0'");
  ENV_ERROR(t, "RANDOM_SEED", "seven", "environment RANDOM_SEED='seven': not a decimal integer");
  ENV_ERROR(t, "BYZANTINE_PROVIDER", "PROVIDER_Z",
            "environment BYZANTINE_PROVIDER='PROVIDER_Z': not a provider id");
  ENV_ERROR(t, "BYZANTINE_AT", "-1", "environment BYZANTINE_AT='-1': not a non-negative integer");
  ENV_ERROR(t, "WORKER_COUNT", "0", "environment WORKER_COUNT='0': must be between 1 and 1024");
  ENV_ERROR(t, "WORKER_COUNT", "2000",
            "environment WORKER_COUNT='2000': must be between 1 and 1024");
  ENV_ERROR(t, "POST_QUEUE_MAX", "x", "environment POST_QUEUE_MAX='x': not a non-negative integer");
  ENV_ERROR(t, "NUVL_B_PORT", "0", "environment NUVL_B_PORT='0': not a port (1..65535)");
  ENV_ERROR(t, "HUB_A_PORT", "70000", "environment HUB_A_PORT='70000': not a port (1..65535)");
  ENV_ERROR(t, "PROVIDER_A_PORT", "abc",
            "environment PROVIDER_A_PORT='abc': not a port (1..65535)");
  /* a port that clashes after the override: caught by the re-validation */
  ENV_ERROR(t, "PROVIDER_B_PORT", "19003",
            "<built-in>: PROVIDER_C listen address '127.0.0.1:19003' clashes with "
            "PROVIDER_B's '127.0.0.1:19003'");
  CHECKF(qm_topology_apply_env(NULL, &err) == -EINVAL, "NULL topology");
  qm_topology_free(t);
  clear_env();
}

static void test_validate(void) {
  struct qm_topology *t = NULL;
  struct qm_err err;
  int rc = qm_topology_load_buffer("<built-in>", qm_default_topology_yaml,
                                   qm_default_topology_yaml_len, NULL, &t, &err);
  CHECKF(rc == 0, "load: %s", err.msg);
  if (rc) return;
  t->quorum_threshold = 4;
  rc = qm_topology_validate(t, &err);
  CHECKF(rc == -EINVAL && strstr(err.msg, "<built-in>:14:14: quorum threshold 4"), "k > n: %s",
         err.msg);
  t->quorum_threshold = 2;
  snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "HUB_A");
  rc = qm_topology_validate(t, &err);
  CHECKF(rc == -EINVAL && strstr(err.msg, "<built-in>:25:13: unknown byzantine provider 'HUB_A'"),
         "byz: %s", err.msg);
  t->byzantine_provider[0] = '\0';
  t->worker_count = 0;
  rc = qm_topology_validate(t, &err);
  CHECKF(rc == -EINVAL && !strcmp(err.msg, "<built-in>: worker_count 0 out of range 1..1024"),
         "workers: %s", err.msg);
  t->worker_count = 12;
  CHECKF(qm_topology_validate(t, &err) == 0, "valid again: %s", err.msg);
  CHECKF(qm_topology_validate(NULL, &err) == -EINVAL, "NULL");
  qm_topology_free(t);
}

int main(void) {
  test_default();
  test_secrets();
  test_errors();
  test_fixtures();
  test_three_regions();
  test_env();
  test_validate();
  return qm_checks_done();
}
