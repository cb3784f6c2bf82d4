"""The documentation holds together: every relative link of README.md, docs/*.md and
benchmarks/README.md resolves (the file exists; an #anchor names a heading of the target), every
page of docs/ is reachable from the README, the README stays a short front door, and no page
names a data path of one machine."""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def doc_files():
    return [README, *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))),
            os.path.join(ROOT, "benchmarks", "README.md")]


def prose(text):
    """The text without code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text):
    return LINK.findall(prose(text))


def anchors(text):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2...
    for repeats."""
    seen, out = {}, set()
    for title in HEADING.findall(FENCE.sub("", text)):  # inline code counts in a title
        slug = re.sub(r"[^\w\- ]", "", INLINE_CODE.sub(lambda m: m.group(0)[1:-1], title).lower())
        slug = slug.replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def broken_links(path):
    """'target (why)' for each relative link of the Markdown file `path` that leads nowhere."""
    text, broken = _read(path), []
    for target in links(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part or path))
        if not os.path.exists(dest):
            broken.append(f"{target} (no such file)")
        elif anchor and dest.endswith(".md") and anchor not in anchors(_read(dest)):
            broken.append(f"{target} (no heading with anchor #{anchor})")
    return broken


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_resolve(path):
    assert os.path.isfile(path), f"{os.path.relpath(path, ROOT)} is missing"
    broken = broken_links(path)
    assert not broken, f"{os.path.relpath(path, ROOT)}: broken links {broken}: fix path or anchor"


def test_link_checker_finds_broken_files_and_anchors(tmp_path):
    (tmp_path / "other.md").write_text("# A `code` title, here\n## Twice\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-code-title-here) [ok](other.md#twice-1) [w](https://x.org)\n"
                    "[self](#top) ![img](missing.png) [bad](other.md#nowhere)\n"
                    "# Top\n```\n[not a link](gone.md)\n```\nand `[inline](gone.md)` too\n")
    assert broken_links(str(page)) == ["missing.png (no such file)",
                                       "other.md#nowhere (no heading with anchor #nowhere)"]


def test_every_docs_page_is_linked_from_the_readme():
    pages = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    assert pages, "docs/ has no pages"
    linked = {os.path.normpath(os.path.join(ROOT, target.partition("#")[0]))
              for target in links(_read(README))}
    orphans = [os.path.relpath(p, ROOT) for p in pages if p not in linked]
    assert not orphans, f"README.md links none of {orphans}; add them to its link list"


def test_readme_is_a_short_front_door():
    text = _read(README)
    first_block = FENCE.search(text).group(0).splitlines()[1:-1]
    commands = [line.split("#")[0].strip() for line in first_block]
    expected = ["python -m pip install -e .", "python predict.py --example",
                "python -m pytest -q tests"]  # CI runs the README's test command
    assert commands == expected, "README's first code block must be the three commands"
    assert len(text.splitlines()) < 200, "README.md is 200 lines or more: move detail to docs/"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_docs_name_no_path_of_one_machine(path):
    hits = [line for line in _read(path).splitlines() if "../shared" in line or "/work/" in line]
    assert not hits, (f"{os.path.relpath(path, ROOT)} names a local data path: {hits[:3]}; "
                      f"write LFW_DIR / PAIRS instead")

