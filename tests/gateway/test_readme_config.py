"""The README's config file examples, as printed, are valid and mean what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provara_kit.registry import REGISTRY
from reference_gateway.configfile import load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(language: str, first_line: str | None = None) -> str:
    section = README.read_text().split("### Or in a config file: `PROVARA_CONFIG`", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)
    assert blocks, f"no {language} block in the README's config file section"
    if first_line is not None:
        blocks = [b for b in blocks if b.startswith(first_line)]
    return blocks[0]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("gateway.toml", _block("toml", "# gateway.toml")),
        ("gateway.yaml", _block("yaml")),
    ],
)
def test_the_readme_config_examples_validate(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    config = load_config(path)
    assert config.check(REGISTRY) == []
    assert [p.name for p in config.providers] == ["acme"]
    assert config.fallbacks == {"acme/acme-large": ("acme/acme-small", "local/echo")}
    assert config.prices["acme/acme-large"] is not None
