"""The --help layout every stage shares."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every stage's --help: descriptions keep their line breaks, and an option shows its
    default unless its text already names it (or it has none worth showing)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text.strip():  # one paragraph: wrap it
            return argparse.HelpFormatter._fill_text(self, text, width, indent)
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        nothing = default is None or default is False or default is argparse.SUPPRESS or default == []
        switch = action.nargs == 0  # --flag / --no-flag: its help says what it does, a default would not
        if nothing or switch or "default" in text.lower() or not action.option_strings or not text:
            return text
        return f"{text} (default: %(default)s)"
