/* hash.c: SHA-256 through OpenSSL's EVP, hex both ways. */
#include "hash.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

/* Fetched once: OpenSSL 3 otherwise looks SHA-256 up in its provider store on every call,
 * which costs more than hashing a small message. */
static EVP_MD *sha256_impl;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void fetch_sha256(void) { sha256_impl = EVP_MD_fetch(NULL, "SHA256", NULL); }

int qm_sha256(const void *data, size_t len, uint8_t out[QM_SHA256_LEN]) {
  unsigned int n = 0;
  pthread_once(&sha256_once, fetch_sha256);
  const EVP_MD *md = sha256_impl ? sha256_impl : EVP_sha256();
  if (!EVP_Digest(data, len, out, &n, md, NULL) || n != QM_SHA256_LEN) return -EIO;
  return 0;
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
