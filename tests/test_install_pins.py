"""requirements.lock pins every distribution tools/install.sh puts in the venv, and exactly
one of them provides cv2. These checks read the running venv's metadata and the install
script's text: they fail when a distribution is installed unpinned or at another version,
when a second cv2 provider appears, or when install.sh gains an unpinned pip install."""
import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import load_tool

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / 'requirements.lock'
INSTALL_SH = ROOT / 'tools' / 'install.sh'
CV2_PROVIDER = 'opencv-contrib-python'  # the superset: mmaction2 requires it by name
PIN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*$')


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def lock_entries():
    return [line.strip() for line in LOCK.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith('#')]


def locked():
    """{canonical name: version} of requirements.lock."""
    return {canonical(name): version
            for name, version in (entry.split('==') for entry in lock_entries())}


def site_paths():
    """The venv's own entries of sys.path: not the vendored folders (setuptools/_vendor)
    that importing setuptools or pkg_resources puts on it."""
    return [p for p in sys.path if '_vendor' not in os.path.normpath(p).split(os.sep)]


def installed():
    """{canonical name: distribution} of the running venv, the first on sys.path winning (the
    one Python imports), less swinv2_mm itself (editable, from this clone)."""
    found = {}
    for dist in importlib.metadata.distributions(path=site_paths()):
        found.setdefault(canonical(dist.metadata['Name']), dist)
    found.pop('swinv2-mm', None)
    return found


def installs_cv2(dist):
    """Whether a distribution's RECORD lists files in a top-level cv2 package (the raw text:
    parsing torch's RECORD into paths takes seconds)."""
    return re.search(r'^"?cv2/', dist.read_text('RECORD') or '', re.MULTILINE) is not None


def test_the_lock_pins_every_entry_to_exactly_one_version():
    entries = lock_entries()
    assert [e for e in entries if not PIN.match(e)] == []
    names = [canonical(e.split('==')[0]) for e in entries]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    assert len(entries) > 80  # the resolved set, not just the top-level pins


def test_the_venv_holds_exactly_the_locked_versions():
    have = {name: dist.version for name, dist in installed().items()}
    want = locked()
    unpinned = {n: v for n, v in have.items() if n not in want}
    other_version = {n: (v, want[n]) for n, v in have.items() if n in want and want[n] != v}
    missing = sorted(set(want) - set(have))
    assert (unpinned, other_version, missing) == ({}, {}, []), (
        'the venv differs from requirements.lock (installed-but-unlocked, installed vs locked '
        'version, locked-but-missing); bash tools/install.sh brings it back to the lock')


def test_exactly_one_installed_distribution_provides_cv2_and_its_files_are_intact():
    dists = installed()
    assert sorted(n for n, d in dists.items() if installs_cv2(d)) == [CV2_PROVIDER]
    provider = dists[CV2_PROVIDER]
    lost = [str(f) for f in provider.files if not Path(provider.locate_file(f)).exists()]
    assert lost == [], f'{CV2_PROVIDER} files removed (by uninstalling another cv2 provider?)'


def test_the_top_level_pins_and_the_mmcv_build_agree_with_the_lock():
    lock = locked()
    for line in (ROOT / 'requirements.txt').read_text().splitlines():
        spec = line.split('#', 1)[0].strip()
        if spec:
            name, version = spec.split('==')
            assert lock.get(canonical(name)) == version, spec
    assert lock['mmcv'] == load_tool('mmcv_build').MMCV_VERSION
    assert not {'opencv-python', 'opencv-python-headless',
                'opencv-contrib-python-headless'} & set(lock)


def pip_commands(script):
    """(command text, arguments) of each pip install/download/wheel in a shell script, with
    continuation lines joined, comments dropped and a process substitution as one word."""
    text = re.sub(r'\\\n\s*', ' ', script)
    for line in text.splitlines():
        found = re.search(r'(?:\bpip_install|-m pip (?:install|download|wheel))\b(.*)', line)
        if not found or line.lstrip().startswith(('#', 'pip_install()')):
            continue
        args = re.sub(r'\s#.*$', '', found.group(1))
        args = re.sub(r'<\(([^)]*)\)', lambda m: shlex.quote('<(' + m.group(1) + ')'), args)
        args = re.split(r'\)\s*$|\s2>&1|\s\|', args)[0]
        words = shlex.split(args)
        if '$@' not in words:  # pip_install's own body only forwards its arguments
            yield line.strip(), words


def unpinned_targets(args):
    """What a pip command would install that is neither a NAME==VERSION, the lock, a local
    file or folder, nor the planner's NAME==VERSION list; and whether it keeps --no-deps."""
    bad, words = [], iter(args)
    for word in words:
        if word in ('-r', '--requirement'):
            source = next(words)
            if source not in ('$LOCK', '''<(grep -v '^mmcv==' "$LOCK")'''):
                bad.append(source)
        elif word in ('-e', '--editable'):
            if next(words) != '$ROOT':
                bad.append(word)
        elif word in ('-d', '-w', '--no-binary'):
            next(words)
        elif word.startswith('-'):
            continue
        elif not (PIN.match(word.replace('$MMCV_VERSION', '0')) or word.endswith('.whl')
                  or word in ('.', '$REINSTALL')):
            bad.append(word)
    return bad, '--no-deps' in args


def test_install_sh_installs_nothing_unpinned():
    commands = list(pip_commands(INSTALL_SH.read_text()))
    assert len(commands) >= 5  # the lock, repairs, mmcv download/build/install, swinv2_mm
    for line, args in commands:
        bad, no_deps = unpinned_targets(args)
        assert bad == [] and no_deps, line
    assert any('-r' in args for _, args in commands)


def test_the_command_parser_catches_an_unpinned_install():
    script = 'pip_install --no-deps foo "bar==1.0"\n"$PY" -m pip install -r req.txt  # x\n'
    (_, first), (_, second) = pip_commands(script)
    assert unpinned_targets(first) == (['foo'], True)
    assert unpinned_targets(second) == (['req.txt'], False)


# The planner install.sh runs on every call (the STATE heredoc), on a made-up site-packages.

def planner_source():
    text = INSTALL_SH.read_text()
    return text.split("<<'STATE'\n", 1)[1].split('\nSTATE\n', 1)[0]


def fake_dist(site, name, version, files=(), write=True):
    info = site / f'{name.replace("-", "_")}-{version}.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
    record = [f'{info.name}/METADATA,,', f'{info.name}/RECORD,,']
    for rel in files:
        record.append(f'{rel},,')
        if write:
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            (site / rel).write_text(name)
    (info / 'RECORD').write_text('\n'.join(record) + '\n')


def run_planner(tmp_path, lock, previous=None):
    """The install script's planner in a fresh interpreter that sees only ``tmp_path/site``."""
    site = tmp_path / 'site'
    (tmp_path / 'lock').write_text(lock)
    if previous is not None:
        (tmp_path / 'stamp').write_text(previous)
    prelude = ('import importlib.metadata as m, sys\n'
               'real = m.distributions\n'
               f'm.distributions = lambda: real(path=[{str(site)!r}])\n')
    out = subprocess.run([sys.executable, '-I', '-c', prelude + planner_source(),
                          str(tmp_path / 'lock'), str(tmp_path / 'stamp'), CV2_PROVIDER],
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


CV2 = ['cv2/__init__.py', 'cv2/cv2.abi3.so']
LOCKED = 'numpy==1.26.4\nopencv-contrib-python==4.11.0.86\nmmcv==2.1.0\n'


def test_a_second_cv2_provider_is_removed_and_the_shared_files_reinstalled(tmp_path):
    site = tmp_path / 'site'
    fake_dist(site, 'numpy', '1.26.4', ['numpy/__init__.py'])
    fake_dist(site, 'opencv-contrib-python', '4.11.0.86', CV2 + ['cv2/contrib.py'])
    fake_dist(site, 'opencv-python', '4.11.0.86', CV2)  # installed last: its files won
    fake_dist(site, 'dropped', '0.1', ['dropped.py'])
    fake_dist(site, 'user-tool', '2.0', ['user_tool.py'])
    out = run_planner(tmp_path, LOCKED, previous=LOCKED + 'dropped==0.1\n')
    assert out == ['reinstall opencv-contrib-python==4.11.0.86', 'uninstall dropped',
                   'uninstall opencv-python', 'extra user-tool==2.0']


def test_a_provider_whose_files_went_with_another_is_reinstalled_on_the_next_run(tmp_path):
    site = tmp_path / 'site'
    fake_dist(site, 'numpy', '1.26.4', ['numpy/__init__.py'])
    fake_dist(site, 'opencv-contrib-python', '4.11.0.86', CV2 + ['cv2/contrib.py'])
    (site / 'cv2' / 'cv2.abi3.so').unlink()  # an earlier run stopped between the two steps
    assert run_planner(tmp_path, LOCKED) == [
        'reinstall opencv-contrib-python==4.11.0.86']


@pytest.mark.parametrize('other', ['opencv-python-headless', 'opencv-contrib-python-headless'])
def test_any_other_cv2_provider_is_removed_and_a_missing_or_other_version_is_drift(tmp_path, other):
    site = tmp_path / 'site'
    fake_dist(site, 'numpy', '2.0.0', ['numpy/__init__.py'])
    fake_dist(site, other, '4.12.0.88', CV2)
    out = run_planner(tmp_path, LOCKED)
    assert out == ['drift numpy', 'drift opencv-contrib-python', f'uninstall {other}']
