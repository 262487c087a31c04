#!/usr/bin/env python3
"""Module-level import cycles in a Rust crate: the crate's top-level modules
(`src/X.rs` or `src/X/`, every file below `src/X/` belonging to `X`) and its
root (`lib`), with an edge A -> B when a file of A names `crate::B...` (or
`crate::{B, ...}`), an edge A -> lib when it names an item of the root
(`crate::Item`), and edges lib -> B for the root's `use`s of `B::...`.
Comments and `#[cfg(test)]` modules are left out (tests may reach anywhere).

usage: module-cycles.py <crate dir>...   exit 1 when any crate has a cycle.
"""
import re
import sys
from pathlib import Path


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def strip_test_modules(text):
    out, i = [], 0
    pat = re.compile(r"#\[cfg\(test\)\]\s*(#\[[^\]]*\]\s*)*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{")
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j


def first_segments(inner):
    names, depth, start = set(), 0, 0
    for k, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            m = re.match(r"\s*(\w+)", inner[start:k])
            if m:
                names.add(m.group(1))
            start = k + 1
    return names


def refs(text, prefix):
    names = set()
    for m in re.finditer(r"(?<![\w:])" + prefix + r"(\{|\w+)", text):
        if m.group(1) != "{":
            names.add(m.group(1))
            continue
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        names |= first_segments(text[m.end():j - 1])
    return names


def graph(src):
    root = src / ("lib.rs" if (src / "lib.rs").exists() else "main.rs")
    modules = {p.stem for p in src.glob("*.rs")} | {p.name for p in src.iterdir() if p.is_dir()}
    modules -= {"lib", "main"}
    edges = {m: set() for m in modules | {"lib"}}
    for path in src.rglob("*.rs"):
        rel = path.relative_to(src)
        owner = "lib" if path == root else (rel.parts[0] if len(rel.parts) > 1 else path.stem)
        if owner not in edges:
            continue
        text = strip_test_modules(strip_comments(path.read_text()))
        for name in refs(text, r"crate::"):
            target = name if name in modules else "lib"
            if target != owner:
                edges[owner].add(target)
        if owner == "lib":
            for name in refs(text, r"use\s+") | refs(text, r"pub\s+use\s+"):
                if name in modules:
                    edges["lib"].add(name)
    return edges


def cycles(edges):
    found, seen = [], set()

    def dfs(node, stack):
        for nxt in sorted(edges[node]):
            if nxt in stack:
                cyc = stack[stack.index(nxt):]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    found.append(cyc + [nxt])
            elif len(stack) < 12:
                dfs(nxt, stack + [nxt])

    for start in sorted(edges):
        dfs(start, [start])
    return found


def main():
    bad = False
    for crate in sys.argv[1:]:
        found = cycles(graph(Path(crate) / "src"))
        for c in found:
            print(f"{crate}: {' -> '.join(c)}")
        if not found:
            print(f"{crate}: no module cycles")
        bad |= bool(found)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
