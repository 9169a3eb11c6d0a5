"""Fixtures of the checkpoint tests: a random reference state dict and the log it writes."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger

from tests.checkpoint.layouts import ours
from tests.helpers import randomize_


@pytest.fixture(scope='module')
def reference_sd():
    torch.manual_seed(0)
    return randomize_(ours(), seed=7).state_dict()


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def log_messages():
    """Messages logged through mmengine's current logger (``print_log(..., 'current')``)."""
    handler = _Collect()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)
