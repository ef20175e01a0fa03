#!/usr/bin/env python3
"""check-refs.py [PATH...] - the design references of the sources resolve.

Comments cite the repository's own documents as
    docs/<file>.md "<section heading>"
(several headings may follow one file: docs/x.md "A", "B"), and the Glare
endpoints by their ids (E1..E18 of docs/glare-contract.md "Endpoints").
This checks, in every text file under PATH (default: src lua tests docs
README.md), that each cited docs file exists and has each cited heading (or a
heading that starts with the cited words),
that each endpoint id is in the endpoint table, and that no citation of a
document outside the repository (a "§" section number) is left. A
citation may wrap across comment lines.

Prints each broken reference, then "refs: N resolved, N broken"; exits 1
if any is broken.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
DEFAULT = ["src", "lua", "tests", "docs", "README.md"]
SKIP_DIRS = {"corpus", "__pycache__"}
EXTS = {".c", ".h", ".lua", ".py", ".md", ".sh", ".txt"}

# a newline plus the next line's indentation and comment leader
WRAP = re.compile(r"\s*\n[ \t]*(?:\*(?!/)|--+|#+|//)?[ \t]*")
CITE = re.compile(r'docs/([\w.-]+\.md)((?:,?\s+"[^"\n]+")*)')
HEAD = re.compile(r'"([^"\n]+)"')
EID = re.compile(r"(?<![%\w])E(\d{1,2})(?:\s*[-\u2013/]\s*E(\d{1,2}))?(?!\w)")
OLD = re.compile(r"\u00a7")


def headings(path, cache={}):
    if path not in cache:
        hs = set()
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    m = re.match(r"#+\s+(.*?)\s*#*\s*$", line)
                    if m:
                        hs.add(m.group(1))
        except OSError:
            hs = None
        cache[path] = hs
    return cache[path]


def endpoint_ids():
    ids = set()
    with open(os.path.join(ROOT, "docs", "glare-contract.md"),
              encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\|\s*E(\d+)\s*\|", line)
            if m:
                ids.add(int(m.group(1)))
    return ids


def files(paths):
    for p in paths:
        full = os.path.join(ROOT, p)
        if os.path.isfile(full):
            yield full
            continue
        for d, dirs, names in os.walk(full):
            dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS)
            for n in sorted(names):
                if os.path.splitext(n)[1] in EXTS:
                    yield os.path.join(d, n)


def main(argv):
    ok = bad = 0
    eids = endpoint_ids()
    for path in files(argv or DEFAULT):
        rel = os.path.relpath(path, ROOT)
        try:
            with open(path, encoding="utf-8") as f:
                raw = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        text = WRAP.sub(" ", raw)
        for m in OLD.finditer(raw):
            line = raw.count("\n", 0, m.start()) + 1
            print(f"{rel}:{line}: a section number of a document outside"
                  " the repository")
            bad += 1
        for m in CITE.finditer(text):
            doc = os.path.join(ROOT, "docs", m.group(1))
            hs = headings(doc)
            if hs is None:
                print(f"{rel}: docs/{m.group(1)}: no such file")
                bad += 1
                continue
            for h in HEAD.findall(m.group(2)):
                # a heading may be cited by its first words
                if any(x == h or (x.startswith(h) and not x[len(h)].isalnum())
                       for x in hs):
                    ok += 1
                else:
                    print(f'{rel}: docs/{m.group(1)} has no section "{h}"')
                    bad += 1
            if not HEAD.findall(m.group(2)):
                ok += 1
        if rel.startswith("docs/glare-contract.md"):
            continue
        for m in EID.finditer(text):
            for g in m.groups():
                if g is None:
                    continue
                if int(g) in eids:
                    ok += 1
                else:
                    print(f"{rel}: E{g} is not an endpoint of"
                          ' docs/glare-contract.md "Endpoints"')
                    bad += 1
    print(f"refs: {ok} resolved, {bad} broken")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
