#!/usr/bin/env python3
"""Turn a rendered SSM Command document into the script the SSM agent runs.

    ssm_extract.py DOC [Name=value ...]      the script, on stdout
    ssm_extract.py --params DOC              the document's parameters

What the agent does with a schema 2.2 document's aws:runShellScript step, and
what this does the same way:
- parameter values are checked against the parameter's allowedValues and
  allowedPattern (the agent/SSM API rejects the command otherwise); unknown
  parameter names are rejected; a parameter without a value takes its default,
  and one with neither is an error;
- every {{ Name }} (spaces optional) in runCommand is replaced textually by
  the value, nothing quoted or escaped;
- the runCommand lines are joined with newlines into the script file.
The document is JSON or YAML (YAML needs PyYAML: Debian's python3-yaml).
Exit status 2 on any error, with the reason on stderr.
"""
import json
import re
import sys

PARAM_RE = re.compile(r"\{\{\s*([A-Za-z0-9_.:/-]+)\s*\}\}")


class DocError(Exception):
    pass


def load(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml  # noqa: PLC0415
        except ImportError as e:
            raise DocError(f"{path} is YAML and PyYAML is missing (apt-get install python3-yaml)") from e
        doc = yaml.safe_load(text)
    else:
        doc = json.loads(text)
    if not isinstance(doc, dict):
        raise DocError(f"{path}: not an SSM document (top level is not a mapping)")
    if doc.get("schemaVersion") != "2.2":
        raise DocError(f"{path}: schemaVersion is {doc.get('schemaVersion')!r}, expected '2.2' (Command document)")
    return doc


def shell_step(doc, path):
    steps = [s for s in doc.get("mainSteps", []) if s.get("action") == "aws:runShellScript"]
    if len(steps) != 1:
        raise DocError(f"{path}: expected exactly one aws:runShellScript step, found {len(steps)}")
    cmd = steps[0].get("inputs", {}).get("runCommand")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd) or not cmd:
        raise DocError(f"{path}: step {steps[0].get('name')!r} has no runCommand list of strings")
    return steps[0], cmd


def resolve(doc, given, path):
    params = doc.get("parameters", {}) or {}
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise DocError(f"{path}: no such parameter(s) {', '.join(unknown)} (the document has {', '.join(sorted(params))})")
    values = {}
    for name, spec in params.items():
        ptype = spec.get("type", "String")
        if name in given:
            value = given[name]
        elif "default" in spec:
            value = spec["default"]
        else:
            raise DocError(f"{path}: parameter {name} has no default and no value was given")
        if ptype == "StringList":
            items = value if isinstance(value, list) else [value]
            # SSM substitutes a StringList as its items joined by ", ".
            check_values(name, spec, items, path)
            values[name] = ", ".join(str(i) for i in items)
        elif ptype in ("String", "Integer", "Boolean"):
            value = str(value).lower() if isinstance(value, bool) else str(value)
            check_values(name, spec, [value], path)
            values[name] = value
        else:
            raise DocError(f"{path}: parameter {name} has type {ptype}, which this bench does not substitute")
    return values


def check_values(name, spec, items, path):
    for v in items:
        allowed = spec.get("allowedValues")
        if allowed is not None and v not in [str(a) for a in allowed]:
            raise DocError(f"{path}: {name}={v!r} is not one of the allowedValues {allowed}")
        pattern = spec.get("allowedPattern")
        if pattern is not None and re.search(pattern, v) is None:
            raise DocError(f"{path}: {name}={v!r} does not match allowedPattern {pattern!r}")


def render(path, given):
    return render_doc(load(path), given, path)


def render_doc(doc, given, path):
    """The script of an already loaded document DOC (PATH names it in errors)."""
    if not isinstance(doc, dict) or doc.get("schemaVersion") != "2.2":
        raise DocError(f"{path}: not a schema 2.2 Command document")
    _, lines = shell_step(doc, path)
    values = resolve(doc, given, path)

    def sub(m):
        key = m.group(1)
        if key not in values:
            raise DocError(f"{path}: runCommand refers to {{{{ {key} }}}}, which is not a parameter of the document")
        return values[key]

    return "\n".join(PARAM_RE.sub(sub, line) for line in lines) + "\n"


def main(argv):
    try:
        if len(argv) >= 2 and argv[0] == "--params":
            doc = load(argv[1])
            for name, spec in (doc.get("parameters") or {}).items():
                print(name, json.dumps(spec.get("default")), spec.get("allowedPattern", ""))
            return 0
        if not argv:
            print(__doc__, file=sys.stderr)
            return 2
        given = {}
        for a in argv[1:]:
            if "=" not in a:
                raise DocError(f"parameter {a!r} is not Name=value")
            k, v = a.split("=", 1)
            given[k] = v
        sys.stdout.write(render(argv[0], given))
        return 0
    except (OSError, ValueError, DocError) as e:
        print(f"ssm_extract: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
