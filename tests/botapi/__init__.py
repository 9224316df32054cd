"""A fake Telegram Bot API server for tests: PTB talks to it over real HTTP on 127.0.0.1.

Usage::

    async with FakeBotAPI(TOKEN) as api:
        app = Application.builder().token(TOKEN).base_url(api.base_url)
        app = app.base_file_url(api.base_file_url).build()
        alice = api.user(1001, "Alice")
        await alice.send("/start")  # with the app polling
        call = await api.wait_for("sendMessage")
"""

from .actors import Group, User
from .faults import DROP, Fault, Faults
from .markup import HtmlError, parse_html
from .methods import ApiError, Params
from .server import Call, FakeBotAPI
from .world import Account, Chat, StoredFile, Topic

__all__ = [
    "DROP",
    "Account",
    "ApiError",
    "Call",
    "Chat",
    "FakeBotAPI",
    "Fault",
    "Faults",
    "Group",
    "HtmlError",
    "Params",
    "StoredFile",
    "Topic",
    "User",
    "parse_html",
]
