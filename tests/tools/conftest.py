"""Tool runs see a private data folder, so the generated demo data never touches the user's."""
import os

import pytest


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    return dict(os.environ, SWINV2_MM_DATA=str(tmp_path_factory.mktemp('data')))
