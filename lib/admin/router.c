/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint's routes (spec/admin.md): which document each method
 * and path get, and who may ask for it. dispatch.c applies them.
 */
#include "admin/admin.h"
#include "admin/render.h"

/* Control routes take POST and set control. Their renderers act on psup
 * through the functions the supervisor sets in struct psup_admin_state
 * (control), as it sets the state's other fields. */
static const struct psup_admin_route routes[] = {
    {"/", PSUP_ADMIN_GET, false, psup_admin_page},
    {"/metrics", PSUP_ADMIN_GET, false, psup_admin_metrics},
    {"/livez", PSUP_ADMIN_GET, false, psup_admin_livez},
    {"/readyz", PSUP_ADMIN_GET, false, psup_admin_readyz},
    {"/status", PSUP_ADMIN_GET, false, psup_admin_status},
    /* Control (spec/control.md): parameters in the query string. */
    {"/reload", PSUP_ADMIN_POST, true, psup_admin_reload_route},
    {"/pause", PSUP_ADMIN_POST, true, psup_admin_pause_route},
    {"/resume", PSUP_ADMIN_POST, true, psup_admin_resume_route},
    {"/scale", PSUP_ADMIN_POST, true, psup_admin_scale_route},
};

void psup_admin_handle(const struct psup_admin_state *st, const struct psup_admin_request *req,
                       enum psup_admin_kind kind, struct psup_admin_response *resp)
{
    psup_admin_dispatch(routes, sizeof(routes) / sizeof(routes[0]), st, req, kind, resp);
}
