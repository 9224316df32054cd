"""Run ``rasa train nlu`` (or, with ``--validate``, ``rasa data validate``) with two fixes; runs with
the Rasa runtime's own Python.

1. YAML in linear time. ruamel.yaml before 0.17.22 (every version Rasa 3.6 allows) appends the
   catch-all implicit resolvers to the stored resolver list of a scalar's first character each time
   it resolves a scalar (``resolvers += ...`` on the list it got from its table). Rasa registers one
   catch-all (``!env_var``), so every scalar read makes the next one slower: reading the 29,000
   generated examples took ~150 s of every training, twice that for ``rasa data validate``. The
   resolver below reads the same table without changing it; everything else is ruamel's own code.
2. Keras wraps Rasa's batch generator in ``tf.data`` with ``prefetch(1)`` when ``fit`` gets the
   default ``workers=1``. The prefetch thread calls back into Python, and when TensorFlow destroys the
   iterator at the end of an epoch while holding the GIL, training can hang forever (seen with TF 2.12
   on two cores). With ``workers=0`` the generator runs in the training thread and there is nothing
   to race. (Only pipelines with DIET, such as the variants `make eval` compares, train with Keras.)
"""

import sys
from typing import Any


def linear_yaml_resolver() -> None:
    """Make ruamel.yaml's ``VersionedResolver.resolve`` leave its resolver table unchanged."""
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver

    original = VersionedResolver.resolve
    if getattr(original, "integra_linear", False):
        return

    def resolve(self: Any, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            table = self.versioned_resolver
            resolvers = table.get(value[0] if value else "", []) + table.get(None, [])
            for tag, regexp in resolvers:
                if regexp.match(value):
                    return tag
            implicit = (False, implicit[1])  # ruamel's own code does the rest (path resolvers, defaults)
        return original(self, kind, value, implicit)

    resolve.integra_linear = True  # type: ignore[attr-defined]
    VersionedResolver.resolve = resolve


def keras_fit_in_training_thread() -> None:
    import tensorflow as tf

    original_fit = tf.keras.Model.fit

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("workers", 0)
        return original_fit(self, *args, **kwargs)

    tf.keras.Model.fit = fit


def main() -> None:
    linear_yaml_resolver()
    args = sys.argv[1:]
    if args[:1] == ["--validate"]:
        command = ["data", "validate", *args[1:]]
    else:
        keras_fit_in_training_thread()
        command = ["train", "nlu", *args]

    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *command]
    rasa_main()


if __name__ == "__main__":
    main()
