"""Rendering the forensics-volume SSM documents and CloudFormation templates.

Sources (one source of truth, see docs/deploy.md):
  deploy/scripts/*.sh         the shell the Command documents run (also copied to ssm/ on the volume)
  deploy/scripts/plan.py      the runbook's aws:executeScript step
  deploy/documents/*.json     document templates; {"fv:script": FILE, "fv:parameters": {VAR: PARAM}}
                              becomes the runCommand lines, {"fv:python": FILE} the script text
  deploy/cloudformation/*.json  templates; {"fv:document": NAME [, "fv:defaults": {PARAM: value}]}
                              becomes the rendered document (with CloudFormation values as defaults),
                              {"fv:include": FILE} the JSON of cloudformation/FILE

Output (deterministic: same sources, same bytes):
  OUT/ssm/<Document>.json, OUT/ssm/*.sh, OUT/ssm/README.txt
  OUT/cloudformation/forensics-member.json, OUT/cloudformation/forensics-security.json
  OUT/bin/fleet.py (the responder's fleet start, docs/deploy.md "Fleet")

Only the Python standard library is used.
"""

import ast
import copy
import io
import json
import os
import re
import tokenize

DEPLOY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(DEPLOY, "scripts")
DOCUMENTS = os.path.join(DEPLOY, "documents")
CLOUDFORMATION = os.path.join(DEPLOY, "cloudformation")

COMMAND_DOCUMENTS = ["Forensics-MountVolume", "Forensics-CaptureMemory", "Forensics-UnmountVolume",
                     "Forensics-StopCapture"]
AUTOMATION_DOCUMENTS = ["Forensics-CaptureInstanceMemory", "Forensics-ShareForensicsSnapshot"]
DOCUMENTS_ALL = COMMAND_DOCUMENTS + AUTOMATION_DOCUMENTS
TEMPLATES = {"member.json": "forensics-member.json", "security.json": "forensics-security.json"}
# cloudformation/ files that are pieces of the templates ({"fv:include": FILE}), not templates.
TEMPLATE_PARTS = ["key-policy.json"]
SHELL_SCRIPTS = ["mount.sh", "capture.sh", "unmount.sh", "stop.sh"]
RESPONDER_SCRIPTS = ["fleet.py"]

# The toolkit pin (security review L11): the SHA-256 of the volume's
# SHA256SUMS, rendered into the documents whose scripts run binaries from the
# volume (stage-0 runs mount-helper, capture.sh runs capture); they check the
# volume's SHA256SUMS against it and the binary against SHA256SUMS just before
# running it. build.sh renders twice: the documents cannot be listed in the
# SHA256SUMS whose digest they carry, so SHA256SUMS leaves out ssm/*.json.
# Empty when rendered by hand (deploy/render.sh without FV_TOOLKIT_SUMS_SHA256):
# the scripts then say the toolkit is checked only against itself.
PIN_VAR = "FV_TOOLKIT_SUMS_SHA256"
PINNED_SCRIPTS = ("mount.sh", "capture.sh")
_toolkit_sums = {"sha256": ""}


def set_toolkit_sums(digest):
    """Pin the documents to this SHA256SUMS digest ("" for none)."""
    digest = (digest or "").strip().lower()
    if digest and not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise RenderError("%s %r is not a SHA-256 (64 hex digits)" % (PIN_VAR, digest))
    _toolkit_sums["sha256"] = digest


RENDER_NOTE = ("# Rendered by deploy/render.sh from deploy/scripts/%s (the same file is ssm/%s "
               "on the volume). Edit that file, not this document.")
PARAM_NOTE = "# SSM substitutes these parameters; each value is constrained by the document's allowedPattern."
# The SSM agent replaces {{ Name }} (spaces optional) with the parameter's value.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_:.]+)\s*\}\}")


class RenderError(Exception):
    """A source that cannot be rendered: names the file and what is wrong."""


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_json(path):
    try:
        return json.loads(read_text(path))
    except (OSError, ValueError) as e:
        raise RenderError("%s: %s" % (path, e)) from e


def dump_json(obj, indent=2):
    return json.dumps(obj, indent=indent, ensure_ascii=False) + "\n"


def script_lines(script, parameters, document):
    """runCommand lines: the script's shebang, a note, one assignment per
    SSM parameter, then the rest of the script exactly as in the file."""
    text = read_text(os.path.join(SCRIPTS, script))
    if "{{" in text or "}}" in text:
        raise RenderError("deploy/scripts/%s contains '{{' or '}}', which SSM would treat as a parameter" % script)
    if "\r" in text or not text.endswith("\n"):
        raise RenderError("deploy/scripts/%s must use LF line ends and end with a newline" % script)
    lines = text[:-1].split("\n")
    if not lines[0].startswith("#!"):
        raise RenderError("deploy/scripts/%s must start with a #! line" % script)
    declared = document.get("parameters", {})
    prologue = [RENDER_NOTE % (script, script), PARAM_NOTE]
    for var, param in parameters.items():
        if not re.fullmatch(r"FV_[A-Z0-9_]+", var):
            raise RenderError("%s: variable %r is not FV_*" % (script, var))
        if param not in declared:
            raise RenderError("%s: parameter %r is not declared by the document" % (script, param))
        prologue.append("%s='{{ %s }}'" % (var, param))
    if script in PINNED_SCRIPTS:
        prologue.append("%s='%s'" % (PIN_VAR, _toolkit_sums["sha256"]))
    return [lines[0]] + prologue + lines[1:]


def source_of_lines(lines):
    """Inverse of script_lines: the script file's text, or None if the lines
    are not shaped like a rendered script."""
    if len(lines) < 3 or not lines[1].startswith("# Rendered by deploy/render.sh") or lines[2] != PARAM_NOTE:
        return None
    i = 3
    while i < len(lines) and re.fullmatch(r"FV_[A-Z0-9_]+='\{\{ [A-Za-z0-9]+ \}\}'", lines[i]):
        i += 1
    if i < len(lines) and re.fullmatch(PIN_VAR + r"='([0-9a-f]{64})?'", lines[i]):
        i += 1
    return "\n".join([lines[0]] + lines[i:]) + "\n"


# SSM's document size limit: "The content of the document must not exceed
# 64KB" (CreateDocument, Content; MaxDocumentSizeExceeded: "The size limit
# of a document is 64 KB"; the quota "also includes the content specified
# for input parameters at runtime"). check.py asserts every rendered
# document, as written to ssm/ (indented: the larger form), stays under the
# limit by SIZE_MARGIN, room for the runtime parameter values (CaseId, Note,
# ... together well under 2 KB) and for growth. Sources:
# https://docs.aws.amazon.com/botocore/latest/reference/services/ssm/client/exceptions/MaxDocumentSizeExceeded.html
# https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ssm/aws.sdk.kotlin.services.ssm.model/-create-document-request/content.html
SSM_DOCUMENT_LIMIT = 64 * 1024
SIZE_MARGIN = 4 * 1024


def _docstring_owners(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                yield node, first


def without_docstrings(tree):
    """The tree with every docstring removed (a body left empty gets pass)."""
    for node, first in list(_docstring_owners(tree)):
        node.body = node.body[1:] or [ast.Pass()]
    return tree


def narrow(line):
    """A line's indentation, four spaces a level, as one space a level (a
    continuation line's indentation means nothing to Python)."""
    body = line.lstrip(" ")
    return " " * ((len(line) - len(body)) // 4) + body


def single_quoted(text):
    """TEXT with every one-line string literal in double quotes that holds
    no quote or backslash written in single quotes: the same string, but a
    JSON document escapes each double quote (two bytes), so the runbook
    carrying the handler is smaller (about 1.5 KB)."""
    lines = text.split("\n")
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        m = re.fullmatch(r'([rRbBuU]{0,2})"([^"\'\\\n]*)"', tok.string) if tok.type == tokenize.STRING else None
        if m:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col] + "%s'%s'" % m.groups() + lines[row - 1][tok.end[1]:]
    return "\n".join(lines)


def strip_python(text, name):
    """The Python handler as inlined into a runbook: comment-only lines,
    trailing comments, blank lines and docstrings removed, and indentation
    one space a level instead of four, to keep the runbook under SSM's
    64 KB (the file in deploy/scripts keeps them). The
    result must parse to the same syntax tree as the source minus its
    docstrings (ast.dump ignores line numbers; string literals are
    requoted, single_quoted): the same program, so what
    the drills execute, the rendered document, behaves as the source does."""
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise RenderError("deploy/scripts/%s: %s" % (name, e)) from e
    drop, replace = set(), {}
    for node, first in _docstring_owners(tree):
        drop.update(range(first.lineno, first.end_lineno + 1))
        if len(node.body) == 1:
            replace[first.lineno] = " " * first.col_offset + "pass"
    keep, comments = set(), {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.start[0] != tok.end[0] and tok.type != tokenize.NL:
            keep.update(range(tok.start[0] + 1, tok.end[0] + 1))  # inside a multi-line token
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.start[1]
    out = []
    for i, line in enumerate(text.split("\n"), 1):
        if i in replace:
            out.append(narrow(replace[i]))
        elif i in drop:
            continue
        elif i in keep:
            out.append(line)
        else:
            if i in comments:
                line = line[:comments[i]].rstrip()
            if line.strip():
                out.append(narrow(line))
    stripped = single_quoted("\n".join(out) + "\n")
    try:
        same = ast.dump(ast.parse(stripped)) == ast.dump(without_docstrings(ast.parse(text)))
    except SyntaxError:
        same = False
    if not same:
        raise RenderError("deploy/scripts/%s: stripping comments changed the program; keep that comment "
                          "on its own line" % name)
    return stripped


def _expand(node, document):
    if isinstance(node, dict):
        if "fv:script" in node:
            return script_lines(node["fv:script"], node.get("fv:parameters", {}), document)
        if "fv:python" in node:
            text = read_text(os.path.join(SCRIPTS, node["fv:python"]))
            if "{{" in text or "}}" in text:
                raise RenderError("deploy/scripts/%s contains '{{' or '}}', which SSM would substitute" % node["fv:python"])
            return strip_python(text, node["fv:python"])
        return {k: _expand(v, document) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, document) for v in node]
    return node


def render_document(name):
    """The final SSM document NAME as a JSON-ready object."""
    template = load_json(os.path.join(DOCUMENTS, name + ".json"))
    return _expand(template, template)


def _embed(node, documents):
    if isinstance(node, dict):
        if "fv:include" in node:
            return _embed(load_json(os.path.join(CLOUDFORMATION, node["fv:include"])), documents)
        if "fv:document" in node:
            name = node["fv:document"]
            if name not in documents:
                raise RenderError("CloudFormation template names unknown document %r" % name)
            doc = copy.deepcopy(documents[name])
            for param, value in node.get("fv:defaults", {}).items():
                if param not in doc.get("parameters", {}):
                    raise RenderError("fv:defaults names %r, not a parameter of %s" % (param, name))
                doc["parameters"][param]["default"] = value
            return doc
        return {k: _embed(v, documents) for k, v in node.items()}
    if isinstance(node, list):
        return [_embed(v, documents) for v in node]
    return node


def render_all():
    """Every output file: {relative path: (text, mode)}."""
    documents = {name: render_document(name) for name in DOCUMENTS_ALL}
    out = {}
    for name, doc in documents.items():
        # Automation documents one value per line, unindented: the runbook
        # must stay under SSM's 64 KB (SSM_DOCUMENT_LIMIT) and indentation
        # alone cost 8 KB of it; deploy/documents keeps the readable form.
        out["ssm/%s.json" % name] = (dump_json(doc, 0 if name in AUTOMATION_DOCUMENTS else 2), 0o644)
    for script in SHELL_SCRIPTS:
        out["ssm/" + script] = (read_text(os.path.join(SCRIPTS, script)), 0o755)
    out["ssm/README.txt"] = (read_text(os.path.join(DEPLOY, "ssm-README.txt")), 0o644)
    # The responder's tools, run in the security account (AWS CloudShell: Python 3 and boto3).
    for script in RESPONDER_SCRIPTS:
        out["bin/" + script] = (read_text(os.path.join(SCRIPTS, script)), 0o755)
    for src, dst in TEMPLATES.items():
        template = load_json(os.path.join(CLOUDFORMATION, src))
        out["cloudformation/" + dst] = (dump_json(_embed(template, documents)), 0o644)
    return out


def write_all(outdir):
    files = render_all()
    for sub in ("ssm", "cloudformation", "bin"):
        path = os.path.join(outdir, sub)
        if os.path.islink(path):
            raise RenderError("%s is a symlink: refusing" % path)
        if os.path.isdir(path):
            for entry in sorted(os.listdir(path)):
                os.unlink(os.path.join(path, entry))
        else:
            os.makedirs(path, mode=0o755)
    for rel in sorted(files):
        text, mode = files[rel]
        path = os.path.join(outdir, rel)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(path, mode)
    return sorted(files)
