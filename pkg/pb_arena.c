/* pb_arena.c: bump allocation for protobuf-c unpacking. */
#include "pb_arena.h"

#include <stdlib.h>

#define QM_PB_ARENA_ALIGN 16 /* max_align_t on x86-64: any protobuf-c struct fits */

static void *arena_alloc(void *data, size_t size) {
  struct qm_pb_arena *a = data;
  size_t need = (size + QM_PB_ARENA_ALIGN - 1) & ~(size_t)(QM_PB_ARENA_ALIGN - 1);
  if (need >= size && need <= a->cap - a->used) {
    void *p = a->buf + a->used;
    a->used += need;
    return p;
  }
  void *p = malloc(size ? size : 1);
  if (p) a->spilled++;
  return p;
}

static void arena_free(void *data, void *p) {
  struct qm_pb_arena *a = data;
  if (!p || ((uint8_t *)p >= a->buf && (uint8_t *)p < a->buf + a->cap)) return;
  a->spilled--;
  free(p);
}

void qm_pb_arena_init(struct qm_pb_arena *a, void *buf, size_t cap) {
  a->alloc.alloc = arena_alloc;
  a->alloc.free = arena_free;
  a->alloc.allocator_data = a;
  /* the buffer's own alignment may be less than QM_PB_ARENA_ALIGN: start at an aligned byte */
  uintptr_t start = ((uintptr_t)buf + QM_PB_ARENA_ALIGN - 1) & ~(uintptr_t)(QM_PB_ARENA_ALIGN - 1);
  size_t skip = (size_t)(start - (uintptr_t)buf);
  a->buf = (uint8_t *)start;
  a->cap = cap > skip ? cap - skip : 0;
  a->used = 0;
  a->spilled = 0;
}

void qm_pb_arena_release(struct qm_pb_arena *a, ProtobufCMessage *msg) {
  if (msg && a->spilled) protobuf_c_message_free_unpacked(msg, &a->alloc);
  a->used = 0;
}
