"""Every Python example in docs/python.md runs (those marked `# needs: X` where X is installed)."""

import importlib.util
import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "python.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("code", BLOCKS, ids=[f"example-{i + 1}" for i in range(len(BLOCKS))])
def test_example_runs(code):
    needs = re.match(r"# needs: (.+)\n", code)
    if needs:
        for mod in needs.group(1).split(","):
            if importlib.util.find_spec(mod.strip()) is None:
                pytest.skip(f"needs {mod.strip()}")
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})
