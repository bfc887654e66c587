//! `egi._egi`, the extension module of egi's Python package: a thin layer over egi's crates.
//! Every computation is in those crates; this file converts arguments and results, releases
//! the GIL around long calls, and turns errors into Python exceptions. The Python-facing API
//! (docstrings, reward functions) is in `python/egi/`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rayon::prelude::*;

use egi_verify::{verify as verify_one, Options, Status};

/// A JSON value as the Python object `json.loads` would give.
fn to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(f)) => f.into_pyobject(py)?.into_any(),
            _ => n.to_string().into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(to_py(py, x)?)?;
            }
            l.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn options(require_think_close: bool, rel_tol: f64) -> PyResult<Options> {
    if !(rel_tol.is_finite() && rel_tol >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "rel_tol = {rel_tol}: expected a finite number >= 0 (default 1e-6)"
        )));
    }
    Ok(Options {
        require_think_close,
        rel_tol,
    })
}

fn same_length(answers: usize, golds: usize) -> PyResult<()> {
    if answers != golds {
        return Err(PyValueError::new_err(format!(
            "{answers} answers but {golds} golds: give one gold per answer"
        )));
    }
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (answer, gold, *, require_think_close = false, rel_tol = 1e-6))]
fn verify<'py>(
    py: Python<'py>,
    answer: &str,
    gold: &str,
    require_think_close: bool,
    rel_tol: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let o = options(require_think_close, rel_tol)?;
    let v = py.detach(|| verify_one(answer, gold, &o));
    to_py(py, &v.to_record())
}

#[pyfunction]
#[pyo3(signature = (answers, golds, *, require_think_close = false, rel_tol = 1e-6))]
fn verify_many<'py>(
    py: Python<'py>,
    answers: Vec<String>,
    golds: Vec<String>,
    require_think_close: bool,
    rel_tol: f64,
) -> PyResult<Bound<'py, PyList>> {
    same_length(answers.len(), golds.len())?;
    let o = options(require_think_close, rel_tol)?;
    let records: Vec<serde_json::Value> = py.detach(|| {
        answers
            .par_iter()
            .zip(golds.par_iter())
            .map(|(a, g)| verify_one(a, g, &o).to_record())
            .collect()
    });
    let out = PyList::empty(py);
    for r in &records {
        out.append(to_py(py, r)?)?;
    }
    Ok(out)
}

#[pyfunction]
#[pyo3(signature = (answers, golds, *, require_think_close = false, rel_tol = 1e-6))]
fn correct_many(
    py: Python<'_>,
    answers: Vec<String>,
    golds: Vec<String>,
    require_think_close: bool,
    rel_tol: f64,
) -> PyResult<Vec<bool>> {
    same_length(answers.len(), golds.len())?;
    let o = options(require_think_close, rel_tol)?;
    Ok(py.detach(|| {
        answers
            .par_iter()
            .zip(golds.par_iter())
            .map(|(a, g)| verify_one(a, g, &o).status == Status::Correct)
            .collect()
    }))
}

/// The `egi` command with `args` (program name first); ends the process with its status.
#[pyfunction]
fn run_cli(py: Python<'_>, args: Vec<String>) {
    let args = args.into_iter().map(Into::into).collect();
    py.detach(|| egi::main(args))
}

#[pymodule]
fn _egi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify_many, m)?)?;
    m.add_function(wrap_pyfunction!(correct_many, m)?)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    Ok(())
}
