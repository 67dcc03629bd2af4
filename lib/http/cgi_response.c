/* SPDX-License-Identifier: MIT */
/*
 * Translating a CGI response (RFC 3875 section 6) into an HTTP/1.1 response
 * head. The script is trusted less than a server would be: every line is
 * checked, and anything that could split the response or change its
 * framing on the way out is refused (502) or dropped.
 */
#include "http/cgi_response.h"

#include <stdio.h>
#include <string.h>

static int invalid(struct psup_cgi_response *resp, const char *why)
{
    resp->why = why;
    return 502;
}

static bool is_value_byte(unsigned char c)
{
    return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

/* Status: three digits, then SP and a reason phrase, or nothing. */
static int parse_status(struct psup_cgi_response *resp, struct psup_http_span v)
{
    const char *p = v.p;

    if (v.len < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
        p[2] > '9')
        return invalid(resp, "Status is not a code from 200 to 599");
    if (v.len > 3 && p[3] != ' ')
        return invalid(resp, "Status code not followed by a space");
    resp->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    resp->reason = v.len > 4 ? (struct psup_http_span){p + 4, v.len - 4}
                             : (struct psup_http_span){p, 0};
    resp->has_status = true;
    return PSUP_HTTP_DONE;
}

static int once(struct psup_cgi_response *resp, bool *seen, const char *why)
{
    if (*seen)
        return invalid(resp, why);
    *seen = true;
    return PSUP_HTTP_DONE;
}

/* Notes what psup-cgi needs to know about a field; returns whether it is
 * kept among the fields that go out (Status is not). */
static int note_field(struct psup_cgi_response *resp, const struct psup_http_field *f, bool *keep)
{
    *keep = true;
    if (psup_http_span_is(f->name, "status")) {
        *keep = false;
        if (resp->has_status)
            return invalid(resp, "repeated Status");
        return parse_status(resp, f->value);
    }
    if (psup_http_span_is(f->name, "content-type"))
        return once(resp, &resp->has_content_type, "repeated Content-Type");
    if (psup_http_span_is(f->name, "location")) {
        resp->location = f->value;
        return once(resp, &resp->has_location, "repeated Location");
    }
    if (psup_http_span_is(f->name, "content-length"))
        return once(resp, &resp->has_content_length, "repeated Content-Length");
    if (psup_http_span_is(f->name, "date"))
        resp->has_date = true;
    else if (psup_http_span_is(f->name, "server"))
        resp->has_server = true;
    return PSUP_HTTP_DONE;
}

static int parse_line(struct psup_cgi_response *resp, const char *p, const char *end,
                      struct psup_http_field *f)
{
    const char *colon = memchr(p, ':', (size_t)(end - p)), *v, *v_end = end;

    if (*p == ' ' || *p == '\t')
        return invalid(resp, "obsolete line folding in the script's header");
    if (!colon || colon == p)
        return invalid(resp, "script's header line is not Name: value");
    for (const char *c = p; c < colon; c++)
        if (!psup_http_is_tchar((unsigned char)*c))
            return invalid(resp, "script's header field name is not a token");
    for (v = colon + 1; v < end; v++)
        if (!is_value_byte((unsigned char)*v))
            return invalid(resp, "control character in the script's header");
    for (v = colon + 1; v < v_end && (*v == ' ' || *v == '\t'); v++)
        ;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
        v_end--;
    f->name = (struct psup_http_span){p, (size_t)(colon - p)};
    f->value = (struct psup_http_span){v, (size_t)(v_end - v)};
    return PSUP_HTTP_DONE;
}

/* "scheme:" with scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
static bool is_absolute_uri(struct psup_http_span s)
{
    size_t i = 0;

    while (i < s.len && (((s.p[i] | 0x20) >= 'a' && (s.p[i] | 0x20) <= 'z') ||
                         (i > 0 && ((s.p[i] >= '0' && s.p[i] <= '9') || s.p[i] == '+' ||
                                    s.p[i] == '-' || s.p[i] == '.'))))
        i++;
    return i > 0 && i < s.len && s.p[i] == ':';
}

static int classify(struct psup_cgi_response *resp)
{
    if (!resp->has_status && !resp->has_content_type && !resp->has_location)
        return invalid(resp, "no Status, Content-Type or Location in the script's header");
    resp->kind = PSUP_CGI_DOCUMENT;
    if (resp->has_status) {
        if (resp->has_location && resp->location.len == 0)
            return invalid(resp, "empty Location");
        return PSUP_HTTP_DONE;
    }
    if (!resp->has_location) {
        resp->status = 200;
        return PSUP_HTTP_DONE;
    }
    if (resp->location.len > 0 && resp->location.p[0] == '/' &&
        (resp->location.len == 1 || resp->location.p[1] != '/')) {
        resp->kind = PSUP_CGI_LOCAL_REDIRECT;
        resp->status = 200;
    } else if (is_absolute_uri(resp->location)) {
        resp->kind = PSUP_CGI_CLIENT_REDIRECT;
        resp->status = 302;
    } else {
        return invalid(resp, "Location without Status is neither /path nor an absolute URI");
    }
    return PSUP_HTTP_DONE;
}

int psup_cgi_response_parse(const char *buf, size_t len, size_t max_head,
                            struct psup_http_field *fields, size_t max_fields,
                            struct psup_cgi_response *resp)
{
    const char *p = buf, *end = buf + (len < max_head ? len : max_head);

    memset(resp, 0, sizeof *resp);
    resp->fields = fields;
    for (;;) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = lf && lf > p && lf[-1] == '\r' ? lf - 1 : lf;
        bool keep;
        int rc;

        if (!lf)
            return len >= max_head ? invalid(resp, "script's header larger than the limit")
                                   : PSUP_HTTP_MORE;
        if (memchr(p, '\r', (size_t)(line_end - p)))
            return invalid(resp, "bare CR in the script's header");
        if (line_end == p) {
            resp->head_len = (size_t)(lf + 1 - buf);
            return classify(resp);
        }
        if (resp->n_fields == max_fields)
            return invalid(resp, "too many fields in the script's header");
        rc = parse_line(resp, p, line_end, &fields[resp->n_fields]);
        if (rc == PSUP_HTTP_DONE)
            rc = note_field(resp, &fields[resp->n_fields], &keep);
        if (rc != PSUP_HTTP_DONE)
            return rc;
        resp->n_fields += keep;
        p = lf + 1;
    }
}

enum psup_cgi_framing psup_cgi_response_framing(const struct psup_cgi_response *resp,
                                                const struct psup_http_request *req)
{
    if (req->head || resp->status == 204 || resp->status == 304)
        return PSUP_CGI_FRAME_NONE;

    /* Chunked where the client speaks it and the script gave no length: a
     * response cut short (a script killed at its timeout) then lacks its
     * last chunk, and the client can tell it from a complete one. */
    if (req->minor == 1 && !resp->has_content_length)
        return PSUP_CGI_FRAME_CHUNKED;
    return PSUP_CGI_FRAME_CLOSE;
}

/* ------------------------------------------------------------------------
 * Writing. */

struct out {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_span(struct out *o, struct psup_http_span s)
{
    put(o, s.p, s.len);
}

static void put_status_line(struct out *o, int status, struct psup_http_span reason)
{
    char code[5] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), ' ', 0};

    puts_(o, "HTTP/1.1 ");
    puts_(o, code);
    if (reason.len)
        put_span(o, reason);
    else
        puts_(o, psup_http_reason(status));
    puts_(o, "\r\n");
}

static void put_field(struct out *o, const char *name, const char *value)
{
    puts_(o, name);
    puts_(o, ": ");
    puts_(o, value);
    puts_(o, "\r\n");
}

/* Fields that describe this connection, not the document: psup-cgi frames
 * the body and closes the connection itself. */
static bool hop_by_hop(struct psup_http_span name)
{
    static const char *const names[] = {
        "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
        "proxy-connection", NULL,
    };

    for (const char *const *n = names; *n; n++)
        if (psup_http_span_is(name, *n))
            return true;
    return false;
}

static size_t finish(struct out *o)
{
    return o->overflow ? 0 : o->len;
}

size_t psup_cgi_response_head(const struct psup_cgi_response *resp, enum psup_cgi_framing framing,
                              const char *date, const char *server, char *out, size_t cap)
{
    struct out o = {out, 0, cap, false};

    put_status_line(&o, resp->status, resp->reason);
    if (!resp->has_date)
        put_field(&o, "Date", date);
    if (!resp->has_server)
        put_field(&o, "Server", server);
    for (size_t i = 0; i < resp->n_fields; i++) {
        const struct psup_http_field *f = &resp->fields[i];
        if (hop_by_hop(f->name))
            continue;
        put_span(&o, f->name);
        puts_(&o, ": ");
        put_span(&o, f->value);
        puts_(&o, "\r\n");
    }
    if (framing == PSUP_CGI_FRAME_CHUNKED)
        puts_(&o, "Transfer-Encoding: chunked\r\n");
    puts_(&o, "Connection: close\r\n\r\n");
    return finish(&o);
}

size_t psup_cgi_error_response(int status, bool head, const char *date, const char *server,
                               char *out, size_t cap)
{
    struct out o = {out, 0, cap, false};
    char body[64], length[24];
    int n = snprintf(body, sizeof body, "%d %s\n", status, psup_http_reason(status));

    if (n < 0 || (size_t)n >= sizeof body)
        return 0;
    snprintf(length, sizeof length, "%d", n);
    put_status_line(&o, status, (struct psup_http_span){"", 0});
    put_field(&o, "Date", date);
    put_field(&o, "Server", server);
    put_field(&o, "Content-Type", "text/plain; charset=utf-8");
    put_field(&o, "Content-Length", length);
    put_field(&o, "Connection", "close");
    puts_(&o, "\r\n");
    if (!head)
        put(&o, body, (size_t)n);
    return finish(&o);
}

/* Days since 1970-01-01 to a civil date (the proleptic Gregorian
 * calendar), so no gmtime and no locale are involved. */
static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static char *two_digits(char *p, int v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

void psup_cgi_format_date(long long t, char *out)
{
    static const char days[] = "ThuFriSatSunMonTueWed";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    long long day = (t >= 0 ? t : t - 86399) / 86400, secs = t - day * 86400;
    int wd = (int)(((day % 7) + 7) % 7), y, m, d;
    char *p = out;

    civil_from_days(day, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999; /* the format has four digits */
    memcpy(p, days + wd * 3, 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = two_digits(p, d);
    *p++ = ' ';
    memcpy(p, months + (m - 1) * 3, 3);
    p += 3;
    *p++ = ' ';
    p = two_digits(two_digits(p, y / 100), y % 100);
    *p++ = ' ';
    p = two_digits(p, (int)(secs / 3600));
    *p++ = ':';
    p = two_digits(p, (int)(secs / 60 % 60));
    *p++ = ':';
    p = two_digits(p, (int)(secs % 60));
    memcpy(p, " GMT", 5);
}
