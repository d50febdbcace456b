/* health.h: grpc.health.v1.Health (Check and Watch) for every service of a server. */
#ifndef QM_HEALTH_H
#define QM_HEALTH_H

#include "rpc.h"

struct qm_health;

/* qm_health_mount: registers Check and Watch on |srv| (before start). Serving starts as
 * NOT_SERVING until qm_health_set_serving(h, 1); a drain turns every service NOT_SERVING
 * and ends the Watch streams. Returns 0 or a negative code. */
int qm_health_mount(struct qm_server *srv, struct qm_health **out);
/* qm_health_set_serving: every service of the server (and ""); Watchers hear the change. */
void qm_health_set_serving(struct qm_health *h, int serving);
int qm_health_serving(const struct qm_health *h);
void qm_health_free(struct qm_health *h);

#endif
