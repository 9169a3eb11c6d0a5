"""What the command-line tools in ``tools/`` do, one module per step they take.

Kept apart from the plugin: ``import swinv2_mm`` (what a config's ``custom_imports`` does)
never imports this package; ``tools/train.py`` and ``tools/test.py`` call its steps in order.
"""
