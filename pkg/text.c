/* text.c: strict number parsing and a bounded text buffer. */
#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qm_parse_u64(const char *s, uint64_t *out) {
  if (!s[0]) return -EINVAL;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -EINVAL;
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return -EINVAL;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

void qm_text_init(struct qm_text *t, size_t max) {
  memset(t, 0, sizeof *t);
  t->max = max;
}

void qm_text_free(struct qm_text *t) {
  free(t->buf);
  memset(t, 0, sizeof *t);
}

static int reserve(struct qm_text *t, size_t extra) {
  if (t->len + extra + 1 > t->max) {
    t->truncated = 1;
    return -1;
  }
  if (t->len + extra + 1 <= t->cap) return 0;
  size_t cap = t->cap ? t->cap : 256;
  while (cap < t->len + extra + 1) cap *= 2;
  if (cap > t->max) cap = t->max;
  char *b = realloc(t->buf, cap);
  if (!b) {
    t->truncated = 1;
    return -1;
  }
  t->buf = b;
  t->cap = cap;
  return 0;
}

void qm_text_printf(struct qm_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || reserve(t, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

void qm_text_json_string(struct qm_text *t, const char *s) {
  qm_text_printf(t, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') qm_text_printf(t, "\\%c", *p);
    else if (*p < 0x20) qm_text_printf(t, "\\u%04x", *p);
    else qm_text_printf(t, "%c", *p);
  }
  qm_text_printf(t, "\"");
}
