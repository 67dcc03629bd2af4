/* SPDX-License-Identifier: MIT */
/*
 * The names the admin endpoint's documents give to outcomes and reload
 * results: label values of /metrics and keys of /status, so one table.
 */
#include "admin/admin.h"
#include "admin/render.h"

const char *psup_reload_result_name(enum psup_reload_result r)
{
    static const char *const names[] = {
        [PSUP_RELOAD_OK] = "ok", [PSUP_RELOAD_INVALID] = "invalid", [PSUP_RELOAD_FAILED] = "failed"};
    return r < PSUP_RELOAD_RESULTS ? names[r] : "unknown";
}

const char *psup_admin_outcome_name(enum psup_outcome o)
{
    static const char *const names[PSUP_OUTCOMES] = {
        [PSUP_OUTCOME_OK] = "ok",
        [PSUP_OUTCOME_ERROR] = "error",
        [PSUP_OUTCOME_SIGNAL] = "signal",
        [PSUP_OUTCOME_TIMEOUT] = "timeout",
        [PSUP_OUTCOME_EXEC_FAILED] = "exec_failed",
    };
    return o < PSUP_OUTCOMES ? names[o] : "unknown";
}
