"""A process and everything below it, read from /proc (Linux): what the benchmarks sample for
memory (smaps_rollup) and CPU (stat) so that worker processes count with their parent."""

from __future__ import annotations

import os


def process_tree(root: int) -> list[int]:
    """`root` first, then every live process below it (children, their children, ...). A
    process that ends while /proc is read is left out."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:  # bounded: a tree is finite, and each pid has one parent
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out
