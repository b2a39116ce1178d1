//! `wordcount <input path…> [--top N] [--split-size SIZE]`: counts the words of text files
//! on the executors and prints the `N` most frequent (default 20) as `word count` lines,
//! most frequent first, ties by word in ascending order.
//!
//! A *word* is a maximal run of alphanumeric characters (Unicode `char::is_alphanumeric`),
//! lowercased: `Don't stop, STOP!` has the words `don`, `t`, `stop`, `stop`. Bytes that are
//! not UTF-8 separate words. The count is exactly what one process reading the files would
//! find.
//!
//! Each input file (a directory stands for its files, skipping names that start with `.` or
//! `_`) is split into byte ranges of `SIZE` (default `1m`; `k`, `m`, `g` suffixes or plain
//! bytes); a task counts the lines that *start* in its range, so every line is counted once
//! whatever the split size. Paths are resolved in the driver; the executors must see the
//! same files (a local cluster or a shared volume).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;

use flint_client::runtime::{App, Context};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Split {
    path: String,
    start: u64,
    end: u64,
}

/// Adds the words of `line` to `counts`.
fn count_words(line: &[u8], counts: &mut HashMap<String, u64>) {
    let text = String::from_utf8_lossy(line);
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            *counts.entry(std::mem::take(&mut word)).or_insert(0) += 1;
        }
    }
    if !word.is_empty() {
        *counts.entry(word).or_insert(0) += 1;
    }
}

/// Counts the words of the lines that start in `[start, end)`.
fn count_split(s: Split) -> Result<HashMap<String, u64>, String> {
    let io = |e: std::io::Error| format!("{}: {e}", s.path);
    let mut f = File::open(&s.path).map_err(io)?;
    let mut pos = s.start;
    if s.start > 0 {
        f.seek(SeekFrom::Start(s.start - 1)).map_err(io)?;
    }
    let mut r = BufReader::with_capacity(256 * 1024, f);
    let mut line = Vec::new();
    if s.start > 0 {
        // Skip the tail of a line that started before this range (if the byte before the
        // range is a newline, that is just this byte).
        let n = r.read_until(b'\n', &mut line).map_err(io)?;
        pos = s.start - 1 + n as u64;
    }
    let mut counts = HashMap::new();
    while pos < s.end {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 {
            break;
        }
        count_words(&line, &mut counts);
        pos += n as u64;
    }
    Ok(counts)
}

/// Parses `1m`, `256k`, `4096`: bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t.as_str(), 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.saturating_mul(mult)),
        _ => Err(format!(
            "--split-size: expected a size such as 1m or 65536, got '{s}'"
        )),
    }
}

struct Args {
    inputs: Vec<PathBuf>,
    top: usize,
    split_size: u64,
}

const USAGE: &str = "usage: wordcount <input path...> [--top N] [--split-size SIZE]";

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut inputs = Vec::new();
    let mut top = 20;
    let mut split_size = 1 << 20;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--top" => {
                let v = it
                    .next()
                    .ok_or_else(|| format!("--top needs a value; {USAGE}"))?;
                top = v
                    .parse()
                    .map_err(|_| format!("--top: expected a number, got '{v}'"))?;
            }
            "--split-size" => {
                let v = it
                    .next()
                    .ok_or_else(|| format!("--split-size needs a value; {USAGE}"))?;
                split_size = parse_size(v)?;
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}; {USAGE}")),
            p => inputs.push(PathBuf::from(p)),
        }
    }
    if inputs.is_empty() {
        return Err(USAGE.into());
    }
    Ok(Args {
        inputs,
        top,
        split_size,
    })
}

/// The input files (directories expanded), as absolute paths the executors can open.
fn input_files(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, u64)>, String> {
    let mut files = Vec::new();
    for p in inputs {
        let abs = std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if abs.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&abs)
                .map_err(|e| format!("{}: {e}", abs.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| !n.starts_with('.') && !n.starts_with('_'))
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(abs);
        }
    }
    files
        .into_iter()
        .map(|f| {
            let len = std::fs::metadata(&f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .len();
            Ok((f, len))
        })
        .collect()
}

fn splits(files: &[(PathBuf, u64)], split_size: u64) -> Vec<Split> {
    let mut out = Vec::new();
    for (path, len) in files {
        let mut start = 0;
        while start < *len {
            let end = (start + split_size).min(*len);
            out.push(Split {
                path: path.display().to_string(),
                start,
                end,
            });
            start = end;
        }
    }
    out
}

/// The `top` most frequent words, most frequent first, ties by word ascending.
fn top_words(counts: HashMap<String, u64>, top: usize) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = counts.into_iter().collect();
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(top);
    all
}

async fn driver(ctx: Context) -> Result<(), String> {
    let args = parse_args(ctx.args())?;
    let files = input_files(&args.inputs)?;
    let parts = splits(&files, args.split_size);
    let n = parts.len();
    let partials: Vec<HashMap<String, u64>> = ctx
        .run_job("count_words", parts)
        .await
        .map_err(|e| e.to_string())?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for partial in partials {
        for (w, c) in partial {
            *counts.entry(w).or_insert(0) += c;
        }
    }
    let total: u64 = counts.values().sum();
    tracing::info!(
        "wordcount: {total} words, {} distinct, from {} file(s) in {n} partitions",
        counts.len(),
        files.len()
    );
    for (w, c) in top_words(counts, args.top) {
        println!("{w} {c}");
    }
    Ok(())
}

fn main() -> ExitCode {
    App::new("wordcount")
        .typed_task("count_words", count_split)
        .run(driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_all(text: &[u8]) -> HashMap<String, u64> {
        let mut c = HashMap::new();
        for line in text.split_inclusive(|b| *b == b'\n') {
            count_words(line, &mut c);
        }
        c
    }

    #[test]
    fn words_are_lowercase_alphanumeric_runs() {
        let c = count_all("Don't stop, STOP!\nnaïve Café 42x\n\n--".as_bytes());
        let mut v: Vec<_> = c.into_iter().collect();
        v.sort();
        let expect: Vec<(String, u64)> = [
            ("42x", 1),
            ("café", 1),
            ("don", 1),
            ("naïve", 1),
            ("stop", 2),
            ("t", 1),
        ]
        .iter()
        .map(|(w, n)| (w.to_string(), *n))
        .collect();
        assert_eq!(v, expect);
    }

    #[test]
    fn any_split_size_counts_every_line_once() {
        let dir = std::env::temp_dir().join(format!("wc-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("in.txt");
        let text = "alpha beta\n\ngamma alpha\nbeta\n delta epsilon alpha\nno-newline-at-end";
        std::fs::write(&path, text).expect("write");
        let expect = count_all(text.as_bytes());
        let files = vec![(path.clone(), text.len() as u64)];
        for size in 1..=text.len() as u64 + 1 {
            let mut got: HashMap<String, u64> = HashMap::new();
            for s in splits(&files, size) {
                for (w, c) in count_split(s).expect("count") {
                    *got.entry(w).or_insert(0) += c;
                }
            }
            assert_eq!(got, expect, "split size {size}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn top_words_order() {
        let c: HashMap<String, u64> = [("b", 2), ("a", 2), ("c", 5), ("d", 1)]
            .iter()
            .map(|(w, n)| (w.to_string(), *n))
            .collect();
        assert_eq!(
            top_words(c, 3),
            vec![("c".into(), 5), ("a".into(), 2), ("b".into(), 2)]
        );
    }

    #[test]
    fn arguments() {
        let a = parse_args(&[
            "x".into(),
            "--top".into(),
            "5".into(),
            "--split-size".into(),
            "64k".into(),
        ])
        .expect("args");
        assert_eq!((a.top, a.split_size, a.inputs.len()), (5, 65536, 1));
        assert!(parse_args(&[]).is_err());
        assert!(parse_args(&["x".into(), "--top".into()]).is_err());
        assert!(parse_args(&["x".into(), "--nope".into()]).is_err());
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert!(parse_size("0").is_err());
    }
}
