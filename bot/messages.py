"""Words the bot says in more than one place."""


def something_went_wrong(reference: object) -> str:
    """The answer to a failure that is ours, not the person's: with something the operators can look up in the log."""
    return f"Something went wrong on my side. If it keeps happening, tell the bot's operators: {reference}"
