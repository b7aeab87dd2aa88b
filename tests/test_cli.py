"""The command line: user errors are one line and exit status 2, bugs keep their traceback."""

import pytest

from sost_jax import cli
from sost_jax.errors import InputError


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, tmp_path, capsys):
    argv = ["prepare", str(tmp_path), "--out", str(tmp_path / "x"), "--set", "nope=1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: unknown config" in err
    with pytest.raises(InputError, match="unknown config"):
        cli.main(["--debug", *argv])

    def bug(args):
        raise ValueError("an internal inconsistency")  # not raised on purpose for the user

    monkeypatch.setattr(cli, "_cmd_prepare", bug)
    with pytest.raises(ValueError, match="internal inconsistency"):
        cli.main(argv)
