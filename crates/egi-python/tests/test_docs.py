"""Every Python example in docs/python.md, docs/scale.md and the README runs (those marked `# needs: X` where
X is installed, or everywhere with EGI_REQUIRE_TRL=1, as in CI)."""

import importlib.util
import os
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[3] / "docs"
DOC = DOCS / "python.md"
BLOCKS = [b for page in ("python.md", "scale.md") for b in re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)]


def test_the_page_has_examples():
    assert len(BLOCKS) >= 4


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """One folder for every example, as a reader's working directory: files an example
    writes (the default model as a Hugging Face directory) are there for the next."""
    return tmp_path_factory.mktemp("docs")


@pytest.mark.parametrize("code", BLOCKS, ids=[f"example-{i + 1}" for i in range(len(BLOCKS))])
def test_example_runs(code, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    needs = re.match(r"# needs: (.+)\n", code)
    if needs:
        for mod in needs.group(1).split(","):
            if importlib.util.find_spec(mod.strip()) is None and os.environ.get("EGI_REQUIRE_TRL") != "1":
                pytest.skip(f"needs {mod.strip()}")
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})


README = DOC.parents[1] / "README.md"
README_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("code", README_BLOCKS, ids=[f"readme-{i + 1}" for i in range(len(README_BLOCKS))])
def test_readme_example_runs(code, workdir, monkeypatch):
    for mod in ("pandas", "trl"):
        if importlib.util.find_spec(mod) is None and os.environ.get("EGI_REQUIRE_TRL") != "1":
            pytest.skip(f"needs {mod}")
    monkeypatch.chdir(workdir)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
