/* descriptors.c: FileDescriptorSet indexing by walking the protobuf wire format. */
#include "descriptors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QM_DESC_FILES_MAX 64
#define QM_DESC_DEPS_MAX 32
#define QM_DESC_SYMBOLS_MAX 4096
#define QM_DESC_NAME_MAX 256
#define QM_DESC_NEST_MAX 16

struct wire {
  const uint8_t *p, *end;
};

struct field {
  uint32_t number;
  int type;
  uint64_t varint;
  const uint8_t *data;
  size_t len;
};

static int read_varint(struct wire *w, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (w->p >= w->end) return -EINVAL;
    uint8_t b = *w->p++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -EINVAL;
}

/* next_field: 1 with |f| filled, 0 at the end, -EINVAL when malformed. */
static int next_field(struct wire *w, struct field *f) {
  if (w->p >= w->end) return 0;
  uint64_t key;
  if (read_varint(w, &key)) return -EINVAL;
  f->number = (uint32_t)(key >> 3);
  f->type = (int)(key & 7);
  f->data = NULL;
  f->len = 0;
  switch (f->type) {
    case 0:
      return read_varint(w, &f->varint) ? -EINVAL : 1;
    case 1:
      if (w->end - w->p < 8) return -EINVAL;
      w->p += 8;
      return 1;
    case 5:
      if (w->end - w->p < 4) return -EINVAL;
      w->p += 4;
      return 1;
    case 2: {
      uint64_t n;
      if (read_varint(w, &n) || n > (uint64_t)(w->end - w->p)) return -EINVAL;
      f->data = w->p;
      f->len = (size_t)n;
      w->p += n;
      return 1;
    }
    default:
      return -EINVAL;
  }
}

struct qm_desc_file {
  char name[QM_DESC_NAME_MAX];
  const uint8_t *data;
  size_t len;
  char deps[QM_DESC_DEPS_MAX][QM_DESC_NAME_MAX];
  size_t ndeps;
};

struct qm_desc_symbol {
  char name[QM_DESC_NAME_MAX];
  int file;
};

struct qm_descriptors {
  struct qm_desc_file files[QM_DESC_FILES_MAX];
  size_t nfiles;
  struct qm_desc_symbol symbols[QM_DESC_SYMBOLS_MAX];
  size_t nsymbols;
};

static int copy_name(char *dst, const uint8_t *src, size_t len) {
  if (len >= QM_DESC_NAME_MAX) return -EINVAL;
  memcpy(dst, src, len);
  dst[len] = '\0';
  return 0;
}

static int add_symbol(struct qm_descriptors *d, int file, const char *scope, const uint8_t *name,
                      size_t len, char *full) {
  size_t slen = strlen(scope);
  if (slen + 1 + len >= QM_DESC_NAME_MAX || d->nsymbols == QM_DESC_SYMBOLS_MAX) return -EINVAL;
  size_t n = 0;
  if (slen) {
    memcpy(full, scope, slen);
    full[slen] = '.';
    n = slen + 1;
  }
  memcpy(full + n, name, len);
  full[n + len] = '\0';
  struct qm_desc_symbol *s = &d->symbols[d->nsymbols++];
  memcpy(s->name, full, n + len + 1);
  s->file = file;
  return 0;
}

/* The name (field 1) of a DescriptorProto, EnumDescriptorProto or ServiceDescriptorProto. */
static int name_of(const uint8_t *data, size_t len, const uint8_t **name, size_t *nlen) {
  struct wire w = {data, data + len};
  struct field f;
  int rc;
  while ((rc = next_field(&w, &f)) == 1)
    if (f.number == 1 && f.type == 2) {
      *name = f.data;
      *nlen = f.len;
      return 0;
    }
  return rc < 0 ? rc : -EINVAL;
}

/* index_named: a named descriptor (name 1) and its named children (field 2): an enum and its
 * values, which live in the scope around the enum as in C++ (|children_inside| 0), or a
 * service and its methods, "Service.Method" (|children_inside| 1). */
static int index_named(struct qm_descriptors *d, int file, const char *scope, const uint8_t *data, size_t len,
                       int children_inside) {
  const uint8_t *name;
  size_t nlen;
  char full[QM_DESC_NAME_MAX], child[QM_DESC_NAME_MAX];
  if (name_of(data, len, &name, &nlen) || add_symbol(d, file, scope, name, nlen, full)) return -EINVAL;
  struct wire w = {data, data + len};
  struct field f;
  int rc;
  while ((rc = next_field(&w, &f)) == 1)
    if (f.number == 2 && f.type == 2 &&
        (name_of(f.data, f.len, &name, &nlen) ||
         add_symbol(d, file, children_inside ? full : scope, name, nlen, child)))
      return -EINVAL;
  return rc;
}

/* index_message: DescriptorProto: name 1, field 2, nested_type 3, enum_type 4, oneof 8. */
static int index_message(struct qm_descriptors *d, int file, const char *scope, const uint8_t *data,
                         size_t len, int depth) {
  const uint8_t *name;
  size_t nlen;
  char full[QM_DESC_NAME_MAX];
  if (depth > QM_DESC_NEST_MAX || name_of(data, len, &name, &nlen) ||
      add_symbol(d, file, scope, name, nlen, full))
    return -EINVAL;
  struct wire w = {data, data + len};
  struct field f;
  int rc;
  while ((rc = next_field(&w, &f)) == 1) {
    if (f.type != 2) continue;
    if (f.number == 3 && index_message(d, file, full, f.data, f.len, depth + 1)) return -EINVAL;
    if (f.number == 4 && index_named(d, file, full, f.data, f.len, 0)) return -EINVAL;
    if (f.number == 2 || f.number == 8) { /* fields and oneofs: "pkg.Message.field" */
      char m[QM_DESC_NAME_MAX];
      if (name_of(f.data, f.len, &name, &nlen) || add_symbol(d, file, full, name, nlen, m)) return -EINVAL;
    }
  }
  return rc;
}

/* index_file: FileDescriptorProto: name 1, package 2, dependency 3, message_type 4,
 * enum_type 5, service 6. */
static int index_file(struct qm_descriptors *d, const uint8_t *data, size_t len) {
  if (d->nfiles == QM_DESC_FILES_MAX) return -EINVAL;
  int idx = (int)d->nfiles;
  struct qm_desc_file *file = &d->files[idx];
  file->data = data;
  file->len = len;
  char package[QM_DESC_NAME_MAX] = "";
  struct wire w = {data, data + len};
  struct field f;
  int rc;
  /* First pass: name, package and dependencies (the package scopes every symbol). */
  while ((rc = next_field(&w, &f)) == 1) {
    if (f.type != 2) continue;
    if (f.number == 1 && copy_name(file->name, f.data, f.len)) return -EINVAL;
    if (f.number == 2 && copy_name(package, f.data, f.len)) return -EINVAL;
    if (f.number == 3) {
      if (file->ndeps == QM_DESC_DEPS_MAX || copy_name(file->deps[file->ndeps], f.data, f.len))
        return -EINVAL;
      file->ndeps++;
    }
  }
  if (rc < 0 || !file->name[0]) return -EINVAL;
  w.p = data;
  while ((rc = next_field(&w, &f)) == 1) {
    if (f.type != 2) continue;
    const uint8_t *name;
    size_t nlen;
    char full[QM_DESC_NAME_MAX];
    if (f.number == 4 && index_message(d, idx, package, f.data, f.len, 0)) return -EINVAL;
    (void)name;
    (void)nlen;
    (void)full;
    if (f.number == 5 && index_named(d, idx, package, f.data, f.len, 0)) return -EINVAL;
    if (f.number == 6 && index_named(d, idx, package, f.data, f.len, 1)) return -EINVAL;
  }
  if (rc < 0) return rc;
  d->nfiles++;
  return 0;
}

int qm_descriptors_load(const uint8_t *set, size_t len, struct qm_descriptors **out) {
  struct qm_descriptors *d = calloc(1, sizeof *d);
  if (!d) return -ENOMEM;
  struct wire w = {set, set + len};
  struct field f;
  int rc;
  while ((rc = next_field(&w, &f)) == 1) {
    if (f.number != 1 || f.type != 2) continue;
    if (index_file(d, f.data, f.len)) {
      rc = -EINVAL;
      break;
    }
  }
  if (rc < 0) {
    free(d);
    return -EINVAL;
  }
  *out = d;
  return 0;
}

void qm_descriptors_free(struct qm_descriptors *d) { free(d); }

int qm_descriptors_find_file(const struct qm_descriptors *d, const char *name) {
  for (size_t i = 0; i < d->nfiles; i++)
    if (strcmp(d->files[i].name, name) == 0) return (int)i;
  return -1;
}

int qm_descriptors_find_symbol(const struct qm_descriptors *d, const char *symbol) {
  if (symbol[0] == '.') symbol++;
  for (size_t i = 0; i < d->nsymbols; i++)
    if (strcmp(d->symbols[i].name, symbol) == 0) return d->symbols[i].file;
  return -1;
}

size_t qm_descriptors_closure(const struct qm_descriptors *d, int file, int *out, size_t max) {
  int seen[QM_DESC_FILES_MAX] = {0};
  int queue[QM_DESC_FILES_MAX];
  size_t head = 0, tail = 0, n = 0;
  if (file < 0 || (size_t)file >= d->nfiles) return 0;
  queue[tail++] = file;
  seen[file] = 1;
  while (head < tail) {
    int f = queue[head++];
    if (n < max) out[n] = f;
    n++;
    for (size_t i = 0; i < d->files[f].ndeps; i++) {
      int dep = qm_descriptors_find_file(d, d->files[f].deps[i]);
      if (dep >= 0 && !seen[dep] && tail < QM_DESC_FILES_MAX) {
        seen[dep] = 1;
        queue[tail++] = dep;
      }
    }
  }
  return n < max ? n : max;
}

const uint8_t *qm_descriptors_file(const struct qm_descriptors *d, int file, size_t *len) {
  *len = d->files[file].len;
  return d->files[file].data;
}

const char *qm_descriptors_file_name(const struct qm_descriptors *d, int file) {
  return d->files[file].name;
}
