"""The playground: try the bot in a browser page that looks and behaves like a Discord channel, no account needed.

``python -m bot playground --config FILE`` starts three things in one process tree:

- ``fakediscord``'s loopback Discord (REST + gateway);
- the real, unmodified bot (``python -m bot run``) as a child process against it (``supervisor.py``: the derived
  config, restarts, and a stop with the reason and its fix when the bot cannot start);
- an aiohttp server for the page and its JSON/websocket API (``server.py``, ``static/``).
"""

from playground.server import run_playground
from playground.supervisor import playground_config

__all__ = ["playground_config", "run_playground"]
