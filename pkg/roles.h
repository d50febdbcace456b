/* roles.h: the four roles' operations for qm_role_main. */
#ifndef QM_ROLES_H
#define QM_ROLES_H

#include "role.h"

extern const struct qm_role_ops qm_front_ops;    /* front.c */
extern const struct qm_role_ops qm_hub_ops;      /* hub.c */
extern const struct qm_role_ops qm_provider_ops; /* provider.c */
extern const struct qm_role_ops qm_auditor_ops;  /* auditor.c */

#define QM_HOP_TIMEOUT_MS 10000 /* one hop's deadline */
#define QM_PAYLOAD_MAX (64 * 1024) /* the reference's MAX_REQUEST_BYTES */

#endif
