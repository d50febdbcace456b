/* decision.c: the provider's decision formula (the reference's, bit-exact). */
/* The scorer below uses OpenSSL's SHA256_* functions, deprecated in OpenSSL 3 in favour of
 * EVP but the same SHA-NI code without EVP's per-call overhead (as pkg/hash.c does). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "decision.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>

/* The HMAC implementation is fetched once: OpenSSL 3 looks it up in its provider store on
 * every fetch, which cost more than the MAC itself. */
static EVP_MAC *hmac_impl;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static void fetch_hmac(void) { hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL); }

/* A provider scores every request with the same secret: keep one context keyed with it and
 * copy it, instead of re-keying (and re-fetching SHA-256) for every request. */
#define QM_HMAC_KEY_CACHE_MAX 256
static struct {
  pthread_mutex_t lock;
  EVP_MAC_CTX *keyed;
  uint8_t key[QM_HMAC_KEY_CACHE_MAX];
  size_t len;
} key_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* keyed_ctx: a new context keyed with |key|, ready for the message; NULL on failure. */
static EVP_MAC_CTX *keyed_ctx(EVP_MAC *mac, const uint8_t *key, size_t len, const OSSL_PARAM *params) {
  EVP_MAC_CTX *ctx = NULL;
  pthread_mutex_lock(&key_cache.lock);
  if (len <= QM_HMAC_KEY_CACHE_MAX && key_cache.keyed && key_cache.len == len &&
      CRYPTO_memcmp(key_cache.key, key, len) == 0)
    ctx = EVP_MAC_CTX_dup(key_cache.keyed);
  pthread_mutex_unlock(&key_cache.lock);
  if (ctx) return ctx;
  ctx = EVP_MAC_CTX_new(mac);
  if (!ctx || !EVP_MAC_init(ctx, key, len, params)) {
    EVP_MAC_CTX_free(ctx);
    return NULL;
  }
  EVP_MAC_CTX *keep = len <= QM_HMAC_KEY_CACHE_MAX ? EVP_MAC_CTX_dup(ctx) : NULL;
  if (keep) {
    pthread_mutex_lock(&key_cache.lock);
    EVP_MAC_CTX_free(key_cache.keyed);
    OPENSSL_cleanse(key_cache.key, sizeof key_cache.key); /* secrets: wipe, then replace */
    key_cache.keyed = keep;
    memcpy(key_cache.key, key, len);
    key_cache.len = len;
    pthread_mutex_unlock(&key_cache.lock);
  }
  return ctx;
}

/* repr_hex: the 64 lower-case hex digits of the material (no NUL). */
static void repr_hex(const uint8_t repr[32], char hex[64]) {
  static const char hexdigits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = hexdigits[repr[i] >> 4];
    hex[2 * i + 1] = hexdigits[repr[i] & 0x0f];
  }
}

/* score_of: the reference's arithmetic on the digest. */
static double score_of(const uint8_t d[32], const char *context, size_t context_len,
                       const char *expected, size_t expected_len) {
  uint64_t n = 0;
  for (int i = 0; i < 8; i++)
    n = n << 8 | d[i];
  /* Python: (n % 10_000_000) / 10_000_000.0; the remainder is exact in a double. */
  double score = (double)(n % 10000000U) / 10000000.0;
  if (context_len == expected_len &&
      (expected_len == 0 || memcmp(context, expected, expected_len) == 0))
    score += 0.15;
  return score < 1.0 ? score : 1.0; /* min(score, 1.0) */
}

/* hmac_material: HMAC-SHA256(secret, "{id}|{domain}|{hex(repr)}|{context}") into |out|,
 * fed piece by piece so the material needs no buffer. Returns 0 or -ENOMEM / -EIO. */
static int hmac_material(const uint8_t *secret, size_t secret_len, const char *provider_id,
                         const char *domain, const uint8_t repr[32], const char *context,
                         size_t context_len, uint8_t out[32]) {
  static const uint8_t empty_key[1] = {0};
  char hex[64];
  char digest_name[] = "SHA256";
  OSSL_PARAM params[2];
  EVP_MAC *mac = NULL;
  EVP_MAC_CTX *ctx = NULL;
  size_t outlen = 0;
  int rc = -EIO;

  repr_hex(repr, hex);
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0);
  params[1] = OSSL_PARAM_construct_end();

  pthread_once(&hmac_once, fetch_hmac);
  mac = hmac_impl;
  if (!mac)
    goto out;
  /* An empty key is valid HMAC (Python accepts b""); OpenSSL wants a non-NULL pointer. */
  ctx = keyed_ctx(mac, secret_len ? secret : empty_key, secret_len, params);
  if (!ctx) {
    rc = -ENOMEM;
    goto free_mac;
  }
  if (!EVP_MAC_update(ctx, (const unsigned char *)provider_id, strlen(provider_id)) ||
      !EVP_MAC_update(ctx, (const unsigned char *)"|", 1) ||
      !EVP_MAC_update(ctx, (const unsigned char *)domain, strlen(domain)) ||
      !EVP_MAC_update(ctx, (const unsigned char *)"|", 1) ||
      !EVP_MAC_update(ctx, (const unsigned char *)hex, sizeof hex) ||
      !EVP_MAC_update(ctx, (const unsigned char *)"|", 1) ||
      (context_len && !EVP_MAC_update(ctx, (const unsigned char *)context, context_len)) ||
      !EVP_MAC_final(ctx, out, &outlen, 32) || outlen != 32)
    goto free_ctx;
  rc = 0;

free_ctx:
  EVP_MAC_CTX_free(ctx);
free_mac:
out:
  return rc;
}

int qm_decision_score_checked(const uint8_t *secret, size_t secret_len,
                              const char *provider_id, const char *domain,
                              const uint8_t repr[32], const char *context, size_t context_len,
                              const char *expected_context, double *out) {
  uint8_t d[32];
  int rc = hmac_material(secret, secret_len, provider_id, domain, repr, context, context_len, d);
  if (rc)
    return rc;
  *out = score_of(d, context, context_len, expected_context, strlen(expected_context));
  return 0;
}

double qm_decision_score(const uint8_t *secret, size_t secret_len, const char *provider_id,
                         const char *domain, const uint8_t repr[32], const char *context,
                         size_t context_len, const char *expected_context) {
  double score = -1.0;
  if (qm_decision_score_checked(secret, secret_len, provider_id, domain, repr, context,
                                context_len, expected_context, &score))
    return -1.0;
  return score;
}

/* The scorer computes HMAC-SHA256 (RFC 2104) itself from two SHA-256 states keyed once
 * (key XOR ipad, key XOR opad): per request that is copying two small structs and hashing
 * the material, where EVP_MAC re-initialises through OpenSSL 3's provider layer and allocates
 * on every call (0.5 us against 0.2 us here). tests/test_scorer.c checks it, bit for bit,
 * against the EVP HMAC above and the reference's own digits. */
struct qm_scorer {
  SHA256_CTX inner, outer; /* secret-derived: cleansed on free */
  char *id_bar;            /* "{provider_id}|", the material's constant head */
  size_t id_bar_len;
  char *expected;
  size_t expected_len;
};

int qm_scorer_new(const uint8_t *secret, size_t secret_len, const char *provider_id,
                  const char *expected_context, struct qm_scorer **out) {
  uint8_t key[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK];
  struct qm_scorer *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  size_t id_len = strlen(provider_id);
  s->id_bar_len = id_len + 1;
  s->expected_len = strlen(expected_context);
  s->id_bar = malloc(s->id_bar_len);
  s->expected = malloc(s->expected_len + 1);
  if (!s->id_bar || !s->expected) {
    qm_scorer_free(s);
    return -ENOMEM;
  }
  memcpy(s->id_bar, provider_id, id_len);
  s->id_bar[id_len] = '|';
  memcpy(s->expected, expected_context, s->expected_len + 1);
  /* A key longer than a block is hashed first; a shorter one is padded with zeros. */
  int ok = 1;
  if (secret_len > sizeof key)
    ok = SHA256(secret, secret_len, key) != NULL;
  else if (secret_len)
    memcpy(key, secret, secret_len);
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = key[i] ^ 0x36;
  ok = ok && SHA256_Init(&s->inner) && SHA256_Update(&s->inner, pad, sizeof pad);
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = key[i] ^ 0x5c;
  ok = ok && SHA256_Init(&s->outer) && SHA256_Update(&s->outer, pad, sizeof pad);
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(pad, sizeof pad);
  if (!ok) {
    qm_scorer_free(s);
    return -EIO;
  }
  *out = s;
  return 0;
}

int qm_scorer_score(struct qm_scorer *s, const char *domain, size_t domain_len,
                    const uint8_t repr[32], const char *context, size_t context_len, double *out) {
  uint8_t d[SHA256_DIGEST_LENGTH];
  char hex[64];
  repr_hex(repr, hex);
  SHA256_CTX c = s->inner;
  int ok = SHA256_Update(&c, s->id_bar, s->id_bar_len) && SHA256_Update(&c, domain, domain_len) &&
           SHA256_Update(&c, "|", 1) && SHA256_Update(&c, hex, sizeof hex) && SHA256_Update(&c, "|", 1) &&
           SHA256_Update(&c, context, context_len) && SHA256_Final(d, &c);
  c = s->outer;
  ok = ok && SHA256_Update(&c, d, sizeof d) && SHA256_Final(d, &c);
  OPENSSL_cleanse(&c, sizeof c);
  if (!ok)
    return -EIO;
  *out = score_of(d, context, context_len, s->expected, s->expected_len);
  return 0;
}

void qm_scorer_free(struct qm_scorer *s) {
  if (!s)
    return;
  OPENSSL_cleanse(&s->inner, sizeof s->inner);
  OPENSSL_cleanse(&s->outer, sizeof s->outer);
  free(s->id_bar);
  free(s->expected);
  free(s);
}

int qm_decision_initiated(double score, double threshold, int byzantine, uint64_t sequence,
                          int64_t byzantine_at) {
  int initiated = score >= threshold;
  if (byzantine && (byzantine_at < 0 || sequence >= (uint64_t)byzantine_at))
    initiated = !initiated;
  return initiated;
}
