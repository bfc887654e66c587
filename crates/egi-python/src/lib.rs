//! `egi._egi`, the extension module of egi's Python package: a thin layer over egi's crates.
//! Every computation is in those crates; this file converts arguments and results, releases
//! the GIL around long calls, and turns errors into Python exceptions. The Python-facing API
//! (docstrings, reward functions) is in `python/egi/`.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{
    PyFileNotFoundError, PyOSError, PyPermissionError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rayon::prelude::*;
use std::sync::{Arc, RwLock};

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
///
/// The weights sit behind an `Arc` that `load_state_dict` swaps whole: a call that started
/// before keeps the weights it started with, and the lock is held only for the swap, never
/// while waiting for the GIL.
#[pyclass(module = "egi._egi", name = "Model", frozen)]
struct Model {
    weights: RwLock<Arc<egi_model::Transformer>>,
    tok: egi_model::Tokenizer,
    source: egi_model::source::ModelSource,
    generation: egi_model::GenerationDefaults,
    eos_ids: Vec<u32>,
    spec: String,
}

impl Model {
    fn weights(&self) -> Arc<egi_model::Transformer> {
        // A poisoned lock still holds a whole Arc: the swap cannot be half done.
        match self.weights.read() {
            Ok(w) => w.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
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

/// Adds to each record of `list` (the Python form of `records`) with `tokens` a numpy array
/// per (array, token field), read from the JSON records: int64 for `ids`, float64 otherwise
/// (NaN where a mode leaves the field out, e.g. per-token influence with a per-step mode);
/// `nuclear` (a list per token) becomes a tokens x matrices float64 array.
fn token_arrays(
    records: &[serde_json::Value],
    list: &Bound<'_, PyList>,
    fields: &[(&str, &str)],
) -> PyResult<()> {
    let py = list.py();
    for (rec, item) in records.iter().zip(list.iter()) {
        let Some(tokens) = rec["tokens"].as_array() else {
            continue;
        };
        let d = item.cast::<PyDict>()?;
        for &(array, field) in fields {
            let column = tokens.iter().map(|t| &t[field]);
            match array {
                "ids" => {
                    let v: Vec<i64> = column.map(|x| x.as_i64().unwrap_or(-1)).collect();
                    d.set_item(array, PyArray1::from_vec(py, v))?;
                }
                "nuclear" => {
                    let rows: Vec<Vec<f64>> = column
                        .map(|x| {
                            x.as_array()
                                .into_iter()
                                .flatten()
                                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                                .collect()
                        })
                        .collect();
                    let width = rows.first().map_or(0, Vec::len);
                    let a =
                        numpy::ndarray::Array2::from_shape_vec((rows.len(), width), rows.concat())
                            .map_err(|e| PyValueError::new_err(e.to_string()))?;
                    d.set_item(array, a.into_pyarray(py))?;
                }
                _ => {
                    let v: Vec<f64> = column.map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
                    d.set_item(array, PyArray1::from_vec(py, v))?;
                }
            }
        }
    }
    Ok(())
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
        let eos_ids = m.eos_ids();
        let egi_model::LoadedModel {
            model: weights,
            tokenizer,
            source,
            generation,
        } = m;
        Ok(Model {
            weights: RwLock::new(Arc::new(weights)),
            tok: tokenizer.expect("checked above"),
            source,
            generation,
            eos_ids,
            spec: model.to_string(),
        })
    }

    /// The model's configuration as `egi info` prints it (Hugging Face names).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.weights().cfg.to_hf_json())
    }

    /// The chat template applied to `messages` ((role, content) pairs), as text.
    #[pyo3(signature = (messages, add_generation_prompt = true))]
    fn apply_chat_template(
        &self,
        messages: Vec<(String, String)>,
        add_generation_prompt: bool,
    ) -> PyResult<String> {
        let msgs: Vec<_> = messages
            .into_iter()
            .map(|(role, content)| egi_model::chat::ChatMessage { role, content })
            .collect();
        self.tok
            .apply_chat_template(&msgs, add_generation_prompt)
            .map_err(py_err)
    }

    /// The weights under Hugging Face names, as float32 numpy arrays (copies).
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let model = self.weights();
        let mut named: Vec<_> = model.weights().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let out = PyDict::new(py);
        for (name, t) in named {
            let shape = t.dims().to_vec();
            let data = py
                .detach(|| -> candle_core::Result<Vec<f32>> {
                    t.to_device(&candle_core::Device::Cpu)?
                        .to_dtype(candle_core::DType::F32)?
                        .flatten_all()?
                        .to_vec1()
                })
                .map_err(|e| py_err(anyhow::anyhow!("{name}: {e}")))?;
            let a = numpy::ndarray::ArrayD::from_shape_vec(shape, data)
                .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
            out.set_item(name, a.into_pyarray(py))?;
        }
        Ok(out)
    }

    /// Writes the current weights, tokenizer and generation defaults as a Hugging Face
    /// directory (`egi save`).
    fn save(&self, py: Python<'_>, dir: std::path::PathBuf) -> PyResult<()> {
        let model = self.weights();
        py.detach(|| egi_model::save_hf_dir(&model, Some(&self.tok), &self.generation, &dir))
            .map_err(py_err)
    }

    /// Replace weights by Hugging Face name (`arrays`: float32 numpy arrays, C order), all or
    /// none; returns the (unexpected, missing) names.
    #[pyo3(signature = (names, arrays, *, strict = true))]
    fn load_state_dict(
        &self,
        py: Python<'_>,
        names: Vec<String>,
        arrays: Vec<Bound<'_, PyAny>>,
        strict: bool,
    ) -> PyResult<(Vec<String>, Vec<String>)> {
        if names.len() != arrays.len() {
            return Err(PyValueError::new_err(format!(
                "{} names but {} arrays",
                names.len(),
                arrays.len()
            )));
        }
        let mut w = egi_model::weights::Weights::new();
        for (name, a) in names.into_iter().zip(arrays) {
            let a: PyReadonlyArrayDyn<'_, f32> = a.extract().map_err(|_| {
                let ty = a
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                PyTypeError::new_err(format!("{name}: expected a float32 numpy array, got {ty}"))
            })?;
            let shape = a.shape().to_vec();
            let data = match a.as_slice() {
                Ok(s) => s.to_vec(),
                Err(_) => a.as_array().iter().copied().collect(),
            };
            let t = candle_core::Tensor::from_vec(data, shape, &candle_core::Device::Cpu)
                .map_err(|e| py_err(anyhow::anyhow!("{name}: {e}")))?;
            if w.insert(name.clone(), t).is_some() {
                return Err(PyValueError::new_err(format!("{name}: given twice")));
            }
        }
        let current = self.weights();
        let (next, report) = py
            .detach(|| -> anyhow::Result<_> {
                let mut next = current.detached();
                let report = next.load_state(w, strict)?;
                Ok((next, report))
            })
            .map_err(py_err)?;
        match self.weights.write() {
            Ok(mut g) => *g = Arc::new(next),
            Err(p) => *p.into_inner() = Arc::new(next),
        }
        Ok((report.unexpected, report.missing))
    }

    /// Completions of each prompt (`egi generate`'s records, `--json`): `n` per prompt, the
    /// i-th with seed `seed + i`, all prompts sampled as one batch.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (prompts, *, n = 1, max_new_tokens = 256, temperature = None, top_p = None, top_k = None, seed = 0, stop = Vec::new(), chat = true, system = None))]
    fn generate<'py>(
        &self,
        py: Python<'py>,
        prompts: Vec<String>,
        n: usize,
        max_new_tokens: usize,
        temperature: Option<f64>,
        top_p: Option<f64>,
        top_k: Option<usize>,
        seed: u64,
        stop: Vec<String>,
        chat: bool,
        system: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        use egi::cmd_generate as g;
        let params = g::sampling_params(
            &self.generation,
            temperature,
            top_p,
            top_k,
            max_new_tokens,
            stop,
        );
        let mut reqs = vec![];
        for p in &prompts {
            let ids = g::prompt_ids(&self.tok, p, chat, system.as_deref()).map_err(py_err)?;
            reqs.extend(g::requests(&ids, &params, seed, n));
        }
        let model = self.weights();
        let out = py
            .detach(|| egi_generate::generate(&model, &self.tok, &self.eos_ids, &reqs))
            .map_err(py_err)?;
        let per = n.max(1);
        let records: Vec<serde_json::Value> = out
            .iter()
            .enumerate()
            .map(|(k, c)| g::completion_record(k % per, reqs[k].params.seed, c))
            .collect();
        let list = to_py_list(py, &records)?;
        for (item, c) in list.iter().zip(&out) {
            let d = item.cast::<PyDict>()?;
            d.set_item("token_ids", PyArray1::from_slice(py, &c.token_ids))?;
            d.set_item("logprobs", PyArray1::from_slice(py, &c.logprobs))?;
        }
        Ok(list)
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
        let texts = texts(prompts, responses, ids)?;
        let model = self.weights();
        let records = each_text(py, &texts, |t| {
            let id = serde_json::Value::String(t.id.clone());
            egi::cmd_score::score_record(&model, &self.tok, &id, &t.prompt, &t.response, raw)
                .map_err(|e| e.context(format!("response {}", t.id)))
        })?;
        let list = to_py_list(py, &records)?;
        token_arrays(
            &records,
            &list,
            &[
                ("ids", "id"),
                ("logit", "logit"),
                ("logprob", "logprob"),
                ("entropy", "entropy"),
            ],
        )?;
        Ok(list)
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
        let model = self.weights();
        let tok = &self.tok;
        let n_layers = model.cfg.num_layers;
        let settings = egi::cmd_fingerprint::settings_from_flags(&self.spec, n_layers, &flags)
            .map_err(py_err)?;
        if !settings.raw && tok.chat_template.is_none() {
            return Err(PyValueError::new_err(format!(
                "{}: this model has no chat template; pass raw=True to use the prompts as they are",
                self.source.path().display()
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
            egi_probe::run::measure_text(&model, tok, t, &settings)
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
        let list = to_py_list(py, &records)?;
        let mut fields = vec![("entropy", "entropy"), ("influence", "influence")];
        if settings.per_matrix {
            fields.push(("nuclear", "nuclear"));
        }
        token_arrays(&records, &list, &fields)?;
        Ok((list, to_py(py, &summary)?))
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
