"""Custom Rasa components of this project; they run inside the Rasa runtime (Python 3.8-3.10).

Pipeline names in ``nlu/config.yml`` are ``components.<module>.<Class>``: ``runtime/train.py`` and
``runtime/serve.py`` put ``nlu/runtime`` first on ``sys.path``.
"""
