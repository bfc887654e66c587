//! `egi._egi`, the extension module of egi's Python package: a thin layer over egi's crates.
//! Every computation is in those crates; this file converts arguments and results, releases
//! the GIL around long calls, and turns errors into Python exceptions. The Python-facing API
//! (docstrings, reward functions) is in `python/egi/`.

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyPermissionError, PyValueError};
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

/// An egi error as a Python exception with the message the `egi` command prints: OSError's
/// subclasses for the file system's refusals, ValueError for everything else egi rejects.
fn py_err(e: anyhow::Error) -> PyErr {
    let msg = egi::one_line(&e);
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
    match io.map(|io| io.kind()) {
        Some(std::io::ErrorKind::NotFound) => PyFileNotFoundError::new_err(msg),
        Some(std::io::ErrorKind::PermissionDenied) => PyPermissionError::new_err(msg),
        Some(_) => PyOSError::new_err(msg),
        None => PyValueError::new_err(msg),
    }
}

/// A loaded model: weights, tokenizer and chat template (`egi.Model` in Python).
#[pyclass(module = "egi._egi", name = "Model", frozen)]
struct Model {
    m: egi_model::LoadedModel,
    spec: String,
}

fn texts(
    prompts: Vec<String>,
    responses: Vec<String>,
    ids: Option<Vec<String>>,
) -> PyResult<Vec<egi_probe::run::Text>> {
    if prompts.len() != responses.len() {
        return Err(PyValueError::new_err(format!(
            "{} prompts but {} responses: give one response per prompt",
            prompts.len(),
            responses.len()
        )));
    }
    let ids = ids.unwrap_or_else(|| (0..prompts.len()).map(|i| i.to_string()).collect());
    if ids.len() != prompts.len() {
        return Err(PyValueError::new_err(format!(
            "{} ids for {} prompts",
            ids.len(),
            prompts.len()
        )));
    }
    Ok(ids
        .into_iter()
        .zip(prompts.into_iter().zip(responses))
        .map(|(id, (prompt, response))| egi_probe::run::Text {
            id,
            prompt,
            response,
        })
        .collect())
}

/// `f` on each text in turn with the GIL released, stopping on Ctrl-C between texts.
fn each_text(
    py: Python<'_>,
    texts: &[egi_probe::run::Text],
    f: impl Fn(&egi_probe::run::Text) -> anyhow::Result<serde_json::Value> + Sync,
) -> PyResult<Vec<serde_json::Value>> {
    let mut out = Vec::with_capacity(texts.len());
    for t in texts {
        out.push(py.detach(|| f(t)).map_err(py_err)?);
        py.check_signals()?;
    }
    Ok(out)
}

fn to_py_list<'py>(py: Python<'py>, records: &[serde_json::Value]) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for r in records {
        out.append(to_py(py, r)?)?;
    }
    Ok(out)
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (model = "default", device = "cpu", dtype = "f32"))]
    fn new(py: Python<'_>, model: &str, device: &str, dtype: &str) -> PyResult<Self> {
        let dev = egi_model::select_device(device).map_err(py_err)?;
        let dt = egi_model::parse_dtype(dtype).map_err(py_err)?;
        let m = py
            .detach(|| egi_model::load(model, dt, &dev))
            .map_err(py_err)?;
        m.tokenizer().map_err(py_err)?;
        Ok(Model {
            m,
            spec: model.to_string(),
        })
    }

    /// The model's configuration as `egi info` prints it (Hugging Face names).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.m.model.cfg.to_hf_json())
    }

    #[pyo3(signature = (prompts, responses, *, ids = None, raw = false))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        prompts: Vec<String>,
        responses: Vec<String>,
        ids: Option<Vec<String>>,
        raw: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let tok = self.m.tokenizer().map_err(py_err)?;
        let texts = texts(prompts, responses, ids)?;
        let records = each_text(py, &texts, |t| {
            let id = serde_json::Value::String(t.id.clone());
            egi::cmd_score::score_record(&self.m.model, tok, &id, &t.prompt, &t.response, raw)
                .map_err(|e| e.context(format!("response {}", t.id)))
        })?;
        to_py_list(py, &records)
    }

    /// Records (as in responses.jsonl, skipped ones with their reason) and the summary (as in
    /// summary.json); `flags` are `egi fingerprint`'s options.
    #[pyo3(signature = (prompts, responses, *, ids = None, flags = Vec::new()))]
    fn fingerprint<'py>(
        &self,
        py: Python<'py>,
        prompts: Vec<String>,
        responses: Vec<String>,
        ids: Option<Vec<String>>,
        flags: Vec<String>,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyAny>)> {
        let t0 = std::time::Instant::now();
        let n_layers = self.m.model.cfg.num_layers;
        let settings = egi::cmd_fingerprint::settings_from_flags(&self.spec, n_layers, &flags)
            .map_err(py_err)?;
        let tok = self.m.tokenizer().map_err(py_err)?;
        if !settings.raw && tok.chat_template.is_none() {
            return Err(PyValueError::new_err(format!(
                "{}: this model has no chat template; pass raw=True to use the prompts as they are",
                self.m.source.path().display()
            )));
        }
        let texts = texts(prompts, responses, ids)?;
        let mut seen = std::collections::HashSet::new();
        if let Some(t) = texts.iter().find(|t| !seen.insert(t.id.as_str())) {
            return Err(PyValueError::new_err(format!(
                "duplicate id \"{}\": ids must be unique",
                t.id
            )));
        }
        let records = each_text(py, &texts, |t| {
            egi_probe::run::measure_text(&self.m.model, tok, t, &settings)
        })?;
        let o = &settings.options;
        let summary = py
            .detach(|| -> anyhow::Result<serde_json::Value> {
                let matrices = o.matrices(n_layers)?;
                egi_probe::report::summarize(
                    &records,
                    &settings.model,
                    settings.bootstrap,
                    o,
                    &matrices,
                    n_layers,
                    t0.elapsed().as_secs_f64(),
                )
            })
            .map_err(py_err)?;
        Ok((to_py_list(py, &records)?, to_py(py, &summary)?))
    }
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
    to_py_list(py, &records)
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
    m.add_class::<Model>()?;
    Ok(())
}
