/* test_merkle.c: every leaf of every batch size proves the same root; any change fails. */
#include <string.h>

#include "check.h"
#include "merkle.h"

int main(void) {
  static uint8_t leaves[70][32];
  for (size_t i = 0; i < 70; i++) {
    uint8_t data[8] = {(uint8_t)i, 1, 2, 3};
    qm_merkle_leaf(data, sizeof data, leaves[i]);
  }
  for (size_t n = 1; n <= 70; n++) {
    uint8_t root[32], again[32], proof[QM_MERKLE_DEPTH_MAX][32], root2[32];
    static uint8_t all[70][QM_MERKLE_DEPTH_MAX][32];
    int nall[70];
    CHECK(qm_merkle_root((const uint8_t(*)[32])leaves, n, root) == 0);
    CHECK(qm_merkle_proofs((const uint8_t(*)[32])leaves, n, all, nall, root2) == 0);
    CHECK(memcmp(root, root2, 32) == 0);
    for (size_t i = 0; i < n; i++) {
      int np = nall[i];
      memcpy(proof, all[i], sizeof proof);
      CHECK(np >= 0 && np <= QM_MERKLE_DEPTH_MAX);
      CHECK(qm_merkle_root_from_proof(leaves[i], i, n, (const uint8_t(*)[32])proof, (size_t)np, again) == 0);
      CHECK(memcmp(root, again, 32) == 0);
      if (n > 1) {
        /* the wrong position, a wrong leaf or a shortened proof gives another root or fails */
        size_t j = (i + 1) % n;
        if (qm_merkle_root_from_proof(leaves[i], j, n, (const uint8_t(*)[32])proof, (size_t)np, again) == 0)
          CHECK(memcmp(root, again, 32) != 0);
        CHECK(qm_merkle_root_from_proof(leaves[j], i, n, (const uint8_t(*)[32])proof, (size_t)np, again) != 0 ||
              memcmp(root, again, 32) != 0);
        CHECK(qm_merkle_root_from_proof(leaves[i], i, n, (const uint8_t(*)[32])proof, (size_t)np - 1, again) != 0);
      }
    }
  }
  /* The memo changes no result: every leaf of every size, in order (memo hits), backwards and
   * with a batch of another size in between, proves the same root; a changed proof hash
   * still changes the root, though the memo holds its unchanged neighbours. */
  static struct qm_merkle_memo memo;
  for (size_t n = 1; n <= 70; n++) {
    uint8_t root[32], again[32];
    static uint8_t all[70][QM_MERKLE_DEPTH_MAX][32];
    int nall[70];
    CHECK(qm_merkle_proofs((const uint8_t(*)[32])leaves, n, all, nall, root) == 0);
    uint64_t hits = memo.hits;
    for (size_t k = 0; k < 2 * n; k++) {
      size_t i = k < n ? k : 2 * n - 1 - k;
      CHECK(qm_merkle_root_from_proof_memo(leaves[i], i, n, (const uint8_t(*)[32])all[i], (size_t)nall[i], again,
                                           &memo) == 0);
      CHECK(memcmp(root, again, 32) == 0);
      if (n > 1) {
        uint8_t bad[QM_MERKLE_DEPTH_MAX][32];
        memcpy(bad, all[i], sizeof bad);
        bad[nall[i] - 1][k % 32] ^= 1;
        CHECK(qm_merkle_root_from_proof_memo(leaves[i], i, n, (const uint8_t(*)[32])bad, (size_t)nall[i], again,
                                             &memo) == 0);
        CHECK(memcmp(root, again, 32) != 0);
      }
    }
    if (n > 2) CHECK(memo.hits > hits); /* it did save hashes */
  }
  uint8_t a[32], b[32];
  CHECK(qm_merkle_root((const uint8_t(*)[32])leaves, 0, a) != 0);
  qm_merkle_root((const uint8_t(*)[32])leaves, 2, a);
  qm_merkle_root((const uint8_t(*)[32])leaves, 3, b);
  CHECK(memcmp(a, b, 32) != 0); /* a carried-up leaf still changes the root */
  uint8_t msg[QM_BATCH_SIGNED_LEN];
  qm_merkle_signed_bytes(a, 3, msg);
  CHECK(memcmp(msg, "qmesh.v1.batch", 14) == 0 && msg[17] == 3);
  return qm_checks_done();
}
