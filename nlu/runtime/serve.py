"""Start Rasa's HTTP API for NLU only: loopback by default, JWT required, no chat channels.

Runs with the Rasa runtime's own Python (3.8-3.10), not the bot's. The JWT secret comes from the
environment variable NLU_JWT_SECRET, never from the command line where other users could read it.
"""

import argparse
import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Messages parsed at once (NLU_PARSE_THREADS): Rasa parses one at a time in its event loop; most of a
# parse is the sentence encoder's C code, which runs without the GIL, so a second thread lets the
# server use a second core. Each parallel parse holds its own encoder instance (~75 MB).
DEFAULT_THREADS = 2


def parse_in_threads(threads: int) -> None:
    """Make Rasa's ``MessageProcessor.parse_message`` run the NLU graph in a pool of ``threads``."""
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.trackers import DialogueStateTracker

    pool = ThreadPoolExecutor(threads, thread_name_prefix="parse")
    original = MessageProcessor.parse_message

    async def parse_message(self, message, tracker=None, only_output_properties=True):
        if self.http_interpreter:
            return await original(self, message, tracker, only_output_properties)
        if tracker is None:
            tracker = DialogueStateTracker.from_events(message.sender_id, [])
        loop = asyncio.get_running_loop()
        parse_data = await loop.run_in_executor(
            pool, self._parse_message_with_graph, message, tracker, only_output_properties
        )
        self._update_full_retrieval_intent(parse_data)
        self._check_for_unseen_features(parse_data)
        return parse_data

    MessageProcessor.parse_message = parse_message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a model archive trained by this project")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5005)
    args = parser.parse_args()

    secret = os.environ.pop("NLU_JWT_SECRET", "")
    if len(secret) < 16:
        sys.exit("NLU_JWT_SECRET (16+ characters) is required: the NLU API never runs without authentication")

    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["LOG_LEVEL"] = "WARNING"
    from rasa.core.run import serve_application
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    # Warnings only, for both of Rasa's loggers: it logs message texts at debug level
    # ("parse_data_text=..."), and those must never reach a log file.
    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    threads = int(os.environ.get("NLU_PARSE_THREADS", DEFAULT_THREADS))
    if threads > 1:
        parse_in_threads(threads)
    serve_application(
        model_path=args.model,
        interface=args.host,
        port=args.port,
        credentials=str(Path(__file__).with_name("credentials.yml")),
        enable_api=True,
        jwt_secret=secret,
        jwt_method="HS256",
    )


if __name__ == "__main__":
    main()
