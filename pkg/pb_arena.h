/* pb_arena.h: a protobuf-c allocator that carves unpacked messages out of one buffer, so
 * decoding a message costs no malloc/free per field. protobuf-c still does the parsing
 * (same acceptance, same values); what does not fit spills to malloc. Single-threaded. */
#ifndef QM_PB_ARENA_H
#define QM_PB_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct qm_pb_arena {
  ProtobufCAllocator alloc; /* pass &arena.alloc to *_unpack and *_free_unpacked */
  uint8_t *buf;
  size_t cap, used;
  size_t spilled; /* live allocations that went to malloc */
};

/* qm_pb_arena_init: |buf| (|cap| bytes, borrowed) backs the allocations. */
void qm_pb_arena_init(struct qm_pb_arena *a, void *buf, size_t cap);
/* qm_pb_arena_release: done with |msg| (NULL-safe): frees only what spilled, then makes the
 * whole buffer available again. */
void qm_pb_arena_release(struct qm_pb_arena *a, ProtobufCMessage *msg);

#endif
