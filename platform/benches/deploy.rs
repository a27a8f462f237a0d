//! How fast the local platform makes a source live, and how fast it goes back.
//!
//! For a static site and for a small Python HTTP server (reading `$PORT`), each deployed 15
//! times with a changed file (so every deploy is a new release, unpacked and started fresh):
//! the time from `deploy` to the operation's `healthy` (packing excluded, measured
//! separately), then a rollback between the last two releases, 15 times. Prints p50 / p99 /
//! max. Targets (issue #6): deploy-to-healthy for the static site < 1 s; rollback well under
//! a second.
//!
//! ```text
//! cargo bench -p automaton-platform --bench deploy
//! ```

use automaton_platform::Platform;
use automaton_platform::local::{LocalOptions, LocalPlatform};
use automaton_platform::source::{MAX_SOURCE_BYTES, pack};
use automaton_tools::clock::SystemClock;
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

type BenchResult<T = ()> = Result<T, Box<dyn Error>>;

const ROUNDS: usize = 15;

const PYTHON_APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200)\n        self.send_header('Content-Length', '2')\n        self.end_headers()\n        self.wfile.write(b'ok')\n    def log_message(self, *a):\n        pass\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

fn main() -> BenchResult {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench())
}

async fn bench() -> BenchResult {
    let work = tempfile::tempdir()?;
    let platform = LocalPlatform::open_with(
        &work.path().join("platform"),
        Arc::new(SystemClock),
        LocalOptions::default(),
    )?;
    platform.create_project("bench", None).await?;
    for (service, main_file, body) in [
        ("site", "index.html", "<h1>hello</h1>"),
        ("api", "main.py", PYTHON_APP),
    ] {
        let mut pack_times = Vec::new();
        let mut deploy_times = Vec::new();
        for round in 0..ROUNDS {
            let src = work.path().join(format!("{service}-{round}"));
            std::fs::create_dir_all(&src)?;
            std::fs::write(src.join(main_file), body)?;
            std::fs::write(src.join("round.txt"), round.to_string())?;
            let started = Instant::now();
            let packed = pack(
                &src,
                &work.path().join(format!("{service}-{round}.tgz")),
                MAX_SOURCE_BYTES,
            )?;
            pack_times.push(started.elapsed());
            let started = Instant::now();
            let accepted = platform
                .deploy("bench", service, &packed.path, None)
                .await?;
            let operation = platform
                .wait_operation(&accepted.operation_id, Duration::from_secs(60))
                .await?;
            deploy_times.push(started.elapsed());
            if let Some(error) = operation.error {
                return Err(format!("{service}: {error:?}").into());
            }
            check_serves(&operation.result.unwrap_or_default()["url"]).await?;
        }
        report(&format!("{service}: pack"), &mut pack_times);
        report(&format!("{service}: deploy to healthy"), &mut deploy_times);
        let mut rollback_times = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let detail = platform.rollback("bench", service, None, None).await?;
            rollback_times.push(started.elapsed());
            check_serves(&serde_json::json!(detail.url)).await?;
        }
        report(&format!("{service}: rollback"), &mut rollback_times);
    }
    platform.shutdown().await;
    Ok(())
}

async fn check_serves(url: &serde_json::Value) -> BenchResult {
    let url = url.as_str().ok_or("no url")?;
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    tokio::net::TcpStream::connect(authority).await?;
    Ok(())
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| {
        let index = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[index].as_secs_f64() * 1000.0
    };
    println!(
        "{what:<28} n={:<3} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
