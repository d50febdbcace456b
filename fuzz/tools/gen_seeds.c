/* gen_seeds.c: writes the fuzzers' seed corpora (real messages built with the generated code
 * and signed with fuzz_keys.h's deterministic keys, plus edge cases) under DIR/<corpus>/.
 * Run once after changing a message or a harness's input layout:
 *   build-fuzz2/bin/qm_fuzz_seeds fuzz/corpus
 * Output is deterministic (Ed25519 signatures are too), so rerunning rewrites the same files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../fuzz_keys.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "qmesh/v1/qmesh.pb-c.h"

extern const char qm_descriptor_set[];
extern const size_t qm_descriptor_set_len;

static const char *root;
static struct qm_key *pub[QM_FUZZ_NKEYS], *priv[QM_FUZZ_NKEYS];

static void die(const char *what) {
  fprintf(stderr, "qm_fuzz_seeds: %s\n", what);
  exit(1);
}

/* put: writes |prefix| (0 or 1 byte, -1 for none) then |data| to ROOT/corpus/name. */
static void put(const char *corpus, const char *name, int prefix, const void *data, size_t len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, corpus);
  if (mkdir(path, 0755) && errno != EEXIST) die(path);
  snprintf(path, sizeof path, "%s/%s/%s", root, corpus, name);
  FILE *f = fopen(path, "wb");
  if (!f) die(path);
  if (prefix >= 0) fputc(prefix, f);
  if (len && fwrite(data, 1, len, f) != len) die(path);
  if (fclose(f)) die(path);
}

/* put_msg: packs a protobuf-c message into ROOT/corpus/name. */
static void put_msg(const char *corpus, const char *name, int prefix, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) die("out of memory");
  protobuf_c_message_pack(m, buf);
  put(corpus, name, prefix, buf, n);
  free(buf);
}

/* ---- a tiny protobuf writer for hand-made descriptor sets ---- */

struct buf {
  uint8_t data[1 << 16];
  size_t len;
};

static void b_varint(struct buf *b, uint64_t v) {
  do {
    if (b->len == sizeof b->data) die("buffer full");
    b->data[b->len++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
}

static void b_bytes(struct buf *b, uint32_t field, const void *p, size_t n) {
  b_varint(b, (uint64_t)field << 3 | 2);
  b_varint(b, n);
  if (b->len + n > sizeof b->data) die("buffer full");
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void b_str(struct buf *b, uint32_t field, const char *s) { b_bytes(b, field, s, strlen(s)); }
static void b_sub(struct buf *b, uint32_t field, const struct buf *sub) { b_bytes(b, field, sub->data, sub->len); }

/* A FileDescriptorProto: name, package, deps, one message (with one nested message and one
 * enum), one enum, one service with one method. */
static void file_proto(struct buf *out, const char *name, const char *pkg, const char *const *deps,
                       size_t ndeps) {
  struct buf msg = {0}, nested = {0}, en = {0}, svc = {0}, method = {0};
  out->len = 0;
  b_str(out, 1, name);
  if (pkg) b_str(out, 2, pkg);
  for (size_t i = 0; i < ndeps; i++) b_str(out, 3, deps[i]);
  b_str(&nested, 1, "Inner");
  b_str(&en, 1, "Kind");
  b_str(&msg, 1, "Thing");
  b_sub(&msg, 3, &nested);
  b_sub(&msg, 4, &en);
  b_sub(out, 4, &msg);
  b_sub(out, 5, &en);
  b_str(&method, 1, "Do");
  b_str(&svc, 1, "Svc");
  b_sub(&svc, 2, &method);
  b_sub(out, 6, &svc);
}

static void descriptors(void) {
  const char *c = "descriptors";
  const uint8_t *set = (const uint8_t *)qm_descriptor_set;
  put(c, "embedded-set.bin", -1, set, qm_descriptor_set_len);

  /* Each file of the embedded set alone (the set is a sequence of field-1 entries). */
  size_t off = 0;
  int i = 0;
  while (off < qm_descriptor_set_len) {
    size_t start = off;
    uint64_t key = 0, n = 0;
    int shift = 0;
    do key |= (uint64_t)(set[off] & 0x7f) << shift, shift += 7; while (set[off++] & 0x80);
    shift = 0;
    do n |= (uint64_t)(set[off] & 0x7f) << shift, shift += 7; while (set[off++] & 0x80);
    if (key != (1 << 3 | 2) || off + n > qm_descriptor_set_len) die("unexpected descriptor set");
    off += n;
    char name[64];
    snprintf(name, sizeof name, "embedded-file-%d.bin", i++);
    put(c, name, -1, set + start, off - start);
  }

  struct buf f = {0}, s = {0};
  static const char *const ab[] = {"b.proto"}, *const ba[] = {"a.proto"};
  /* A two-file dependency cycle, and a dependency that is not in the set. */
  file_proto(&f, "a.proto", "p", ab, 1);
  b_sub(&s, 1, &f);
  file_proto(&f, "b.proto", "p.q", ba, 1);
  b_sub(&s, 1, &f);
  static const char *const missing[] = {"missing.proto", "a.proto"};
  file_proto(&f, "c.proto", NULL, missing, 2);
  b_sub(&s, 1, &f);
  put(c, "cycle-and-missing.bin", -1, s.data, s.len);

  /* The same name twice. */
  s.len = 0;
  file_proto(&f, "dup.proto", "x", NULL, 0);
  b_sub(&s, 1, &f);
  b_sub(&s, 1, &f);
  put(c, "duplicate-name.bin", -1, s.data, s.len);

  /* Nesting past the depth bound (17 levels of nested_type). */
  struct buf m = {0}, outer;
  b_str(&m, 1, "N");
  for (int d = 0; d < 17; d++) {
    outer.len = 0;
    b_str(&outer, 1, "N");
    b_sub(&outer, 3, &m);
    m = outer;
  }
  f.len = 0;
  b_str(&f, 1, "deep.proto");
  b_sub(&f, 4, &m);
  s.len = 0;
  b_sub(&s, 1, &f);
  put(c, "too-deep.bin", -1, s.data, s.len);

  /* 65 files (one more than the index holds). */
  s.len = 0;
  for (int k = 0; k < 65; k++) {
    char name[32];
    snprintf(name, sizeof name, "f%d.proto", k);
    f.len = 0;
    b_str(&f, 1, name);
    b_sub(&s, 1, &f);
  }
  put(c, "too-many-files.bin", -1, s.data, s.len);

  /* A file without a name, a name of 255 bytes (the longest), a truncated set, empty. */
  s.len = 0;
  f.len = 0;
  b_str(&f, 2, "pkg");
  b_sub(&s, 1, &f);
  put(c, "nameless-file.bin", -1, s.data, s.len);
  char longname[256];
  memset(longname, 'n', 255);
  longname[255] = '\0';
  s.len = 0;
  f.len = 0;
  b_str(&f, 1, longname);
  b_sub(&s, 1, &f);
  put(c, "longest-name.bin", -1, s.data, s.len);
  put(c, "truncated.bin", -1, set, qm_descriptor_set_len / 2);
  put(c, "empty.bin", -1, "", 0);
}

static void reflection(void) {
  const char *c = "reflection";
  Grpc__Reflection__V1__ServerReflectionRequest r = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  Grpc__Reflection__V1__ExtensionRequest ext = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
  static const struct {
    const char *file, *value;
    int which;
  } reqs[] = {
      {"list-services.bin", "*", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES},
      {"file-qmesh.bin", "qmesh/v1/qmesh.proto", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME},
      {"file-health.bin", "grpc/health/v1/health.proto", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME},
      {"file-missing.bin", "nope.proto", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME},
      {"symbol-service.bin", "qmesh.v1.Auditor", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL},
      {"symbol-method.bin", "qmesh.v1.Auditor.Report", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL},
      {"symbol-dotted.bin", ".qmesh.v1.Outcome", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL},
      {"symbol-nested-enum.bin", "qmesh.v1.ReportReply.Result", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL},
      {"symbol-reflection.bin", "grpc.reflection.v1alpha.ServerReflection", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL},
      {"symbol-missing.bin", "qmesh.v1.Nope", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL},
      {"all-extensions.bin", "qmesh.v1.Outcome", GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE},
  };
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    r.host = i == 0 ? "localhost:8200" : (char *)"";
    r.message_request_case = reqs[i].which;
    r.file_by_filename = (char *)reqs[i].value; /* the string members share the union */
    put_msg(c, reqs[i].file, -1, &r.base);
  }
  ext.containing_type = "qmesh.v1.Outcome";
  ext.extension_number = 100;
  r.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
  r.file_containing_extension = &ext;
  put_msg(c, "file-containing-extension.bin", -1, &r.base);
  r.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET;
  put_msg(c, "empty-request.bin", -1, &r.base);
  /* A 300-byte symbol: the error message clips it. */
  char lng[301];
  memset(lng, 's', 300);
  lng[300] = '\0';
  r.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  r.file_containing_symbol = lng;
  put_msg(c, "symbol-long.bin", -1, &r.base);
  put(c, "malformed.bin", -1, "\x0a\xff", 2);
}

/* outcome: packs an Outcome into |*out| (malloc'd). */
static size_t outcome(const char *provider, const char *domain, size_t repr_len, int initiated,
                      uint8_t **out) {
  static uint8_t repr[64];
  for (size_t i = 0; i < sizeof repr; i++) repr[i] = (uint8_t)(i * 7 + 1);
  Qmesh__V1__Outcome o = QMESH__V1__OUTCOME__INIT;
  o.request_repr.data = repr;
  o.request_repr.len = repr_len;
  o.provider_id = (char *)provider;
  o.domain = (char *)domain;
  o.initiated = initiated;
  o.sequence = 42;
  o.decided_unix_nanos = 1700000000123456789LL;
  size_t n = qmesh__v1__outcome__get_packed_size(&o);
  *out = malloc(n ? n : 1);
  if (!*out) die("out of memory");
  qmesh__v1__outcome__pack(&o, *out);
  return n;
}

/* signed_outcome: writes mode byte + SignedOutcome{outcome, sig by key k (or a zero sig when
 * k < 0), key_id}. */
static void signed_outcome(const char *name, int mode, const uint8_t *o, size_t olen, int k,
                           const char *key_id) {
  uint8_t sig[QM_SIG_LEN] = {0};
  if (k >= 0 && qm_sign(priv[k], o, olen, sig)) die("sign");
  Qmesh__V1__SignedOutcome so = QMESH__V1__SIGNED_OUTCOME__INIT;
  so.outcome.data = (uint8_t *)o;
  so.outcome.len = olen;
  so.signature.data = sig;
  so.signature.len = sizeof sig;
  so.key_id = (char *)key_id;
  put_msg("report", name, mode, &so.base);
}

static void report(void) {
  uint8_t *o;
  size_t n;
  char name[64];
  for (int k = 0; k < QM_FUZZ_NKEYS; k++) {
    const char *id = qm_fuzz_key_ids[k];
    n = outcome(id, "payments", 32, k != 1, &o);
    snprintf(name, sizeof name, "ok-%s.bin", id);
    signed_outcome(name, 0, o, n, k, id);
    /* The same, to be re-signed by the harness (mode k+1). */
    snprintf(name, sizeof name, "resign-ok-%s.bin", id);
    signed_outcome(name, k + 1, o, n, -1, id);
    free(o);
  }
  n = outcome("PROVIDER_B", "identity", 32, 1, &o);
  signed_outcome("signer-mismatch.bin", 0, o, n, 0, "PROVIDER_A");
  signed_outcome("bad-signature.bin", 0, o, n, 2, "PROVIDER_B");
  signed_outcome("unknown-signer.bin", 0, o, n, 1, "PROVIDER_Z");
  free(o);
  n = outcome("PROVIDER_A", "payments", 31, 0, &o);
  signed_outcome("short-repr.bin", 0, o, n, 0, "PROVIDER_A");
  signed_outcome("resign-short-repr.bin", 1, o, n, -1, "PROVIDER_A");
  free(o);
  char longdom[200];
  memset(longdom, 'd', sizeof longdom - 1);
  longdom[sizeof longdom - 1] = '\0';
  n = outcome("PROVIDER_C", longdom, 32, 1, &o);
  signed_outcome("long-domain.bin", 0, o, n, 2, "PROVIDER_C");
  free(o);
  /* Signed bytes that are not an Outcome, and an empty outcome. */
  signed_outcome("signed-garbage.bin", 0, (const uint8_t *)"\x0a\xff\xff", 3, 0, "PROVIDER_A");
  signed_outcome("signed-empty.bin", 0, (const uint8_t *)"", 0, 1, "PROVIDER_B");
  put("report", "malformed.bin", 0, "\x1a\x05PRO", 5);
  put("report", "empty.bin", -1, "", 0);
}

static void messages(void) {
  const char *c = "messages";
  static uint8_t repr[32];
  for (size_t i = 0; i < sizeof repr; i++) repr[i] = (uint8_t)(0xf0 ^ i);

  Qmesh__V1__SubmitRequest sub = QMESH__V1__SUBMIT_REQUEST__INIT;
  sub.payload.data = (uint8_t *)"request #7: transfer 10 units";
  sub.payload.len = strlen((char *)sub.payload.data);
  put_msg(c, "submit.bin", -1, &sub.base);

  Qmesh__V1__Artifact a = QMESH__V1__ARTIFACT__INIT;
  a.request_repr.data = repr;
  a.request_repr.len = sizeof repr;
  a.verification_context = "CTX_ALPHA";
  a.domain = "payments";
  a.sequence = 7;
  a.front_id = "NUVL_A";
  a.accepted_unix_nanos = 1700000000000000000LL;
  put_msg(c, "artifact.bin", -1, &a.base);

  uint8_t *o;
  size_t n = outcome("PROVIDER_A", "storage", 32, 1, &o);
  put(c, "outcome.bin", -1, o, n);
  uint8_t sig[QM_SIG_LEN];
  if (qm_sign(priv[0], o, n, sig)) die("sign");
  Qmesh__V1__SignedOutcome so = QMESH__V1__SIGNED_OUTCOME__INIT;
  so.outcome.data = o;
  so.outcome.len = n;
  so.signature.data = sig;
  so.signature.len = sizeof sig;
  so.key_id = "PROVIDER_A";
  put_msg(c, "signed-outcome.bin", -1, &so.base);
  free(o);

  Qmesh__V1__LookupRequest lk = QMESH__V1__LOOKUP_REQUEST__INIT;
  lk.request_repr_hex = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeffe0e1e2e3e4e5e6e7e8e9eaebecedeeef";
  put_msg(c, "lookup.bin", -1, &lk.base);
  lk.request_repr_hex = "F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEF";
  put_msg(c, "lookup-upper.bin", -1, &lk.base);
  lk.request_repr_hex = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeffe0e1e2e3e4e5e6e7e8e9eaebecedeeeg";
  put_msg(c, "lookup-bad-digit.bin", -1, &lk.base);
  lk.request_repr_hex = "abc";
  put_msg(c, "lookup-short.bin", -1, &lk.base);

  Grpc__Health__V1__HealthCheckRequest h = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  h.service = "qmesh.v1.Auditor";
  put_msg(c, "health.bin", -1, &h.base);

  /* StatsRequest and SummaryRequest are empty messages: unknown fields of every wire type. */
  put(c, "empty.bin", -1, "", 0);
  put(c, "unknown-fields.bin", -1, "\x08\x01\x11\x01\x02\x03\x04\x05\x06\x07\x08\x1a\x01z\x25\x01\x02\x03\x04", 19);
  put(c, "bad-wire-type.bin", -1, "\x0f\x00", 2);
  put(c, "truncated-varint.bin", -1, "\x08\xff\xff\xff", 4);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  root = argv[1];
  if (qm_fuzz_keys_load(pub, priv)) die("cannot make the deterministic keys");
  descriptors();
  reflection();
  report();
  messages();
  for (int i = 0; i < QM_FUZZ_NKEYS; i++) {
    qm_key_free(pub[i]);
    qm_key_free(priv[i]);
  }
  return 0;
}
