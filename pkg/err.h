/* err.h: the error carrier every fallible pkg/ function fills with a human message. */
#ifndef QM_ERR_H
#define QM_ERR_H

#include <stddef.h>

#define QM_ERR_MSG_MAX 512

/* The human message names the offending value and, for files, "file:line:column: ". */
struct qm_err {
  int code; /* negative errno-style code, 0 when nothing failed */
  char msg[QM_ERR_MSG_MAX];
};

/* qm_err_set: fills |err| (NULL-safe) with |code| and a printf-style message; returns |code|. */
int qm_err_set(struct qm_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* qm_err_clear: resets |err| (NULL-safe) to "no error". */
void qm_err_clear(struct qm_err *err);

#endif
