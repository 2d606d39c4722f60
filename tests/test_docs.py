"""Every relative link in the project's Markdown resolves, offline.

A link's file (or folder) must exist inside the project; a ``#fragment`` into a Markdown file must
name one of its headings by GitHub's slug (lowercase, punctuation other than ``-`` and ``_``
removed, each space a hyphen, ``-1``, ``-2``... for repeated headings) or an HTML anchor. Images
count as links. External links (any scheme: http, https, mailto...) and code (fenced blocks,
inline code spans) are not read.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import ROOT

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?!`)(?:(?!\n[ \t]*\n).)*?(?<!`)\1(?!`)", re.S)  # not across a blank line
# [text](target "title") and ![alt](target): one level of brackets in the text, of parentheses in the target
INLINE = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
    r"\(\s*(?P<target><[^<>]*>|(?:[^()\s]|\([^()\s]*\))*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
)
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*(?P<target><[^<>]*>|\S+)", re.M)
HTML_LINK = re.compile(r"<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*[\"'](?P<target>[^\"']+)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<[a-z][^>]*?\b(?:id|name)\s*=\s*[\"'](?P<anchor>[^\"']+)[\"']", re.I)
ATX = re.compile(r"^ {0,3}#{1,6}(?:\s+(?P<text>.*?))?(?:\s+#+)?\s*$")
SETEXT = re.compile(r"^ {0,3}(?:=+|-+)\s*$")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def prose(text: str) -> str:
    """``text`` with fenced code blocks and inline code spans (which may cross a line break) blanked,
    every newline kept, so offsets and line numbers stay those of the file."""
    lines, fence = [], None
    for line in text.split("\n"):
        opened = FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) \
                    and not line.strip().strip(fence[0]):
                fence = None
            lines.append("")
        elif opened:
            fence = opened.group(1)
            lines.append("")
        else:
            lines.append(line)
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), "\n".join(lines))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before duplicates are numbered)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link reads as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every fragment a link into the Markdown file ``path`` may name."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    raw = path.read_text(encoding="utf-8").split("\n")
    lines = prose("\n".join(raw)).split("\n")
    headings = []
    for n, line in enumerate(lines):
        atx = ATX.match(line) and ATX.match(raw[n])
        if atx:
            headings.append(atx.group("text") or "")
        elif SETEXT.match(line) and n and lines[n - 1].strip() and not ATX.match(lines[n - 1]) \
                and not lines[n - 1].lstrip().startswith(("|", "-", "*", ">")):
            headings.append(raw[n - 1].strip())
        found.update(m.group("anchor") for m in HTML_ANCHOR.finditer(line))
    for heading in headings:
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in the Markdown file ``path``."""
    text = prose(path.read_text(encoding="utf-8"))
    found = sorted((m for pattern in (INLINE, REFERENCE, HTML_LINK) for m in pattern.finditer(text)),
                   key=lambda m: m.start("target"))
    return [(text.count("\n", 0, m.start("target")) + 1, m.group("target").strip("<>")) for m in found]


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line per relative link of ``path`` that does not resolve, naming the line and why."""
    problems = []
    for n, target in links(path):
        if not target or SCHEME.match(target):
            continue
        where = f"{path.relative_to(root)}:{n}: {target}"
        file_part, _, fragment = target.partition("#")
        file_part, fragment = unquote(file_part), unquote(fragment)
        if not file_part:
            dest = path
        elif file_part.startswith("/"):
            dest = root / file_part.lstrip("/")
        else:
            dest = path.parent / file_part
        dest = dest.resolve()
        if not dest.is_relative_to(root.resolve()):
            problems.append(f"{where}: points outside the project")
        elif not dest.exists():
            problems.append(f"{where}: no such file or folder")
        elif fragment and dest.is_file() and dest.suffix.lower() == ".md" and fragment not in anchors(dest):
            problems.append(f"{where}: no heading with the anchor #{fragment} in {dest.relative_to(root.resolve())}")
    return problems


def documents(root: Path = ROOT) -> list[Path]:
    named = [root / name for name in ("README.md", "BENCHMARKS.md", "CHANGELOG.md")]
    return [p for p in named if p.is_file()] + sorted((root / "docs").glob("*.md"))


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    problems = broken_links(path)
    assert not problems, f"{len(problems)} broken link(s):\n" + "\n".join(problems)


def test_slugs_follow_github() -> None:
    assert slug("Crashes, resume and several GPUs") == "crashes-resume-and-several-gpus"
    assert slug("The refit and `train.refit`") == "the-refit-and-trainrefit"
    assert slug("What intentbal guarantees") == "what-intentbal-guarantees"
    assert slug("Faster prediction on CPU: ONNX Runtime") == "faster-prediction-on-cpu-onnx-runtime"
    assert slug("self_training") == "self_training"
    assert slug("Loading with [transformers](https://huggingface.co)") == "loading-with-transformers"
    assert slug("Intervals & tiers") == "intervals--tiers"


def test_the_check_finds_broken_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.png").write_bytes(b"")
    (tmp_path / "other.md").write_text("# Other\n\n## Same\n\n## Same\n\nA title\n---\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Data formats\n\n"
        "[ok](other.md#same-1) [ok](other.md#a-title) [ok](#data-formats) ![ok](docs/x.png) "
        "[ok](https://example.com/missing) [ok](mailto:a@b.c) `[not a link](gone.md)` `code that\n"
        "[crosses](gone.md) a line` [a link that\ncrosses a line](#page)\n\n"
        "[bad](missing.md) [bad\nlink](other.md#same-2) [bad](#formats) ![bad](docs/y.png) [bad](../outside.md)\n\n"
        "```\n[not a link](gone.md)\n```\n\n[ref]: other.md#nowhere\n",
        encoding="utf-8",
    )
    problems = broken_links(page, root=tmp_path)
    assert [p.split(": ")[1] for p in problems] == [
        "missing.md", "other.md#same-2", "#formats", "docs/y.png", "../outside.md", "other.md#nowhere"]
