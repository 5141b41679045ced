"""The README's vendor snippets are excerpts of the tested sample apps, so they cannot drift:
each region between `// [readme:<name>]` and `// [/readme:<name>]` in `examples/` is a
fenced block of the README, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REGIONS = (
    ("examples/php/signature.php", "php-verify", "php"),
    ("examples/php/signature.php", "php-inbound", "php"),
    ("examples/node/signature.js", "node-verify", "js"),
    ("examples/node/signature.js", "node-inbound", "js"),
)


def region(path: Path, name: str) -> str:
    """The text between the region's two marker lines."""
    match = re.search(
        rf"^// \[readme:{name}\]\n(.*?)^// \[/readme:{name}\]\n",
        path.read_text(encoding="utf-8"),
        re.MULTILINE | re.DOTALL,
    )
    assert match is not None, f"{path} has no region {name}"
    return match.group(1)


@pytest.mark.parametrize(("path", "name", "fence"), REGIONS)
def test_the_readme_snippet_is_the_sample_apps_code(path: str, name: str, fence: str) -> None:
    code = region(ROOT / path, name)
    assert code.count("\n") > 5
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```{fence}\n{code}```\n" in readme
    assert f"from [`{path}`]({path})" in readme


def test_every_region_in_the_samples_is_in_the_readme() -> None:
    found = {
        (str(path.relative_to(ROOT)), name)
        for path in (ROOT / "examples").rglob("*")
        if path.suffix in (".php", ".js")
        for name in re.findall(r"^// \[readme:([a-z-]+)\]$", path.read_text(), re.MULTILINE)
    }
    assert found == {(path, name) for path, name, _ in REGIONS}
