/* vectors.h: what the stream and decision tests share: the demo topology built by hand and
 * the reading of the reference demo's stream vector (vectors/stream-seed7-n100.tsv), whose
 * rows are index, context, domain, request_repr, three scores and three votes. */
#ifndef QM_VECTORS_H
#define QM_VECTORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stream.h"

#define STREAM_VECTOR "vectors/stream-seed7-n100.tsv"
#define VECTOR_FIELDS 10

/* demo_topology: the default topology's decision-relevant part, filled by hand (no YAML). */
static inline struct qm_topology *demo_topology(void) {
  static const char *ids[] = {"PROVIDER_A", "PROVIDER_B", "PROVIDER_C"};
  static const char *secrets[] = {"A_KEY", "B_KEY", "C_KEY"};
  static const struct qm_domain domains[] = {
      {"payments", 0.55}, {"identity", 0.60}, {"storage", 0.50}};
  struct qm_topology *t = calloc(1, sizeof *t);

  if (!t)
    return NULL;
  snprintf(t->source, sizeof t->source, "%s", "<test>");
  t->nproviders = 3;
  for (size_t i = 0; i < 3; i++) {
    snprintf(t->providers[i].ep.id, sizeof t->providers[i].ep.id, "%s", ids[i]);
    t->providers[i].score_secret_len = strlen(secrets[i]);
    memcpy(t->providers[i].score_secret, secrets[i], t->providers[i].score_secret_len);
  }
  t->ndomains = 3;
  memcpy(t->domains, domains, sizeof domains);
  t->default_threshold = 0.60;
  t->quorum_threshold = 2;
  snprintf(t->expected_context, sizeof t->expected_context, "%s", "CTX_ALPHA");
  t->byzantine_at = -1;
  t->total_requests = 100;
  t->failover_at = -1;
  snprintf(t->random_seed, sizeof t->random_seed, "%s", "7");
  return t;
}

/* demo_stream: the demo topology with |byzantine_provider| configured and |s| started on it
 * (clock seed 0: the topology's seed "7" is used). One check for the allocation, and one
 * more, failed, when qm_stream_init refuses; NULL then, else the topology to free. */
static inline struct qm_topology *demo_stream(struct qm_stream *s,
                                              const char *byzantine_provider) {
  struct qm_topology *t = demo_topology();
  struct qm_err err = {0};

  CHECKF(t != NULL, "calloc");
  if (!t)
    return NULL;
  snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", byzantine_provider);
  if (qm_stream_init(s, t, 0, &err) != 0) {
    CHECKF(0, "qm_stream_init: %s", err.msg);
    free(t);
    return NULL;
  }
  return t;
}

/* split_row: cuts |line| at tabs (and the trailing newline) into at most |max| fields. */
static inline size_t split_row(char *line, char **fields, size_t max) {
  size_t n = 0;
  char *p = line;
  line[strcspn(line, "\r\n")] = '\0';
  while (n < max) {
    fields[n++] = p;
    p = strchr(p, '\t');
    if (!p)
      break;
    *p++ = '\0';
  }
  return n;
}

/* struct vector_reader: a vector file read row by row; |fld| and |index| are the row's. */
struct vector_reader {
  const char *path;
  FILE *f;
  char line[1024], *fld[VECTOR_FIELDS];
  unsigned long long index;
  int rows;
};

/* open_vector: |path| (relative to tests/) for reading; one check that it opened (0), else
 * -1 and nothing to close. */
static inline int open_vector(struct vector_reader *v, const char *path) {
  memset(v, 0, sizeof *v);
  v->path = path;
  v->f = fopen(path, "r");
  CHECKF(v->f != NULL, "cannot open %s", path);
  return v->f ? 0 : -1;
}

/* next_vector_row: reads up to the next data row (comments and the header skipped) and cuts
 * it into |v->fld|; a row without VECTOR_FIELDS fields fails a check and is skipped. One
 * check that the row's index is a number; 1 with the row counted, or 0 at the end. */
static inline int next_vector_row(struct vector_reader *v) {
  while (fgets(v->line, sizeof v->line, v->f)) {
    char *end;

    if (v->line[0] == '#' || strncmp(v->line, "index\t", 6) == 0)
      continue;
    if (split_row(v->line, v->fld, VECTOR_FIELDS) != VECTOR_FIELDS) {
      CHECKF(0, "malformed vector row: %s", v->line);
      continue;
    }
    v->index = strtoull(v->fld[0], &end, 10);
    CHECKF(*end == '\0', "bad index \"%s\"", v->fld[0]);
    v->rows++;
    return 1;
  }
  return 0;
}

/* close_vector: one check that |want_rows| rows were read; closes the file. */
static inline void close_vector(struct vector_reader *v, int want_rows) {
  CHECKF(v->rows == want_rows, "%s: %d rows, want %d", v->path, v->rows, want_rows);
  fclose(v->f);
  v->f = NULL;
}

#endif
