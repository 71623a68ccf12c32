"""The repository is self-contained: no tracked text file points to a document or a path outside it, and every
``docs/<file>.md#<section>`` a file cites names an existing heading of that page.

What counts as outside: the design notes the project started from (their names are forbidden unless a file of
that name is tracked here), a reference folder beside the checkout, the build machine's own folders and
absolute home folders. Paper facts are cited from docs/paper_facts.md (or directly from the paper / the official
repository file), so a reader of a clean clone can follow every citation. The patterns below are assembled from
pieces, so that this file does not itself name what it forbids (it is also left out of the scan).
"""
import functools
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()

# the names this test forbids, in pieces (see the docstring)
_PAPERS, _DESIGN, _SHARED, _WORK = 'PAP' 'ERS', 'DES' 'IGN', 'sha' 'red', 'wo' 'rk'
# outside documents: allowed only if a tracked file of that name exists
OUTSIDE_DOCS = (f'{_PAPERS}.md', f'{_DESIGN}.md')
OUTSIDE = [
    (re.compile(rf'\b{_DESIGN}\s*§'), 'a section of a design document that is not in the repository'),
    (re.compile(rf'(?:\.\./|\b){_SHARED}/(?:seeds|{_PAPERS}|{_DESIGN})\b|\.\./{_SHARED}\b'),
     'a folder outside the repository'),
    (re.compile(rf'/{_WORK}/'), 'a path of the build machine'),
    (re.compile(r'/home/[\w.-]+|/Users/[\w.-]+|(?<![\w.])/root/'), 'an absolute home path'),
]
DOC_CITE = re.compile(r'\bdocs/([\w./-]+?\.md)(?:#([^\s)\]"\'`,;]+))?')
LOCAL_ANCHOR = re.compile(r'\]\(#([^)\s]+)\)')
SKIP_DIRS = {'.git', '.venv', 'data', 'work_dirs', '__pycache__', 'node_modules'}


def tracked_files(root: Path) -> list[Path]:
    """The files git tracks under ``root``; outside a git checkout, every file outside build/data folders."""
    try:
        out = subprocess.run(['git', 'ls-files', '-z'], cwd=root, capture_output=True, check=True).stdout
        return [root / p for p in out.decode().split('\0') if p]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith('.')]
            files += [Path(d) / n for n in names]
        return files


def read_text(path: Path):
    """The file's text, or None for a binary / non-UTF-8 file (images, weights) or a file that is gone."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b'\0' in data:
        return None
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        return None


def outside_references(path: Path, text: str, tracked_names: set) -> list[str]:
    """``file:line: what`` for each reference to a document or a path outside the repository."""
    found = []
    for no, line in enumerate(text.splitlines(), 1):
        for doc in OUTSIDE_DOCS:
            if doc not in tracked_names and re.search(r'\b' + re.escape(doc), line):
                found.append(f'{path}:{no}: cites {doc}, a document that is not in the repository: {line.strip()}')
        for pattern, what in OUTSIDE:
            if pattern.search(line):
                found.append(f'{path}:{no}: {what}: {line.strip()}')
    return found


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(md_text: str) -> set:
    """The anchors of a markdown page's headings (outside code fences; repeated headings get -1, -2, ...)."""
    seen, out, fenced = {}, set(), False
    for line in md_text.splitlines():
        if line.lstrip().startswith('```'):
            fenced = not fenced
            continue
        m = re.match(r'#{1,6}\s+(.*?)\s*#*\s*$', line)
        if m and not fenced:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f'{base}-{n}')
    return out


@functools.lru_cache(maxsize=None)
def page_anchors(page: Path) -> frozenset:
    return frozenset(anchors(page.read_text(encoding='utf-8')))


def broken_doc_cites(root: Path, path: Path, text: str) -> list[str]:
    """``file:line: what`` for each ``docs/<file>.md[#anchor]`` (and, in a markdown page, ``](#anchor)``) that names
    a missing page or a heading the page does not have."""
    found, rel = [], path.relative_to(root).as_posix()
    for no, line in enumerate(text.splitlines(), 1):
        cites = [(m.group(1), m.group(2)) for m in DOC_CITE.finditer(line)]
        if path.suffix == '.md':
            cites += [(rel[len('docs/'):] if rel.startswith('docs/') else None, m.group(1))
                      for m in LOCAL_ANCHOR.finditer(line)]
        for page, anchor in cites:
            target = root / 'docs' / page if page else path
            if not target.is_file():
                found.append(f'{rel}:{no}: cites docs/{page}, which does not exist')
                continue
            anchor = (anchor or '').rstrip('.:')
            if anchor and anchor not in page_anchors(target):
                found.append(f'{rel}:{no}: cites {target.relative_to(root).as_posix()}#{anchor}: no such heading there')
    return found


def scan(root: Path, files) -> tuple[list, list]:
    texts = {p: t for p in files if p.resolve() != THIS and (t := read_text(p)) is not None}
    names = {p.name for p in files}
    outside = [r for p, t in texts.items() for r in outside_references(p.relative_to(root), t, names)]
    broken = [r for p, t in texts.items() for r in broken_doc_cites(root, p, t)]
    return outside, broken


def test_no_reference_outside_the_repository():
    outside, _ = scan(ROOT, tracked_files(ROOT))
    assert not outside, ('documents or paths outside the repository (cite docs/paper_facts.md#<section>, a paper '
                         'table or an official repository file instead):\n' + '\n'.join(outside))


def test_every_cited_doc_section_exists():
    _, broken = scan(ROOT, tracked_files(ROOT))
    assert not broken, 'citations of docs that do not resolve:\n' + '\n'.join(broken)


def test_paper_facts_has_the_sections_the_code_relies_on():
    """The sections stage 1's configs, the tables and the tests cite are on the page."""
    page = ROOT / 'docs/paper_facts.md'
    assert page.is_file(), 'docs/paper_facts.md (the paper facts the code relies on) is missing'
    have = anchors(page.read_text(encoding='utf-8'))
    need = {'sources', 'pretraining-recipe', 'mixup-and-cutmix', 'transmix', 'mixpro', 'tokenmix',
            'official-label-maps', 'learning-rate-schedules', 'transfer-recipes', 'published-numbers',
            'table-a', 'table-b', 'table-c', 'table-d'}
    assert need <= have, f'docs/paper_facts.md lacks sections: {sorted(need - have)}'


def test_the_checks_catch_what_they_are_for(tmp_path):
    """Hand-built files: each kind of outside reference and each kind of broken citation is reported; clean
    citations are not."""
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs/facts.md').write_text('# Facts\n## Pretraining recipe\n```\n# not a heading\n```\n'
                                            '## Again\n## Again\nsee [it](#again-1) and [gone](#nowhere)\n',
                                            encoding='utf-8')
    bad = tmp_path / 'bad.py'
    bad.write_text(f'# see {_PAPERS}.md "TokenMix"\n# {_DESIGN} §7\n# ../{_SHARED}/notes\n'
                   f'# /{_WORK}/main/.venv/bin/python\n# /home/alice/x\n# docs/facts.md#pretraining-recipe\n'
                   '# docs/facts.md#not-a-heading\n# docs/missing.md\n# docs/facts.md#again-1.\n', encoding='utf-8')
    (tmp_path / 'blob.bin').write_bytes(b'\0' + f'{_PAPERS}.md'.encode())
    outside, broken = scan(tmp_path, [bad, tmp_path / 'docs/facts.md', tmp_path / 'blob.bin'])
    assert [r.split(':')[1] for r in outside] == ['1', '2', '3', '4', '5'], outside
    assert sorted(r.split(':')[0] + ':' + r.split(':')[1] for r in broken) == [
        'bad.py:7', 'bad.py:8', 'docs/facts.md:8'], broken
    # a tracked file of that name makes the name a document of the repository
    assert not outside_references(Path('x.md'), f'see {_PAPERS}.md', {f'{_PAPERS}.md'})


def doc_table(md_text: str, heading: str) -> list[list[str]]:
    """The body rows (cells stripped) of the first markdown table under ``heading`` (up to the next heading)."""
    lines = md_text.splitlines()
    start = lines.index(heading) + 1
    rows = []
    for line in lines[start:]:
        if line.startswith('#'):
            break
        if line.startswith('|') and not re.match(r'\|[-| ]+\|$', line):
            rows.append([c.strip() for c in line.strip('|').split('|')])
    return rows[1:]  # without the header


def test_published_numbers_match_the_tables_module():
    """docs/paper_facts.md#published-numbers and mixseg.tables.published hold the same numbers, row by row."""
    from mixseg.tables.published import TABLES
    text = (ROOT / 'docs/paper_facts.md').read_text(encoding='utf-8')
    for name in 'ABC':
        table = TABLES[name]
        n = len(table.label_headers)
        doc = {tuple(r[:n]): tuple(float(c) for c in r[n:]) for r in doc_table(text, f'### Table {name}')}
        code = {r.label: r.published for r in table.rows if not r.extra}
        assert doc == code, f'table {name}: docs/paper_facts.md and mixseg/tables/published.py differ'
    methods = ('baseline', 'transmix', 'mixpro', 'tokenmix')
    doc = {(r[0], m): float(v) for r in doc_table(text, '### Table D') for m, v in zip(methods, r[1:]) if v != '—'}
    code = {(dict(r.key)['model'], dict(r.key)['method']): r.published[0] for r in TABLES['D'].rows if not r.extra}
    assert doc == code, 'table D: docs/paper_facts.md and mixseg/tables/published.py differ'
