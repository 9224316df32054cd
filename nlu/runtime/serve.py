"""Start Rasa's HTTP API for NLU only: loopback by default, JWT required, no chat channels.

Runs with the Rasa runtime's own Python (3.8-3.10), not the bot's. The JWT secret comes from the
environment variable NLU_JWT_SECRET, never from the command line where other users could read it.
"""

import argparse
import logging
import os
import sys
from pathlib import Path


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
