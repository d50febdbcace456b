/* report_check.c: walk, verify, walk the signed bytes, attribute: the auditor's gate. */
#include "report_check.h"

#include <stdio.h>
#include <string.h>

#include "merkle.h"

/* The printable part of a string field (as a C string, cut at 64 like the messages do). */
#define SHOW64(s) (int)(qm_span_cstr_len(s) < 64 ? qm_span_cstr_len(s) : 64), (const char *)(s).p

static int find_provider(const struct qm_topology *t, struct qm_span id) {
  for (size_t i = 0; i < t->nproviders; i++)
    if (qm_span_streq(id, t->providers[i].ep.id)) return (int)i;
  return -1;
}

/* signature_ok: a lone outcome's signature, or the batch root its proof implies. */
static int signature_ok(const struct qm_signed_view *so, int p, struct qm_key *const *keys,
                        struct qm_root_cache *cache, char *why, size_t cap) {
  if (so->leaf_count == 0) {
    if (so->nproof || so->leaf_index) {
      snprintf(why, cap, "a lone outcome carries no Merkle proof");
      return 0;
    }
    return qm_verify(keys[p], so->outcome.p, so->outcome.n, so->signature.p, so->signature.n);
  }
  uint8_t leaf[32], root[32], proof[QM_MERKLE_DEPTH_MAX][32];
  if (so->leaf_count > QM_MERKLE_MAX || so->nproof > QM_MERKLE_DEPTH_MAX || so->signature.n != QM_SIG_LEN) {
    snprintf(why, cap, "batch of %u leaves with a %zu-hash proof is out of bounds", so->leaf_count, so->nproof);
    return 0;
  }
  for (size_t i = 0; i < so->nproof; i++) {
    if (so->proof[i].n != 32) {
      snprintf(why, cap, "Merkle proof hash %zu is %zu bytes, not 32", i, so->proof[i].n);
      return 0;
    }
    memcpy(proof[i], so->proof[i].p, 32);
  }
  qm_merkle_leaf(so->outcome.p, so->outcome.n, leaf);
  if (qm_merkle_root_from_proof_memo(leaf, so->leaf_index, so->leaf_count, (const uint8_t(*)[32])proof, so->nproof,
                                     root, cache ? &cache->memo : NULL)) {
    snprintf(why, cap, "Merkle proof does not fit leaf %u of %u", so->leaf_index, so->leaf_count);
    return 0;
  }
  size_t slot = ((size_t)root[0] | (size_t)root[1] << 8) % QM_ROOT_CACHE_SLOTS;
  if (cache && cache->slot[slot].valid && cache->slot[slot].provider == (uint32_t)p &&
      cache->slot[slot].count == so->leaf_count && memcmp(cache->slot[slot].root, root, 32) == 0 &&
      memcmp(cache->slot[slot].sig, so->signature.p, QM_SIG_LEN) == 0) {
    cache->hits++;
    return 1;
  }
  uint8_t signed_bytes[QM_BATCH_SIGNED_LEN];
  qm_merkle_signed_bytes(root, so->leaf_count, signed_bytes);
  if (!qm_verify(keys[p], signed_bytes, sizeof signed_bytes, so->signature.p, so->signature.n)) return 0;
  if (cache) {
    cache->misses++;
    memcpy(cache->slot[slot].root, root, 32);
    memcpy(cache->slot[slot].sig, so->signature.p, QM_SIG_LEN);
    cache->slot[slot].provider = (uint32_t)p;
    cache->slot[slot].count = so->leaf_count;
    cache->slot[slot].valid = 1;
  }
  return 1;
}

enum qm_report_verdict qm_report_check_view(const struct qm_signed_view *so, const struct qm_topology *t,
                                            struct qm_key *const *keys, struct qm_root_cache *cache,
                                            struct qm_vote *out, char *why, size_t cap) {
  int p = find_provider(t, so->key_id);
  if (p < 0) {
    snprintf(why, cap, "unknown signer '%.*s'", SHOW64(so->key_id));
    return QM_REPORT_UNKNOWN_SIGNER;
  }
  why[0] = '\0';
  if (!signature_ok(so, p, keys, cache, why, cap)) {
    if (!why[0])
      snprintf(why, cap, "signature of %.*s does not verify over the %s", (int)qm_span_cstr_len(so->key_id),
               (const char *)so->key_id.p, so->leaf_count ? "batch root" : "outcome bytes");
    return QM_REPORT_BAD_SIGNATURE;
  }
  /* Only now read the signed bytes: nothing unsigned is ever interpreted. */
  struct qm_outcome_view o;
  size_t domain_len = 0;
  if (qm_wire_outcome(so->outcome.p, so->outcome.n, &o) || o.request_repr.n != 32 ||
      (domain_len = qm_span_cstr_len(o.domain)) >= sizeof out->domain) {
    snprintf(why, cap, "signed bytes are not an Outcome with a 32-byte request_repr and a domain under %zu bytes",
             sizeof out->domain);
    return QM_REPORT_MALFORMED;
  }
  size_t id_len = qm_span_cstr_len(o.provider_id);
  if (id_len != qm_span_cstr_len(so->key_id) || memcmp(o.provider_id.p, so->key_id.p, id_len) != 0) {
    snprintf(why, cap, "outcome of '%.*s' signed by '%.*s'", SHOW64(o.provider_id), SHOW64(so->key_id));
    return QM_REPORT_SIGNER_MISMATCH;
  }
  memcpy(out->repr, o.request_repr.p, 32);
  out->sequence = o.sequence;
  memcpy(out->domain, o.domain.p, domain_len);
  out->domain[domain_len] = '\0';
  out->provider = (size_t)p;
  out->initiated = o.initiated;
  out->decided_ns = o.decided_unix_nanos;
  return QM_REPORT_OK;
}

enum qm_report_verdict qm_report_check(const uint8_t *msg, size_t len, const struct qm_topology *t,
                                       struct qm_key *const *keys, struct qm_root_cache *cache,
                                       struct qm_vote *out, char *why, size_t cap) {
  struct qm_signed_view so;
  if (qm_wire_signed(msg, len, &so)) {
    snprintf(why, cap, "malformed SignedOutcome (%zu bytes)", len);
    return QM_REPORT_MALFORMED;
  }
  return qm_report_check_view(&so, t, keys, cache, out, why, cap);
}
