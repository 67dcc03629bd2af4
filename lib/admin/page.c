/* SPDX-License-Identifier: MIT */
/*
 * GET /: the status page for people. The page itself is page.html in the
 * tree, compiled in as psup_admin_page_html (embed.cmake).
 */
#include "admin/render.h"

extern const char psup_admin_page_html[];
extern const size_t psup_admin_page_html_len;

void psup_admin_page(const struct psup_admin_state *st, const struct psup_admin_request *req,
                     struct psup_admin_response *resp)
{
    (void)st;
    (void)req;
    resp->content_type = "text/html; charset=utf-8";
    psup_buf_put(&resp->body, psup_admin_page_html, psup_admin_page_html_len);
}
