#!/usr/bin/env python3
"""Fails when a function (or init) in the run kernel or the run modes is longer than 80 lines
(issue 23: the orchestration stays readable). Counts from the declaration to its closing brace by
brace depth, string literals and line comments ignored.
Usage: scripts/check_function_length.py [LIMIT] [DIR ...]"""
import os
import re
import sys

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 80
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
dirs = sys.argv[2:] or [
    os.path.join(root, "Sources/LabelForgeKernel"),
    os.path.join(root, "Sources/LabelForgePipelines/Modes"),
]
declaration = re.compile(
    r"^\s*(?:@\w+\s+)*(?:(?:public|private|fileprivate|internal|package|static|mutating|nonisolated|override|final|convenience)\s+)*"
    r"(?:func\s+\w+|init[?!]?)\s*[(<]")
too_long = []
for directory in dirs:
    for base, _, names in os.walk(directory):
        for name in sorted(n for n in names if n.endswith(".swift")):
            path = os.path.join(base, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            for start, line in enumerate(lines):
                if not declaration.match(line):
                    continue
                depth, opened, end = 0, False, start
                while end < len(lines):
                    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', lines[end].split("//")[0])
                    depth += code.count("{") - code.count("}")
                    opened = opened or "{" in code
                    if opened and depth <= 0:
                        break
                    end += 1
                if end - start + 1 > limit:
                    too_long.append(f"{os.path.relpath(path, root)}:{start + 1}: {end - start + 1} lines: {line.strip()[:70]}")
if too_long:
    print(f"functions over {limit} lines (split them):")
    print("\n".join(too_long))
    sys.exit(1)
print(f"functions: none over {limit} lines in the kernel and the modes")
