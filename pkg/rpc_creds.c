/* rpc_creds.c: the credentials every server and channel of the process uses: insecure by
 * default; mutual TLS once qm_rpc_tls_configure was called. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "rpc_internal.h"

struct tls_config {
  char *ca, *cert, *key; /* PEM text */
  int enabled;
};

static struct tls_config tls;

static char *slurp(const char *path, struct qm_err *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    qm_err_set(err, -errno, "%s: %m", path);
    return NULL;
  }
  char *buf = malloc(1 << 16);
  size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
  int big = !feof(f);
  fclose(f);
  if (!buf || big || n == 0) {
    free(buf);
    qm_err_set(err, -EINVAL, "%s: empty, unreadable or larger than 64 KiB", path);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

int qm_rpc_tls_configure(const char *ca, const char *cert, const char *key, struct qm_err *err) {
  char *c = slurp(ca, err), *crt = c ? slurp(cert, err) : NULL, *k = crt ? slurp(key, err) : NULL;
  if (!k) {
    free(c);
    free(crt);
    return err ? err->code : -EINVAL;
  }
  tls.ca = c;
  tls.cert = crt;
  tls.key = k;
  tls.enabled = 1;
  return 0;
}

int qm_rpc_tls_enabled(void) { return tls.enabled; }

grpc_channel_credentials *qm__channel_credentials(void) {
  if (!tls.enabled) return grpc_insecure_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {tls.key, tls.cert};
  return grpc_ssl_credentials_create_ex(tls.ca, &pair, NULL, NULL);
}

grpc_channel *qm__channel_create(const char *target, const char *server_id) {
  grpc_channel_credentials *creds = qm__channel_credentials();
  grpc_channel_args *base = qm__channel_args(0);
  grpc_arg args[16];
  grpc_channel_args with = {0, args};
  for (size_t i = 0; i < base->num_args && i < 15; i++) args[with.num_args++] = base->args[i];
  if (tls.enabled && server_id) {
    args[with.num_args].type = GRPC_ARG_STRING;
    args[with.num_args].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[with.num_args].value.string = (char *)server_id;
    with.num_args++;
  }
  grpc_channel *ch = grpc_channel_create(target, creds, &with);
  grpc_channel_credentials_release(creds);
  return ch;
}

grpc_server_credentials *qm__server_credentials(void) {
  if (!tls.enabled) return grpc_insecure_server_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {tls.key, tls.cert};
  return grpc_ssl_server_credentials_create_ex(tls.ca, &pair, 1,
                                               GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
}
