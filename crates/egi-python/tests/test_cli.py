"""The `egi` command that the wheel installs is the whole CLI."""

import subprocess


def test_help_and_bad_arguments(egi_cmd):
    out = subprocess.run([egi_cmd, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "fingerprint" in out.stdout and "docs/method.md" in out.stdout
    out = subprocess.run([egi_cmd, "train", "--algo", "ppo"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid value 'ppo'" in out.stderr
    out = subprocess.run([egi_cmd, "verify", "--input", "/nonexistent.jsonl"], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.startswith("error: /nonexistent.jsonl: cannot read")


def test_data_list_through_a_closed_pipe(egi_cmd):
    out = subprocess.run(f"'{egi_cmd}' data list | head -1", shell=True, capture_output=True, text=True)
    assert out.returncode == 0 and "panicked" not in out.stderr
