/* err.c: filling struct qm_err. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int qm_err_set(struct qm_err *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

void qm_err_clear(struct qm_err *err) {
  if (err) {
    err->code = 0;
    err->msg[0] = '\0';
  }
}
