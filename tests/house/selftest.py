#!/usr/bin/env python3
"""tests/house/selftest.py: measure.py finds what it must and nothing else.

Builds small trees in a temporary directory and runs measure.py --check on
each: a tree within the limits passes; a long function, a long file, a Rust
import circle (through a re-export) and a Python one each fail it; test
code, strings, comments and char literals full of braces do not count.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def tree(files):
    root = tempfile.mkdtemp(prefix="house-")
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return root


def measure(root):
    r = subprocess.run([sys.executable, os.path.join(HERE, "measure.py"), "--check", root],
                       capture_output=True, text=True)
    return r.returncode, r.stdout


def rust_fn(name, lines):
    body = "".join("    let _x%d = 1;\n" % i for i in range(lines - 2))
    return "pub fn %s() {\n%s}\n" % (name, body)


TRICKY = r'''
/// A doc comment with a { brace.
pub fn tricky() -> char {
    let _s = "a string with { and } and \" quotes {";
    let _r = r#"a raw string with "{" {"#;
    /* a block comment { /* nested { */ } */
    let _l: &'static str = "lifetime";
    '{'
}
'''

FAILED = 0


def expect(name, files, want_rc, want_text=None):
    global FAILED
    rc, out = measure(tree(files))
    ok = rc == want_rc and (want_text is None or want_text in out)
    print("%s house selftest: %s" % ("PASS" if ok else "FAIL", name))
    if not ok:
        FAILED += 1
        print("  exit %d (wanted %d); output:\n%s" % (rc, want_rc, out))


def main():
    base = {"crates/a/src/lib.rs": "pub mod b;\n" + rust_fn("short", 120) + TRICKY,
            "crates/a/src/b.rs": rust_fn("other", 10),
            "deploy/x/one.py": "import two\n\n\ndef f():\n    return two.g()\n",
            "deploy/x/two.py": "def g():\n    return 1\n"}
    expect("a tree within the limits passes", base, 0, "import circles between files (0)")
    expect("a function of 121 lines fails", dict(base, **{"crates/a/src/b.rs": rust_fn("long", 121)}), 1,
           "121  long")
    tests_only = "#[cfg(test)]\nmod tests {\n" + rust_fn("long_test", 200) + "}\n#[test]\n" + rust_fn("t", 150)
    expect("test modules and #[test] functions do not count",
           dict(base, **{"crates/a/src/b.rs": rust_fn("other", 10) + tests_only}), 0)
    expect("a file of 801 lines fails",
           dict(base, **{"crates/a/src/b.rs": "".join(rust_fn("f%d" % i, 89) for i in range(9))}), 1,
           "files over 800 lines (1)")
    circle = dict(base, **{
        "crates/a/src/lib.rs": "pub mod b;\npub mod c;\npub use c::Thing;\n",
        "crates/a/src/b.rs": "use crate::Thing;\npub fn f(_t: Thing) {}\n",
        "crates/a/src/c.rs": "pub struct Thing;\npub fn g() { crate::b::f(Thing) }\n"})
    expect("a Rust circle through a re-export fails", circle, 1, "crates/a/src/b.rs <-> crates/a/src/c.rs")
    expect("a Python circle fails", dict(base, **{"deploy/x/two.py": "import one\n\n\ndef g():\n    return 1\n"}),
           1, "deploy/x/one.py <-> deploy/x/two.py")
    long_py = "def f():\n" + "".join("    x%d = 1\n" % i for i in range(125))
    expect("a Python function of 126 lines fails", dict(base, **{"deploy/x/two.py": long_py}), 1, "126  f")
    print("%d failed" % FAILED)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
