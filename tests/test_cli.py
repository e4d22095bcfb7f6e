"""Command-line interface: version, help, error reporting."""
import subprocess
import sys

import pytest

import vertebrafe
from vertebrafe import cli
from vertebrafe.errors import InputError


def test_version_in_process(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"vertebrafe {vertebrafe.__version__}"


def test_help_in_process(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: vertebrafe" in out
    assert "finite-element" in out
    assert "examples:" in out


def test_no_arguments_prints_help(capsys):
    assert cli.main([]) == 0
    assert "usage: vertebrafe" in capsys.readouterr().out


def test_unknown_command_is_usage_error(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_info_lists_versions(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"vertebrafe {vertebrafe.__version__}" in out
    assert "numpy" in out


def _failing(args):
    raise InputError("field 'E' = -1.0 MPa is out of range: must be > 0\nsecond line")


@pytest.fixture
def failing_command(monkeypatch):
    monkeypatch.setitem(cli.SUBCOMMANDS, "fail", ("always fails", lambda p: None, _failing))


def test_failure_is_one_line_without_debug(failing_command, capsys):
    assert cli.main(["fail"]) == 1
    err = capsys.readouterr().err
    assert "vertebrafe: error: field 'E' = -1.0 MPa is out of range" in err
    assert "second line" not in err
    assert "Traceback" not in err


def test_failure_shows_traceback_with_debug(failing_command, capsys):
    assert cli.main(["--debug", "fail"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "InputError" in err


def test_python_dash_m_subprocess():
    version = subprocess.run(
        [sys.executable, "-m", "vertebrafe", "--version"],
        capture_output=True, text=True, timeout=120,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"vertebrafe {vertebrafe.__version__}"
    help_ = subprocess.run(
        [sys.executable, "-m", "vertebrafe", "--help"],
        capture_output=True, text=True, timeout=120,
    )
    assert help_.returncode == 0, help_.stderr
    assert "usage: vertebrafe" in help_.stdout
