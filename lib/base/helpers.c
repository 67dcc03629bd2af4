/* SPDX-License-Identifier: MIT */
/*
 * Where psup's helper files are (helpers.h). The paths come from the build
 * (lib/prestart/CMakeLists.txt): PSUP_PRESTART_LIBRARY, absolute, if it was
 * set, else PSUP_PRESTART_RELATIVE from the directory of the running psup;
 * psup's tests may name another with PSUP_TEST_PRESTART_LIBRARY.
 */
#include "base/helpers.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PSUP_PRESTART_LIBRARY
#define PSUP_PRESTART_LIBRARY ""
#endif
#ifndef PSUP_PRESTART_RELATIVE
#define PSUP_PRESTART_RELATIVE "../lib/psup/libpsup-prestart.so"
#endif

/* dir/rel, resolved when the file exists (a path for the logs without
 * "..": the loader takes either). NULL if it does not fit. */
static char *join(const char *dir, const char *rel, char *out, size_t size)
{
    char joined[PATH_MAX];
    int n = snprintf(joined, sizeof(joined), "%s/%s", dir, rel);

    if (n < 0 || (size_t)n >= sizeof(joined))
        return NULL;
    if (realpath(joined, out))
        return out;
    if ((size_t)n >= size)
        return NULL;
    memcpy(out, joined, (size_t)n + 1);
    return out;
}

const char *psup_prestart_library(void)
{
    static char path[PATH_MAX];
    static int done;
    char self[PATH_MAX];

    if (done)
        return path[0] ? path : NULL;
    done = 1;
    /* For psup's own tests only (spec/prestart.md): a unit test's binary
     * is not where psup's is. */
    const char *knob = getenv("PSUP_TEST_PRESTART_LIBRARY");
    if (knob && knob[0] == '/') {
        snprintf(path, sizeof(path), "%s", knob);
        return path;
    }
    if (PSUP_PRESTART_LIBRARY[0]) {
        snprintf(path, sizeof(path), "%s", PSUP_PRESTART_LIBRARY);
        return path;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    if (!join(self[0] ? self : "/", PSUP_PRESTART_RELATIVE, path, sizeof(path))) {
        path[0] = '\0';
        return NULL;
    }
    return path;
}
