/* fuzz_reflection.c: libFuzzer harness for qm_reflection_answer: one ServerReflectionRequest
 * in, and every answer must decode as a ServerReflectionResponse that matches the request. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "reflection.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest Req;
typedef Grpc__Reflection__V1__ServerReflectionResponse Resp;

/* The services a qmesh auditor lists (health and reflection are mounted on every role). */
static const char *const services[] = {
    "qmesh.v1.Auditor", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
};
#define NSERVICES (sizeof services / sizeof services[0])

static void check_answer(const Req *req, const Resp *resp) {
  switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
      if (resp->message_response_case !=
              GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE ||
          resp->list_services_response->n_service != NSERVICES)
        abort();
      for (size_t i = 0; i < NSERVICES; i++)
        if (strcmp(resp->list_services_response->service[i]->name, services[i]) != 0) abort();
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
      if (resp->message_response_case ==
          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE) {
        if (resp->file_descriptor_response->n_file_descriptor_proto == 0) abort();
      } else if (resp->message_response_case !=
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE) {
        abort();
      }
      break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
      /* a known type: its (empty) extension numbers, named; an unknown one: an error */
      if (resp->message_response_case ==
          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE) {
        if (strcmp(resp->all_extension_numbers_response->base_type_name, req->all_extension_numbers_of_type) != 0 ||
            resp->all_extension_numbers_response->n_extension_number != 0)
          abort();
      } else if (resp->message_response_case !=
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE) {
        abort();
      }
      break;
    default:
      if (resp->message_response_case !=
          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE)
        abort();
      break;
  }
  /* The request is echoed back. */
  if (!resp->original_request || resp->original_request->message_request_case != req->message_request_case)
    abort();
  if (strcmp(resp->valid_host, req->host) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *out = NULL;
  size_t out_len = 0;
  int rc = qm_reflection_answer(data, size, services, NSERVICES, &out, &out_len);
  Req *req = grpc__reflection__v1__server_reflection_request__unpack(NULL, size, data);
  if (rc == -EINVAL) {
    if (req || out) abort(); /* refused exactly the requests that do not decode */
    return 0;
  }
  if (rc != 0 || !req || !out) abort();
  Resp *resp = grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
  if (!resp) abort();
  check_answer(req, resp);
  grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
  grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
  free(out);
  return 0;
}
