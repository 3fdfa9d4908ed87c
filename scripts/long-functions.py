#!/usr/bin/env python3
"""Lists functions in src/ longer than a limit (default 80 lines of code: blank lines and
`//` comments do not count), longest first.

rustfmt-formatted code only: a function ends at the first line after its signature that is a
closing brace at the signature's indentation. Functions inside `#[cfg(test)]` modules are
skipped: the limit is for the paths users run. Exit status 1 when any function is over.
"""
import os
import re
import sys

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 80
FN = re.compile(r'^(\s*)(pub(\([a-z]+\))? )?(const )?(unsafe )?fn ([a-z_0-9]+)')
found = []
for root, _, files in os.walk('src'):
    for name in files:
        if not name.endswith('.rs'):
            continue
        path = os.path.join(root, name)
        lines = open(path, encoding='utf-8').read().split('\n')
        test_from = next((i for i, l in enumerate(lines) if l.startswith('#[cfg(test)]')), len(lines))
        for i, line in enumerate(lines[:test_from]):
            m = FN.match(line)
            if not m or line.rstrip().endswith(';'):
                continue
            indent = m.group(1)
            for j in range(i + 1, len(lines)):
                if lines[j] == indent + '}':
                    body = lines[i:j + 1]
                    length = sum(1 for l in body if l.strip() and not l.strip().startswith('//'))
                    if length > LIMIT:
                        found.append((length, f'{path}:{i + 1}', m.group(6)))
                    break
for length, where, fn in sorted(found, reverse=True):
    print(f'{length:5} {where} {fn}')
sys.exit(1 if found else 0)
