/* hash.c: SHA-256 through OpenSSL's SHA256_* functions, hex both ways. */
/* The digest-specific functions are deprecated in OpenSSL 3 in favour of EVP, but EVP costs
 * about twice the hash itself for the small inputs hashed here (Merkle nodes, outcomes, audit
 * records: 65-400 bytes) and allocates a context per call; these use the same SHA-NI code. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "hash.h"

#include <errno.h>
#include <string.h>

#include <openssl/sha.h>

int qm_sha256(const void *data, size_t len, uint8_t out[QM_SHA256_LEN]) {
  return qm_sha256_parts(&data, &len, 1, out);
}

int qm_sha256_parts(const void *const *parts, const size_t *lens, size_t n, uint8_t out[QM_SHA256_LEN]) {
  SHA256_CTX c;
  int ok = SHA256_Init(&c);
  for (size_t i = 0; ok && i < n; i++) ok = SHA256_Update(&c, parts[i], lens[i]);
  ok = ok && SHA256_Final(out, &c);
  return ok ? 0 : -EIO;
}

void qm_hex(const uint8_t *bytes, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * len] = '\0';
}

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int qm_unhex(const char *hex, uint8_t *out, size_t len) {
  if (strlen(hex) != 2 * len) return -EINVAL;
  for (size_t i = 0; i < len; i++) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return -EINVAL;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}
