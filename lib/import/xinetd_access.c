/* SPDX-License-Identifier: MIT */
/*
 * only_from and no_access as xinetd reads them (src/addr.c, src/parsers.c),
 * turned into the CIDRs of psup's allow and deny. xinetd tries, in order:
 *
 * - a numeric address (inet_aton's forms for IPv4): trailing zero bytes
 *   are wildcards, so 10.1.0.0 is 10.1.0.0/16 and 0.0.0.0 every IPv4
 *   client; an IPv6 address is matched exactly;
 * - a host name or ".domain", matched by reverse DNS: psup resolves no
 *   names, so these cannot be imported;
 * - ADDRESS/BITS, host bits ignored (psup wants them zero: they are
 *   cleared); xinetd takes an IPv6 /128 for a host name that never
 *   matches, so it is left out;
 * - a factorized address, 128.138.{200,201}: one prefix per element, as
 *   long as the part before the braces;
 * - a network name from /etc/networks: a name, as above.
 *
 * A value xinetd cannot read as any of them is logged and dropped by
 * xinetd, and reported here. A comma outside braces, or a broken
 * factorized address, makes xinetd disable the service.
 */
#include "import/xinetd_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void psup_import_xinetd_access_free(struct xinetd_access *a)
{
    for (size_t i = 0; i < a->count; i++)
        free(a->items[i].text);
    free(a->items);
    memset(a, 0, sizeof(*a));
}

static int push_item(struct xinetd_access *a, char *text, bool imported, const char *why,
                     const struct psup_import_where *where)
{
    if (!text)
        return -ENOMEM;
    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        struct xinetd_access_item *v = realloc(a->items, cap * sizeof(*v));
        if (!v) {
            free(text);
            return -ENOMEM;
        }
        a->items = v;
        a->cap = cap;
    }
    a->items[a->count++] = (struct xinetd_access_item){
        .text = text, .imported = imported, .why = why, .where = *where};
    return 0;
}

int psup_import_xinetd_access_copy(struct xinetd_access *to, const struct xinetd_access *from)
{
    psup_import_xinetd_access_free(to);
    to->present = from->present;
    for (size_t i = 0; i < from->count; i++) {
        const struct xinetd_access_item *it = &from->items[i];
        int rc = push_item(to, strdup(it->text), it->imported, it->why, &it->where);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Forms. */

/* "A.B.C.D/N" with the bits after N cleared; "/32" left out. */
static char *ipv4_cidr(uint32_t addr, unsigned bits)
{
    uint32_t mask = bits ? ~0u << (32 - bits) : 0;
    struct in_addr in = {.s_addr = htonl(addr & mask)};
    char text[INET_ADDRSTRLEN];
    char *out = NULL;

    inet_ntop(AF_INET, &in, text, sizeof(text));
    int n = bits == 32 ? asprintf(&out, "%s", text) : asprintf(&out, "%s/%u", text, bits);
    return n < 0 ? NULL : out;
}

static char *ipv6_cidr(struct in6_addr addr, unsigned bits)
{
    char text[INET6_ADDRSTRLEN];
    char *out = NULL;

    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        addr.s6_addr[i] &= (uint8_t)(0xff00 >> keep);
    }
    inet_ntop(AF_INET6, &addr, text, sizeof(text));
    int n = bits == 128 ? asprintf(&out, "%s", text) : asprintf(&out, "%s/%u", text, bits);
    return n < 0 ? NULL : out;
}

/* A numeric IPv4 address: its trailing zero bytes are wildcards. */
static char *numeric_ipv4(struct in_addr in)
{
    uint32_t addr = ntohl(in.s_addr);
    unsigned bits = 32;

    if (addr == 0)
        return ipv4_cidr(0, 0);
    while ((addr & 0xff) == 0) {
        addr >>= 8;
        bits -= 8;
    }
    return ipv4_cidr(ntohl(in.s_addr), bits);
}

/* ADDRESS/BITS: 1 if text has that form, 0 if not (try another), -1 with
 * *why if it is one xinetd never matches. */
static int explicit_mask(const char *text, char **out, const char **why)
{
    char addr[46];
    unsigned bits;
    char extra;
    struct in_addr in;
    struct in6_addr in6;

    if (strchr(text, '{') || sscanf(text, "%45[^/]/%u%c", addr, &bits, &extra) != 2)
        return 0;
    if (inet_aton(addr, &in)) {
        /* xinetd's mask loop stops at 32 ones for any larger count. */
        *out = ipv4_cidr(ntohl(in.s_addr), bits > 32 ? 32 : bits);
        return 1;
    }
    if (inet_pton(AF_INET6, addr, &in6) != 1)
        return 0;
    if (bits >= 128) {
        *why = "xinetd takes an IPv6 address with /128 for a host name and never matches it; "
               "write the address without /128";
        return -1;
    }
    *out = ipv6_cidr(in6, bits);
    return 1;
}

/* The digits and dots before '{': the address so far and the shift of the
 * elements, as xinetd's factorized_addr computes them. */
static int factorized_prefix(const char *text, size_t brace, uint32_t *addr, int *shift)
{
    uint32_t num = 0;
    char last = '.';

    *addr = 0;
    *shift = 24;
    for (size_t i = 0; i < brace; i++) {
        if (text[i] >= '0' && text[i] <= '9') {
            num = num * 10 + (uint32_t)(text[i] - '0');
        } else if (text[i] == '.' && last != '.' && *shift > 0 && num <= 255) {
            *addr = *addr * 256 + num;
            num = 0;
            *shift -= 8;
        } else {
            return -1;
        }
        last = text[i];
    }
    if (*addr)
        *addr <<= (*shift + 8);
    return 0;
}

/* 128.138.{200,201}: the elements appended to cidrs. */
static int factorized(const char *text, struct psup_import_strv *cidrs, const char **why)
{
    const char *brace = strchr(text, '{');
    size_t len = strlen(text);
    uint32_t addr;
    int shift;

    if (factorized_prefix(text, (size_t)(brace - text), &addr, &shift) < 0 || text[len - 1] != '}' ||
        text[len - 2] == '{' || text[len - 2] == ',') {
        *why = "xinetd cannot read this factorized address and disables the service";
        return -EINVAL;
    }
    const char *p = brace + 1;
    while (p < text + len - 1) {
        size_t n = strspn(p, "0123456789");
        long num = n && n < 4 ? strtol(p, NULL, 10) : -1;
        if (num < 0 || num > 255 || (p[n] != ',' && p[n] != '}')) {
            *why = "xinetd cannot read this factorized address and disables the service";
            return -EINVAL;
        }
        int rc = psup_import_strv_push_owned(cidrs, ipv4_cidr(addr + ((uint32_t)num << shift),
                                                              (unsigned)(32 - shift)));
        if (rc < 0)
            return rc;
        p += n + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* One value. */

/* inet_aton reads "10.1" as 10.0.0.1, and so does xinetd: worth a word. */
static const char *short_form(const char *value)
{
    int dots = 0;

    for (const char *p = value; *p; p++)
        dots += *p == '.';
    return dots == 3 ? NULL : "xinetd reads an address of fewer than four numbers as inet_aton does";
}

/* Append what value stands for to a, as imported items or as one item
 * that is not. -EINVAL with *why when xinetd disables the service. */
static int add_value(struct xinetd_access *a, const char *value, const struct xinetd_attr *attr,
                     const char **why)
{
    struct in_addr in;
    struct in6_addr in6;
    char *cidr = NULL;
    const char *left_out = NULL;
    const char *note = NULL;

    if (strchr(value, ',') && !strchr(value, '{')) {
        *why = "xinetd refuses an address with a comma (outside braces) and disables the service";
        return -EINVAL;
    }
    if (strchr(value, '{')) {
        struct psup_import_strv cidrs = {0};
        int rc = factorized(value, &cidrs, why);
        for (size_t i = 0; rc == 0 && i < cidrs.count; i++)
            rc = push_item(a, strdup(cidrs.items[i]), true, NULL, &attr->where);
        psup_import_strv_clear(&cidrs);
        free(cidrs.items);
        return rc;
    }
    if (!strchr(value, '/') && strchr(value, ':') && inet_pton(AF_INET6, value, &in6) == 1)
        cidr = ipv6_cidr(in6, 128);
    else if (!strchr(value, '/') && !strchr(value, ':') && inet_aton(value, &in)) {
        cidr = numeric_ipv4(in);
        note = short_form(value);
    }
    else if (strchr(value, '/')) {
        int kind = explicit_mask(value, &cidr, &left_out);
        if (kind == 0)
            left_out = "xinetd cannot read it as an address and leaves it out";
    } else {
        left_out = "a host, domain or network name: xinetd matches it by reverse DNS, psup "
                   "matches addresses only";
    }
    if (left_out)
        return push_item(a, strdup(value), false, left_out, &attr->where);
    return push_item(a, cidr, true, note, &attr->where);
}

static void remove_equal(struct xinetd_access *a, const char *text)
{
    size_t kept = 0;

    for (size_t i = 0; i < a->count; i++) {
        if (strcmp(a->items[i].text, text) == 0)
            free(a->items[i].text);
        else
            a->items[kept++] = a->items[i];
    }
    a->count = kept;
}

int psup_import_xinetd_access_apply(struct xinetd_access *a, const struct xinetd_attr *attr,
                                    bool in_defaults, const char **why)
{
    /* In defaults, "=" adds like "+=" (xinetd's identify_attribute). */
    if (attr->op == XINETD_SET && !in_defaults) {
        psup_import_xinetd_access_free(a);
    }
    a->present = true;
    if (attr->op != XINETD_REMOVE) {
        for (size_t i = 0; i < attr->values.count; i++) {
            int rc = add_value(a, attr->values.items[i], attr, why);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    /* -=: parse the values the same way and drop equal entries. */
    struct xinetd_access gone = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < attr->values.count; i++)
        rc = add_value(&gone, attr->values.items[i], attr, why);
    for (size_t i = 0; rc == 0 && i < gone.count; i++)
        remove_equal(a, gone.items[i].text);
    psup_import_xinetd_access_free(&gone);
    return rc;
}
