//! Parse-and-extract time per real Amazon page (`../shared/fixtures/amazon`),
//! natively. Prints, over the corpus, the median and max of each page's
//! median time (several iterations per page), and throughput in MB/s; the
//! same for parsing alone. Target: median under 20 ms per page.
//!
//! Run: `cargo bench -p wasm-core --bench extract`
//! Skips with a message when the corpus folder is absent.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasm_core::extract::extract_html;
use wasm_core::html::Document;

const ITERATIONS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/amazon"
    ));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "extract bench skipped: corpus not found at {}",
            dir.display()
        );
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect();
    files.sort();
    let mut full: Vec<(Duration, String, usize)> = Vec::new();
    let mut parse: Vec<Duration> = Vec::new();
    let mut bytes_total = 0usize;
    for path in &files {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let html = String::from_utf8_lossy(&bytes).into_owned();
        bytes_total += html.len();
        // Warm-up, and keep the result alive so nothing is optimised out.
        let warm = extract_html(&html, None);
        std::hint::black_box(&warm);
        let mut times = Vec::with_capacity(ITERATIONS);
        let mut parse_times = Vec::with_capacity(ITERATIONS);
        for _ in 0..ITERATIONS {
            let t = Instant::now();
            std::hint::black_box(Document::parse(std::hint::black_box(&html)));
            parse_times.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(extract_html(std::hint::black_box(&html), None));
            times.push(t.elapsed());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        full.push((median(times), name, html.len()));
        parse.push(median(parse_times));
    }
    if full.is_empty() {
        println!("extract bench skipped: no pages in {}", dir.display());
        return;
    }
    let total_full: Duration = full.iter().map(|(d, _, _)| *d).sum();
    let total_parse: Duration = parse.iter().sum();
    let mb = bytes_total as f64 / 1e6;
    let (slowest, slowest_name, slowest_len) = full
        .iter()
        .max_by_key(|(d, _, _)| *d)
        .cloned()
        .unwrap_or_default();
    println!(
        "pages: {}, {:.1} MB, {ITERATIONS} iterations each (per-page median taken)",
        full.len(),
        mb
    );
    println!(
        "parse+extract: median {:.2} ms, max {:.2} ms ({slowest_name}, {:.2} MB), {:.0} MB/s",
        ms(median(full.iter().map(|(d, _, _)| *d).collect())),
        ms(slowest),
        slowest_len as f64 / 1e6,
        mb / total_full.as_secs_f64()
    );
    println!(
        "parse only:    median {:.2} ms, max {:.2} ms, {:.0} MB/s",
        ms(median(parse.clone())),
        ms(parse.iter().max().copied().unwrap_or_default()),
        mb / total_parse.as_secs_f64()
    );
}
