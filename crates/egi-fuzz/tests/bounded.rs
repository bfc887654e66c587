//! A bounded fuzz run of every target in the test suite: each seed is mutated at random
//! (bit flips, bytes set to boundary values, little-endian integers overwritten with huge
//! ones, cuts, repeated and spliced chunks) for a fixed number of inputs. Every input must
//! return without a panic, in well under a second, and without asking the allocator for an
//! absurd block. The long, coverage-guided runs are in `fuzz/` (see its README).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The largest single allocation request seen; requests over 4 GiB are refused (null), so an
/// unbounded allocation fails the test loudly instead of exhausting the machine.
struct Watch;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
const REFUSE: usize = 4 << 30;

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        if l.size() > REFUSE {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarding the caller's layout to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: p came from System.alloc with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        if new > REFUSE {
            return std::ptr::null_mut();
        }
        // SAFETY: as for alloc and dealloc.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static WATCH: Watch = Watch;

fn mutate(seed: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if d.is_empty() {
            d.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..d.len());
        match rng.random_range(0..7) {
            0 => d[i] ^= 1 << rng.random_range(0..8),
            1 => d[i] = [0u8, 0xFF, 0x7F, 0x80, b'{', b'"', b'\\'][rng.random_range(0..7)],
            2 => {
                // a little-endian count or offset made huge
                let v: u64 = [u64::MAX, 1 << 40, 1 << 31, u32::MAX as u64][rng.random_range(0..4)];
                let end = (i + 8).min(d.len());
                d[i..end].copy_from_slice(&v.to_le_bytes()[..end - i]);
            }
            3 => d.truncate(i),
            4 => {
                let n = rng.random_range(1..=64.min(d.len() - i));
                let chunk = d[i..i + n].to_vec();
                let at = rng.random_range(0..=d.len());
                d.splice(at..at, chunk);
            }
            5 => {
                let n = rng.random_range(1..=16);
                let at = rng.random_range(0..=d.len());
                d.splice(at..at, (0..n).map(|_| rng.random::<u8>()));
            }
            _ => {
                let n = rng.random_range(1..=64.min(d.len() - i));
                d.drain(i..i + n);
            }
        }
    }
    d
}

fn fuzz(name: &str, target: fn(&[u8]), seed: Vec<u8>, inputs: usize, slow: Duration) {
    let mut rng = ChaCha8Rng::seed_from_u64(20261203);
    let t0 = Instant::now();
    let mut worst = Duration::ZERO;
    for k in 0..inputs {
        let input = if k == 0 {
            seed.clone()
        } else {
            mutate(&seed, &mut rng)
        };
        LARGEST.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let r = std::panic::catch_unwind(|| target(&input));
        let el = t.elapsed();
        worst = worst.max(el);
        if r.is_err() {
            let path = std::env::temp_dir().join(format!("egi-fuzz-{name}-crash.bin"));
            std::fs::write(&path, &input).unwrap();
            panic!("{name}: input {k} panicked (saved as {})", path.display());
        }
        let big = LARGEST.load(Ordering::Relaxed);
        assert!(
            big < 1 << 30,
            "{name}: input {k} asked for a {big}-byte block"
        );
        assert!(el < slow, "{name}: input {k} took {el:?}");
    }
    println!(
        "{name}: {inputs} inputs in {:.1} s, slowest {worst:?}",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn seeds_run_every_stage() {
    // the seeds are valid, so mutations start from inputs that load all the way
    use candle_core::{DType, Device};
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("seed.gguf");
    std::fs::write(&p, egi_fuzz::seeds::gguf()).unwrap();
    let m = egi_model::load(p.to_str().unwrap(), DType::F32, &Device::Cpu).unwrap();
    let t = m.tokenizer.as_ref().expect("the seed GGUF has a tokenizer");
    assert!(t.chat_template.is_some());
    assert!(!t.encode("the answer", false).unwrap().is_empty());
}

#[test]
fn gguf() {
    fuzz(
        "gguf",
        egi_fuzz::gguf,
        egi_fuzz::seeds::gguf(),
        2500,
        Duration::from_secs(2),
    );
}

#[test]
fn safetensors() {
    fuzz(
        "safetensors",
        egi_fuzz::safetensors,
        egi_fuzz::seeds::safetensors(),
        4000,
        Duration::from_secs(2),
    );
}

#[test]
fn tokenizer() {
    fuzz(
        "tokenizer",
        egi_fuzz::tokenizer,
        egi_fuzz::seeds::tokenizer(),
        2500,
        Duration::from_secs(2),
    );
}

#[test]
fn jsonl() {
    fuzz(
        "jsonl",
        egi_fuzz::jsonl,
        egi_fuzz::seeds::jsonl(),
        30000,
        Duration::from_secs(1),
    );
}

#[test]
fn verify() {
    fuzz(
        "verify",
        egi_fuzz::verify,
        egi_fuzz::seeds::verify(),
        60000,
        Duration::from_millis(200),
    );
}
