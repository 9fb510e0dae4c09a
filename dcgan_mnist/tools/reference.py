"""docs/flags.md, made from every command's parser: ``python -m dcgan_mnist.tools.reference > docs/flags.md``.

A test compares the file with what this prints, so the reference cannot fall behind a flag.
"""
import argparse
import importlib
import sys

from .. import settings
from ..__main__ import COMMANDS


def parsers():
    """(command line, parser) of train.py and of every tool, in the order ``python -m dcgan_mnist`` lists them."""
    yield "python train.py", settings.build_parser()
    for name, (module, _) in COMMANDS.items():
        if name != "train":
            yield f"python -m dcgan_mnist {name}", importlib.import_module(module).build_parser()


def default_of(action):
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    if isinstance(action.default, list):
        return ",".join(map(str, action.default))
    return str(action.default)


def cell(text):
    return " ".join(str(text).split()).replace("|", "\\|").replace("%%", "%")


def markdown():
    lines = ["# Every flag", "",
             "Made from the parsers by `python -m dcgan_mnist.tools.reference > docs/flags.md`; a test checks that "
             "it is up to date. `--help` of each command says the same.", ""]
    for command, parser in parsers():
        lines += [f"## `{command}`", "", cell(parser.description), "", "| flag | default | meaning |", "|---|---|---|"]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            names = ", ".join(f"`{name}`" for name in action.option_strings)
            if action.choices and not isinstance(action.choices, dict):
                names += " " + "\\|".join(map(str, action.choices))
            elif action.nargs != 0:
                names += f" {action.metavar or action.dest.upper()}"
            default = default_of(action)
            lines.append(f"| {names} | {f'`{default}`' if default else ''} | {cell(action.help or '')} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown())
