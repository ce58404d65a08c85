"""Words the bot says in more than one place."""

from models.text import Text


def something_went_wrong(reference: object) -> Text:
    """The answer to a failure that is ours, not the person's: with something the operators can look up in the log."""
    return Text("Something went wrong on my side. If it keeps happening, tell the bot's operators: {reference}",
                reference=str(reference))
