/* reflection.c: ServerReflectionInfo (v1 and v1alpha are identical on the wire). */
#include "reflection.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptors.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

extern const char qm_descriptor_set[];
extern const size_t qm_descriptor_set_len;

#define QM_REFL_SERVICES_MAX 32
#define QM_REFL_FILES_MAX 64

struct qm_reflection {
  struct qm_server *srv;
};

static struct qm_descriptors *index_once;
static pthread_once_t index_once_flag = PTHREAD_ONCE_INIT;

static void load_index(void) {
  if (qm_descriptors_load((const uint8_t *)qm_descriptor_set, qm_descriptor_set_len, &index_once))
    index_once = NULL;
}

static int pack_response(Grpc__Reflection__V1__ServerReflectionResponse *resp, uint8_t **out,
                         size_t *out_len) {
  size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(resp);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return -ENOMEM;
  grpc__reflection__v1__server_reflection_response__pack(resp, buf);
  *out = buf;
  *out_len = n;
  return 0;
}

/* echo_of: the request as understood, for original_request: its known fields only
 * (borrowed from |in|). libprotobuf-c keeps unknown fields and accepts field number 0 when
 * its tag is a padded varint ("80 00"), then packs it as "00", which no decoder accepts:
 * echoing |in| itself made a reply that no client could read. */
static void echo_of(const Grpc__Reflection__V1__ServerReflectionRequest *in,
                    Grpc__Reflection__V1__ServerReflectionRequest *echo,
                    Grpc__Reflection__V1__ExtensionRequest *ext) {
  grpc__reflection__v1__server_reflection_request__init(echo);
  echo->host = in->host;
  echo->message_request_case = in->message_request_case;
  switch (in->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
      echo->file_by_filename = in->file_by_filename;
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
      echo->file_containing_symbol = in->file_containing_symbol;
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
      grpc__reflection__v1__extension_request__init(ext);
      ext->containing_type = in->file_containing_extension->containing_type;
      ext->extension_number = in->file_containing_extension->extension_number;
      echo->file_containing_extension = ext;
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
      echo->all_extension_numbers_of_type = in->all_extension_numbers_of_type;
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
      echo->list_services = in->list_services;
      break;
    default:
      echo->message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET;
      break;
  }
}

int qm_reflection_answer(const uint8_t *req, size_t len, const char *const *services,
                         size_t nservices, uint8_t **out, size_t *out_len) {
  pthread_once(&index_once_flag, load_index);
  Grpc__Reflection__V1__ServerReflectionRequest *in =
      grpc__reflection__v1__server_reflection_request__unpack(NULL, len, req);
  if (!in) return -EINVAL;
  Grpc__Reflection__V1__ServerReflectionResponse resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  Grpc__Reflection__V1__FileDescriptorResponse files = GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
  Grpc__Reflection__V1__ListServiceResponse list = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
  Grpc__Reflection__V1__ErrorResponse error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
  Grpc__Reflection__V1__ExtensionNumberResponse ext = GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
  Grpc__Reflection__V1__ServiceResponse svc[QM_REFL_SERVICES_MAX];
  Grpc__Reflection__V1__ServiceResponse *svcp[QM_REFL_SERVICES_MAX];
  ProtobufCBinaryData blobs[QM_REFL_FILES_MAX];
  Grpc__Reflection__V1__ServerReflectionRequest echo;
  Grpc__Reflection__V1__ExtensionRequest echo_ext;
  char message[300];
  echo_of(in, &echo, &echo_ext);
  resp.valid_host = in->host;
  resp.original_request = &echo;

  int file = -1;
  const char *what = NULL;
  switch (in->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
      if (nservices > QM_REFL_SERVICES_MAX) nservices = QM_REFL_SERVICES_MAX;
      for (size_t i = 0; i < nservices; i++) {
        grpc__reflection__v1__service_response__init(&svc[i]);
        svc[i].name = (char *)services[i];
        svcp[i] = &svc[i];
      }
      list.n_service = nservices;
      list.service = svcp;
      resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
      resp.list_services_response = &list;
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
      what = in->file_by_filename;
      file = index_once ? qm_descriptors_find_file(index_once, what) : -1;
      goto files;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
      what = in->file_containing_symbol;
      file = index_once ? qm_descriptors_find_symbol(index_once, what) : -1;
    files:
      if (file < 0) {
        error.error_code = QM_STATUS_NOT_FOUND;
        snprintf(message, sizeof message, "%s not found: %.200s",
                 in->message_request_case == GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME
                     ? "file" : "symbol",
                 what);
        error.error_message = message;
        resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &error;
        break;
      } else {
        int closure[QM_REFL_FILES_MAX];
        size_t n = qm_descriptors_closure(index_once, file, closure, QM_REFL_FILES_MAX);
        for (size_t i = 0; i < n; i++) blobs[i].data = (uint8_t *)qm_descriptors_file(index_once, closure[i], &blobs[i].len);
        files.n_file_descriptor_proto = n;
        files.file_descriptor_proto = blobs;
        resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &files;
      }
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
      /* A known type has no extensions (proto3): an empty list, as the C++ and Go servers say. */
      if (index_once && qm_descriptors_find_symbol(index_once, in->all_extension_numbers_of_type) >= 0) {
        ext.base_type_name = in->all_extension_numbers_of_type;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
        resp.all_extension_numbers_response = &ext;
        break;
      }
      __attribute__((fallthrough)); /* an unknown type */
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
      /* proto3 files declare no extensions: nothing to find. */
      error.error_code = QM_STATUS_NOT_FOUND;
      error.error_message = "no extensions are declared by these services";
      resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
      resp.error_response = &error;
      break;
    default:
      error.error_code = QM_STATUS_INVALID_ARGUMENT;
      error.error_message = "empty ServerReflectionRequest: set one of its message_request fields";
      resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
      resp.error_response = &error;
      break;
  }
  int rc = pack_response(&resp, out, out_len);
  grpc__reflection__v1__server_reflection_request__free_unpacked(in, NULL);
  return rc;
}

static void on_message(void *ctx, struct qm_call *call, const uint8_t *msg, size_t len) {
  struct qm_reflection *r = ctx;
  if (!msg) {
    qm_call_finish(call, QM_STATUS_OK, NULL);
    return;
  }
  const char *names[QM_REFL_SERVICES_MAX];
  size_t n = qm_server_services(r->srv, names, QM_REFL_SERVICES_MAX);
  if (n > QM_REFL_SERVICES_MAX) n = QM_REFL_SERVICES_MAX;
  uint8_t *out = NULL;
  size_t out_len = 0;
  int rc = qm_reflection_answer(msg, len, names, n, &out, &out_len);
  if (rc == -EINVAL) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed ServerReflectionRequest");
    return;
  }
  if (rc) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (qm_call_send(call, out, out_len) == -ENOBUFS)
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "reflection replies not being read");
  free(out);
}

int qm_reflection_mount(struct qm_server *srv, struct qm_reflection **out) {
  struct qm_reflection *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->srv = srv;
  struct qm_method_spec v1 = {.path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                              .stream = on_message, .ctx = r};
  struct qm_method_spec v1alpha = {
      .path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      .stream = on_message, .ctx = r};
  int rc = qm_server_add_method(srv, &v1);
  if (!rc) rc = qm_server_add_method(srv, &v1alpha);
  if (rc) {
    free(r);
    return rc;
  }
  *out = r;
  return 0;
}

void qm_reflection_free(struct qm_reflection *r) { free(r); }
