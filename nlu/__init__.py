"""The NLU layer: a Rasa project (pipeline, generated data, models) and the bot's client for it."""

from ._client import Classification, IntentScore, NLUClient, PartScore, make_token
from ._exceptions import NLUError, NLUResponseError, NLUTimeout, NLUUnavailable
from ._normalise import letter_count, normalise
from ._server import EmbeddedServer, free_port
from ._supervisor import Supervisor, cpu_seconds
from ._training import RasaProject, TrainingError

__all__ = [
    "Classification",
    "EmbeddedServer",
    "IntentScore",
    "NLUClient",
    "NLUError",
    "NLUResponseError",
    "NLUTimeout",
    "NLUUnavailable",
    "PartScore",
    "RasaProject",
    "Supervisor",
    "TrainingError",
    "cpu_seconds",
    "free_port",
    "letter_count",
    "make_token",
    "normalise",
]
