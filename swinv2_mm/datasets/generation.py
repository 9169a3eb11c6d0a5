"""Where generated datasets live, and how they are published: idempotent, atomic, race-safe,
and never at the cost of files that are not an older copy of the same dataset.

A dataset is built into a temporary sibling ``<root>.tmp-<pid>-<random>`` (marked as ours
before anything is written), stamped with the parameters it was made with, and renamed into
place. Readers never see a partial dataset, a second call with the same parameters does
nothing, and concurrent callers (data-parallel ranks) all end up with the same complete
dataset.

An existing ``root`` is replaced only when its stamp names the same dataset (any version or
parameters); an empty folder is used as is. Anything else there (a folder of other files, a
stamp of another dataset, a file, a symbolic link wherever it points) is refused with
``DataRootError`` before any work, and nothing is moved or deleted; ``check_publishable``
holds that rule for the publisher and for the tools' checks before a model is built.

Each demo dataset declares itself once as a ``GeneratedData`` (name, format version,
parameters, per-split writer); its default folder and its stamp both derive from that,
and its dataset classes take ``data_root``/``generate`` through ``GeneratedDataMixin``.
"""
import errno
import inspect
import json
import os
import re
import secrets
import shutil
import socket
import stat
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

STAMP_NAME = '.complete'
TEMP_MARKER = '.swinv2_mm-temporary'  # written first into every folder this module may delete
_MAX_STAMP_BYTES = 1 << 20
_PUBLISH_ATTEMPTS = 8


class DataRootError(ValueError):
    """A folder that generated data would have to overwrite although it is not an older copy
    of the same dataset (or is a file or a symbolic link): refused, left untouched."""


def data_base_dir() -> str:
    """The folder holding every generated dataset: $SWINV2_MM_DATA or the user cache."""
    return os.environ.get('SWINV2_MM_DATA') or os.path.expanduser('~/.cache/swinv2_mm/data')


def _stamp(params: dict) -> str:
    """The content of the completion stamp: the parameters as canonical JSON."""
    return json.dumps(params, sort_keys=True)


def _read_stamp(root: str) -> Optional[str]:
    """The stamp of the dataset at ``root``, None when there is none (or it is not a regular
    file of a sane size: a stamp is never a link, a device or a pipe)."""
    path = os.path.join(root, STAMP_NAME)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, encoding='utf-8', errors='replace') as f:
            return f.read(_MAX_STAMP_BYTES)
    except OSError:
        return None


def _format_name(fmt: Any) -> Optional[str]:
    """The dataset name of a format tag ``'<name>/<version>'``; None for anything else."""
    if isinstance(fmt, str) and fmt.count('/') == 1 and fmt.split('/')[0]:
        return fmt.split('/')[0]
    return None


def _stamped_name(root: str) -> Optional[str]:
    """The dataset name in the stamp at ``root`` (its ``format`` field), None without one."""
    text = _read_stamp(root)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return _format_name(data.get('format')) if isinstance(data, dict) else None


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` lies below ``folder`` (both made absolute, links not followed)."""
    folder = os.path.abspath(os.path.expanduser(folder))
    return os.path.commonpath([os.path.abspath(path), folder]) == folder and \
        os.path.abspath(path) != folder


def _refusal(root: str, name: str) -> Optional[str]:
    """Why generated dataset ``name`` may not be published at ``root``, None when it may:
    ``root`` is absent, an empty folder, or a folder stamped as ``name`` (an older copy; in
    swinv2_mm's data folder also a stamp of an early format, which named no dataset)."""
    if os.path.islink(root):
        return f'is a symbolic link (to {os.readlink(root)!r}); generated data is never ' \
               f'written through a link, point data_root at a real folder'
    if not os.path.lexists(root):
        return None
    if not os.path.isdir(root):
        return 'is a file, not a folder'
    if _stamped_name(root) == name:
        return None
    try:
        entries = sorted(os.listdir(root))
    except OSError as err:
        return f'cannot be listed ({err.strerror})'
    if not entries:
        return None
    other = _stamped_name(root)
    if other is not None:
        return f'holds the generated dataset {other!r}, not {name!r}'
    if STAMP_NAME in entries and _inside(root, data_base_dir()):
        return None  # an early swinv2_mm's stamp, in swinv2_mm's own data folder
    if STAMP_NAME in entries:
        return f'holds a {STAMP_NAME} stamp that does not name a dataset (written by an ' \
               f'early swinv2_mm or by something else)'
    shown = ', '.join(repr(e) for e in entries[:3]) + (', ...' if len(entries) > 3 else '')
    count = f'{len(entries)} entr{"y" if len(entries) == 1 else "ies"}'
    return f'holds {count} ({shown}) and no {STAMP_NAME} stamp of {name!r}'


def _refusal_error(root: str, name: str, reason: str,
                   default: Optional[str] = None) -> DataRootError:
    """The error for a refused ``root``: the folder, why, that nothing changed, and the fix
    (``default``: the folder the dataset goes to when ``data_root`` is left out)."""
    base = os.path.abspath(data_base_dir())
    if default and root == os.path.abspath(default):
        fix = (f'this is the default folder of {name!r}, in the swinv2_mm data folder {base} '
               f'($SWINV2_MM_DATA, else ~/.cache/swinv2_mm/data): move it away or delete it '
               f'yourself, or set SWINV2_MM_DATA to another folder')
    else:
        where = repr(default) if default else f'a folder under {base!r}'
        fix = (f'leave data_root out to generate the data in {where} (under $SWINV2_MM_DATA, '
               f'else ~/.cache/swinv2_mm/data), or point data_root at an empty or new folder')
    return DataRootError(
        f'{root!r} cannot hold the generated dataset {name!r}: it {reason}. Generation replaces '
        f'only an older copy of the same dataset, so nothing there was moved or deleted. '
        f'Fix: {fix}')


def check_publishable(root: str, name: str, default: Optional[str] = None) -> str:
    """Raises DataRootError unless generated dataset ``name`` may be published at ``root``
    (absent, an empty folder, or an older copy of ``name``); returns ``root`` absolute.
    ``default``, the dataset's default folder, only shapes the fix the error proposes."""
    root = os.path.abspath(os.path.expanduser(root))
    reason = _refusal(root, name)
    if reason:
        raise _refusal_error(root, name, reason, default)
    return root


# Temporary folders: ``<root>.tmp-<pid>-<8 hex>``, marked before anything else is written,
# so that one left by a dead process is recognised as ours, and nothing else ever is.

def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (a process of another user counts)."""
    if pid <= 0:
        return True  # not a process id: never treated as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _marker(root: str, pid: int) -> dict:
    return dict(host=socket.gethostname(), pid=pid, root=os.path.basename(root))


def _make_temporary(root: str) -> str:
    """Creates and marks a new empty temporary folder beside ``root``; returns its path."""
    while True:
        tmp = f'{root}.tmp-{os.getpid()}-{secrets.token_hex(4)}'
        try:
            os.mkdir(tmp)
            break
        except FileExistsError:
            continue
    try:
        _write_marker(tmp, root)
    except BaseException:
        os.rmdir(tmp)
        raise
    return tmp


def _write_marker(tmp: str, root: str) -> None:
    with open(os.path.join(tmp, TEMP_MARKER), 'w', encoding='utf-8') as f:
        json.dump(_marker(root, os.getpid()), f)


def _is_stale_temporary(path: str, root: str) -> bool:
    """``path`` is a temporary folder of ``root`` that this module made (its marker names this
    host, the pid in its name and ``root``) for a process that is no longer alive."""
    match = re.fullmatch(re.escape(os.path.basename(root)) + r'\.tmp-([1-9][0-9]*)-[0-9a-f]{8}',
                         os.path.basename(path))
    if not match:
        return False
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        marker = os.path.join(path, TEMP_MARKER)
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return False
        with open(marker, encoding='utf-8') as f:
            content = json.loads(f.read(4096))
    except (OSError, ValueError):
        return False
    pid = int(match.group(1))
    return content == _marker(root, pid) and not _pid_alive(pid)


def _delete_marked(path: str) -> None:
    """Deletes a temporary folder of ours, its marker last: a folder left half-deleted (by a
    kill, or by an entry that cannot be deleted) keeps its marker, so a later publisher
    recognises it once this process is gone. One already gone is fine. Links inside are
    removed, never followed."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name == TEMP_MARKER:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass
    try:
        if os.listdir(path) != [TEMP_MARKER]:
            return
        os.unlink(os.path.join(path, TEMP_MARKER))
        os.rmdir(path)
    except FileNotFoundError:  # a concurrent clean-up of the same stale folder
        pass


def remove_stale_temporaries(root: str) -> None:
    """Deletes the temporary folders of ``root`` left by dead processes of this host: only
    folders carrying this module's marker, never anything else named like one."""
    parent = os.path.dirname(root)
    try:
        names = os.listdir(parent)
    except OSError:
        return
    prefix = os.path.basename(root) + '.tmp-'
    for name in names:
        path = os.path.join(parent, name)
        if name.startswith(prefix) and _is_stale_temporary(path, root):
            _delete_marked(path)


# Publishing.

def _discard(root: str, name: str, current: str) -> None:
    """Deletes the older copy of dataset ``name`` at ``root``: renamed aside (atomic), checked
    to be that dataset once nobody else can reach it, marked, then deleted. A ``root``
    already gone is fine; one that a concurrent publisher has just made ``current`` (the
    stamp being published) is put back; one that is not ``name`` is put back and refused."""
    aside = f'{root}.tmp-{os.getpid()}-{secrets.token_hex(4)}'
    try:
        os.rename(root, aside)
    except FileNotFoundError:
        return
    ours = not os.path.islink(aside) and _stamped_name(aside) == name
    if not ours or _read_stamp(aside) == current:
        try:
            os.rename(aside, root)
        except OSError:
            if not ours:
                raise DataRootError(f'{root!r} changed while the generated dataset {name!r} '
                                    f'was being published; it was moved to {aside!r}, nothing '
                                    f'was deleted') from None
        else:
            if not ours:
                raise _refusal_error(root, name, _refusal(root, name) or 'changed meanwhile')
            return
    _write_marker(aside, root)
    _delete_marked(aside)


def _move_into_place(tmp: str, root: str, stamp: str, name: str,
                     default: Optional[str] = None) -> None:
    """Renames the complete ``tmp`` to ``root``, replacing only an older copy of ``name``.

    When a concurrent process published the same dataset first, ``tmp`` is dropped; when
    ``root`` became something that is not ``name``, ``tmp`` is dropped and it is refused.
    """
    for _ in range(_PUBLISH_ATTEMPTS):
        try:
            os.rename(tmp, root)  # atomic; also over an empty folder, never over anything else
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                _delete_marked(tmp)
                raise
        else:
            try:
                os.unlink(os.path.join(root, TEMP_MARKER))
            except FileNotFoundError:
                pass
            return
        if not os.path.islink(root) and _read_stamp(root) == stamp:  # published meanwhile
            _delete_marked(tmp)
            return
        reason = _refusal(root, name)
        if reason:
            _delete_marked(tmp)
            raise _refusal_error(root, name, reason, default)
        try:
            _discard(root, name, stamp)
        except BaseException:
            _delete_marked(tmp)
            raise
    _delete_marked(tmp)
    raise RuntimeError(f'{root!r}: other processes kept replacing the generated dataset '
                       f'{name!r} ({_PUBLISH_ATTEMPTS} attempts); run again')


def publish_dataset(root: str, params: dict, build: Callable[[str], None],
                    default: Optional[str] = None) -> str:
    """Makes ``root`` hold the dataset that ``build`` writes for ``params``; returns ``root``
    (absolute, user expanded).

    ``params`` (JSON-serialisable) holds ``format='<name>/<version>'`` and whatever else tells
    datasets apart. Nothing is done when ``root`` is already stamped with ``params``. A
    ``root`` that is not absent, empty or an older copy of ``<name>`` raises DataRootError
    before anything is built (see ``check_publishable``). Otherwise ``build(tmp)`` writes the
    files into an empty folder ``tmp``, which is stamped and renamed to ``root``; temporary
    folders of dead processes are removed first. ``default``, the folder the dataset goes to
    when no ``data_root`` is given, only shapes the fix an error proposes.
    """
    name = _format_name(params.get('format'))
    if name is None:
        raise ValueError(f"params: expected format='<name>/<version>', got "
                         f"{params.get('format')!r}")
    root = check_publishable(root, name, default)
    stamp = _stamp(params)
    if _read_stamp(root) == stamp:
        return root
    os.makedirs(os.path.dirname(root), exist_ok=True)
    remove_stale_temporaries(root)
    tmp = _make_temporary(root)
    try:
        build(tmp)
        with open(os.path.join(tmp, STAMP_NAME), 'w') as f:
            f.write(stamp)
    except BaseException:
        _delete_marked(tmp)
        raise
    _move_into_place(tmp, root, stamp, name, default)
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
        name or a surplus value raises TypeError, a split count below 1 ValueError (an empty
        split would only fail later, inside the toolbox's dataset)."""
        signature = inspect.Signature([
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=value)
            for name, value in self.defaults.items()])
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        params = dict(bound.arguments)
        for split in self.splits:
            count = params[f'num_{split}']
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f'generate.num_{split}: expected a whole number of items, at '
                                 f'least 1 (an empty split cannot be trained or evaluated on), '
                                 f'got {count!r}')
        return params

    def stamp_params(self, *args, **kwargs) -> Dict[str, Any]:
        """What a copy made with these parameters is stamped with: them and the format tag."""
        return dict(self.bind(*args, **kwargs), format=self.format)

    def holds(self, root: Optional[str] = None, *args, **kwargs) -> bool:
        """Whether ``root`` (``default_root()`` when None) holds the complete dataset of these
        parameters (then generating does nothing)."""
        root = os.path.abspath(os.path.expanduser(root or self.default_root()))
        return (not os.path.islink(root)
                and _read_stamp(root) == _stamp(self.stamp_params(*args, **kwargs)))

    def check_root(self, root: Optional[str] = None, *args, **kwargs) -> str:
        """What ``generate`` checks before any work, without writing anything: the parameters
        (TypeError, ValueError) and the folder (DataRootError unless ``root`` is absent, empty
        or a copy of this dataset); returns the absolute folder."""
        self.bind(*args, **kwargs)
        return check_publishable(root or self.default_root(), self.name, self.default_root())

    def generate(self, root: Optional[str] = None, *args, **kwargs) -> str:
        """Writes the dataset of these parameters under ``root`` (``default_root()`` when
        None) unless it is already there; returns the absolute ``root``.

        Parameters go by position or name, in the order of ``defaults``; see
        ``publish_dataset`` for partial and concurrent generation and for what an existing
        ``root`` may be.
        """
        params = self.bind(*args, **kwargs)
        counts = {f'num_{split}': split for split in self.splits}
        rest = {name: value for name, value in params.items() if name not in counts}

        def build(tmp: str) -> None:
            for count, split in counts.items():
                self.write_split(tmp, split, params[count], **rest)

        return publish_dataset(root or self.default_root(), dict(params, format=self.format),
                               build, self.default_root())


class GeneratedDataMixin:
    """Base of the dataset (and metric) classes over a ``GeneratedData``, named by the
    subclass's ``GENERATED``: it marks them for the tools and turns their ``data_root`` and
    ``generate`` arguments into the folder of the data, generated first when needed."""

    GENERATES_DATA = True  # tools run check_generated_root instead of their missing-data check
    GENERATED: GeneratedData

    @classmethod
    def generated_root(cls, data_root: Optional[str] = None,
                       generate: Optional[dict] = None) -> str:
        """The dataset folder: ``data_root`` or the default one, holding the data of the
        ``generate`` keyword arguments."""
        return cls.GENERATED.generate(data_root, **(generate or {}))

    @classmethod
    def check_generated_root(cls, data_root: Optional[str] = None,
                             generate: Optional[dict] = None) -> str:
        """What ``generated_root`` would refuse, raised before any model or data is built
        (DataRootError, TypeError, ValueError); nothing is written. Returns the folder."""
        return cls.GENERATED.check_root(data_root, **(generate or {}))
