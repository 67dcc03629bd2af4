# SPDX-License-Identifier: MIT
"""The documentation checked against the code and the spec: every
configuration key of spec/services.schema.json is described in
docs/psup.json.5 and spec/config.md (and config.md names no key the schema
lacks); every option of `psup --help`, every signal and exit status of
spec/signals.md, every event psup can log and every field it logs appear in
docs/psup.1; the handler's variables of spec/handler.md appear in
docs/psup.json.5; the JSON examples of the docs use only known keys; and the
manual pages format without warnings when groff is installed."""

import json
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAN1 = ROOT / "docs" / "psup.1"
MAN5 = ROOT / "docs" / "psup.json.5"
CONFIG_MD = ROOT / "spec" / "config.md"
SIGNALS_MD = ROOT / "spec" / "signals.md"
HANDLER_MD = ROOT / "spec" / "handler.md"
SCHEMA = ROOT / "spec" / "services.schema.json"
SOURCES = sorted((ROOT / "lib").glob("**/*.c")) + sorted((ROOT / "cmd" / "psup").glob("*.c"))


# --------------------------------------------------------------------------
# roff, read just enough to find the terms a page defines.

_ESCAPES = {"-": "-", "e": "\\", "&": "", "c": "", " ": " ", "%": "", "|": "", "^": "",
            "(dq": '"', "(aq": "'", "(lq": '"', "(rq": '"', "(ti": "~", "(bu": "*",
            "(em": "--", "(en": "-"}


def unroff(text):
    """Plain text of a roff text line: escapes resolved, fonts dropped."""
    def repl(m):
        esc = m.group(1)
        if esc.startswith("f"):
            return ""
        return _ESCAPES.get(esc, "")
    return re.sub(r"\\(f\[[^\]]*\]|f\(..|f.|\(..|\[[^\]]*\]|.)", repl, text)


def macro_args(rest):
    """A macro line's arguments: split on blanks, "..." quoting."""
    args, cur, quoted, i = [], "", False, 0
    while i < len(rest):
        ch = rest[i]
        if quoted and ch == '"' and rest[i + 1:i + 2] == '"':
            cur += '"'
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch in " \t" and not quoted:
            if cur:
                args.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    if cur:
        args.append(cur)
    return args


def line_text(line):
    """The text a line puts on the page (fonts macros included)."""
    if not line.startswith((".", "'")):
        return unroff(line)
    name, _, rest = line[1:].partition(" ")
    args = macro_args(rest)
    if name in ("B", "I", "SM", "SB"):
        return unroff(" ".join(args))
    if name in ("BR", "RB", "BI", "IB", "IR", "RI"):
        return unroff("".join(args))
    return ""


def sections(path):
    """{section name: [lines]} of a manual page."""
    out, current = {}, None
    for line in path.read_text().splitlines():
        if line.startswith(".SH"):
            current = " ".join(macro_args(line[3:].strip()))
            out[current] = []
        elif current is not None and not line.startswith('.\\"'):
            out[current].append(line)
    return out


def tags(lines):
    """The tags of the .TP/.TQ paragraphs in lines, as plain text."""
    out = []
    for i, line in enumerate(lines):
        if line.strip() in (".TP", ".TQ") and i + 1 < len(lines):
            out.append(line_text(lines[i + 1]).strip())
    return out


def tag_words(lines):
    """Every word of every tag: "-c, --check" gives -c and --check."""
    words = set()
    for tag in tags(lines):
        words.update(w for w in re.split(r"[\s,=()]+", tag) if w)
    return words


def page_text(lines):
    return "\n".join(line_text(line) for line in lines)


def section(path, name):
    secs = sections(path)
    assert name in secs, f"{path.name} has no section {name} (has {sorted(secs)})"
    return secs[name]


# --------------------------------------------------------------------------
# The schema, the spec and the code.


def schema_keys():
    """{"top": set, "service": set, "pool": set, "rlimits": set, "admin": set}"""
    schema = json.loads(SCHEMA.read_text())
    service = schema["$defs"]["service"]["properties"]
    return {
        "top": set(schema["properties"]),
        "service": set(service),
        "pool": set(service["pool"]["properties"]),
        "rlimits": set(service["rlimits"]["properties"]),
        "admin": set(schema["properties"]["admin"]["properties"]),
    }


def all_schema_keys():
    return set().union(*schema_keys().values())


def markdown_tables(text):
    """Each markdown table as (header cells, [row cells])."""
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if len(rows) >= 2:
            tables.append((rows[0], [r for r in rows[2:]]))
        rows = []
    return tables


def config_md_table_keys():
    """Keys named in the first column of config.md's `| key |` tables, and
    the keys it defines in bold (**`name`**)."""
    text = CONFIG_MD.read_text()
    keys = set()
    for header, rows in markdown_tables(text):
        if header and header[0].lower() == "key":
            for row in rows:
                keys.update(re.findall(r"`([^`]+)`", row[0]))
    keys.update(re.findall(r"\*\*`([^`]+)`\*\*", text))
    return keys


def strip_c_comments(src):
    return re.sub(r"/\*.*?\*/|//[^\n]*", lambda m: " " * len(m.group(0)), src, flags=re.S)


def call_args(src, open_paren):
    """(top-level arguments, index after the closing parenthesis) of the
    call whose "(" is at open_paren."""
    depth, args, cur, i, quote = 0, [], "", open_paren, None
    while i < len(src):
        ch = src[i]
        if quote:
            cur += ch
            if ch == "\\":
                cur += src[i + 1]
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == "(":
            depth += 1
            if depth > 1:
                cur += ch
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(cur.strip())
                return args, i + 1
            cur += ch
        elif ch == "," and depth == 1:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    raise AssertionError("unbalanced call")


def calls(src, name):
    """[(position, args)] of every call (not the definition) of name."""
    out = []
    for m in re.finditer(r"\b%s\s*\(" % re.escape(name), src):
        args, end = call_args(src, m.end() - 1)
        if re.match(r"\s*\{", src[end:]):
            continue  # the function's definition
        if re.search(r"\b(?:void|int|bool|static)\s+$", src[:m.start()].rsplit("\n", 1)[-1]):
            continue  # a declaration
        out.append((m.start(), args))
    return out


def literals(expr):
    return re.findall(r'"((?:[^"\\]|\\.)*)"', expr)


FUNC_DEF = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\s*\(([^;{)]*)\)\s*\{", re.M)


def resolve_parameter(sources, src, pos, ident):
    """The string literals passed for parameter ident of the function that
    contains position pos, collected from every call of that function."""
    defs = [m for m in FUNC_DEF.finditer(src) if m.start() < pos]
    assert defs, f"no function around {ident}"
    fn = defs[-1]
    params = [p.strip() for p in fn.group(2).split(",")]
    index = next((i for i, p in enumerate(params) if re.search(r"\b%s$" % re.escape(ident), p)), None)
    assert index is not None, f"{ident} is not a parameter of {fn.group(1)}()"
    found = set()
    for other in sources.values():
        for _, args in calls(other, fn.group(1)):
            lit = literals(args[index]) if index < len(args) else []
            assert lit, f"{fn.group(1)}() is called with a non-literal {ident}: {args}"
            found.update(lit)
    assert found, f"no call of {fn.group(1)}() passes a literal {ident}"
    return found


def logged_events():
    """Every event name psup_log_begin() can be given in lib/ and cmd/,
    including conditional ones (`x ? "a" : "b"`) and names passed down as a
    parameter of a helper."""
    sources = {p: strip_c_comments(p.read_text()) for p in SOURCES}
    events = set()
    for path, src in sources.items():
        for pos, args in calls(src, "psup_log_begin"):
            assert len(args) == 3, f"{path.name}: psup_log_begin{tuple(args)}"
            lit = literals(args[2])
            if lit:
                events.update(lit)
            else:
                ident = args[2]
                assert re.fullmatch(r"\w+", ident), f"{path.name}: cannot read event {ident!r}"
                events.update(resolve_parameter(sources, src, pos, ident))
    return events


def logged_fields():
    keys = set()
    pattern = re.compile(r'\bpsup_log_(?:str|int|uint|secs|bytes|bool)\s*\(\s*&?\w+\s*,\s*"([^"]+)"')
    for path in SOURCES:
        keys.update(pattern.findall(strip_c_comments(path.read_text())))
    return keys


# --------------------------------------------------------------------------
# Configuration keys.


def test_collectors_find_what_they_must():
    keys = schema_keys()
    assert {"services", "shutdown_timeout", "kill_grace", "log_format"} <= keys["top"]
    assert {"name", "listen", "command", "pool", "rlimits", "timeout"} <= keys["service"]
    assert keys["pool"] == {"min_spare", "max_spare", "max_workers"}
    assert {"nofile", "core", "cpu"} <= keys["rlimits"]
    assert {"shutdown_timeout", "min_spare", "name", "overload_message"} <= config_md_table_keys()
    events = logged_events()
    # A literal, a conditional and a name passed to a helper.
    assert {"conn_end", "saturated", "saturation_ended", "reload_failed", "config_invalid"} <= events
    assert len(events) >= 20, events
    assert {"service", "conn", "pid", "remote_ip", "duration_ms", "errno"} <= logged_fields()


def test_every_schema_key_is_described_in_psup_json_5():
    lines = MAN5.read_text().splitlines()
    defined = {t.split()[0] for t in tags(lines) if t.split()}
    missing = {scope: sorted(keys - defined) for scope, keys in schema_keys().items() if keys - defined}
    assert not missing, f"keys of services.schema.json without a .TP entry in docs/psup.json.5: {missing}"


def test_psup_json_5_describes_no_unknown_key():
    secs = sections(MAN5)
    lines = secs.get("TOP-LEVEL KEYS", []) + secs.get("SERVICE KEYS", [])
    assert lines, "docs/psup.json.5 has no TOP-LEVEL KEYS / SERVICE KEYS sections"
    words = {t.split()[0] for t in tags(lines) if t.split()}
    keylike = {w for w in words if re.fullmatch(r"\$?[a-z][a-z_]*", w)}
    unknown = sorted(keylike - all_schema_keys())
    assert not unknown, f"docs/psup.json.5 describes keys the schema does not have: {unknown}"


def test_every_schema_key_is_in_config_md():
    text = CONFIG_MD.read_text()
    missing = sorted(k for k in all_schema_keys() if f"`{k}`" not in text)
    assert not missing, f"keys of services.schema.json not named in spec/config.md: {missing}"


def test_every_key_of_config_md_tables_is_in_the_schema():
    unknown = sorted(config_md_table_keys() - all_schema_keys())
    assert not unknown, f"keys in spec/config.md's tables that spec/services.schema.json lacks: {unknown}"


def test_handler_variables_of_the_spec_are_in_psup_json_5():
    names = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", HANDLER_MD.read_text()))
    assert {"PROTO", "TCPREMOTEIP", "PSUP_CONN_ID", "UNIXREMOTEPID"} <= names
    text = page_text(section(MAN5, "THE HANDLER"))
    missing = sorted(n for n in names if not re.search(r"(?<![A-Z0-9_])%s(?![A-Z0-9_])" % n, text))
    assert not missing, f"variables of spec/handler.md missing from THE HANDLER in docs/psup.json.5: {missing}"


# --------------------------------------------------------------------------
# The command line, signals, exit status, logs.


def help_options(psup_bin, *command):
    """The options a --help lists, one per line that starts with one."""
    out = subprocess.run([psup_bin, *command, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    options = set()
    for line in out.stdout.splitlines():
        m = re.match(r"^\s+(?:(-\w),\s+)?(--[a-z][\w-]*)", line)
        if m:
            options.update(o for o in m.groups() if o)
    return options


def test_every_help_option_is_in_psup_1(psup_bin):
    documented = tag_words(section(MAN1, "OPTIONS"))
    options = help_options(psup_bin)
    assert {"--help", "--check", "-c"} <= options, options
    missing = sorted(options - documented)
    assert not missing, f"options of psup --help without an entry in OPTIONS of docs/psup.1: {missing}"


# The subcommands: each has a section of docs/psup.1 with its options and
# exit statuses, and its statuses as NAME_... = N in its source file.
SUBCOMMANDS = {
    "import": ("IMPORT", "import.c", {"--help", "--services", "--include-disabled"}),
    "ctl": ("CTL", "ctl.c", {"--help", "--admin", "-a", "--json", "--max-workers"}),
}


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_option_is_in_psup_1(psup_bin, command):
    name, _, expected = SUBCOMMANDS[command]
    documented = tag_words(section(MAN1, name))
    options = help_options(psup_bin, command)
    assert expected <= options, options
    missing = sorted(options - documented)
    assert not missing, f"options of psup {command} --help without an entry in {name} of docs/psup.1: {missing}"


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_exit_status_is_in_psup_1(command):
    name, source, _ = SUBCOMMANDS[command]
    code = (ROOT / "cmd" / "psup" / source).read_text()
    statuses = set(re.findall(r"\b%s_[A-Z_]+ = (\d+)" % name, code))
    assert statuses == {"0", "1", "2"}, statuses
    documented = {t for t in tags(section(MAN1, name)) if t.isdigit()}
    assert documented == statuses, f"{name} in docs/psup.1 lists {sorted(documented)}, the code {sorted(statuses)}"


def spec_exit_statuses():
    text = SIGNALS_MD.read_text()
    part = text.split("## Exit status of psup", 1)
    assert len(part) == 2, "spec/signals.md has no 'Exit status of psup' section"
    tables = markdown_tables(part[1])
    assert tables and tables[0][0][0] == "status", "no status table in spec/signals.md"
    statuses = {row[0].strip("` ").replace(" ", "") for row in tables[0][1]}
    assert {"0", "1", "2"} <= statuses, statuses
    return statuses


def test_every_exit_status_of_the_spec_is_in_psup_1():
    documented = {t.replace(" ", "") for t in tags(section(MAN1, "EXIT STATUS"))}
    missing = sorted(spec_exit_statuses() - documented)
    assert not missing, f"exit statuses of spec/signals.md missing from EXIT STATUS in docs/psup.1: {missing}"
    extra = sorted(documented - spec_exit_statuses())
    assert not extra, f"EXIT STATUS in docs/psup.1 lists statuses spec/signals.md does not: {extra}"


def test_every_signal_of_the_spec_is_in_psup_1():
    names = set(re.findall(r"\bSIG[A-Z0-9]+\b", SIGNALS_MD.read_text()))
    assert {"SIGTERM", "SIGQUIT", "SIGHUP"} <= names
    text = page_text(section(MAN1, "SIGNALS"))
    missing = sorted(n for n in names if not re.search(r"\b%s\b" % n, text))
    assert not missing, f"signals of spec/signals.md missing from SIGNALS in docs/psup.1: {missing}"
    handled = tag_words(section(MAN1, "SIGNALS"))
    for sig in ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGCHLD"):
        assert sig in handled, f"{sig} has no entry of its own in SIGNALS of docs/psup.1"


def test_every_logged_event_is_in_psup_1():
    logs = section(MAN1, "LOGS")
    documented = tag_words(logs)
    missing = sorted(logged_events() - documented)
    assert not missing, f"events psup logs without an entry in LOGS of docs/psup.1: {missing}"


def test_psup_1_lists_no_event_or_field_psup_does_not_log():
    known = logged_events() | logged_fields()
    stale = sorted(w for w in tag_words(section(MAN1, "LOGS")) if w not in known)
    assert not stale, f"LOGS in docs/psup.1 has entries for names the code never logs: {stale}"


def test_every_logged_field_is_in_psup_1():
    text = page_text(section(MAN1, "LOGS"))
    missing = sorted(f for f in logged_fields() if not re.search(r"(?<![\w])%s(?![\w])" % re.escape(f), text))
    assert not missing, f"fields psup logs that LOGS in docs/psup.1 does not name: {missing}"


# --------------------------------------------------------------------------
# Examples and formatting.


def roff_examples(path):
    text = path.read_text()
    for m in re.finditer(r"^\.EX\n(.*?)^\.EE", text, re.S | re.M):
        yield "\n".join(unroff(line) for line in m.group(1).splitlines())


def markdown_json_blocks(path):
    for m in re.finditer(r"```json\n(.*?)```", path.read_text(), re.S):
        yield m.group(1)


def unknown_keys(cfg):
    keys = schema_keys()
    bad = [k for k in cfg if k not in keys["top"]]
    bad += [f"admin.{k}" for k in cfg.get("admin", {}) if k not in keys["admin"]]
    for i, svc in enumerate(cfg.get("services", [])):
        bad += [f"services[{i}].{k}" for k in svc if k not in keys["service"]]
        bad += [f"services[{i}].pool.{k}" for k in svc.get("pool", {}) if k not in keys["pool"]]
        bad += [f"services[{i}].rlimits.{k}" for k in svc.get("rlimits", {}) if k not in keys["rlimits"]]
    return bad


def parse_example(text):
    """A whole file, a service object, or a `"key": value` fragment, as a
    configuration; None for something else (a log record, a log line)."""
    for candidate in (text, "{" + text.strip().rstrip(",") + "}"):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(value, dict):
            return None
        if "services" in value:
            return value
        if set(value) & schema_keys()["service"] and "event" not in value:
            return {"services": [value]}
        return None
    return None


def test_json_examples_of_the_docs_use_only_known_keys():
    checked, problems = 0, []
    examples = [(MAN5, t) for t in roff_examples(MAN5)] + [(MAN1, t) for t in roff_examples(MAN1)]
    for md in ("container.md", "migrating.md"):
        path = ROOT / "docs" / md
        examples += [(path, t) for t in markdown_json_blocks(path)]
    for path, text in examples:
        cfg = parse_example(text)
        if cfg is None:
            continue
        checked += 1
        problems += [f"{path.name}: {k}" for k in unknown_keys(cfg)]
    assert checked >= 8, f"only {checked} JSON examples found"
    assert not problems, f"examples with keys psup does not accept: {problems}"


@pytest.mark.skipif(not shutil.which("groff"), reason="groff is not installed")
@pytest.mark.parametrize("page", [MAN1, MAN5], ids=lambda p: p.name)
def test_manual_page_formats_without_warnings(page):
    out = subprocess.run(["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and not out.stderr, out.stderr
