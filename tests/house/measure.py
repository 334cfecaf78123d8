#!/usr/bin/env python3
"""tests/house/measure.py [--check] [--all] [ROOT]

How readable the house is, measured the way issue 25 measured it:

- functions: lines of one function, from the line of its `fn` (Rust) or
  `def` (Python) to the line of its end, tests excluded: Rust files under a
  crate's tests/ or benches/, files named tests.rs, `#[cfg(test)]` modules
  and `#[test]` functions; Python drills and selftests still count (they are
  the product's proof and are read as code).
- files: lines of a source file, without its `#[cfg(test)]` modules.
- import circles between the files of one Rust crate or one Python folder:
  a file depends on another when it names an item the other defines (a
  `use`, or a path like `crate::a::f()`, followed through re-exports to
  where the item is defined); `mod x;` alone is not a dependency. Each
  strongly connected group of two or more files is one circle.

Without --all it prints what is over the limits (FUNCTION_LIMIT lines of a
function, FILE_LIMIT of a file) and every circle; --all prints every
function over 60 lines too. --check exits 1 when anything is over or any
circle exists (`./build.sh test` runs it), 0 otherwise.

Sources measured: crates/*/src/**/*.rs, and the Python of deploy/,
tests/, bench/ and volatility/ (volatility-plugins/ holds upstream's plugin
classes, kept as close to upstream as possible, and is left out).
"""

import ast
import os
import re
import sys
from collections import defaultdict

FUNCTION_LIMIT = 120
FILE_LIMIT = 800
PY_DIRS = ("deploy", "tests", "bench", "volatility")


# ---------------------------------------------------------------- Rust lexing


def rust_tokens(text):
    """(kind, value, line) of a Rust source: comments and literals skipped
    (strings become one 'lit' token), so braces and words are real code."""
    i, n, line = 0, len(text), 1
    out = []
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif re.match(r'(b|c)?r#*"', text[i : i + 40]):
            m = re.match(r'(b|c)?r(#*)"', text[i:])
            end = '"' + m.group(2)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            line += text.count("\n", i, j)
            out.append(("lit", "", line))
            i = j
        elif c == '"' or (c in "bc" and i + 1 < n and text[i + 1] == '"'):
            i += 1 if c == '"' else 2
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                line += text[i] == "\n"
                i += 1
            i += 1
            out.append(("lit", "", line))
        elif c == "'" or (c == "b" and text.startswith("b'", i)):
            # a char literal ('a', '\n', '\u{1F600}', b'x') or a lifetime ('a)
            k = i + (2 if c == "b" else 1)
            m = re.match(r"(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'", text[k : k + 12])
            if m:
                i = k + m.end()
                out.append(("lit", "", line))
            else:
                i += 1  # a lifetime's quote; its name follows as a word
        elif ident.match(c):
            m = ident.match(text, i)
            out.append(("word", m.group(0), line))
            i = m.end()
        elif c.isdigit():
            m = re.match(r"[0-9][0-9A-Za-z_.]*", text[i:])
            i += m.end()
            out.append(("lit", "", line))
        else:
            if text.startswith("::", i):
                out.append(("punct", "::", line))
                i += 2
            else:
                out.append(("punct", c, line))
                i += 1
    return out


def matching(tokens, k):
    """Index of the token closing the bracket at tokens[k]."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    open_, close = tokens[k][1], pairs[tokens[k][1]]
    depth = 0
    for j in range(k, len(tokens)):
        v = tokens[j][1]
        if tokens[j][0] != "punct":
            continue
        if v == open_:
            depth += 1
        elif v == close:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def attributes_before(tokens, k):
    """The text of the attributes (#[...]) right before tokens[k], skipping
    visibility and qualifiers."""
    j = k - 1
    words = {"pub", "crate", "super", "self", "in", "async", "const", "unsafe", "extern", "lit", "default"}
    attrs = []
    while j >= 0:
        kind, v, _ = tokens[j]
        if kind == "word" and v in words or (kind == "punct" and v in "()") or kind == "lit":
            j -= 1
            continue
        if kind == "punct" and v == "]":
            depth, s = 0, j
            while s >= 0:
                if tokens[s][1] == "]":
                    depth += 1
                elif tokens[s][1] == "[":
                    depth -= 1
                    if depth == 0:
                        break
                s -= 1
            if s > 0 and tokens[s - 1][1] == "#":
                attrs.append(" ".join(t[1] for t in tokens[s : j + 1]))
                j = s - 2
                continue
        break
    return attrs


def is_test_attr(attrs):
    return any(re.search(r"\bcfg\s*\(\s*test\s*\)", a) or re.fullmatch(r"\[ test \]", a) for a in attrs)


class RustFile:
    def __init__(self, path, rel):
        self.path, self.rel = path, rel
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        self.tokens = rust_tokens(self.text)
        self.functions = []  # (name, first line, last line)
        self.test_spans = []  # (first line, last line) of #[cfg(test)] items
        self.uses = []  # paths (lists of words) named by use trees and expressions
        self.defines = set()  # item names defined here
        self.child_mods = set()
        self.use_bindings = []  # the paths `use` binds a name to here
        self._scan()

    def _scan(self):
        t = self.tokens
        skip_until = -1
        for k, (kind, v, line) in enumerate(t):
            if k <= skip_until or kind != "word":
                continue
            nxt = t[k + 1] if k + 1 < len(t) else ("", "", 0)
            if v == "mod" and nxt[0] == "word":
                after = t[k + 2][1] if k + 2 < len(t) else ""
                if is_test_attr(attributes_before(t, k)):
                    end = matching(t, k + 2) if after == "{" else k + 2
                    self.test_spans.append((line, t[end][2]))
                    skip_until = end
                    continue
                if after == ";":
                    self.child_mods.add(nxt[1])
                else:
                    self.defines.add(nxt[1])
            elif v == "fn" and nxt[0] == "word":
                self.defines.add(nxt[1])
                j = k + 2
                while j < len(t) and not (t[j][0] == "punct" and t[j][1] in "{;"):
                    j += 1
                if j >= len(t) or t[j][1] == ";":
                    continue
                end = matching(t, j)
                attrs = attributes_before(t, k)
                if is_test_attr(attrs):
                    self.test_spans.append((line, t[end][2]))
                    skip_until = end
                    continue
                self.functions.append((nxt[1], line, t[end][2]))
            elif v in ("struct", "enum", "trait", "type", "union", "static", "const", "macro_rules") and nxt[0] == "word":
                self.defines.add(nxt[1])
            elif v == "macro_rules" and nxt[1] == "!":
                if k + 2 < len(t):
                    self.defines.add(t[k + 2][1])
            elif v == "use":
                j = k + 1
                while j < len(t) and t[j][1] != ";":
                    j += 1
                self._use_tree(t[k + 1 : j], [])
                skip_until = j
            elif v in ("crate", "super", "self") and nxt[1] == "::":
                path, j = [v], k + 1
                while j + 1 < len(t) and t[j][1] == "::" and t[j + 1][0] == "word":
                    path.append(t[j + 1][1])
                    j += 2
                self.uses.append(path)
                skip_until = j - 1

    def _use_tree(self, toks, prefix):
        """Flatten a use tree into paths; `as` renames define nothing new
        for the graph (the path is what counts)."""
        path = list(prefix)
        i = 0
        while i < len(toks):
            kind, v, _ = toks[i]
            if v == "{":
                end = i
                depth = 0
                for j in range(i, len(toks)):
                    if toks[j][1] == "{":
                        depth += 1
                    elif toks[j][1] == "}":
                        depth -= 1
                        if depth == 0:
                            end = j
                            break
                inner, start, depth = toks[i + 1 : end], 0, 0
                for j, tok in enumerate(inner + [("punct", ",", 0)]):
                    if tok[1] == "{":
                        depth += 1
                    elif tok[1] == "}":
                        depth -= 1
                    elif tok[1] == "," and depth == 0:
                        if inner[start:j]:
                            self._use_tree(inner[start:j], path)
                        start = j + 1
                return
            if kind == "word" and v == "as":
                break
            if kind == "word":
                path.append(v)
            i += 1
        if path:
            self.uses.append(path)
            self.use_bindings.append(path)

    def lines(self):
        total = self.text.count("\n") + (0 if self.text.endswith("\n") else 1)
        return total - sum(b - a + 1 for a, b in self.test_spans)


def rust_module_path(rel_in_src):
    parts = rel_in_src[:-3].split("/")
    if parts[-1] in ("lib", "main") and len(parts) == 1:
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def rust_crates(root):
    crates = os.path.join(root, "crates")
    for name in sorted(os.listdir(crates)):
        src = os.path.join(crates, name, "src")
        if os.path.isdir(src):
            yield name, src


def measure_rust(root):
    functions, files, circles = [], [], []
    for crate, src in rust_crates(root):
        mods = {}
        for d, _, names in os.walk(src):
            for n in names:
                if not n.endswith(".rs"):
                    continue
                p = os.path.join(d, n)
                rel_in_src = os.path.relpath(p, src)
                if n == "tests.rs" or "/tests/" in "/" + rel_in_src:
                    continue
                if "bin" == rel_in_src.split("/")[0]:
                    continue
                mods[rust_module_path(rel_in_src)] = RustFile(p, os.path.relpath(p, root))
        for f in mods.values():
            for name, a, b in f.functions:
                functions.append((b - a + 1, f"{f.rel}:{a}", name))
            files.append((f.lines(), f.rel))
        circles += rust_circles(mods)
    return functions, files, circles


def rust_resolve(mods, module, path, seen=None):
    """The module (a key of mods) where the item a path names is defined, or
    None when it is outside the crate (std, another crate)."""
    seen = seen or set()
    if not path:
        return module
    head, rest = path[0], path[1:]
    if head == "crate":
        return rust_resolve(mods, (), rest, seen)
    if head == "super":
        return rust_resolve(mods, module[:-1], rest, seen)
    if head == "self":
        return rust_resolve(mods, module, rest, seen)
    key = (module, tuple(path))
    if key in seen:
        return None
    seen.add(key)
    if module + (head,) in mods:
        return rust_resolve(mods, module + (head,), rest, seen)
    f = mods.get(module)
    if f is None:
        return None
    for b in f.use_bindings:
        if b[-1] == head and b[0] in ("crate", "super", "self"):
            return rust_resolve(mods, module, b + rest, seen)
        if b[-1] == head and module + (b[0],) in mods:
            return rust_resolve(mods, module, b + rest, seen)
    if head in f.defines:
        return module
    return None


def rust_circles(mods):
    edges = defaultdict(set)
    for m, f in mods.items():
        for path in f.uses:
            if path[0] not in ("crate", "super", "self") and m + (path[0],) not in mods:
                continue
            target = rust_resolve(mods, m, path)
            if target is not None and target != m and target in mods:
                edges[m].add(target)
    return [sorted(mods[m].rel for m in group) for group in strongly_connected(list(mods), edges)]


# ---------------------------------------------------------------- Python


def measure_python(root):
    functions, files, circles = [], [], []
    folders = defaultdict(dict)
    for top in PY_DIRS:
        base = os.path.join(root, top)
        for d, dirs, names in os.walk(base):
            dirs[:] = [x for x in dirs if x not in ("__pycache__", ".venv", "venv")]
            for n in sorted(names):
                if not n.endswith(".py"):
                    continue
                p = os.path.join(d, n)
                rel = os.path.relpath(p, root)
                with open(p, encoding="utf-8") as fh:
                    text = fh.read()
                tree = ast.parse(text, p)
                for node in ast.walk(tree):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        functions.append((node.end_lineno - node.lineno + 1, f"{rel}:{node.lineno}", node.name))
                files.append((text.count("\n"), rel))
                folders[d][n[:-3]] = tree
    for d, modules in folders.items():
        edges = defaultdict(set)
        for name, tree in modules.items():
            for node in ast.walk(tree):
                targets = []
                if isinstance(node, ast.Import):
                    targets = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level <= 1 and node.module:
                    targets = [node.module.split(".")[0]]
                for x in targets:
                    if x in modules and x != name:
                        edges[name].add(x)
        for group in strongly_connected(list(modules), edges):
            circles.append(sorted(os.path.relpath(os.path.join(d, g + ".py"), root) for g in group))
    return functions, files, circles


# ---------------------------------------------------------------- common


def strongly_connected(nodes, edges):
    """Tarjan's algorithm, iterative; groups of two or more nodes."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    out.append(group)
    return out


def main(argv):
    check = "--check" in argv
    show_all = "--all" in argv
    rest = [a for a in argv if not a.startswith("--")]
    root = rest[0] if rest else os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rf, rfi, rc = measure_rust(root)
    pf, pfi, pc = measure_python(root)
    functions = sorted(rf + pf, reverse=True)
    files = sorted(rfi + pfi, reverse=True)
    circles = sorted(rc + pc)
    floor = 60 if show_all else FUNCTION_LIMIT
    long_fns = [f for f in functions if f[0] > floor]
    over = [f for f in functions if f[0] > FUNCTION_LIMIT]
    big = [f for f in files if f[0] > FILE_LIMIT]
    print(f"functions over {floor} lines ({len(long_fns)}; limit {FUNCTION_LIMIT}):")
    for n, where, name in long_fns:
        print(f"  {n:5d}  {name}  {where}")
    print(f"files over {FILE_LIMIT} lines ({len(big)}):")
    for n, rel in big:
        print(f"  {n:5d}  {rel}")
    print(f"import circles between files ({len(circles)}):")
    for group in circles:
        print("  " + " <-> ".join(group))
    print(f"measured: {len(functions)} functions, {len(files)} files")
    if check and (over or big or circles):
        print(
            f"house: {len(over)} function(s) over {FUNCTION_LIMIT} lines, {len(big)} file(s) over "
            f"{FILE_LIMIT}, {len(circles)} import circle(s): split on what the code does (issue 25)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
