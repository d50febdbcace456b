/* merkle.h: the Merkle tree over a batch of outcomes that lets a provider sign a batch once
 * while every vote stays individually verifiable (see SignedOutcome in the proto). */
#ifndef QM_MERKLE_H
#define QM_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define QM_MERKLE_MAX 4096       /* leaves per batch */
#define QM_MERKLE_DEPTH_MAX 12   /* ceil(log2(QM_MERKLE_MAX)) */
#define QM_BATCH_SIGNED_LEN (14 + 4 + 32)

/* qm_merkle_leaf: SHA-256(0x00 || data). */
void qm_merkle_leaf(const uint8_t *data, size_t len, uint8_t out[32]);
/* qm_merkle_root: the root over |n| (1..QM_MERKLE_MAX) leaf hashes. 0 or -EINVAL. */
int qm_merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t root[32]);
/* qm_merkle_proofs: the root and every leaf's proof in one pass over the tree (n - 1 node
 * hashes in all): |proofs[i]| and |nproof[i]| for leaf i (both may be NULL: the root
 * only). 0 or -EINVAL. */
int qm_merkle_proofs(const uint8_t (*leaves)[32], size_t n, uint8_t (*proofs)[QM_MERKLE_DEPTH_MAX][32],
                     int *nproof, uint8_t root[32]);
/* qm_merkle_root_from_proof: the root implied by a leaf, its position and its proof.
 * 0, or -EINVAL when the proof's length does not fit (index, count). */
int qm_merkle_root_from_proof(const uint8_t leaf[32], size_t index, size_t count, const uint8_t (*proof)[32],
                              size_t nproof, uint8_t root[32]);
/* The last node hashed at each level of a proof walk. Consecutive leaves of one batch share
 * every node above the level where their paths meet, so a batch's proofs, checked in leaf
 * order, hash about one node per leaf instead of one per level per leaf. A pure cache: an
 * entry is reused only for exactly the same two children. Zero-initialise before use. */
struct qm_merkle_memo {
  struct qm_merkle_memo_level {
    uint8_t in[64], out[32];
    int valid;
  } level[QM_MERKLE_DEPTH_MAX];
  uint64_t hits;
};
/* qm_merkle_root_from_proof_memo: the same, through |memo| (may be NULL). */
int qm_merkle_root_from_proof_memo(const uint8_t leaf[32], size_t index, size_t count, const uint8_t (*proof)[32],
                                   size_t nproof, uint8_t root[32], struct qm_merkle_memo *memo);
/* qm_merkle_signed_bytes: what a provider signs for a batch: "qmesh.v1.batch" || count || root. */
void qm_merkle_signed_bytes(const uint8_t root[32], uint32_t count, uint8_t out[QM_BATCH_SIGNED_LEN]);

#endif
