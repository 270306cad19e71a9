"""The rich console every command prints through: a closed stdout raises BrokenPipeError,
which `tasker_cli.main` turns into a quiet exit (status 141) like any other command's."""

from __future__ import annotations

from rich.console import Console


class TaskerConsole(Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError
