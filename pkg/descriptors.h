/* descriptors.h: an index over a serialized FileDescriptorSet (files, dependencies, symbols),
 * read straight from the protobuf wire format; the file bytes are served unchanged. */
#ifndef QM_DESCRIPTORS_H
#define QM_DESCRIPTORS_H

#include <stddef.h>
#include <stdint.h>

struct qm_descriptors;

/* qm_descriptors_load: indexes |set| (borrowed: it must outlive the index). Returns 0, or
 * -EINVAL for a malformed set, -ENOMEM; on failure |*out| is untouched. */
int qm_descriptors_load(const uint8_t *set, size_t len, struct qm_descriptors **out);
void qm_descriptors_free(struct qm_descriptors *d);

/* Lookups: the file index, or -1 when absent. Symbols are fully qualified without a leading
 * dot: messages and enums (nested too), services and "Service.Method". */
int qm_descriptors_find_file(const struct qm_descriptors *d, const char *name);
int qm_descriptors_find_symbol(const struct qm_descriptors *d, const char *symbol);

/* qm_descriptors_closure: |file| then its transitive dependencies, each once; returns the
 * count (at most |max| written). */
size_t qm_descriptors_closure(const struct qm_descriptors *d, int file, int *out, size_t max);

/* qm_descriptors_file: the serialized FileDescriptorProto of |file|. */
const uint8_t *qm_descriptors_file(const struct qm_descriptors *d, int file, size_t *len);
const char *qm_descriptors_file_name(const struct qm_descriptors *d, int file);

#endif
