"""MkDocs hooks: publish the repository's Markdown files beside docs/ and keep their links working.

The READMEs and root documents live where GitHub shows them (README.md, packages/*/README.md,
CHANGELOG.md, ...). This hook adds them to the site as generated pages, builds one API reference
page per package from its public modules, and rewrites every relative link of every page:

- a link to a Markdown file that is on the site points to its page;
- a link to another file or folder of the repository (a source file, an example) becomes plain
  text with the path, since the site does not publish it;
- a link to something that does not exist is left alone, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent

#: Repository files published as pages (repository path -> page path), besides the package READMEs.
_ROOT_PAGES = {
    "README.md": "index.md",
    "CONTRIBUTING.md": "contributing.md",
    "RELEASING.md": "releasing.md",
    "VERSIONING.md": "versioning.md",
    "CHANGELOG.md": "changelog.md",
    "e2e/README.md": "development/e2e.md",
    "bench/README.md": "development/bench.md",
}

#: Public modules that are scripts run by path, not API.
_NOT_API = ("smcp.testing.peers", "smcp.testing.mcp_servers.")

_FENCE = re.compile(r"^(```|~~~)")
_INLINE = re.compile(r"(!?\[(?:[^\[\]]|\[[^\]]*\])*\])\(([^)\s]+)((?:\s+\"[^\"]*\")?)\)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _dists() -> list[Path]:
    return sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())


def _import_root(dist: Path) -> Path | None:
    """The top package of a distribution (``src/smcp/core``, ``src/smcp/server/asgi``)."""
    src = dist / "src"
    inits = sorted(src.glob("smcp/**/__init__.py"), key=lambda p: len(p.parts))
    return inits[0].parent if inits else None


def _public_modules(package: Path) -> list[str]:
    src = next(p for p in package.parents if p.name == "src")
    names = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts) or "tests" in parts:
            continue
        name = ".".join(parts)
        if not name.startswith(_NOT_API):
            names.append(name)
    root = ".".join(package.relative_to(src).parts)
    return sorted(set(names), key=lambda n: (n != root, n))


def _page_map() -> dict[str, str]:
    pages = {repo: page for repo, page in _ROOT_PAGES.items() if (ROOT / repo).is_file()}
    for dist in _dists():
        if (dist / "README.md").is_file():
            pages[f"packages/{dist.name}/README.md"] = f"packages/{dist.name}.md"
    return pages


def _api_page(dist: Path) -> str | None:
    package = _import_root(dist)
    if package is None:
        return None
    modules = _public_modules(package)
    lines = [f"# {dist.name}", "", f"Generated from the docstrings of `{modules[0]}`.", ""]
    for module in modules:
        lines += [f"::: {module}", ""]
    return "\n".join(lines)


def on_config(config: Any) -> Any:
    """Fill the "Packages" and "API reference" sections of the navigation from packages/."""
    dists = _dists()
    packages = [{d.name: f"packages/{d.name}.md"} for d in dists if (d / "README.md").is_file()]
    api = [{d.name: f"api/{d.name}.md"} for d in dists if _import_root(d) is not None]
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and "Packages" in entry:
            entry["Packages"] = packages
        if isinstance(entry, dict) and "API reference" in entry:
            entry["API reference"] = api
    return config


def on_files(files: Files, config: Any) -> Files:
    for repo, page in _page_map().items():
        files.append(File.generated(config, page, abs_src_path=str(ROOT / repo)))
    for dist in _dists():
        content = _api_page(dist)
        if content is not None:
            files.append(File.generated(config, f"api/{dist.name}.md", content=content))
    return files


def _source_of(page_uri: str) -> str:
    """The repository path a page comes from."""
    for repo, page in _page_map().items():
        if page == page_uri:
            return repo
    return f"docs/{page_uri}"


def _rewrite(target: str, source: str, page_uri: str, pages: dict[str, str]) -> str | None:
    """The new link target, ``""`` for "no link", or ``None`` to leave the link alone."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return None
    path, _, anchor = target.partition("#")
    repo = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
    if repo.endswith("/") or (ROOT / repo).is_dir():
        readme = posixpath.join(repo, "README.md")
        if readme in pages:
            repo = readme
    by_repo = dict(pages)
    by_repo.update({f"docs/{p}": p for p in _docs_pages()})
    if repo in by_repo:
        new = posixpath.relpath(by_repo[repo], posixpath.dirname(page_uri) or ".")
        return new + (f"#{anchor}" if anchor else "")
    if (ROOT / repo).exists() and not repo.startswith("docs/"):
        return ""
    return None


def _docs_pages() -> list[str]:
    docs = ROOT / "docs"
    return [p.relative_to(docs).as_posix() for p in docs.rglob("*.md")]


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    pages = _page_map()
    uri = page.file.src_uri
    source = _source_of(uri)
    out: list[str] = []
    in_fence = False
    for line in markdown.split("\n"):
        if _FENCE.match(line.lstrip()):
            in_fence = not in_fence
            out.append(line)
            continue
        if in_fence:
            out.append(line)
            continue
        out.append(_rewrite_line(line, source, uri, pages))
    return "\n".join(out)


def _rewrite_line(line: str, source: str, uri: str, pages: dict[str, str]) -> str:
    spans = [m.span() for m in _CODE_SPAN.finditer(line)]

    def replace(match: re.Match[str]) -> str:
        if any(start <= match.start() < end for start, end in spans):
            return match.group(0)
        label, target, title = match.group(1), match.group(2), match.group(3)
        new = _rewrite(target, source, uri, pages)
        if new is None:
            return match.group(0)
        if new == "":
            text = label[1:-1]
            path = posixpath.normpath(posixpath.join(posixpath.dirname(source), target.partition("#")[0]))
            return text if text.strip("`") == path or path in text else f"{text} (`{path}`)"
        return f"{label}({new}{title})"

    return _INLINE.sub(replace, line)
