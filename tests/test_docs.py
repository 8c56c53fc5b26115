"""The README and docs/ point only at things that exist.

The README is the user's first hour and sends them on to docs/ pages: a link to a moved section,
a renamed config or a deleted tool is found here, not by the user. Checked in README.md,
docs/*.md and benchmarks/README.md: every relative Markdown link and its #anchor (GitHub's
heading slugs), and every tools/*.py, tools/*.sh, scripts/... and configs/... path they name,
in code blocks or text.
"""
import re
from pathlib import Path
from typing import Iterator, List, Set, Tuple

from .helpers import REPO

README_MAX_LINES = 310  # the first hour; everything else lives in docs/

LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
# a repository path as the docs name it: not inside another path (iformer_mm/.mim/configs/...)
REPO_PATH = re.compile(r'(?<![\w./-])(tools/[\w.-]+\.(?:py|sh)\b|(?:scripts|configs)/[\w./{},*-]*[\w/*}])')
PLACEHOLDER = re.compile(r'[A-Z]{3,}|\.\.\.')  # CONFIG, CKPT, PATH_OR_URL, configs/...


def doc_files() -> List[Path]:
    """The pages a user reads: the README, docs/ and the benchmark results page."""
    return [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md')), REPO / 'benchmarks' / 'README.md']


def lines_outside_fences(text: str) -> Iterator[Tuple[int, str]]:
    """(line number, line) outside ``` blocks: a '# comment' or '[x](y)' there is code."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
        elif not fenced:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation but '-' and '_' dropped, spaces -> '-'."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(path: Path) -> Set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeats."""
    found: Set[str] = set()
    for _, line in lines_outside_fences(path.read_text()):
        m = re.match(r'#{1,6}\s+(.*?)\s*#*\s*$', line)
        if m:
            base = anchor = slug(m.group(1))
            n = 0
            while anchor in found:
                n += 1
                anchor = f'{base}-{n}'
            found.add(anchor)
    return found


def expand_braces(path: str) -> List[str]:
    """'a_{t,s}.py' -> ['a_t.py', 'a_s.py'] (several groups multiply; no nesting in our docs)."""
    m = re.search(r'\{([^{}]*)\}', path)
    if not m:
        return [path]
    return [p for alt in m.group(1).split(',')
            for p in expand_braces(path[:m.start()] + alt + path[m.end():])]


def broken_links(path: Path) -> List[str]:
    """'FILE:LINE: (target) why' for each relative link whose file or heading is missing."""
    problems = []
    for number, line in lines_outside_fences(path.read_text()):
        for target in LINK.findall(re.sub(r'`[^`]*`', '', line)):  # inline code is no link
            if re.match(r'[a-z][a-z0-9+.-]*:', target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition('#')
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f'{path.relative_to(REPO)}:{number}: ({target})'
            if not dest.exists():
                problems.append(f'{where} {file_part} does not exist')
            elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
                problems.append(f'{where} no heading #{anchor} in {dest.relative_to(REPO)}')
    return problems


def in_repository(path: str) -> bool:
    """A path, or a glob such as configs/*/metafile.yml that matches at least one file."""
    return any(REPO.glob(path)) if '*' in path else (REPO / path).exists()


def missing_repo_paths(path: Path) -> List[str]:
    """'FILE:LINE: path ...' for each named tool, script or config the repository lacks."""
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        for named in REPO_PATH.findall(line):
            named = named.rstrip('.')
            if PLACEHOLDER.search(named):
                continue
            for candidate in expand_braces(named):
                if not in_repository(candidate):
                    named_as = '' if candidate == named else f' (from {named})'
                    problems.append(f'{path.relative_to(REPO)}:{number}: {candidate}{named_as} '
                                    'is not in the repository')
    return problems


def test_slug_follows_github():
    assert slug('The whole detector (Mask / Faster R-CNN) in one file') == \
        'the-whole-detector-mask--faster-r-cnn-in-one-file'
    assert slug('Results, 1 thread (`results.json`)') == 'results-1-thread-resultsjson'
    assert expand_braces('configs/a_{t,s}_{x,y}.py') == [
        'configs/a_t_x.py', 'configs/a_t_y.py', 'configs/a_s_x.py', 'configs/a_s_y.py']


def test_links_resolve():
    problems = [p for f in doc_files() for p in broken_links(f)]
    assert not problems, '\n'.join(problems)


def test_named_tools_scripts_and_configs_exist():
    problems = [p for f in doc_files() for p in missing_repo_paths(f)]
    assert not problems, '\n'.join(problems)


def test_readme_is_short():
    lines = len((REPO / 'README.md').read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f'README.md: {lines} lines, more than {README_MAX_LINES}: move details into docs/')
