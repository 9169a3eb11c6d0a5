"""Where generated datasets live, and how they are published: idempotent, atomic, race-safe.

A dataset is built into ``<root>.tmp-<pid>``, stamped with the parameters it was made
with, and renamed into place. Readers never see a partial dataset, a second call with
the same parameters does nothing, and concurrent callers (data-parallel ranks) all end
up with the same complete dataset.

Each demo dataset declares itself once as a ``GeneratedData`` (name, format version,
parameters, per-split writer); its default folder and its stamp both derive from that,
and its dataset classes take ``data_root``/``generate`` through ``GeneratedDataMixin``.
"""
import inspect
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

STAMP_NAME = '.complete'


def data_base_dir() -> str:
    """The folder holding every generated dataset: $SWINV2_MM_DATA or the user cache."""
    return os.environ.get('SWINV2_MM_DATA') or os.path.expanduser('~/.cache/swinv2_mm/data')


def _stamp(params: dict) -> str:
    """The content of the completion stamp: the parameters as canonical JSON."""
    return json.dumps(params, sort_keys=True)


def _read_stamp(root: str) -> Optional[str]:
    """The stamp of the dataset at ``root``, None when there is none."""
    try:
        with open(os.path.join(root, STAMP_NAME)) as f:
            return f.read()
    except OSError:
        return None


def _discard(path: str) -> None:
    """Moves ``path`` aside (atomic) and deletes it; a path already gone is fine."""
    aside = f'{path}.old-{os.getpid()}'
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside)


def _move_into_place(tmp: str, root: str, stamp: str) -> None:
    """Moves the complete ``tmp`` to ``root``, replacing anything stale there.

    When a concurrent process published the same dataset first, ``tmp`` is dropped.
    """
    if _read_stamp(root) == stamp:
        shutil.rmtree(tmp)
        return
    if os.path.lexists(root):
        _discard(root)
    try:
        os.rename(tmp, root)
    except OSError:
        if _read_stamp(root) != stamp:
            raise
        shutil.rmtree(tmp)


def publish_dataset(root: str, params: dict, build: Callable[[str], None]) -> str:
    """Makes ``root`` hold the dataset that ``build`` writes for ``params``; returns ``root``.

    Nothing is done when ``root`` is already stamped with ``params`` (JSON-serialisable;
    include whatever tells datasets apart, such as a format version). Otherwise
    ``build(tmp)`` writes the files into an empty folder ``tmp``, which is stamped and
    renamed to ``root`` (absolute, user expanded).
    """
    root = os.path.abspath(os.path.expanduser(root))
    stamp = _stamp(params)
    if _read_stamp(root) == stamp:
        return root
    tmp = f'{root}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    build(tmp)
    with open(os.path.join(tmp, STAMP_NAME), 'w') as f:
        f.write(stamp)
    _move_into_place(tmp, root, stamp)
    return root


@dataclass(frozen=True)
class GeneratedData:
    """A dataset that is generated once, atomically, under a versioned name.

    The default folder ``<data_base_dir()>/<name>_v<version>`` and the format tag
    ``<name>/<version>`` stamped with the parameters both come from ``name`` and
    ``version``, so they cannot disagree: bump ``version`` whenever the files written for
    the same parameters change, and stale copies are regenerated.

    Attributes:
        name: Short name of the dataset, e.g. ``'shapes_coco'``.
        version: Format version.
        write_split: ``write_split(root, split, count, **rest)`` writes ``count`` items of
            ``split`` under ``root``; ``rest`` are the parameters other than the counts.
        defaults: The parameters of ``generate`` with their defaults, in positional
            order; it holds a count ``num_<split>`` for each split.
        splits: The splits, written in this order.
    """

    name: str
    version: int
    write_split: Callable[..., None]
    defaults: Mapping[str, Any]
    splits: Tuple[str, ...] = ('train', 'val')

    def __post_init__(self) -> None:
        missing = [f'num_{split}' for split in self.splits
                   if f'num_{split}' not in self.defaults]
        if missing:
            raise ValueError(f'{self.name}: defaults lack the split counts {missing}')

    @property
    def format(self) -> str:
        """The format tag stamped on every copy, e.g. ``'shapes_ade/3'``."""
        return f'{self.name}/{self.version}'

    @property
    def folder_name(self) -> str:
        """The name of the default folder, e.g. ``'shapes_ade_v3'``."""
        return f'{self.name}_v{self.version}'

    def default_root(self) -> str:
        """Where the dataset lives unless told otherwise, under ``data_base_dir()``."""
        return os.path.join(data_base_dir(), self.folder_name)

    def bind(self, *args, **kwargs) -> Dict[str, Any]:
        """All parameters, from positional or keyword values and the defaults; an unknown
        name or a surplus value raises TypeError."""
        signature = inspect.Signature([
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=value)
            for name, value in self.defaults.items()])
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def generate(self, root: Optional[str] = None, *args, **kwargs) -> str:
        """Writes the dataset of these parameters under ``root`` (``default_root()`` when
        None) unless it is already there; returns the absolute ``root``.

        Parameters go by position or name, in the order of ``defaults``; see
        ``publish_dataset`` for partial and concurrent generation.
        """
        params = self.bind(*args, **kwargs)
        counts = {f'num_{split}': split for split in self.splits}
        rest = {name: value for name, value in params.items() if name not in counts}

        def build(tmp: str) -> None:
            for count, split in counts.items():
                self.write_split(tmp, split, params[count], **rest)

        return publish_dataset(root or self.default_root(), dict(params, format=self.format),
                               build)


class GeneratedDataMixin:
    """Base of the dataset (and metric) classes over a ``GeneratedData``, named by the
    subclass's ``GENERATED``: it marks them for the tools and turns their ``data_root`` and
    ``generate`` arguments into the folder of the data, generated first when needed."""

    GENERATES_DATA = True  # tools skip their missing-data check for it
    GENERATED: GeneratedData

    @classmethod
    def generated_root(cls, data_root: Optional[str] = None,
                       generate: Optional[dict] = None) -> str:
        """The dataset folder: ``data_root`` or the default one, holding the data of the
        ``generate`` keyword arguments."""
        return cls.GENERATED.generate(data_root, **(generate or {}))
