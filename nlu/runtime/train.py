"""Run ``rasa train nlu`` with one TensorFlow fix; runs with the Rasa runtime's own Python.

Keras wraps Rasa's batch generator in ``tf.data`` with ``prefetch(1)`` when ``fit`` gets the default
``workers=1``. The prefetch thread calls back into Python, and when TensorFlow destroys the iterator
at the end of an epoch while holding the GIL, training can hang forever (seen with TF 2.12 on two
cores). With ``workers=0`` the generator runs in the training thread and there is nothing to race.
"""

import sys


def main() -> None:
    import tensorflow as tf

    original_fit = tf.keras.Model.fit

    def fit(self, *args, **kwargs):
        kwargs.setdefault("workers", 0)
        return original_fit(self, *args, **kwargs)

    tf.keras.Model.fit = fit

    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", "train", "nlu", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
