# SPDX-License-Identifier: MIT
"""The module map of docs/design.md, checked on the built objects: what a
file's folder allows it to call (its undefined symbols resolve only in its
own folder or in folders below it), no call cycle between two files, the
child's code calling nothing of libc but pure functions, and libuv and cJSON
included only where the map says."""

import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Which folders each folder may call into (its own always). The child's
# folders come first: they run in a process that shares the supervisor's
# memory, so they call nothing above them.
ALLOWED = {
    "proto": set(),
    "child": {"proto"},
    "base": {"proto"},
    "policy": {"proto", "base"},
    "net": {"proto", "base"},
    "config": {"proto", "base", "net"},
    "spawn": {"proto", "child"},
    "runtime": {"proto", "base", "policy", "net", "config", "spawn"},
    # Pure HTTP: the relay's and the admin endpoint's request parser.
    "http": set(),
    "admin": {"proto", "base", "policy", "net", "config", "spawn", "runtime", "http"},
    "loop": {"proto", "base", "policy", "net", "config", "spawn", "runtime", "http", "admin"},
    "prestart": {"proto", "child"},
}

# Child code may call these libc functions only: pure functions that touch
# no errno, heap, stdio, locale or lock (the _chk forms come with
# _FORTIFY_SOURCE).
CHILD_FOLDERS = ("proto", "child")
CHILD_LIBC = {"memcpy", "memset", "memmove", "memcmp", "memchr", "strlen",
              "__memcpy_chk", "__memset_chk", "__memmove_chk"}

# The prestart library runs the child's code in a prestarted program, after
# exec, where the C library is the program's own and initialised. Beyond the
# child's pure functions (and strncmp, as pure) it uses, on purpose and
# nowhere else (lib/prestart/preload.c says why each is safe): environ,
# written once at the handoff before main; __cxa_atexit, once at the
# handoff; __libc_single_threaded and fflush at the program's exit.
PRESTART_LIBC = CHILD_LIBC | {"strncmp", "environ", "__cxa_atexit", "__libc_single_threaded",
                              "fflush"}
# What the linker and the C runtime add to any shared object.
LINKER_WEAK = {"_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable", "__cxa_finalize",
               "__gmon_start__", "__environ"}


def object_dir(build, folder):
    """Where CMake puts a folder's objects: lib/prestart has its own
    CMakeLists.txt (a shared library); the others are lib/CMakeLists.txt's."""
    if folder == "prestart":
        return build / "lib" / "prestart" / "CMakeFiles" / "psup_prestart.dir"
    return build / "lib" / "CMakeFiles" / f"psup_{folder}.dir" / folder


@pytest.fixture(scope="module")
def objects(psup_bin):
    """{folder: {source name: (defined symbols, undefined symbols)}}."""
    build = pathlib.Path(psup_bin).resolve().parents[2]
    found = {}
    for folder in ALLOWED:
        objdir = object_dir(build, folder)
        files = sorted(objdir.glob("*.o"))
        assert files, f"no objects for lib/{folder} under {objdir}"
        found[folder] = {f.name[:-4]: (symbols(f, "--defined-only"), symbols(f, "-u"))
                         for f in files}
    return found


def symbols(path, flag):
    out = subprocess.run(["nm", flag, str(path)], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        # Defined: "addr type name"; undefined: "U name". Local symbols
        # (lower-case type) are not callable from other files.
        if flag == "-u" and parts:
            names.add(parts[-1])
        elif len(parts) == 3 and parts[1].isupper():
            names.add(parts[2])
    return names


def owners(objects):
    """{symbol: (folder, file)} for every symbol a lib object defines."""
    where = {}
    for folder, files in objects.items():
        for name, (defined, _) in files.items():
            for sym in defined:
                where[sym] = (folder, name)
    return where


def test_no_folder_calls_up_the_module_map(objects):
    where = owners(objects)
    wrong = []
    for folder, files in objects.items():
        for name, (_, undefined) in files.items():
            for sym in undefined:
                target = where.get(sym)
                if target and target[0] != folder and target[0] not in ALLOWED[folder]:
                    wrong.append(f"lib/{folder}/{name} calls {sym} in lib/{target[0]}")
    assert not wrong, "calls up the module map:\n" + "\n".join(sorted(wrong))


def test_no_two_files_call_each_other(objects):
    where = owners(objects)
    calls = {}
    for folder, files in objects.items():
        for name, (_, undefined) in files.items():
            me = (folder, name)
            calls[me] = {where[s] for s in undefined if s in where and where[s] != me}

    def cycle_from(start):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in calls.get(node, ()):
                if nxt == start:
                    return path + [nxt]
                if nxt not in path:
                    stack.append((nxt, path + [nxt]))
        return None

    for node in calls:
        cycle = cycle_from(node)
        assert not cycle, "call cycle: " + " -> ".join(f"{f}/{n}.c" for f, n in cycle)


def test_child_code_calls_no_libc_with_state(objects):
    where = owners(objects)
    bad = []
    for folder in CHILD_FOLDERS:
        for name, (_, undefined) in objects[folder].items():
            for sym in undefined:
                if sym in CHILD_LIBC:
                    continue
                if sym in where and where[sym][0] in CHILD_FOLDERS:
                    continue
                bad.append(f"lib/{folder}/{name}.c calls {sym}")
    assert not bad, ("child code must call only lib/proto, lib/child and pure libc "
                     "functions (lib/child/README.md):\n" + "\n".join(sorted(bad)))


def test_the_prestart_library_calls_only_what_it_says(objects):
    where = owners(objects)
    bad = []
    for name, (_, undefined) in objects["prestart"].items():
        for sym in undefined - PRESTART_LIBC - {"_GLOBAL_OFFSET_TABLE_"}:
            if not (sym in where and where[sym][0] in CHILD_FOLDERS + ("prestart",)):
                bad.append(f"lib/prestart/{name}.c calls {sym}")
    assert not bad, "\n".join(sorted(bad))


def test_the_prestart_library_exports_only_its_interpositions(psup_bin):
    """A preloaded library's exported symbols interpose the program's: it
    exports _exit and _Exit only, and needs nothing of the C library but
    what the layout allows (no sanitizer runtime)."""
    lib = pathlib.Path(psup_bin).resolve().parents[1] / "lib" / "psup" / "libpsup-prestart.so"
    assert lib.exists(), lib
    exported = {s.split("@")[0] for s in symbols_dynamic(lib, "--defined-only")}
    assert exported == {"_exit", "_Exit"}
    needed = {s.split("@")[0] for s in symbols_dynamic(lib, "-u")}
    assert needed - PRESTART_LIBC - LINKER_WEAK == set()


def symbols_dynamic(path, flag):
    out = subprocess.run(["nm", "-D", flag, str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.split()}


def test_child_code_is_built_without_sanitizers(objects):
    for folder in CHILD_FOLDERS + ("prestart",):
        for name, (_, undefined) in objects[folder].items():
            asan = sorted(s for s in undefined if s.startswith(("__asan", "__ubsan")))
            assert not asan, f"lib/{folder}/{name}.c is instrumented: {asan[:3]}"


def includes(pattern):
    """The lib/ and cmd/ files whose source includes pattern."""
    rx = re.compile(r'^\s*#\s*include\s*[<"]' + pattern, re.M)
    files = list((ROOT / "lib").rglob("*.[ch]")) + list((ROOT / "cmd").rglob("*.[ch]"))
    return sorted(str(f.relative_to(ROOT)) for f in files if rx.search(f.read_text()))


def test_only_the_loop_includes_libuv():
    outside = [f for f in includes(r"uv\.h") if not f.startswith("lib/loop/")]
    assert not outside, f"uv.h outside lib/loop: {outside}"


def test_only_the_configuration_includes_cjson():
    # lib/import and lib/ctl are command-line tools' code (psup import,
    # psup ctl), which never runs in the supervisor.
    outside = [f for f in includes(r"cjson/")
               if not f.startswith(("lib/config/", "lib/import/", "lib/ctl/"))]
    assert not outside, f"cJSON outside lib/config, lib/import and lib/ctl: {outside}"
