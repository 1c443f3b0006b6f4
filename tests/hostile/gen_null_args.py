#!/usr/bin/env python3
"""Writes a C test that calls every fidius_host_* function of the header
with NULL for each pointer parameter in turn (one case per pair), so that a
new function is covered without touching this script.

    gen_null_args.py include/fidius_host.h -o target/c/null_args.c
    gen_null_args.py include/fidius_host.h --explain   # what each case expects

Every other argument is valid, so the NULL under test is the only thing
wrong: handles come from make_<type>() in null_args_support.h, out-params
point at locals preset to SENTINEL, and numbers are 0 (NUL_TERMINATED
after a char pointer, 1 where the doc says 0 is invalid). A case passes
when nothing crashes or hangs and, for functions returning
fidius_host_status, the status is NULL_ARGUMENT unless the doc comment
says the parameter may be NULL; a failure must also fill *err and leave
pointer out-params NULL.
"""
import argparse
import re
from pathlib import Path

SUPPORT = Path(__file__).with_name("null_args_support.h")

# cbindgen writes one doc comment, then one prototype (possibly on several
# lines); parameters never contain parentheses (callbacks are typedefs).
PROTOTYPE = re.compile(
    r"/\*\*((?:(?!\*/).)*)\*/\s*FIDIUS_HOST_API\s+(?:FIDIUS_HOST_MUST_USE\s+)?([^;{}]*?)\b(fidius_host_\w+)\s*\(([^)]*)\);", re.S)
# Every declaration, documented or not: a function PROTOTYPE misses must
# fail the generator, not drop out of the test.
DECLARED = re.compile(r"FIDIUS_HOST_API\s[^;#]*?\b(fidius_host_\w+)\s*\(")
OPAQUE = re.compile(r"typedef struct (\w+) \1;")
CALLBACK = re.compile(r"typedef\s+([^;()]*?)\s*\(\*(\w+)\)\(([^)]*)\);", re.S)

# Doc wording that makes a NULL acceptable. Bare "optional" is left out:
# the header uses it for optional *methods*, not parameters.
MAY_BE_NULL = re.compile(r"may be NULL|NULL is allowed|pass NULL|when not NULL|NULL removes|is optional|\(optional\)")
# "Errors: NULL_ARGUMENT (builder)" names the only parameters that must not be NULL.
NULL_ARGUMENT_LIST = re.compile(r"NULL_ARGUMENT \(([\w, ]+)\)")
# "Like `f`", "as in `f`": the doc defers to f, whose optional parameters
# of the same name are optional here too.
DEFERS_TO = re.compile(r"(?:Like|as in|as for) `(fidius_host_\w+)`")

# Text the library may validate before it reaches the NULL under test:
# "function.param" first, then "param"; any other string is "x".
STRINGS = {
    "fidius_host_load.name": '"BasicCalculator"',
    "fidius_host_load_path.path": 'fixture("plugins/libcalc_plugin.so")',
    "fidius_host_load_path.name": '"BasicCalculator"',
    # A directory the call creates: kept inside the fixtures.
    "fidius_host_builder_set_wasm_compile_cache.dir": 'fixture("null-args-compile-cache")',
    "fidius_host_interface_builder_new.name": '"Calculator"',
    "fidius_host_interface_new_from_file.path": 'fixture("interfaces/calculator.toml")',
    "fidius_host_interface_method_index.name": '"add"',
    "signature": '"add:i64,i64->i64"',
    "declaration": '"struct Point { x: f64, y: f64 }"',
    "toml": "calc_toml",
    "method": '"add"',
    "args_json": '"[1, 2]"',
}


class Param:
    def __init__(self, text, callbacks):
        self.type, self.name = re.match(r"(.*?)\s*\b(\w+)$", " ".join(text.split())).groups()
        self.is_callback = self.type in callbacks
        self.is_pointer = "*" in self.type or self.is_callback
        # T ** is an out-param; const char *const * is an input array.
        self.is_out = self.type.endswith("**")
        self.is_err = self.type == "fidius_host_error_t **"


class Function:
    def __init__(self, doc, ret, name, params, callbacks):
        self.doc = " ".join(re.sub(r"^\s*\*\s?", "", line) for line in doc.splitlines()).strip()
        self.ret, self.name = " ".join(ret.split()), name
        self.params = [] if params.strip() == "void" else [Param(p, callbacks) for p in params.split(",")]
        self.optional = self._optional_from_doc()

    def pointers(self):
        return [p for p in self.params if p.is_pointer]

    def _optional_from_doc(self):
        names = {p.name for p in self.pointers()}
        optional = {p.name for p in self.pointers() if p.is_err}
        listed = NULL_ARGUMENT_LIST.search(self.doc)
        if listed:
            optional |= names - {n.strip() for n in listed.group(1).split(",")}
        for sentence in re.split(r"(?<=\.)\s+", self.doc):
            for phrase in MAY_BE_NULL.finditer(sentence):
                # The phrase is about the last pointer parameter named before it.
                before = [n for n in re.findall(r"`\*?(\w+)`", sentence[:phrase.start()]) if n in names]
                if before:
                    optional.add(before[-1])
        return optional

    def returns_status(self):
        return self.ret == "fidius_host_status"


def parse(header_text):
    callbacks = {name: (ret, params) for ret, name, params in CALLBACK.findall(header_text)}
    functions = {m.group(3): Function(*m.groups(), callbacks) for m in PROTOTYPE.finditer(header_text)}
    missed = set(DECLARED.findall(header_text)) - set(functions)
    if missed:
        raise SystemExit(f"gen_null_args.py: cannot read the prototype of {', '.join(sorted(missed))}")
    for f in functions.values():
        for target in DEFERS_TO.findall(f.doc):
            if target in functions:
                f.optional |= functions[target].optional & {p.name for p in f.pointers()}
    return functions, set(OPAQUE.findall(header_text)), callbacks


def factory(handle_type):
    # fidius_host_load_options_t -> make_load_options; fidius_host_t -> make_host
    return "make_" + (handle_type[len("fidius_host_"):-len("_t")] or "host")


def emit_case(f, null_param, opaque, factories):
    """The body of one case: declarations, the call, the checks."""
    lines, args, checks = [], [], []
    for i, p in enumerate(f.params):
        var = p.name if p.is_err else f"a{i}"
        pointee = p.type[:-1].strip() if p.is_pointer else ""
        bare = re.sub(r"^const\s+", "", pointee)
        if p is null_param:
            args.append("NULL")
        elif not p.is_pointer:
            after_char = i > 0 and f.params[i - 1].type.endswith("char *") and p.type == "size_t"
            # "INVALID_ARGUMENT (0)": 0 is the one invalid value, and two bad
            # arguments would leave either status right.
            zero_invalid = "INVALID_ARGUMENT (0)" in f.doc
            args.append("NT" if after_char else "1" if zero_invalid else "0")
        elif p.is_out:
            lines.append(f"{p.type[:-1].strip()}{var} = SENTINEL;")
            args.append(f"&{var}")
            if f.returns_status():
                checks.append(f"check_err(st, {var});" if p.is_err else f'check_out(st, {var}, "{p.name}");')
        elif p.is_callback:
            args.append(f"stub_{p.type}")
        elif bare in opaque:
            make = factory(bare)
            if make in factories:
                lines.append(f"{p.type}{var} = {make}();")
                lines.append(f"if ({var} == NULL) degraded = 1;")
            else:
                lines.append(f"{p.type}{var} = NULL; /* no {make}() in {SUPPORT.name} */")
                lines.append("degraded = 1;")
            args.append(var)
        elif bare == "char" and pointee != bare:
            args.append(STRINGS.get(f"{f.name}.{p.name}", STRINGS.get(p.name, '"x"')))
        elif bare == "void":
            args.append("SENTINEL")
        else:
            # Any other T *: one zeroed T (the lengths that go with it are 0).
            decl = re.sub(r"\s*\bconst$", "", pointee) if "*" in pointee else bare
            lines.append(f"{decl} {var}[1];")
            lines.append(f"memset({var}, 0, sizeof {var});")
            args.append(var)
    call = f"{f.name}({', '.join(args)})"
    if f.returns_status() and null_param.name not in f.optional:
        checks.insert(0, "expect_null_argument(st);")
    if f.returns_status() and checks:
        lines.append(f"fidius_host_status st = {call};")
        lines += checks
    elif f.ret == "void":
        lines.append(f"{call};")
    elif f.returns_status():
        # Kept, not cast away: statuses are warn_unused_result.
        lines.append(f"fidius_host_status st = {call};")
        lines.append("(void)st;")
    else:
        lines.append(f"(void){call};")
    return lines


def stub(name, ret, params):
    """A do-nothing function of callback type `name`, for valid callback args."""
    names = re.findall(r"(\w+)\s*(?:,|$)", params)
    body = "".join(f" (void){n};" for n in names) + ("" if ret == "void" else " return 0;")
    return f"static inline {ret} stub_{name}({' '.join(params.split())}) {{{body} }}"


def generate(header_text):
    functions, opaque, callbacks = parse(header_text)
    factories = set(re.findall(r"\b(make_\w+)\(void\)", SUPPORT.read_text()))
    out = ["/* Generated by tests/hostile/gen_null_args.py from include/fidius_host.h; do not edit. */",
           f'#include "{SUPPORT.name}"', ""]
    out += [stub(name, ret, params) for name, (ret, params) in sorted(callbacks.items())]
    table = ['    {"make_* (the valid arguments of the cases)", check_factories},']
    for f in functions.values():
        for p in f.pointers():
            n = len(table)
            table.append(f'    {{"{f.name}({p.name}=NULL)", case_{n}}},')
            out.append(f"\nstatic void case_{n}(void) {{")
            # C99 allows declarations after statements, so the body reads top-down.
            out += ["    " + line for line in emit_case(f, p, opaque, factories)]
            out.append("}")
    out += ["", "static const struct null_case cases[] = {"] + table + ["};", "",
            "int main(void) { return run_cases(cases, sizeof cases / sizeof cases[0]); }", ""]
    return "\n".join(out), functions


def explain(functions):
    for f in functions.values():
        kinds = [f"{p.name}{'?' if p.name in f.optional else ''}" for p in f.pointers()]
        print(f"{f.name}: {' '.join(kinds) or '(no pointer parameters)'}"
              + ("" if f.returns_status() else f"  [returns {f.ret}: no crash only]"))
    print("(? = may be NULL: any outcome but a crash; others must give NULL_ARGUMENT)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("header")
    parser.add_argument("-o", "--output")
    parser.add_argument("--explain", action="store_true", help="list each function's pointer parameters")
    args = parser.parse_args()
    source, functions = generate(Path(args.header).read_text())
    if args.explain:
        explain(functions)
    if args.output:
        Path(args.output).write_text(source)
    print(f"{len(functions)} functions, {source.count('static void case_')} NULL cases")


if __name__ == "__main__":
    main()
