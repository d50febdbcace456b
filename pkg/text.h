/* text.h: strict number parsing and a bounded growable text buffer (for JSON and reports). */
#ifndef QM_TEXT_H
#define QM_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* qm_parse_u64: the whole of |s| as a decimal uint64 (no sign, no spaces). 0 or -EINVAL. */
int qm_parse_u64(const char *s, uint64_t *out);

struct qm_text {
  char *buf;
  size_t len, cap, max; /* max: hard bound; past it appends are dropped and |truncated| set */
  int truncated;
};

void qm_text_init(struct qm_text *t, size_t max);
void qm_text_free(struct qm_text *t);
void qm_text_printf(struct qm_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* qm_text_json_string: appends |s| as a JSON string literal (quoted, escaped). */
void qm_text_json_string(struct qm_text *t, const char *s);

#endif
