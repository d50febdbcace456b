/* fuzz_keys.h: the fuzzers' deterministic Ed25519 keys, one per default-topology provider,
 * shared by fuzz_report.c and tools/gen_seeds.c so the seed corpus carries real signatures.
 * Header-only (static functions): each includer gets its own copy. */
#ifndef QM_FUZZ_KEYS_H
#define QM_FUZZ_KEYS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sign.h"

#define QM_FUZZ_NKEYS 3

/* The provider ids of deploy/topology.yaml, in order; key i belongs to provider i. */
static const char *const qm_fuzz_key_ids[QM_FUZZ_NKEYS] = {"PROVIDER_A", "PROVIDER_B", "PROVIDER_C"};

/* qm_fuzz_key_seed: the fixed 32-byte private seed of key |i| (0x41+i repeated). */
static void qm_fuzz_key_seed(int i, uint8_t seed[32]) { memset(seed, 0x41 + i, 32); }

/* qm_fuzz_pem_roundtrip: writes |pkey| (private or public PEM) to a fresh temporary file and loads it
 * back as a struct qm_key through sign.c, then removes the file. Returns 0 or -1. */
static int qm_fuzz_pem_roundtrip(EVP_PKEY *pkey, int private, struct qm_key **out) {
  char path[] = "/tmp/qm-fuzz-key-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(path);
    return -1;
  }
  int ok = private ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, pkey);
  if (fclose(f) != 0) ok = 0;
  struct qm_err err;
  int rc = ok ? (private ? qm_key_load_private(path, out, &err) : qm_key_load_public(path, out, &err)) : -1;
  unlink(path);
  return rc ? -1 : 0;
}

/* qm_fuzz_keys_load: fills pub[i] (and priv[i] when |priv| is not NULL) for every key.
 * Returns 0 or -1 (nothing to free on failure beyond what was filled; callers abort). */
static int qm_fuzz_keys_load(struct qm_key *pub[QM_FUZZ_NKEYS], struct qm_key *priv[QM_FUZZ_NKEYS]) {
  for (int i = 0; i < QM_FUZZ_NKEYS; i++) {
    uint8_t seed[32];
    qm_fuzz_key_seed(i, seed);
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
    if (!pkey) return -1;
    int rc = qm_fuzz_pem_roundtrip(pkey, 0, &pub[i]);
    if (!rc && priv) rc = qm_fuzz_pem_roundtrip(pkey, 1, &priv[i]);
    EVP_PKEY_free(pkey);
    if (rc) return -1;
  }
  return 0;
}

#endif
