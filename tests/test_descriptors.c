/* test_descriptors.c: the descriptor-set index and the reflection answers built on it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descriptors.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "reflection.h"

extern const char qm_descriptor_set[];
extern const size_t qm_descriptor_set_len;

static Grpc__Reflection__V1__ServerReflectionResponse *ask(Grpc__Reflection__V1__ServerReflectionRequest *req) {
  uint8_t buf[512], *out = NULL;
  size_t n = grpc__reflection__v1__server_reflection_request__pack(req, buf), len = 0;
  const char *services[] = {"qmesh.v1.Auditor", "grpc.health.v1.Health"};
  if (qm_reflection_answer(buf, n, services, 2, &out, &len)) return NULL;
  Grpc__Reflection__V1__ServerReflectionResponse *r =
      grpc__reflection__v1__server_reflection_response__unpack(NULL, len, out);
  free(out);
  return r;
}

int main(void) {
  struct qm_descriptors *d = NULL;
  CHECK(qm_descriptors_load((const uint8_t *)qm_descriptor_set, qm_descriptor_set_len, &d) == 0);
  int f = qm_descriptors_find_file(d, "qmesh/v1/qmesh.proto");
  CHECK(f >= 0);
  CHECK_EQ_U(qm_descriptors_find_symbol(d, "qmesh.v1.Auditor"), f);
  CHECK_EQ_U(qm_descriptors_find_symbol(d, ".qmesh.v1.Artifact"), f);
  CHECK_EQ_U(qm_descriptors_find_symbol(d, "qmesh.v1.Auditor.Lookup"), f);
  CHECK_EQ_U(qm_descriptors_find_symbol(d, "qmesh.v1.ReportReply.Result"), f);
  CHECK(qm_descriptors_find_symbol(d, "grpc.health.v1.Health") >= 0);
  CHECK(qm_descriptors_find_symbol(d, "grpc.reflection.v1alpha.ServerReflection") >= 0);
  CHECK(qm_descriptors_find_symbol(d, "qmesh.v1.Nope") == -1);
  CHECK_EQ_U(qm_descriptors_find_symbol(d, "qmesh.v1.Artifact.domain"), f);  /* a field */
  CHECK_EQ_U(qm_descriptors_find_symbol(d, "qmesh.v1.ReportReply.ACCEPTED"), f); /* an enum value */
  CHECK(qm_descriptors_find_file(d, "nope.proto") == -1);
  int closure[8];
  CHECK_EQ_U(qm_descriptors_closure(d, f, closure, 8), 1);
  qm_descriptors_free(d);

  /* Malformed sets are refused, |out| untouched. */
  struct qm_descriptors *untouched = (struct qm_descriptors *)&f;
  const uint8_t bad[] = {0x0a, 0x05, 0x0a, 0x10, 'x'};
  CHECK(qm_descriptors_load(bad, sizeof bad, &untouched) == -EINVAL);
  CHECK(untouched == (struct qm_descriptors *)&f);

  Grpc__Reflection__V1__ServerReflectionRequest req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  req.list_services = "*";
  Grpc__Reflection__V1__ServerReflectionResponse *r = ask(&req);
  CHECK(r && r->message_response_case ==
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
  CHECK(r && r->list_services_response->n_service == 2 &&
        strcmp(r->list_services_response->service[0]->name, "qmesh.v1.Auditor") == 0);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  req.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = "qmesh.v1.Front.Submit";
  r = ask(&req);
  CHECK(r && r->message_response_case ==
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
  CHECK(r && r->file_descriptor_response->n_file_descriptor_proto == 1);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  req.file_containing_symbol = "qmesh.v1.DoesNotExist";
  r = ask(&req);
  CHECK(r && r->message_response_case ==
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
  CHECK(r && r->error_response->error_code == 5 && strstr(r->error_response->error_message, "DoesNotExist"));
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  req.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  req.file_by_filename = "grpc/health/v1/health.proto";
  r = ask(&req);
  CHECK(r && r->message_response_case ==
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  uint8_t *out = NULL;
  size_t len = 0;
  const uint8_t garbage[] = {0xff, 0xff, 0xff};
  CHECK(qm_reflection_answer(garbage, sizeof garbage, NULL, 0, &out, &len) == -EINVAL);
  CHECK(out == NULL);
  return qm_checks_done();
}
