"""Human handoff: each case is a forum topic in the staff group of one of its city's partner
organisations (routed by topic and language), relayed both ways.

Owner of a conversation: the bot (no open case), nobody (open, waiting) or one staff member. While a
case is open the bot does not answer on its own; it copies what the person sends into the topic and
what the owner writes in the topic to the person. Reminder times live in the database, so a restart
loses none.

- ``person``: the person's side — opening a case, relaying their messages, /forget, the rating;
- ``commands``: what staff do in a topic — replies, /send, /quick, /note, /transfer, /close, /help;
- ``partners``: /refer — hand a case to another partner organisation (the city, an NGO, legal aid…);
- ``referrals``: after /refer — the person's consent, "taken" notices, reminders of waiting referrals;
- ``buttons``: the buttons on the case card and under /quick;
- ``staff``: who is staff, and the steps every staff action shares (find the case, own it, end it);
- ``cards``: the case card and the topic's title;
- ``ended``: topics whose case is over (closed, moved on, erased) say so once; /forget deletes every
  topic that holds the person's messages, or asks staff to;
- ``setup``: opening and transferring a case step by step; the reconciler that finishes what a crash
  left half-done;
- ``edits``: an edit of a relayed message changes its copy on the other side;
- ``reminders``: when an unclaimed case is due a reminder, and the job that sends them;
- ``delivery``: the one place that sends to a topic or to the person, and logs what failed;
- ``texts``: ready replies and other texts the parts share.
"""

from .buttons import case_button, quick_button
from .commands import (
    close_command,
    command_descriptions,
    note,
    quick,
    send_answer,
    staff_help,
    staff_message,
    transfer,
)
from .delivery import close_for_blocked
from .partners import refer
from .person import end_case_for_erasure, open_case, rate, relay_from_person
from .referrals import remind_referrals, share_button
from .reminders import remind_unclaimed
from .setup import reconcile
from .texts import QUICK_REPLIES

__all__ = [
    "QUICK_REPLIES",
    "case_button",
    "close_command",
    "close_for_blocked",
    "command_descriptions",
    "end_case_for_erasure",
    "note",
    "open_case",
    "quick",
    "quick_button",
    "rate",
    "reconcile",
    "refer",
    "relay_from_person",
    "remind_referrals",
    "remind_unclaimed",
    "send_answer",
    "share_button",
    "staff_help",
    "staff_message",
    "transfer",
]
