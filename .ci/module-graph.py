#!/usr/bin/env python3
"""Fails if the modules of a crate's src/ folder depend on each other in a cycle.

Usage: module-graph.py DIR...  Each DIR is a crate's src/: a module is a file (a.rs, or a
folder a/ with mod.rs; its files are that module's children and count as it), and it depends
on every module `crate::NAME` names in its code (comments left out). `make check` runs this on
ext/src and sync-daemon/src: a one-way graph lets a reader follow a path file by file.
"""
import re
import sys
from pathlib import Path


def modules(src: Path):
    deps = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src)
        name = rel.parts[0].removesuffix(".rs")
        if name in ("lib", "main"):
            continue
        code = "\n".join(line.split("//")[0] for line in f.read_text().splitlines())
        used = set(re.findall(r"crate::([a-z_][a-z0-9_]*)", code))
        used |= {m for group in re.findall(r"crate::\{([^}]*)\}", code) for m in re.findall(r"\b([a-z_][a-z0-9_]*)\b", group)}
        deps.setdefault(name, set()).update(used - {name})
    return {m: {d for d in ds if d in deps} for m, ds in deps.items()}


def cycle(deps):
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(deps[m]):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(deps):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


bad = False
for arg in sys.argv[1:]:
    deps = modules(Path(arg))
    found = cycle(deps)
    if found:
        print(f"module-graph: {arg}: cycle {' -> '.join(found)}")
        bad = True
    else:
        print(f"module-graph: {arg}: {len(deps)} modules, no cycle")
sys.exit(1 if bad else 0)
