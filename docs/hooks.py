"""MkDocs hooks: the pages that are generated from the code when the site is built.

- ``cli.md``: the ``hybridwrap`` command's help, subcommand by subcommand, from its own argparse parser;
- ``benchmarks.md`` shows ``benchmarks/RESULTS.md``, whose figures live under ``benchmarks/results/``: they are
  added to the site at the paths the page refers to.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARKER = "<!-- cli reference -->"


def cli_reference() -> str:
    """Every subcommand's ``--help``, as the command prints it in a terminal 100 columns wide."""
    import os

    from hybridwrap.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: the same page wherever the site is built
    parser = build_parser()
    parts = ["## hybridwrap", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, sub in parser.subcommands.items():
        text = sub.format_help().rstrip() if name != "launch" else (
            "usage: hybridwrap launch [accelerate launch options] COMMAND [options]\n\n"
            "accelerate launch for a hybridwrap command, with hybridwrap's one-line errors and exit statuses;\n"
            "its options are accelerate launch's (hybridwrap launch --help prints them).")
        parts += [f"## hybridwrap {name}", "", "```text", text, "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown


def on_files(files, config):
    """The figures that benchmarks/RESULTS.md shows, at the paths it names them by (relative to the page)."""
    from mkdocs.structure.files import File

    results = REPO / "benchmarks"
    for figure in sorted((results / "results").rglob("*.png")):
        path = figure.relative_to(results).as_posix()
        if files.get_file_from_path(path) is None:
            files.append(File(path, str(results), config["site_dir"], config["use_directory_urls"]))
    return files
