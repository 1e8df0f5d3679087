//! A small mutation fuzzer for the decoders, run as ordinary tests within a bounded budget.
//!
//! Each target starts from seeds (realistic bodies, written from the platforms' documentation,
//! in `fuzz-corpus/<target>/`, plus any the test adds) and applies a few random mutations per
//! input: byte flips, insertions and deletions, a dictionary of the format's tokens, splices
//! between seeds, repeated slices (which is how nesting and size bombs are born) and deep
//! wraps. Every input goes to the target's check; a check that fails, panics or takes longer
//! than [`SLOW_INPUT`] fails the test, with the input saved under
//! `target/fuzz-failures/` and the seed that reproduces the run.
//!
//! Inputs that once found a bug are kept in the corpus (`regression-*` files) and run first,
//! every time. Budget: `CLAWDBOT_FUZZ_INPUTS` inputs per target (default 10,000) within
//! `CLAWDBOT_FUZZ_SECS` seconds (default 20); `CLAWDBOT_FUZZ_SEED` repeats a run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Longer than this for one input means work superlinear in the input (or a hang).
pub const SLOW_INPUT: Duration = Duration::from_secs(1);
/// Inputs grow no larger than this (the ingress's default body limit is 1 MiB).
const MAX_INPUT: usize = 256 * 1024;

/// What a fuzz run did.
#[derive(Debug)]
pub struct Report {
    pub target: String,
    pub seed: u64,
    pub inputs: usize,
    pub elapsed: Duration,
}

/// One fuzz target: its seeds, its format's tokens, and the check each input must pass.
pub struct Target<'a> {
    name: &'a str,
    seeds: Vec<Vec<u8>>,
    regressions: Vec<(String, Vec<u8>)>,
    dictionary: Vec<&'a [u8]>,
}

impl<'a> Target<'a> {
    /// A target named `name`, seeded from `fuzz-corpus/<name>/` (every file; `regression-*`
    /// files also run as they are before any mutation).
    pub fn new(name: &'a str) -> Self {
        let mut target = Self {
            name,
            seeds: Vec::new(),
            regressions: Vec::new(),
            dictionary: COMMON_TOKENS.to_vec(),
        };
        let dir = corpus_dir().join(name);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            files.sort();
            for file in files {
                let Ok(bytes) = std::fs::read(&file) else {
                    continue;
                };
                let file_name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if file_name.starts_with("regression-") {
                    target.regressions.push((file_name, bytes.clone()));
                }
                target.seeds.push(bytes);
            }
        }
        target
    }

    /// Adds a seed built by the test (a signed or encrypted shape the corpus cannot hold).
    pub fn seed(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.seeds.push(bytes.into());
        self
    }

    /// Adds tokens of the format, inserted by the mutator.
    pub fn tokens(mut self, tokens: &[&'a [u8]]) -> Self {
        self.dictionary.extend_from_slice(tokens);
        self
    }

    /// Runs the regressions, then mutated inputs until the budget is spent, through `check`.
    ///
    /// # Panics
    /// When an input fails `check`, panics in it or is slow: the test fails naming the input's
    /// file and the seed.
    pub fn run(self, check: impl Fn(&[u8]) -> Result<(), String>) -> Report {
        assert!(
            !self.seeds.is_empty(),
            "fuzz target `{}` has no seed: add files under {}",
            self.name,
            corpus_dir().join(self.name).display()
        );
        let seed = env_number("CLAWDBOT_FUZZ_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        let budget = env_number("CLAWDBOT_FUZZ_INPUTS").unwrap_or(10_000) as usize;
        let time = Duration::from_secs(env_number("CLAWDBOT_FUZZ_SECS").unwrap_or(20));
        let started = Instant::now();
        for (file, input) in &self.regressions {
            self.try_one(&check, input, &format!("regression {file}"), seed);
        }
        for seed_input in &self.seeds {
            self.try_one(&check, seed_input, "a seed", seed);
        }
        let mut rng = Rng(seed | 1);
        let mut inputs = 0;
        while inputs < budget && started.elapsed() < time {
            let input = self.mutant(&mut rng);
            self.try_one(&check, &input, &format!("input {inputs}"), seed);
            inputs += 1;
        }
        let report = Report {
            target: self.name.to_string(),
            seed,
            inputs,
            elapsed: started.elapsed(),
        };
        println!(
            "fuzz {}: {} inputs in {:.1?} (CLAWDBOT_FUZZ_SEED={seed}), no failure",
            report.target, report.inputs, report.elapsed
        );
        report
    }

    fn try_one(
        &self,
        check: &impl Fn(&[u8]) -> Result<(), String>,
        input: &[u8],
        what: &str,
        seed: u64,
    ) {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(input)));
        let took = started.elapsed();
        let failure = match outcome {
            Ok(Ok(())) if took <= SLOW_INPUT => return,
            Ok(Ok(())) => format!("took {took:?} (over {SLOW_INPUT:?})"),
            Ok(Err(reason)) => reason,
            Err(panic) => format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ),
        };
        let saved = save_failure(self.name, seed, input);
        panic!(
            "fuzz {}: {what} failed: {failure}\n  input saved to {} ({} bytes); rerun with CLAWDBOT_FUZZ_SEED={seed}; \
             once fixed, copy it to fuzz-corpus/{}/regression-<what>",
            self.name,
            saved.display(),
            input.len(),
            self.name
        );
    }

    fn mutant(&self, rng: &mut Rng) -> Vec<u8> {
        let mut input = self.seeds[rng.below(self.seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            self.mutate(&mut input, rng);
        }
        input.truncate(MAX_INPUT);
        input
    }

    fn mutate(&self, input: &mut Vec<u8>, rng: &mut Rng) {
        let at = rng.below(input.len() + 1);
        match rng.below(9) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => input.insert(at, rng.next() as u8),
            2 if at < input.len() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            3 if at < input.len() => {
                // A slice repeated: deep nesting from an opening tag, long runs from text.
                let end = (at + 1 + rng.below(8)).min(input.len());
                let slice = input[at..end].to_vec();
                let most = if rng.below(4) == 0 { 5_000 } else { 8 };
                let times = 1 + rng.below(most);
                let repeated: Vec<u8> = slice.repeat(times);
                input.splice(at..at, repeated);
            }
            4 | 5 => {
                let token = self.dictionary[rng.below(self.dictionary.len())];
                input.splice(at..at, token.iter().copied());
            }
            6 => {
                let other = &self.seeds[rng.below(self.seeds.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            7 => input.truncate(at),
            _ => {
                // A deep wrap: the same opening token many times at one place.
                let token = self.dictionary[rng.below(self.dictionary.len())];
                let times = 1 + rng.below(2_000);
                let wrap: Vec<u8> = token.repeat(times);
                input.splice(at..at, wrap);
            }
        }
    }
}

/// Tokens of every text format the platforms use (JSON, XML, YAML, CQ codes).
const COMMON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"<",
    b">",
    b"</",
    b"/>",
    b"<a>",
    b"]]>",
    b"<![CDATA[",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"&lt;",
    b"<!DOCTYPE x>",
    b"<?xml version=\"1.0\"?>",
    b"\n",
    b"\r\n",
    b"\t",
    b"- ",
    b": ",
    b"&a ",
    b"*a",
    b"!!binary",
    b"[CQ:",
    b"[CQ:at,qq=",
    b"&#91;",
    b"&#93;",
    b"&#44;",
    b"\xff",
    b"\xe4\xbd",
    "你好".as_bytes(),
    b"%",
    b"=",
    b"\0",
];

/// `services/testkit/fuzz-corpus`.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-corpus")
}

fn save_failure(target: &str, seed: u64, input: &[u8]) -> PathBuf {
    let dir = crate::guest::repo_root().join("target/fuzz-failures");
    let _created = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{seed}-{}", crate::random_suffix()));
    let _written = std::fs::write(&path, input);
    path
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// xorshift64*: deterministic for a seed, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}
