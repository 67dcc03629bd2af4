/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint's routes (spec/admin.md): which document each method
 * and path get, and who may ask for it. dispatch.c applies them.
 */
#include "admin/admin.h"
#include "admin/render.h"

/* Control routes take POST and set control; a path segment "*" stands for
 * a service's name. Their renderers
 * act on psup through function pointers the supervisor sets in struct
 * psup_admin_state, as it sets the state's other fields. */
static const struct psup_admin_route routes[] = {
    {"/", PSUP_ADMIN_GET, false, psup_admin_page},
    {"/metrics", PSUP_ADMIN_GET, false, psup_admin_metrics},
    {"/livez", PSUP_ADMIN_GET, false, psup_admin_livez},
    {"/readyz", PSUP_ADMIN_GET, false, psup_admin_readyz},
    {"/status", PSUP_ADMIN_GET, false, psup_admin_status},
};

void psup_admin_handle(const struct psup_admin_state *st, const struct psup_admin_request *req,
                       enum psup_admin_kind kind, struct psup_admin_response *resp)
{
    psup_admin_dispatch(routes, sizeof(routes) / sizeof(routes[0]), st, req, kind, resp);
}
