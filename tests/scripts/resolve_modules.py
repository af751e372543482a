#!/usr/bin/env python3
"""Kernel modules NAME... -> their .ko paths in load order (dependencies first), read from each
module's depends= field (an extracted linux-image deb has no modules.dep).
usage: resolve_modules.py KMOD_DIR NAME..."""
import os
import re
import sys

kmod, names = sys.argv[1], sys.argv[2:]
index = {}
for d, _, files in os.walk(kmod):
    for f in files:
        if f.endswith(".ko"):
            index[f[:-3].replace("-", "_")] = os.path.join(d, f)
order, seen = [], set()


def deps(path):
    m = re.search(rb"\x00depends=([^\x00]*)", b"\x00" + open(path, "rb").read())
    return [x for x in m.group(1).decode().split(",") if x] if m else []


def visit(name):
    name = name.replace("-", "_")
    if name in seen:
        return
    seen.add(name)
    if name not in index:
        sys.exit("module %s not found under %s" % (name, kmod))
    for d in deps(index[name]):
        visit(d)
    order.append(index[name])


for n in names:
    visit(n)
print("\n".join(order))
