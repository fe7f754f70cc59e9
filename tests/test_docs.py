"""The documentation cannot drift: the site builds strictly, the CLI reference and the API come from the code, the
architecture page names every module, and the README stays a front page."""

import importlib.util
import re
import subprocess
import sys

import pytest

from conftest import REPO

DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def test_the_site_builds_with_no_warning(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip('the docs extra is not installed: pip install -e ".[docs]" (the test extra has it)')
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "hybridwrap train" in cli and "--skip-bad-images" in cli  # generated from the parser
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "Args:" not in api and "build_from_config" in api  # the docstrings' sections were parsed, not shown raw


def test_the_cli_reference_covers_every_subcommand():
    sys.path.insert(0, str(DOCS))
    import hooks

    from hybridwrap.cli import build_parser

    reference = hooks.cli_reference()
    for name in build_parser().subcommands:
        assert f"## hybridwrap {name}\n" in reference, name
    assert "--baseline" in reference and "run_processes" not in reference  # the options, not the config keys


def test_the_architecture_page_names_every_module():
    page = (DOCS / "architecture.md").read_text()
    modules = [p.relative_to(REPO / "hybridwrap").as_posix() for p in (REPO / "hybridwrap").rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py")]
    missing = [m for m in modules if f"`{m}`" not in page and f"`{m.rsplit('/', 1)[-1]}`" not in page]
    assert not missing, f"add these modules to docs/architecture.md: {missing}"


def test_every_page_of_the_site_is_in_its_navigation():
    import yaml

    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    listed = {page for entry in nav for page in entry.values()}
    assert listed == {p.name for p in PAGES}


@pytest.mark.parametrize("path", [REPO / "README.md", *PAGES], ids=lambda p: p.name)
def test_no_page_points_outside_the_repository_or_at_an_issue(path):
    text = path.read_text()
    assert "../shared" not in text and not re.search(r"\bissue \d+", text, re.IGNORECASE)


def test_the_readme_is_a_front_page():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    text = "\n".join(lines)
    order = [text.index(h) for h in ("## Install", "## See it work", "## Where HybridNet pays", "## Your own images",
                                     "## In Python", "## Run the tests")]
    assert order == sorted(order)
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in text  # the test command is exactly what CI runs


@pytest.mark.parametrize("name", ["hybridwrap.wrap", "hybridwrap.from_pretrained", "hybridwrap.save_pretrained",
                                  "hybridwrap.push_to_hub", "hybridwrap.predict", "hybridwrap.register_backbone",
                                  "hybridwrap.train.train", "hybridwrap.cli.build_parser"])
def test_public_functions_have_args_returns_and_an_example(name):
    import importlib

    module, _, attr = name.rpartition(".")
    doc = getattr(importlib.import_module(module), attr).__doc__
    assert "Args:" in doc or "build_parser" in name
    assert "Returns:" in doc or "save_pretrained" in name
    assert "Examples:" in doc  # griffe renders this section as code


@pytest.mark.parametrize("name", ["HybridNet", "TrainConfig", "ModelConfig", "DataConfig", "LossConfig", "OptimConfig"])
def test_public_classes_have_an_example(name):
    import hybridwrap
    from hybridwrap import config

    cls = getattr(hybridwrap, name, None) or getattr(config, name)
    assert "Examples:" in cls.__doc__
