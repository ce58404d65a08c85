"""The command line's exit codes, one place for every subcommand (and the playground)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # something outside the command line failed: a model that cannot load, Discord unreachable
    USAGE = 2  # the person's input is wrong: a bad option, a config with problems, an unreadable file
    ENGINE_HUNG = 3  # `run`: a pipeline call hung past queue.job_timeout_s; start the bot again (a supervisor does)
