/* fuzz_report.c: libFuzzer harness for the auditor's gate, qm_report_check, on a SignedOutcome.
 * The first input byte is a mode: 0 checks the rest as it is; 1..3 decode the rest as a
 * SignedOutcome and re-sign its outcome bytes with key mode-1 first, so mutated Outcome bytes
 * get past the signature and reach the decode-after-verify path. Other values fold mod 4. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_keys.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "report_check.h"
#include "topology.h"

static struct qm_topology *topo;
static struct qm_key *pub[QM_FUZZ_NKEYS], *priv[QM_FUZZ_NKEYS];
static int verbose; /* QM_FUZZ_VERBOSE=1: print each verdict (to check the seed corpus) */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  struct qm_err err;
  if (qm_topology_load_buffer("<built-in>", qm_default_topology_yaml, qm_default_topology_yaml_len,
                              NULL, &topo, &err) ||
      topo->nproviders != QM_FUZZ_NKEYS || qm_fuzz_keys_load(pub, priv))
    abort();
  for (size_t i = 0; i < QM_FUZZ_NKEYS; i++)
    if (strcmp(topo->providers[i].ep.id, qm_fuzz_key_ids[i]) != 0) abort();
  verbose = getenv("QM_FUZZ_VERBOSE") != NULL;
  return 0;
}

/* resign: the packed SignedOutcome |msg| with a fresh signature by key |k| over its outcome
 * bytes (key_id kept), malloc'd into |*out|; -1 when |msg| is not a SignedOutcome. */
static int resign(const uint8_t *msg, size_t len, int k, uint8_t **out, size_t *out_len) {
  Qmesh__V1__SignedOutcome *so = qmesh__v1__signed_outcome__unpack(NULL, len, msg);
  if (!so) return -1;
  uint8_t sig[QM_SIG_LEN];
  if (qm_sign(priv[k], so->outcome.data, so->outcome.len, sig)) abort();
  /* Swap in the fresh signature (borrowed), pack, then give back the decoded one to free. */
  ProtobufCBinaryData decoded = so->signature;
  so->signature.data = sig;
  so->signature.len = QM_SIG_LEN;
  size_t n = qmesh__v1__signed_outcome__get_packed_size(so);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) abort();
  if (qmesh__v1__signed_outcome__pack(so, buf) != n) abort();
  so->signature = decoded;
  qmesh__v1__signed_outcome__free_unpacked(so, NULL);
  *out = buf;
  *out_len = n;
  return 0;
}

static void check(const uint8_t *msg, size_t len) {
  struct qm_vote vote;
  char why[160];
  memset(&vote, 0xa5, sizeof vote);
  why[0] = '\0';
  enum qm_report_verdict v = qm_report_check(msg, len, topo, pub, NULL, &vote, why, sizeof why);
  if (verbose) fprintf(stderr, "verdict %d: %s\n", (int)v, v == QM_REPORT_OK ? "ok" : why);
  if (v == QM_REPORT_OK) {
    /* An accepted vote names a real provider and carries a terminated domain. */
    if (vote.provider >= topo->nproviders) abort();
    if (!memchr(vote.domain, '\0', sizeof vote.domain)) abort();
  } else {
    if (v > QM_REPORT_SIGNER_MISMATCH) abort();
    if (!memchr(why, '\0', sizeof why) || !why[0]) abort(); /* every refusal says why */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int mode = data[0] % 4;
  if (mode == 0) {
    check(data + 1, size - 1);
    return 0;
  }
  uint8_t *signed_msg = NULL;
  size_t n = 0;
  if (resign(data + 1, size - 1, mode - 1, &signed_msg, &n) == 0) {
    check(signed_msg, n);
    free(signed_msg);
  } else {
    check(data + 1, size - 1);
  }
  return 0;
}
