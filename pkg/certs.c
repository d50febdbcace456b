/* certs.c: X.509 with OpenSSL 3: a CA and instance certificates for mutual TLS. */
#include "certs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, struct qm_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
  if (fd < 0) return qm_err_set(err, -errno, "%s: %m", path);
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    return qm_err_set(err, -errno, "%s: %m", path);
  }
  int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
  if (fclose(f) != 0) ok = 0;
  return ok ? 0 : qm_err_set(err, -EIO, "%s: cannot write", path);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ext) return -1;
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? 0 : -1;
}

/* make_cert: a certificate for |cn| with |key|, signed by |ca_key| as |ca| (self-signed
 * when |ca| is NULL). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, unsigned days) {
  X509 *c = X509_new();
  if (!c) return NULL;
  unsigned char serial[16];
  BIGNUM *bn = NULL;
  int ok = RAND_bytes(serial, sizeof serial) == 1;
  serial[0] &= 0x7f;
  if (ok) bn = BN_bin2bn(serial, sizeof serial, NULL);
  ok = ok && bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) && X509_set_version(c, 2) &&
       X509_gmtime_adj(X509_getm_notBefore(c), -300) &&
       X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400) && X509_set_pubkey(c, key);
  BN_free(bn);
  X509_NAME *name = X509_get_subject_name(c);
  ok = ok && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"qmesh", -1, -1, 0) &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
       X509_set_issuer_name(c, ca ? X509_get_subject_name(ca) : name);
  X509 *issuer = ca ? ca : c;
  if (ok && !ca) {
    ok = !add_ext(c, issuer, NID_basic_constraints, "critical,CA:TRUE") &&
         !add_ext(c, issuer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         !add_ext(c, issuer, NID_subject_key_identifier, "hash");
  } else if (ok) {
    char san[128];
    snprintf(san, sizeof san, "DNS:%s", cn);
    ok = !add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
         !add_ext(c, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
         !add_ext(c, issuer, NID_ext_key_usage, "serverAuth,clientAuth") &&
         !add_ext(c, issuer, NID_subject_alt_name, san);
  }
  ok = ok && X509_sign(c, ca_key ? ca_key : key, EVP_sha256()) > 0;
  if (!ok) {
    X509_free(c);
    return NULL;
  }
  return c;
}

static int load_ca(const char *dir, X509 **ca, EVP_PKEY **key) {
  char path[1024];
  snprintf(path, sizeof path, "%s/ca.crt", dir);
  FILE *f = fopen(path, "r");
  if (!f) return -ENOENT;
  *ca = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  snprintf(path, sizeof path, "%s/ca.key", dir);
  f = fopen(path, "r");
  if (f) {
    *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
  }
  if (*ca && *key) return 0;
  X509_free(*ca);
  EVP_PKEY_free(*key);
  *ca = NULL;
  *key = NULL;
  return -EINVAL;
}

int qm_certs_make(const char *dir, const char *const *ids, size_t n, unsigned days, struct qm_err *err) {
  X509 *ca = NULL;
  EVP_PKEY *ca_key = NULL;
  char path[1024];
  int rc = load_ca(dir, &ca, &ca_key);
  if (rc == -EINVAL) return qm_err_set(err, -EINVAL, "%s/ca.crt or ca.key is unreadable", dir);
  if (rc) {
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ca = ca_key ? make_cert("qmesh CA", ca_key, NULL, NULL, days) : NULL;
    if (!ca) {
      EVP_PKEY_free(ca_key);
      return qm_err_set(err, -EIO, "cannot make the CA");
    }
    snprintf(path, sizeof path, "%s/ca.key", dir);
    rc = write_pem(path, ca_key, NULL, err);
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    if (!rc) rc = write_pem(path, NULL, ca, err);
  }
  for (size_t i = 0; !rc && i < n; i++) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = key ? make_cert(ids[i], key, ca, ca_key, days) : NULL;
    if (!cert) {
      rc = qm_err_set(err, -EIO, "cannot make the certificate of %s", ids[i]);
    } else {
      snprintf(path, sizeof path, "%s/%s.key", dir, ids[i]);
      rc = write_pem(path, key, NULL, err);
      snprintf(path, sizeof path, "%s/%s.crt", dir, ids[i]);
      if (!rc) rc = write_pem(path, NULL, cert, err);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  X509_free(ca);
  EVP_PKEY_free(ca_key);
  return rc;
}
