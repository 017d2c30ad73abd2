#!/usr/bin/env python3
"""Runs every curl example of the README and of docs/*.md against a running test-run and checks each answer against the
answer the page shows under it (the '# ' lines after a command): the same JSON shape (every member it shows, of the
same type; '…' stands for any value, for members or events left out), the same status line for 'curl -i', the same
events for a stream. A page's blocks run in its order in one shell of its own, so a variable set by one command
(KEY_ID=…) serves the next; the pages run in the order given, against one gateway, so a page may build on what the ones
before it did (the README's key of user 7, user 42's demo completions). Blocks without a curl of localhost:8080 (a
deployment's hosts, another server) are not run.

usage: readme-examples.py PORT README.md [docs/page.md …]
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ANY = object()  # '…' as a value


class Open(dict):
    """An object or event list the README shows in part ('…' among its members)."""


class OpenList(list):
    pass


def parse_shown(text):
    """The README's JSON with '…' in it: a value ('"…"', '"cmpl-…"', '…'), or members and elements left out."""
    pos = 0

    def skip():
        nonlocal pos
        while pos < len(text) and text[pos] in ' \t\r\n':
            pos += 1

    def value():
        nonlocal pos
        skip()
        if text.startswith('…', pos):
            pos += 1
            return ANY
        c = text[pos]
        if c == '{':
            pos += 1
            members, open_ = {}, False
            while True:
                skip()
                if text[pos] == '}':
                    pos += 1
                    break
                if text.startswith('…', pos):
                    pos += 1
                    open_ = True
                else:
                    key = json_string()
                    skip()
                    assert text[pos] == ':', f"':' expected at {pos} in {text!r}"
                    pos += 1
                    members[key] = value()
                skip()
                if text[pos] == ',':
                    pos += 1
            return Open(members) if open_ else members
        if c == '[':
            pos += 1
            elements, open_ = [], False
            while True:
                skip()
                if text[pos] == ']':
                    pos += 1
                    break
                v = value()
                if v is ANY:
                    open_ = True
                else:
                    elements.append(v)
                skip()
                if text[pos] == ',':
                    pos += 1
            return OpenList(elements) if open_ else elements
        if c == '"':
            s = json_string()
            return ANY if '…' in s else s
        m = re.compile(r'-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null').match(text, pos)
        assert m, f"a value expected at {pos} in {text!r}"
        pos = m.end()
        return json.loads(m.group(0))

    def json_string():
        nonlocal pos
        m = re.compile(r'"(?:[^"\\]|\\.)*"').match(text, pos)
        assert m, f"a string expected at {pos} in {text!r}"
        pos = m.end()
        return json.loads(m.group(0))

    shown = value()
    skip()
    assert pos == len(text), f"more after the JSON at {pos} in {text!r}"
    return shown


def kind(v):
    if isinstance(v, bool):
        return 'boolean'
    if isinstance(v, (int, float)):
        return 'number'
    if v is None:
        return 'null'
    if isinstance(v, str):
        return 'string'
    if isinstance(v, list):
        return 'array'
    return 'object'


def mismatches(shown, actual, where='$'):
    """What of the shown shape the actual answer lacks."""
    if shown is ANY:
        return []
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return [f"{where}: an object is shown, the answer has {kind(actual)}"]
        found = []
        for key, member in shown.items():
            if key not in actual:
                found.append(f"{where}.{key}: shown, missing from the answer")
            else:
                found += mismatches(member, actual[key], f"{where}.{key}")
        if not isinstance(shown, Open):
            found += [f"{where}.{key}: in the answer, not shown (and no '…')" for key in actual if key not in shown]
        return found
    if isinstance(shown, list):
        if not isinstance(actual, list):
            return [f"{where}: an array is shown, the answer has {kind(actual)}"]
        if not isinstance(shown, OpenList) and len(shown) != len(actual):
            return [f"{where}: {len(shown)} elements shown, the answer has {len(actual)}"]
        found = []
        for i, element in enumerate(shown):
            if i >= len(actual):
                found.append(f"{where}[{i}]: shown, missing from the answer")
            else:
                found += mismatches(element, actual[i], f"{where}[{i}]")
        return found
    if kind(shown) != kind(actual) and not (shown is None or actual is None):
        return [f"{where}: {kind(shown)} shown ({shown!r}), the answer has {kind(actual)} ({actual!r})"]
    return []


def check(shown, output):
    """Empty when the output has the shown answer's shape, else what differs."""
    output = output.strip()
    if re.match(r'HTTP/\S+ \d{3}', shown):
        status_line = output.splitlines()[0].strip() if output else ''
        expected = shown.split()[1]
        actual = status_line.split()[1] if len(status_line.split()) > 1 else ''
        return [] if actual == expected else [f"status {expected} shown, the answer's first line is {status_line!r}"]
    if shown.startswith('data:'):
        events = [line[len('data:'):].strip() for line in output.splitlines() if line.startswith('data:')]
        found, at = [], 0
        for piece in re.split(r'\s*(?=data:)', shown):
            piece = piece.strip()
            if not piece.startswith('data:'):
                continue
            expected = parse_shown(piece[len('data:'):].strip().rstrip('…').strip())
            while at < len(events):
                try:
                    if not mismatches(expected, json.loads(events[at])):
                        break
                except json.JSONDecodeError:
                    pass
                at += 1
            if at == len(events):
                found.append(f"no event like {piece!r} (in order) among {len(events)} events: {events[:3]}…")
                break
            at += 1
        return found
    try:
        actual = json.loads(output)
    except json.JSONDecodeError:
        return [f"JSON shown, the answer is not JSON: {output[:300]!r}"]
    return mismatches(parse_shown(shown), actual)


def examples(readme):
    """(line, command, shown answer or None) for each command of each bash block that has a curl of the API."""
    found, block, start = [], None, 0
    for number, line in enumerate(open(readme, encoding='utf-8'), 1):
        line = line.rstrip('\n')
        if line.startswith('```'):
            if block is None:
                block, start = ([] if line.strip() in ('```bash', '```sh', '```shell') else None), number
                if block is None:
                    block = 'other'
            else:
                if block != 'other' and any('curl ' in l and 'localhost:8080' in l for _, l in block):
                    found += commands(block)
                block = None
            continue
        if block is not None and block != 'other':
            block.append((number, line))
    return found


def commands(block):
    result, current, shown = [], None, None
    for number, line in block:
        if line.startswith('#'):
            text = line[1:].strip()
            if current is not None and (shown is not None or text.startswith(('{', '[', 'data:', 'HTTP/'))):
                shown = (shown + ' ' + text) if shown is not None else text
            continue
        if not line.strip():
            continue
        if current is not None and current[1].endswith('\\'):
            current = (current[0], current[1][:-1] + ' ' + line.strip())
            continue
        if current is not None:
            result.append((current[0], current[1], shown))
        current, shown = (number, line.strip()), None
    if current is not None:
        result.append((current[0], current[1], shown))
    return result


def run(page, port):
    """Runs one page's examples in a shell of its own; prints a line for each, and returns (run, checked, failed)."""
    found = examples(page)
    with tempfile.TemporaryDirectory() as work:
        script = [f'cd {work}']
        for i, (number, command, _) in enumerate(found):
            command = command.replace('localhost:8080', f'localhost:{port}')
            script.append(f'{{ {command} ; }} > {work}/out{i} 2>&1; echo $? > {work}/rc{i}')
        subprocess.run(['bash', '-c', '\n'.join(script)], check=False, timeout=120)
        failures = 0
        for i, (number, command, shown) in enumerate(found):
            if not os.path.exists(f'{work}/rc{i}'):
                problems, output = ["did not run: the commands before it ended the shell"], ''
            else:
                output = open(f'{work}/out{i}', encoding='utf-8', errors='replace').read()
                code = int(open(f'{work}/rc{i}').read().strip() or 1)
                problems = [f"exit code {code}: {output[:300]!r}"] if code != 0 else []
            if not problems and shown is not None:
                problems = check(shown, output)
            print(f"{page} line {number}: {'ok' if not problems else 'MISMATCH'}: {command[:100]}")
            for problem in problems:
                print(f"    {problem}")
            failures += bool(problems)
    return len(found), sum(1 for _, _, shown in found if shown is not None), failures


def main():
    port, pages = sys.argv[1], sys.argv[2:]
    totals = [0, 0, 0]
    for page in pages:
        for i, count in enumerate(run(page, port)):
            totals[i] += count
    ran, checked, failures = totals
    print(f"{ran} commands of {len(pages)} pages run, {checked} answers checked against their page, {failures} failed")
    sys.exit(1 if failures or not checked else 0)


if __name__ == '__main__':
    main()
