/* SPDX-License-Identifier: MIT */
/*
 * Whether psup's prestart library can reach a service's program, decided
 * at load (spec/prestart.md): the dynamic loader loads LD_PRELOAD's
 * libraries only into a dynamically linked program of its own kind, and
 * ignores a path with a slash in secure-execution mode (set-user-ID,
 * set-group-ID, file capabilities). A script is run by its interpreter,
 * which must pass the same checks. What is exec'd in the end, the ELF
 * file, is recorded: a reload compares it, and sees a program replaced on
 * disk as a changed service.
 */
#include "config/internal.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/helpers.h"

#if UINTPTR_MAX == UINT64_MAX
#define ELF_NATIVE_CLASS ELFCLASS64
#define EHDR Elf64_Ehdr
#define PHDR Elf64_Phdr
#else
#define ELF_NATIVE_CLASS ELFCLASS32
#define EHDR Elf32_Ehdr
#define PHDR Elf32_Phdr
#endif

#if defined(__x86_64__)
#define ELF_NATIVE_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define ELF_NATIVE_MACHINE EM_AARCH64
#elif defined(__i386__)
#define ELF_NATIVE_MACHINE EM_386
#elif defined(__arm__)
#define ELF_NATIVE_MACHINE EM_ARM
#elif defined(__riscv)
#define ELF_NATIVE_MACHINE EM_RISCV
#elif defined(__powerpc64__)
#define ELF_NATIVE_MACHINE EM_PPC64
#elif defined(__s390x__)
#define ELF_NATIVE_MACHINE EM_S390
#else
#define ELF_NATIVE_MACHINE EM_NONE /* compared with nothing: see same_machine */
#endif

/* The kernel follows "#!" this deep (binfmt_script inside binfmt_script). */
#define MAX_SCRIPT_DEPTH 4
/* The kernel reads this much of a script's first line (BINPRM_BUF_SIZE). */
#define SHEBANG_MAX 256
#define MAX_PHDRS 512

static void file_id(const struct stat *st, struct psup_file_id *id)
{
    *id = (struct psup_file_id){
        .dev = st->st_dev, .ino = st->st_ino, .size = (unsigned long long)st->st_size,
        .mtime_sec = st->st_mtim.tv_sec, .mtime_nsec = st->st_mtim.tv_nsec,
        .ctime_sec = st->st_ctim.tv_sec, .ctime_nsec = st->st_ctim.tv_nsec};
}

static bool read_at(int fd, void *buf, size_t len, off_t off)
{
    ssize_t n;

    do {
        n = pread(fd, buf, len, off);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len;
}

static bool same_machine(const EHDR *h)
{
    return h->e_ident[EI_CLASS] == ELF_NATIVE_CLASS &&
           (ELF_NATIVE_MACHINE == EM_NONE || h->e_machine == ELF_NATIVE_MACHINE);
}

/* What the program headers of an ELF file say. */
struct elf_facts {
    char interp[PATH_MAX]; /* PT_INTERP, or "" for a static program */
    bool go;               /* a Go program (its build ID note) */
};

/* Whether a PT_NOTE segment holds Go's build ID note (name "Go", type 4):
 * Go takes its environment from the process's start, not from the C
 * library, so it would never see the connection's. */
static bool go_note(int fd, const PHDR *ph)
{
    unsigned char buf[4096];
    size_t len = ph->p_filesz < sizeof(buf) ? ph->p_filesz : sizeof(buf);

    if (!read_at(fd, buf, len, (off_t)ph->p_offset))
        return false;
    for (size_t off = 0; off + 12 <= len;) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, buf + off, 4);
        memcpy(&descsz, buf + off + 4, 4);
        memcpy(&type, buf + off + 8, 4);
        if (namesz > len || descsz > len)
            return false;
        if (type == 4 && namesz == 3 && off + 15 <= len && memcmp(buf + off + 12, "Go", 3) == 0)
            return true;
        off += 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u);
    }
    return false;
}

/* The program headers' interpreter and notes; false with *why set when
 * they cannot be read. */
static bool read_elf(int fd, const EHDR *h, struct elf_facts *f, const char **why)
{
    *why = "its program headers cannot be read";
    f->interp[0] = '\0';
    f->go = false;
    if (h->e_phentsize != sizeof(PHDR) || h->e_phnum == 0 || h->e_phnum > MAX_PHDRS)
        return false;
    for (unsigned i = 0; i < h->e_phnum; i++) {
        PHDR ph;
        if (!read_at(fd, &ph, sizeof(ph), (off_t)(h->e_phoff + i * sizeof(ph))))
            return false;
        if (ph.p_type == PT_NOTE)
            f->go |= go_note(fd, &ph);
        if (ph.p_type != PT_INTERP)
            continue;
        if (ph.p_filesz < 2 || ph.p_filesz > sizeof(f->interp) ||
            !read_at(fd, f->interp, ph.p_filesz, (off_t)ph.p_offset) ||
            f->interp[ph.p_filesz - 1] != '\0') {
            *why = "its program interpreter cannot be read";
            return false;
        }
    }
    return true;
}

/* psup's own dynamic loader, the one its library is built for: the
 * interpreter of the running binary. */
static bool own_loader(struct stat *st)
{
    static int known; /* 0 unknown, 1 found, -1 none */
    static struct stat loader;
    struct elf_facts f;
    const char *why;
    EHDR h;

    if (!known) {
        int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        known = -1;
        if (fd >= 0 && read_at(fd, &h, sizeof(h), 0) && read_elf(fd, &h, &f, &why) &&
            f.interp[0] && stat(f.interp, &loader) == 0)
            known = 1;
        if (fd >= 0)
            close(fd);
    }
    if (known > 0)
        *st = loader;
    return known > 0;
}

struct check {
    struct ctx *c;
    struct psup_file_id *id; /* of the ELF file exec'd in the end */
};

static void check_file(struct check *k, const char *path, int depth);

/* An ELF program: of psup's machine, dynamically linked, for psup's
 * dynamic loader, not Go. */
static void check_elf(struct check *k, const char *path, int fd, const EHDR *h)
{
    struct elf_facts f;
    struct stat theirs, ours;
    const char *why;

    if (!same_machine(h)) {
        cfg_fail(k->c, "%s is built for another machine or word size than psup: "
                 "psup's library cannot be loaded into it", path);
        return;
    }
    if (!read_elf(fd, h, &f, &why)) {
        cfg_fail(k->c, "%s: %s", path, why);
        return;
    }
    if (!f.interp[0]) {
        cfg_fail(k->c, "%s is statically linked: no dynamic loader runs in it to load psup's "
                 "library (LD_PRELOAD)", path);
        return;
    }
    if (!own_loader(&ours) || stat(f.interp, &theirs) < 0 || theirs.st_dev != ours.st_dev ||
        theirs.st_ino != ours.st_ino) {
        cfg_fail(k->c, "%s is run by the dynamic loader %s, not psup's: psup's library "
                 "is built for psup's C library", path, f.interp);
        return;
    }
    if (f.go)
        cfg_fail(k->c, "%s is a Go program: Go reads its environment where the process "
                 "started, not from the C library, and would never see the connection's", path);
}

/* A script: its interpreter, from the first line as the kernel reads it. */
static void check_script(struct check *k, const char *path, const char *head, size_t n,
                         int depth)
{
    const char *p = head + 2, *end = memchr(head, '\n', n);
    char interp[SHEBANG_MAX];
    size_t len = 0;

    if (!end) {
        cfg_fail(k->c, "the first line of %s is longer than the kernel reads (%d "
                 "bytes)", path, SHEBANG_MAX);
        return;
    }
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (p + len < end && p[len] != ' ' && p[len] != '\t' && p[len] != '\r' &&
           len + 1 < sizeof(interp))
        len++;
    memcpy(interp, p, len);
    interp[len] = '\0';
    if (interp[0] != '/') {
        cfg_fail(k->c, "the interpreter of %s, %s, is not an absolute path", path,
                 cfg_quote(k->c, interp));
        return;
    }
    if (depth >= MAX_SCRIPT_DEPTH) {
        cfg_fail(k->c, "%s: interpreters nested more than %d deep", path,
                 MAX_SCRIPT_DEPTH);
        return;
    }
    check_file(k, interp, depth + 1);
}

/* Secure-execution mode: the loader ignores a preload path with a slash. */
static bool secure_exec(struct check *k, const char *path, int fd, const struct stat *st)
{
    const char *what = NULL;

    if (st->st_mode & S_ISUID)
        what = "is set-user-ID";
    else if ((st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        what = "is set-group-ID";
    else if (fgetxattr(fd, "security.capability", NULL, 0) >= 0)
        what = "has file capabilities";
    if (what)
        cfg_fail(k->c, "%s %s: the dynamic loader runs it in secure-execution mode "
                 "and ignores psup's library (LD_PRELOAD)", path, what);
    return what != NULL;
}

static void check_file(struct check *k, const char *path, int depth)
{
    char head[SHEBANG_MAX];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        cfg_fail(k->c, "cannot read %s to check it (%s)", path, strerror(errno));
        return;
    }
    if (fstat(fd, &st) < 0 || secure_exec(k, path, fd, &st))
        goto out;
    do {
        n = pread(fd, head, sizeof(head), 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        check_script(k, path, head, (size_t)n, depth);
    } else if (n >= (ssize_t)sizeof(EHDR) && memcmp(head, ELFMAG, SELFMAG) == 0) {
        file_id(&st, k->id);
        check_elf(k, path, fd, (const EHDR *)(const void *)head);
    } else {
        cfg_fail(k->c, "%s is neither an ELF program nor a script: psup cannot tell "
                 "that its library would be loaded", path);
    }
out:
    close(fd);
}

/* psup's library itself: present, and at a path LD_PRELOAD can hold. */
static void check_library(struct ctx *c)
{
    const char *lib = psup_prestart_library();

    if (!lib)
        cfg_fail(c, "psup cannot find its own binary, and so its library");
    else if (strpbrk(lib, ": "))
        cfg_fail(c, "psup's library is at %s, a path with a colon or a space, which "
                 "LD_PRELOAD cannot hold", lib);
    else if (access(lib, R_OK) < 0)
        cfg_fail(c, "psup's library %s cannot be used (%s)", lib, strerror(errno));
}

void cfg_check_prestart(struct ctx *c, struct psup_service_config *svc)
{
    struct check k = {.c = c, .id = &svc->program_id};

    check_library(c);
    if (svc->program)
        check_file(&k, svc->program, 0);
}
