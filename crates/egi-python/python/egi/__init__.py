"""egi: look inside reasoning language models and train them, from Python.

A thin layer over egi's Rust crates (the same code as the ``egi`` command, which this package
also installs): the math-answer verifier, reward functions for TRL and verl built on it
(``egi.rewards``), and ``egi.Model``: scores and the fingerprint of responses.

>>> import egi
>>> egi.verify("The answer is \\\\boxed{\\\\frac{1}{2}}", "0.5")["verdict"]
'correct'
>>> [r["verdict"] for r in egi.verify_many(["x = 3", "#### 4"], ["3", "5"])]
['correct', 'wrong']
"""

from ._egi import __version__, correct_many, verify, verify_many
from .model import Fingerprint, Model

__all__ = ["__version__", "verify", "verify_many", "correct_many", "Model", "Fingerprint"]
