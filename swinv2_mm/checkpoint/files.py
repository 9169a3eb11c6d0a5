"""Reading checkpoint files without running code from them.

torch >= 2.6 loads with ``weights_only=True`` by default: its unpickler builds tensors,
containers and allow-listed types only. mmengine 0.10.7 saves HistoryBuffer objects (numpy
arrays and scalars) in every runner checkpoint, so those exact types are allow-listed here,
and ``getattr``, through which pickle stores HistoryBuffer's statistics methods, is replaced
by a stand-in that returns those methods and nothing else: a crafted file gets no more from
the allow-list than plain torch gives it.

Two gaps remain in what the unpickler checks, and the readers here close them for the files
they read: a file fetched from a URL is loaded by ``torch.hub`` with full unpickling
(:func:`weights_only_loading` forces torch's weights-only switch around it), and an allowed
object can carry attributes that shadow the methods later code calls on it (``copy.deepcopy``
in mmengine's resume calls an instance's ``__deepcopy__`` or ``__reduce_ex__``):
:func:`check_checkpoint_contents` refuses such a file before anything uses it.
"""
import contextlib
import os
import pickle
import pickletools
import re
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections import Counter, OrderedDict

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

TRUST_ALL_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'  # torch's own switch to full unpickling
FORCE_WEIGHTS_ONLY_ENV = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'  # torch's switch the other way
_UNSUPPORTED_GLOBAL = re.compile(r'Unsupported global: GLOBAL (\S+)')
_REFUSED_ATTRIBUTE = 'refused attribute lookup'
# how torch's weights-only unpickler (and the getattr stand-in) say no to a pickle
# (an unknown opcode is not among them: random bytes read as a pickle give one)
_UNPICKLER_REFUSALS = (_REFUSED_ATTRIBUTE, 'Trying to call reduce', 'Can only create new object',
                       'Can only build', 'Can only SETITEM', 'Can only append', 'is blocked')


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be loaded: truncated, not a checkpoint, or untrusted."""


def history_buffer_method(owner, name: str):
    """Stands in for ``builtins.getattr`` in the weights-only unpickler: returns one of
    HistoryBuffer's statistics methods (how pickle stores them) and refuses everything else,
    so no allow-listed object leads to a module, a builtin or a bound method."""
    methods = HistoryBuffer._statistics_methods
    if owner is HistoryBuffer and isinstance(name, str) and name in methods:
        return methods[name]
    raise pickle.UnpicklingError(
        f'{_REFUSED_ATTRIBUTE}: getattr({_describe(owner)}, {name!r}); a checkpoint may reach '
        f"HistoryBuffer's statistics methods ({sorted(methods)}) only")


def _describe(obj) -> str:
    if obj is history_buffer_method:
        return 'getattr'
    return getattr(obj, '__qualname__', None) or type(obj).__name__


def mmengine_checkpoint_globals() -> list:
    """The globals an mmengine runner checkpoint needs beyond what torch allows by default."""
    multiarray = np.core.multiarray
    HistoryBuffer()  # registers the default statistics methods on the class
    return [HistoryBuffer, (history_buffer_method, 'builtins.getattr'), np.ndarray, np.dtype,
            multiarray._reconstruct, multiarray.scalar] + [type(np.dtype(t)) for t in NUMPY_DATA]


# numpy's number, bool and string types (a hook may log any of them); never object arrays
NUMPY_DATA = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
              np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128, np.str_)


def allowed_global_names() -> set:
    """The globals a checkpoint's pickle may name: torch's defaults and the ones above (not
    those other imports add to torch's allow-list)."""
    from torch._weights_only_unpickler import _get_allowed_globals
    ours = {entry[1] if isinstance(entry, tuple) else f'{entry.__module__}.{entry.__qualname__}'
            for entry in mmengine_checkpoint_globals()}
    return set(_get_allowed_globals()) | ours


def pickle_globals(path: str) -> set:
    """The globals the pickle of a zip-format checkpoint names, read without unpickling."""
    with zipfile.ZipFile(path) as archive:
        name = next((n for n in archive.namelist() if n.endswith('/data.pkl')), None)
        data = archive.read(name) if name else b''
    found = set()
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == 'GLOBAL':
            module, attr = arg.split(' ', 1)
            module, attr = NAME_MAPPING.get((module, attr), (IMPORT_MAPPING.get(module, module),
                                                               attr))
            found.add(f'{module}.{attr}')
        elif opcode.name == 'STACK_GLOBAL':
            found.add('<a global named on the stack>')
    return found


def check_pickle_globals(path: str) -> None:
    """Refuses, before anything is unpickled, a checkpoint whose pickle names a global outside
    :func:`allowed_global_names`: types that other imports put on torch's allow-list get no
    say (``traceback.FrameSummary``, which torch allows once its compiler is imported, reads
    the file it names while it is built)."""
    try:
        extra = sorted(pickle_globals(path) - allowed_global_names())
    except Exception:  # not a readable pickle: torch.load reports it
        return
    if extra:
        raise CheckpointFileError(
            f'checkpoint: {path!r} holds {extra[0]}, a type outside what model weights and '
            f'mmengine checkpoints need; unpickling it could run code, so it is refused. If you '
            f'trust this file, run with {TRUST_ALL_ENV}=1 (full unpickling for every '
            f'checkpoint)')


def allow_mmengine_checkpoints() -> None:
    """Adds exactly those globals to torch's weights-only allow-list (idempotent)."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


def trusts_every_checkpoint() -> bool:
    """Whether the user opted in to full unpickling (torch's environment switch)."""
    return os.environ.get(TRUST_ALL_ENV, '0').lower() in ('1', 'y', 'yes', 'true')


@contextlib.contextmanager
def weights_only_loading():
    """Every ``torch.load`` inside uses the weights-only unpickler, also where the caller asks
    for full unpickling (``torch.hub``'s URL loader, which mmengine uses for every remote
    scheme); nothing changes when the user opted in to full unpickling."""
    if trusts_every_checkpoint() or os.environ.get(FORCE_WEIGHTS_ONLY_ENV) == '1':
        yield
        return
    previous = os.environ.get(FORCE_WEIGHTS_ONLY_ENV)
    os.environ[FORCE_WEIGHTS_ONLY_ENV] = '1'
    try:
        yield
    finally:
        if previous is None:
            del os.environ[FORCE_WEIGHTS_ONLY_ENV]
        else:
            os.environ[FORCE_WEIGHTS_ONLY_ENV] = previous


# What a checkpoint may hold: data, never a callable or an object with behaviour of its own.
_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray, torch.Size, torch.dtype,
          torch.device, torch.layout, torch.memory_format)
_NUMPY = (np.ndarray, np.generic, np.dtype)
_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
_TENSOR_HOOKS = ('_backward_hooks', '_post_accumulate_grad_hooks')
_CONTAINERS = (dict, list, tuple, set, frozenset)
_MAPPING_ATTRIBUTES = {OrderedDict: {'_metadata'}, Counter: set(), dict: set()}
_HISTORY_ATTRIBUTES = {'max_length', '_log_history', '_count_history'}


def check_checkpoint_contents(checkpoint, source: str) -> None:
    """Raises CheckpointFileError, naming ``source`` and the entry, when a loaded checkpoint
    holds anything but data: a function, a class, an object whose instance attributes could
    replace a method (OrderedDict attributes other than torch's ``_metadata``, attributes
    named like special methods, tensors with hooks or of subclasses, numpy dtypes with
    metadata), or a type outside tensors, numpy data, HistoryBuffer and plain containers."""
    seen = set()
    stack = [(checkpoint, 'checkpoint')]
    while stack:
        obj, where = stack.pop()
        if id(obj) in seen or isinstance(obj, _PLAIN) and not vars_of(obj):
            continue
        seen.add(id(obj))
        problem = _content_problem(obj)
        if problem:
            raise CheckpointFileError(
                f'checkpoint: {source} holds {problem} at {where}; a checkpoint holds data only, '
                f'and this could run code when the run uses it, so the file is refused. If you '
                f'trust it, load it with {TRUST_ALL_ENV}=1 and save the parts you need again')
        stack += _children(obj, where)


def vars_of(obj) -> dict:
    """An object's instance attributes (empty for objects without a ``__dict__``)."""
    return getattr(obj, '__dict__', None) or {}


def _content_problem(obj):
    """Why ``obj`` may not stand in a checkpoint, or None."""
    attributes = set(vars_of(obj))
    dunder = sorted(a for a in attributes if a.startswith('__') and a.endswith('__'))
    if dunder:
        return f'an instance of {type(obj).__name__} with the attribute {dunder[0]}'
    if isinstance(obj, torch.Tensor):
        if type(obj) not in _TENSOR_TYPES:
            return f'a tensor of type {type(obj).__qualname__}'
        hooks = [name for name in _TENSOR_HOOKS if getattr(obj, name, None)]
        return f'a tensor with {hooks[0]}' if hooks else None
    if isinstance(obj, _NUMPY):
        dtype = obj if isinstance(obj, np.dtype) else obj.dtype
        return 'a numpy dtype with metadata' if dtype.metadata is not None else None
    if type(obj) is HistoryBuffer:
        return None if attributes <= _HISTORY_ATTRIBUTES else \
            f'a HistoryBuffer with the attributes {sorted(attributes - _HISTORY_ATTRIBUTES)}'
    allowed = _MAPPING_ATTRIBUTES.get(type(obj))
    if allowed is not None:
        extra = sorted(attributes - allowed)
        return f'an instance of {type(obj).__name__} with the attribute {extra[0]}' \
            if extra else None
    if type(obj) in _CONTAINERS or isinstance(obj, _PLAIN):
        return None
    if callable(obj):
        return f'the callable {_describe(obj)}'
    return f'an object of type {type(obj).__module__}.{type(obj).__qualname__}'


def _children(obj, where: str):
    """The entries of a container (and attributes of an object) with where they stand."""
    if isinstance(obj, dict):
        items = [(value, f'{where}[{key!r}]') for key, value in obj.items()]
        items += [(key, f'{where} (a key)') for key in obj if not isinstance(key, (str, int))]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = [(value, f'{where}[{i}]') for i, value in enumerate(obj)]
    elif isinstance(obj, np.ndarray) and obj.dtype.kind == 'O':
        items = [(value, f'{where}[{i}]') for i, value in enumerate(obj.flat)]
    else:
        items = []
    return items + [(value, f'{where}.{name}') for name, value in vars_of(obj).items()]


def _refusal(path: str, err: Exception) -> CheckpointFileError:
    """The error for a file torch's unpickler (or the stand-ins above) refused."""
    text = str(err)
    found = _UNSUPPORTED_GLOBAL.search(text)
    if found:
        return CheckpointFileError(
            f'checkpoint: {path!r} holds {found.group(1)}, a type outside what model weights '
            f'and mmengine checkpoints need; unpickling it could run code, so it is refused. If '
            f'you trust this file, run with {TRUST_ALL_ENV}=1 (full unpickling for every '
            f'checkpoint)')
    refusal = next((part.strip() for part in text.split('\n\n')
                    if any(sign in part for sign in _UNPICKLER_REFUSALS)), None)
    if refusal:
        return CheckpointFileError(
            f'checkpoint: {path!r} is refused: its pickle asks for more than data '
            f'({refusal[:300]}); loading it could run code. Only load it with '
            f'{TRUST_ALL_ENV}=1 if you trust where it came from')
    return CheckpointFileError(
        f'checkpoint: {path!r} is truncated or not a checkpoint (a torch.save file was '
        f'expected; {type(err).__name__}: {text[:200]}); use an earlier checkpoint or copy '
        f'the file again')


def load_checkpoint_file(path: str, map_location='cpu', mmap: bool = False):
    """``torch.load`` of a local file with the weights-only unpickler (plus mmengine's
    checkpoint types), its contents checked (:func:`check_checkpoint_contents`); a file that
    fails gets an error that names it and says why: truncated or not a checkpoint, or asking
    for more than data (and how to opt in)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint: {path!r} does not exist')
    trusted = trusts_every_checkpoint()
    if not trusted and zipfile.is_zipfile(path):
        check_pickle_globals(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, mmap=mmap,
                                weights_only=not trusted)
    except Exception as err:  # torch raises many types for a bad file
        raise _refusal(path, err) from None
    if not trusted:
        check_checkpoint_contents(checkpoint, repr(path))
    return checkpoint


def load_any_checkpoint(filename: str, map_location='cpu', mmap: bool = False):
    """A local file (:func:`load_checkpoint_file`) or any scheme mmengine reads (URLs,
    ``open-mmlab://``, ``torchvision://``, ...) under :func:`weights_only_loading`, with the
    same content check and errors that name the file."""
    if '://' not in str(filename):
        return load_checkpoint_file(str(filename), map_location, mmap=mmap)
    from mmengine.runner.checkpoint import CheckpointLoader
    try:
        with weights_only_loading():
            checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise _refusal(filename, err) from None
    if not trusts_every_checkpoint():
        check_checkpoint_contents(checkpoint, repr(filename))
    return checkpoint


# Python text mmengine executes when it resumes (``Runner.resume`` runs
# ``Config.fromstring(meta['config'])``; mmengine's own checkpoints keep theirs under 'cfg')
CODE_META_FIELDS = ('config',)


def read_runner_checkpoint(filename: str, map_location='cpu', mmap: bool = False):
    """A checkpoint as the runners load it (:func:`load_any_checkpoint`), without the
    ``meta`` fields that mmengine would execute as Python."""
    checkpoint = load_any_checkpoint(filename, map_location, mmap=mmap)
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    dropped = [key for key in CODE_META_FIELDS if isinstance(meta, dict) and key in meta]
    for key in dropped:
        del meta[key]
    if dropped:
        from mmengine.logging import print_log
        print_log(f'checkpoint {filename!r}: ignored meta{dropped} (Python text that '
                  f"mmengine's resume would execute)", logger='current')
    return checkpoint


def check_checkpoint_file(path: str) -> None:
    """Opens a local checkpoint without reading its tensors (memory-mapped; legacy non-zip
    files are read whole) to report a bad file before a model is built."""
    load_checkpoint_file(path, mmap=zipfile.is_zipfile(path))
