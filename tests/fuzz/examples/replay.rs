//! Times every input of a corpus through one target, on a plain release build (no sanitizer,
//! no coverage instrumentation), and prints the slowest: the "no input slower than 100 ms"
//! check of docs/fuzzing.md.
//!
//! `cargo run --release --example replay -- <target> <dir-or-file>... [--limit-ms N] [--top K]`
//!
//! Each input runs once to warm up and then three times; its time is the fastest of the three
//! (the machine is shared: the minimum is the least noisy). Exits 1 when an input is slower
//! than the limit (default 100 ms).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn files(path: PathBuf, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(&path) {
            for e in entries.flatten() {
                files(e.path(), out);
            }
        }
    } else if path.is_file() {
        out.push(path);
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: replay <target> <dir-or-file>... [--limit-ms N] [--top K]");
        return ExitCode::from(2);
    };
    let Some(target) = folio_fuzz::target(&name) else {
        eprintln!("replay: no target {name:?}");
        return ExitCode::from(2);
    };
    let (mut limit_ms, mut top, mut inputs) = (100.0_f64, 5_usize, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--limit-ms" => limit_ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(limit_ms),
            "--top" => top = args.next().and_then(|v| v.parse().ok()).unwrap_or(top),
            _ => files(PathBuf::from(a), &mut inputs),
        }
    }
    let mut times: Vec<(Duration, PathBuf, usize)> = Vec::with_capacity(inputs.len());
    let start = Instant::now();
    for path in inputs {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        target(&data);
        let best = (0..3)
            .map(|_| {
                let t = Instant::now();
                target(&data);
                t.elapsed()
            })
            .min()
            .unwrap_or_default();
        times.push((best, path, data.len()));
    }
    times.sort_by(|a, b| b.0.cmp(&a.0));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "replay {name}: {} inputs in {:.1} s",
        times.len(),
        start.elapsed().as_secs_f64()
    );
    for (d, path, len) in times.iter().take(top) {
        println!("  {:9.3} ms  {:8} B  {}", ms(*d), len, path.display());
    }
    let max = times.first().map(|t| ms(t.0)).unwrap_or(0.0);
    println!("slowest {name}: {max:.3} ms (limit {limit_ms} ms)");
    if max > limit_ms {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
