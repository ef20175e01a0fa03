"""The shape of src/ that docs/architecture.md draws: no include cycle
among the units, and every header includes only headers of the layers
below its own. The layers are read from the document itself (its block
between the "layers:" markers), so the drawing and the code cannot part.

A unit is a .c file with its header of the same name; a private header
that belongs to a family (meta_backend.h) counts as its family's unit,
as the document says."""
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SRC = os.path.join(ROOT, "src")
DOC = os.path.join(ROOT, "docs", "architecture.md")

INCLUDE = re.compile(r'^#\s*include\s+"([^"]+)\.h"', re.M)


def doc_layers():
    """{unit: (layer number, layer name)} and {header: unit} for headers
    that belong to another unit, from the document's layer block."""
    text = open(DOC, encoding="utf-8").read()
    m = re.search(r"<!-- layers: -->\n```\n(.*?)```\n<!-- :layers -->",
                  text, re.S)
    assert m, "docs/architecture.md lost its layer block"
    layers, owner = {}, {}
    for line in m.group(1).splitlines():
        if not line.strip():
            continue
        lm = re.match(r"^(\d+)\s+(\S+)\s*:\s*(.*)$", line)
        assert lm, "unreadable layer line: %r" % line
        n, name = int(lm.group(1)), lm.group(2)
        for word in lm.group(3).split():
            # "meta(meta_backend,meta_sql)": headers of the meta family
            um = re.match(r"^([a-z0-9_]+)(?:\(([a-z0-9_,]+)\))?$", word)
            assert um, "unreadable unit %r" % word
            unit = um.group(1)
            assert unit not in layers, "%s is in two layers" % unit
            layers[unit] = (n, name)
            for h in (um.group(2) or "").split(","):
                if h:
                    owner[h] = unit
    return layers, owner


def includes():
    """{file name: [included header stems]} for src/*.c and src/*.h."""
    out = {}
    for f in sorted(os.listdir(SRC)):
        if f.endswith((".c", ".h")):
            text = open(os.path.join(SRC, f), encoding="utf-8").read()
            out[f] = INCLUDE.findall(text)
    return out


def unit_of(stem, owner):
    return owner.get(stem, stem)


def test_every_unit_has_a_layer():
    layers, owner = doc_layers()
    units = {unit_of(f[:-2], owner) for f in includes()}
    missing = sorted(units - set(layers))
    assert not missing, ("units without a layer in docs/architecture.md: "
                         + ", ".join(missing))
    gone = sorted(set(layers) - units)
    assert not gone, ("docs/architecture.md names units that do not "
                      "exist: " + ", ".join(gone))


def test_no_include_cycle_among_units():
    _, owner = doc_layers()
    graph = {}
    for f, incs in includes().items():
        u = unit_of(f[:-2], owner)
        graph.setdefault(u, set())
        for h in incs:
            v = unit_of(h, owner)
            if v != u:
                graph[u].add(v)
    # depth-first search with colours; report the first cycle found
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                cyc = stack[stack.index(v):] + [v]
                raise AssertionError("include cycle: " + " -> ".join(cyc))
            if not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if not state.get(u):
            visit(u)


def test_headers_include_only_lower_layers():
    layers, owner = doc_layers()
    bad = []
    for f, incs in includes().items():
        if not f.endswith(".h"):
            continue
        u = unit_of(f[:-2], owner)
        for h in incs:
            v = unit_of(h, owner)
            if v == u or v not in layers or u not in layers:
                continue
            if layers[v][0] >= layers[u][0]:
                bad.append("%s (%s) includes %s.h (%s)" %
                           (f, layers[u][1], h, layers[v][1]))
    assert not bad, "headers reaching sideways or up:\n" + "\n".join(bad)
