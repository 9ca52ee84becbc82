"""`make setup` brings pdflatex: scripts/ensure-tex.sh, run with pdflatex hidden from PATH.

Every tool the script calls (id, sudo, apt-get, pdflatex, kpsewhich) is a fake
in a private bin folder, and PATH holds only that folder: the machine's own TeX
stays out of sight and nothing is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ensure-tex.sh"
BASH = shutil.which("bash") or "/bin/bash"
PACKAGES = "texlive-latex-base texlive-latex-recommended texlive-science"


def _tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def _tex_tools(bin_dir: Path) -> str:
    # What apt-get "installs": a pdflatex, and a kpsewhich that finds every style.
    chmod = shutil.which("chmod") or "/bin/chmod"
    return (
        f"printf '#!{BASH}\\nexit 0\\n' > {bin_dir}/pdflatex; {chmod} +x {bin_dir}/pdflatex; "
        f"printf '#!{BASH}\\necho /usr/share/texmf/$1\\n' > {bin_dir}/kpsewhich; "
        f"{chmod} +x {bin_dir}/kpsewhich"
    )


def _machine(tmp_path: Path, *, uid: int, sudo: bool, installs: bool = True) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    _tool(bin_dir, "id", f"echo {uid}")
    _tool(
        bin_dir,
        "apt-get",
        f'echo "apt-get $*" >> {log}\n'
        + (f'if [ "$1" = install ]; then {_tex_tools(bin_dir)}; fi' if installs else ""),
    )
    if sudo:
        _tool(bin_dir, "sudo", f'echo "sudo $*" >> {log}\nif [ "$1" = -n ]; then exit 0; fi\n"$@"')
        # `sudo env VAR=... apt-get` needs env on the PATH.
        os.symlink(shutil.which("env") or "/usr/bin/env", bin_dir / "env")
    elif uid == 0:
        os.symlink(shutil.which("env") or "/usr/bin/env", bin_dir / "env")
    return bin_dir


def _run(bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT)],
        env={"PATH": str(bin_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_as_root_without_tex_installs_the_packages(tmp_path):
    bin_dir = _machine(tmp_path, uid=0, sudo=False)
    proc = _run(bin_dir)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(tmp_path)
    assert calls[0] == "apt-get update -q"
    assert calls[1] == f"apt-get install -y -q --no-install-recommends {PACKAGES}"
    assert (bin_dir / "pdflatex").exists()


def test_with_sudo_installs_through_sudo(tmp_path):
    bin_dir = _machine(tmp_path, uid=1000, sudo=True)
    proc = _run(bin_dir)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(tmp_path)
    assert "sudo apt-get update -q" in calls
    assert any(
        c.startswith("sudo env DEBIAN_FRONTEND=noninteractive apt-get install") for c in calls
    )
    assert f"apt-get install -y -q --no-install-recommends {PACKAGES}" in calls


def test_without_root_or_sudo_says_what_to_install_and_fails(tmp_path):
    bin_dir = _machine(tmp_path, uid=1000, sudo=False)
    proc = _run(bin_dir)
    assert proc.returncode == 1
    assert PACKAGES in proc.stderr and "XCAL_SKIP_TEX=1" in proc.stderr
    assert "root or password-less sudo" in proc.stderr
    assert _calls(tmp_path) == []


def test_skip_is_a_choice_the_user_makes(tmp_path):
    bin_dir = _machine(tmp_path, uid=1000, sudo=False)
    proc = _run(bin_dir, XCAL_SKIP_TEX="1")
    assert proc.returncode == 0
    assert "skipped" in proc.stderr and _calls(tmp_path) == []


def test_an_install_that_brings_no_pdflatex_fails(tmp_path):
    bin_dir = _machine(tmp_path, uid=0, sudo=False, installs=False)
    proc = _run(bin_dir)
    assert proc.returncode == 1 and "still missing" in proc.stderr


def test_a_missing_style_file_triggers_the_install(tmp_path):
    bin_dir = _machine(tmp_path, uid=0, sudo=False)
    _tool(bin_dir, "pdflatex", "exit 0")
    _tool(bin_dir, "kpsewhich", 'if [ "$1" = siunitx.sty ]; then exit 1; fi; echo found')
    proc = _run(bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert len(_calls(tmp_path)) == 2


def test_installed_tex_is_left_alone(tmp_path):
    bin_dir = _machine(tmp_path, uid=0, sudo=False)
    _tool(bin_dir, "pdflatex", "exit 0")
    _tool(bin_dir, "kpsewhich", "echo found")
    proc = _run(bin_dir)
    assert proc.returncode == 0 and _calls(tmp_path) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", ["demo", "test"])
def test_the_readme_commands_run_the_tex_step(target, tmp_path):
    # A dry run: make prints the recipe lines without running them.
    proc = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bash scripts/ensure-tex.sh" in proc.stdout


def test_ci_runs_exactly_the_readme_commands():
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    commands = [line for line in lines if line.startswith("make")]
    assert commands == ["make demo PROFILE=ci", "make test"]
    assert not any("apt-get" in line or "pdflatex" in line for line in lines)
