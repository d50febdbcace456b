/* report_check.c: decode, verify, decode again, attribute: the auditor's gate. */
#include "report_check.h"

#include <stdio.h>
#include <string.h>

#include "merkle.h"
#include "qmesh/v1/qmesh.pb-c.h"

static int find_provider(const struct qm_topology *t, const char *id) {
  for (size_t i = 0; i < t->nproviders; i++)
    if (strcmp(t->providers[i].ep.id, id) == 0) return (int)i;
  return -1;
}

/* signature_ok: a lone outcome's signature, or the batch root its proof implies. */
static int signature_ok(const Qmesh__V1__SignedOutcome *so, int p, struct qm_key *const *keys,
                        struct qm_root_cache *cache, char *why, size_t cap) {
  if (so->leaf_count == 0) {
    if (so->n_proof || so->leaf_index) {
      snprintf(why, cap, "a lone outcome carries no Merkle proof");
      return 0;
    }
    return qm_verify(keys[p], so->outcome.data, so->outcome.len, so->signature.data, so->signature.len);
  }
  uint8_t leaf[32], root[32], proof[QM_MERKLE_DEPTH_MAX][32];
  if (so->leaf_count > QM_MERKLE_MAX || so->n_proof > QM_MERKLE_DEPTH_MAX || so->signature.len != QM_SIG_LEN) {
    snprintf(why, cap, "batch of %u leaves with a %zu-hash proof is out of bounds", so->leaf_count, so->n_proof);
    return 0;
  }
  for (size_t i = 0; i < so->n_proof; i++) {
    if (so->proof[i].len != 32) {
      snprintf(why, cap, "Merkle proof hash %zu is %zu bytes, not 32", i, so->proof[i].len);
      return 0;
    }
    memcpy(proof[i], so->proof[i].data, 32);
  }
  qm_merkle_leaf(so->outcome.data, so->outcome.len, leaf);
  if (qm_merkle_root_from_proof(leaf, so->leaf_index, so->leaf_count, (const uint8_t(*)[32])proof, so->n_proof,
                                root)) {
    snprintf(why, cap, "Merkle proof does not fit leaf %u of %u", so->leaf_index, so->leaf_count);
    return 0;
  }
  size_t slot = ((size_t)root[0] | (size_t)root[1] << 8) % QM_ROOT_CACHE_SLOTS;
  if (cache && cache->slot[slot].valid && cache->slot[slot].provider == (uint32_t)p &&
      cache->slot[slot].count == so->leaf_count && memcmp(cache->slot[slot].root, root, 32) == 0 &&
      memcmp(cache->slot[slot].sig, so->signature.data, QM_SIG_LEN) == 0) {
    cache->hits++;
    return 1;
  }
  uint8_t signed_bytes[QM_BATCH_SIGNED_LEN];
  qm_merkle_signed_bytes(root, so->leaf_count, signed_bytes);
  if (!qm_verify(keys[p], signed_bytes, sizeof signed_bytes, so->signature.data, so->signature.len)) return 0;
  if (cache) {
    cache->misses++;
    memcpy(cache->slot[slot].root, root, 32);
    memcpy(cache->slot[slot].sig, so->signature.data, QM_SIG_LEN);
    cache->slot[slot].provider = (uint32_t)p;
    cache->slot[slot].count = so->leaf_count;
    cache->slot[slot].valid = 1;
  }
  return 1;
}

enum qm_report_verdict qm_report_check_decoded(const Qmesh__V1__SignedOutcome *so, const struct qm_topology *t,
                                               struct qm_key *const *keys, struct qm_root_cache *cache,
                                               struct qm_vote *out, char *why, size_t cap) {
  enum qm_report_verdict v = QM_REPORT_OK;
  Qmesh__V1__Outcome *o = NULL;
  int p = find_provider(t, so->key_id);
  if (p < 0) {
    snprintf(why, cap, "unknown signer '%.64s'", so->key_id);
    return QM_REPORT_UNKNOWN_SIGNER;
  }
  why[0] = '\0';
  if (!signature_ok(so, p, keys, cache, why, cap)) {
    if (!why[0]) snprintf(why, cap, "signature of %s does not verify over the %s", so->key_id,
                          so->leaf_count ? "batch root" : "outcome bytes");
    return QM_REPORT_BAD_SIGNATURE;
  }
  o = qmesh__v1__outcome__unpack(NULL, so->outcome.len, so->outcome.data);
  if (!o || o->request_repr.len != 32 || strlen(o->domain) >= sizeof out->domain) {
    snprintf(why, cap, "signed bytes are not an Outcome with a 32-byte request_repr and a domain under %zu bytes",
             sizeof out->domain);
    v = QM_REPORT_MALFORMED;
    goto out;
  }
  if (strcmp(o->provider_id, so->key_id) != 0) {
    snprintf(why, cap, "outcome of '%.64s' signed by '%.64s'", o->provider_id, so->key_id);
    v = QM_REPORT_SIGNER_MISMATCH;
    goto out;
  }
  memcpy(out->repr, o->request_repr.data, 32);
  out->sequence = o->sequence;
  memcpy(out->domain, o->domain, strlen(o->domain) + 1);
  out->provider = (size_t)p;
  out->initiated = o->initiated;
  out->decided_ns = o->decided_unix_nanos;
out:
  if (o) qmesh__v1__outcome__free_unpacked(o, NULL);
  return v;
}

enum qm_report_verdict qm_report_check(const uint8_t *msg, size_t len, const struct qm_topology *t,
                                       struct qm_key *const *keys, struct qm_root_cache *cache,
                                       struct qm_vote *out, char *why, size_t cap) {
  Qmesh__V1__SignedOutcome *so = qmesh__v1__signed_outcome__unpack(NULL, len, msg);
  if (!so) {
    snprintf(why, cap, "malformed SignedOutcome (%zu bytes)", len);
    return QM_REPORT_MALFORMED;
  }
  enum qm_report_verdict v = qm_report_check_decoded(so, t, keys, cache, out, why, cap);
  qmesh__v1__signed_outcome__free_unpacked(so, NULL);
  return v;
}
