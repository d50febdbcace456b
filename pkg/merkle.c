/* merkle.c: leaf/node hashing with domain separation; odd nodes are carried up. */
#include "merkle.h"

#include <errno.h>
#include <string.h>

#include "hash.h"

void qm_merkle_leaf(const uint8_t *data, size_t len, uint8_t out[32]) {
  static const uint8_t leaf_tag = 0x00;
  if (len <= 4096) {
    const void *parts[2] = {&leaf_tag, data};
    size_t lens[2] = {1, len};
    qm_sha256_parts(parts, lens, 2, out);
    return;
  }
  /* Outcomes are small; a large input is still hashed correctly, just with two passes. */
  uint8_t buf[33];
  qm_sha256(data, len, buf + 1);
  buf[0] = 0x02; /* distinct prefix: never collides with a short leaf */
  qm_sha256(buf, 33, out);
}

static void node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]) {
  uint8_t buf[65];
  buf[0] = 0x01;
  memcpy(buf + 1, l, 32);
  memcpy(buf + 33, r, 32);
  qm_sha256(buf, sizeof buf, out);
}

int qm_merkle_proofs(const uint8_t (*leaves)[32], size_t n, uint8_t (*proofs)[QM_MERKLE_DEPTH_MAX][32],
                     int *nproof, uint8_t root[32]) {
  if (n == 0 || n > QM_MERKLE_MAX) return -EINVAL;
  /* Every level once (2n - 1 nodes at most); each leaf's path is read off them. */
  static __thread uint8_t nodes[2 * QM_MERKLE_MAX][32];
  size_t start[QM_MERKLE_DEPTH_MAX + 2], width[QM_MERKLE_DEPTH_MAX + 2], levels = 0, at = n;
  memcpy(nodes, leaves, n * 32);
  start[0] = 0;
  width[0] = n;
  while (width[levels] > 1) {
    size_t w = width[levels], s0 = start[levels], out = 0;
    for (size_t i = 0; i < w; i += 2, out++) {
      if (i + 1 < w) node(nodes[s0 + i], nodes[s0 + i + 1], nodes[at + out]);
      else memcpy(nodes[at + out], nodes[s0 + i], 32);
    }
    levels++;
    start[levels] = at;
    width[levels] = out;
    at += out;
  }
  memcpy(root, nodes[start[levels]], 32);
  for (size_t leaf = 0; proofs && nproof && leaf < n; leaf++) {
    size_t index = leaf;
    int np = 0;
    for (size_t l = 0; l < levels; l++) {
      size_t sib = index ^ 1;
      if (sib < width[l]) memcpy(proofs[leaf][np++], nodes[start[l] + sib], 32);
      index /= 2;
    }
    nproof[leaf] = np;
  }
  return 0;
}

int qm_merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t root[32]) {
  return qm_merkle_proofs(leaves, n, NULL, NULL, root);
}

int qm_merkle_root_from_proof(const uint8_t leaf[32], size_t index, size_t count, const uint8_t (*proof)[32],
                              size_t nproof, uint8_t root[32]) {
  return qm_merkle_root_from_proof_memo(leaf, index, count, proof, nproof, root, NULL);
}

/* memo_node: node(l, r) through |m|'s entry for this level: the same two children give the
 * same hash, so it is reused only when both are byte for byte what was hashed before. */
static void memo_node(struct qm_merkle_memo *m, size_t level, const uint8_t l[32], const uint8_t r[32],
                      uint8_t out[32]) {
  if (!m) {
    node(l, r, out);
    return;
  }
  struct qm_merkle_memo_level *e = &m->level[level];
  if (e->valid && memcmp(e->in, l, 32) == 0 && memcmp(e->in + 32, r, 32) == 0) {
    memcpy(out, e->out, 32);
    m->hits++;
    return;
  }
  memcpy(e->in, l, 32);
  memcpy(e->in + 32, r, 32);
  node(l, r, e->out);
  e->valid = 1;
  memcpy(out, e->out, 32);
}

int qm_merkle_root_from_proof_memo(const uint8_t leaf[32], size_t index, size_t count, const uint8_t (*proof)[32],
                                   size_t nproof, uint8_t root[32], struct qm_merkle_memo *memo) {
  if (count == 0 || count > QM_MERKLE_MAX || index >= count) return -EINVAL;
  uint8_t cur[32];
  memcpy(cur, leaf, 32);
  size_t used = 0, n = count, level = 0;
  while (n > 1) {
    size_t sib = index ^ 1;
    if (sib < n) {
      if (used == nproof) return -EINVAL;
      if (index & 1) memo_node(memo, level, proof[used], cur, cur);
      else memo_node(memo, level, cur, proof[used], cur);
      used++;
    }
    n = (n + 1) / 2;
    index /= 2;
    level++;
  }
  if (used != nproof) return -EINVAL;
  memcpy(root, cur, 32);
  return 0;
}

void qm_merkle_signed_bytes(const uint8_t root[32], uint32_t count, uint8_t out[QM_BATCH_SIGNED_LEN]) {
  memcpy(out, "qmesh.v1.batch", 14);
  out[14] = (uint8_t)(count >> 24);
  out[15] = (uint8_t)(count >> 16);
  out[16] = (uint8_t)(count >> 8);
  out[17] = (uint8_t)count;
  memcpy(out + 18, root, 32);
}
