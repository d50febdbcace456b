/* sign.c: Ed25519 keys in PEM files (OpenSSL reads and writes them), signatures and
 * verifications by libsodium over the raw keys. Why libsodium: on this 2-core VM its
 * verification takes 58-94 us against OpenSSL 3.0's 163-173 us (its signing 36 against 55),
 * and the auditor verifies once per vote batch of every provider, the largest fixed cost of
 * a batch. Ed25519 is deterministic, so both produce the same signature bytes
 * (tests/test_sign.c checks it); libsodium's verification is the stricter of the two
 * (small-order keys and non-canonical encodings are refused). */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

struct qm_key {
  int private;
  uint8_t pk[crypto_sign_PUBLICKEYBYTES];
  uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key; zero for a public key */
};

static int sodium_ready = -1;
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static void init_sodium(void) { sodium_ready = sodium_init() < 0 ? -1 : 0; }

/* raw: the key's raw bytes in libsodium's form; checks that the private half matches. */
static int raw(EVP_PKEY *pkey, int private, struct qm_key *k) {
  size_t n = sizeof k->pk;
  if (EVP_PKEY_get_raw_public_key(pkey, k->pk, &n) != 1 || n != sizeof k->pk) return -1;
  if (!private) return 0;
  uint8_t seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
  n = sizeof seed;
  int ok = EVP_PKEY_get_raw_private_key(pkey, seed, &n) == 1 && n == sizeof seed &&
           crypto_sign_seed_keypair(pk, k->sk, seed) == 0 && memcmp(pk, k->pk, sizeof pk) == 0;
  sodium_memzero(seed, sizeof seed);
  return ok ? 0 : -1;
}

static int load(const char *path, int private, struct qm_key **out, struct qm_err *err) {
  pthread_once(&sodium_once, init_sodium);
  if (sodium_ready) return qm_err_set(err, -EIO, "libsodium failed to initialise");
  FILE *f = fopen(path, "r");
  if (!f) return qm_err_set(err, -errno, "%s: cannot open key file: %m", path);
  EVP_PKEY *pkey = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
  fclose(f);
  if (!pkey) return qm_err_set(err, -EINVAL, "%s: not a PEM %s key", path, private ? "private" : "public");
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pkey);
    return qm_err_set(err, -EINVAL, "%s: not an Ed25519 key", path);
  }
  struct qm_key *k = calloc(1, sizeof *k);
  if (!k) {
    EVP_PKEY_free(pkey);
    return qm_err_set(err, -ENOMEM, "out of memory");
  }
  k->private = private;
  int rc = raw(pkey, private, k);
  EVP_PKEY_free(pkey);
  if (rc) {
    qm_key_free(k);
    return qm_err_set(err, -EINVAL, "%s: cannot read the raw Ed25519 key", path);
  }
  *out = k;
  return 0;
}

int qm_key_load_private(const char *path, struct qm_key **out, struct qm_err *err) { return load(path, 1, out, err); }

int qm_key_load_public(const char *path, struct qm_key **out, struct qm_err *err) { return load(path, 0, out, err); }

void qm_key_free(struct qm_key *k) {
  if (!k) return;
  sodium_memzero(k, sizeof *k);
  free(k);
}

static int write_pem(const char *path, EVP_PKEY *pkey, int private, struct qm_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, private ? 0600 : 0644);
  if (fd < 0) return qm_err_set(err, -errno, "%s: cannot create: %m", path);
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    return qm_err_set(err, -errno, "%s: %m", path);
  }
  int ok = private ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, pkey);
  if (fclose(f) != 0) ok = 0;
  return ok ? 0 : qm_err_set(err, -EIO, "%s: cannot write the key", path);
}

int qm_key_generate(const char *dir, const char *id, struct qm_err *err) {
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!pkey) return qm_err_set(err, -EIO, "Ed25519 key generation failed");
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.key", dir, id);
  int rc = write_pem(path, pkey, 1, err);
  if (!rc) {
    snprintf(path, sizeof path, "%s/%s.pub", dir, id);
    rc = write_pem(path, pkey, 0, err);
  }
  EVP_PKEY_free(pkey);
  return rc;
}

int qm_sign(const struct qm_key *k, const uint8_t *msg, size_t len, uint8_t sig[QM_SIG_LEN]) {
  if (!k->private) return -EIO;
  return crypto_sign_detached(sig, NULL, msg, len, k->sk) == 0 ? 0 : -EIO;
}

int qm_verify(const struct qm_key *k, const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len) {
  if (sig_len != QM_SIG_LEN) return 0;
  return crypto_sign_verify_detached(sig, msg, len, k->pk) == 0;
}
