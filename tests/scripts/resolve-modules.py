#!/usr/bin/env python3
# resolve-modules.py KMOD NAME... -> module paths in load order (dependencies first), from the
# depends= field of each .ko under KMOD (the extracted deb has no modules.dep). Used for the L3
# initramfs (build-images.sh) and the Xen suite's Linux guest (tests/xen/build-linux-cd.sh).
import os, sys, re
kmod, names = sys.argv[1], sys.argv[2:]
index = {}
for d, _, files in os.walk(kmod):
    for f in files:
        if f.endswith('.ko'):
            index[f[:-3].replace('-', '_')] = os.path.join(d, f)
order, seen = [], set()
def deps(path):
    data = open(path, 'rb').read()
    m = re.search(rb'\x00depends=([^\x00]*)', b'\x00' + data)
    return [x for x in m.group(1).decode().split(',') if x] if m else []
def visit(n):
    n = n.replace('-', '_')
    if n in seen: return
    seen.add(n)
    if n not in index: sys.exit("module %s not found under %s" % (n, kmod))
    for d in deps(index[n]): visit(d)
    order.append(index[n])
for n in names: visit(n)
print("\n".join(order))
