#!/usr/bin/env python3
"""Runs a command and writes "<wall seconds> <peak MB>" to OUT, the peak being the largest total
resident memory of the command and every process it started (labelforge's llama.cpp servers are
its children; `/usr/bin/time` would report only the largest single process), sampled every 0.1 s.

    tree_rss.py OUT command [args…]     (the command's exit status is this script's)"""
import os, subprocess, sys, time


def tree_rss_kb(root):
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


out, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
process = subprocess.Popen(command)
peak = 0
while process.poll() is None:
    peak = max(peak, tree_rss_kb(process.pid))
    time.sleep(0.1)
with open(out, "w") as f:
    f.write(f"{time.perf_counter() - start:.2f} {peak / 1024:.0f}\n")
sys.exit(process.returncode)
