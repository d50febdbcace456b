/* test_sign: the libsodium signer against OpenSSL's own Ed25519 over the same PEM keys:
 * identical signature bytes (Ed25519 is deterministic), each verifies the other's, and
 * every tampering is refused. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sign.h"

static EVP_PKEY *pem(const char *path, int private) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  EVP_PKEY *k = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
  fclose(f);
  return k;
}

static int openssl_sign(EVP_PKEY *k, const uint8_t *m, size_t n, uint8_t sig[64]) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  size_t len = 64;
  int ok = c && EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 && EVP_DigestSign(c, sig, &len, m, n) == 1 && len == 64;
  EVP_MD_CTX_free(c);
  return ok;
}

static int openssl_verify(EVP_PKEY *k, const uint8_t *m, size_t n, const uint8_t sig[64]) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 && EVP_DigestVerify(c, sig, 64, m, n) == 1;
  EVP_MD_CTX_free(c);
  return ok;
}

int main(void) {
  char dir[] = "/tmp/qmesh-test-sign-XXXXXX", key[128], pub[128], other[128];
  if (!mkdtemp(dir)) return 1;
  struct qm_err err = {0};
  CHECK(qm_key_generate(dir, "P", &err) == 0 && qm_key_generate(dir, "Q", &err) == 0);
  snprintf(key, sizeof key, "%s/P.key", dir);
  snprintf(pub, sizeof pub, "%s/P.pub", dir);
  snprintf(other, sizeof other, "%s/Q.pub", dir);
  struct qm_key *sk = NULL, *pk = NULL, *qk = NULL;
  CHECK(qm_key_load_private(key, &sk, &err) == 0);
  CHECK(qm_key_load_public(pub, &pk, &err) == 0);
  CHECK(qm_key_load_public(other, &qk, &err) == 0);
  EVP_PKEY *osk = pem(key, 1), *opk = pem(pub, 0);
  CHECK(sk && pk && qk && osk && opk);
  if (!sk || !pk || !qk || !osk || !opk) return qm_checks_done();

  uint8_t msg[300], a[64], b[64];
  for (size_t n = 0; n <= sizeof msg; n += 37) {
    for (size_t i = 0; i < n; i++) msg[i] = (uint8_t)(i * 31 + n);
    CHECK(qm_sign(sk, msg, n, a) == 0);
    CHECK(openssl_sign(osk, msg, n, b));
    CHECKF(memcmp(a, b, 64) == 0, "signature bytes differ from OpenSSL's at %zu bytes", n);
    CHECK(openssl_verify(opk, msg, n, a));  /* OpenSSL accepts ours */
    CHECK(qm_verify(pk, msg, n, b, 64));    /* we accept OpenSSL's */
    CHECK(qm_verify(sk, msg, n, a, 64));    /* a private key verifies too */
    CHECK(!qm_verify(qk, msg, n, a, 64));   /* another provider's key does not */
    CHECK(!qm_verify(pk, msg, n, a, 63));   /* a short signature is refused */
    a[n % 64] ^= 0x01;
    CHECK(!qm_verify(pk, msg, n, a, 64));   /* one flipped signature bit */
    a[n % 64] ^= 0x01;
    if (n) {
      msg[n / 2] ^= 0x80;
      CHECK(!qm_verify(pk, msg, n, a, 64)); /* one flipped message bit */
    }
  }
  CHECK(qm_sign(pk, msg, 10, a) == -EIO); /* a public key cannot sign */
  /* a signature with S >= L (the group order added to S) must be refused: malleability */
  CHECK(qm_sign(sk, msg, 10, a) == 0);
  static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  unsigned carry = 0;
  for (int i = 0; i < 32; i++) {
    unsigned s = (unsigned)a[32 + i] + L[i] + carry;
    a[32 + i] = (uint8_t)s;
    carry = s >> 8;
  }
  CHECK(!qm_verify(pk, msg, 10, a, 64));
  CHECK(qm_key_load_private(pub, &qk, &err) != 0); /* a public PEM is not a private key */

  qm_key_free(sk);
  qm_key_free(pk);
  qm_key_free(qk);
  EVP_PKEY_free(osk);
  EVP_PKEY_free(opk);
  unlink(key);
  unlink(pub);
  snprintf(key, sizeof key, "%s/Q.key", dir);
  unlink(key);
  unlink(other);
  rmdir(dir);
  return qm_checks_done();
}
