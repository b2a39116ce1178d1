//! A Flint application for the runtime's end-to-end tests, with tasks that misbehave on
//! demand. Not an example to copy.
//!
//! `flint-test-app <mode> [partitions] [arg]`:
//! - `echo N`: N partitions, each returns its input;
//! - `fail N`: every attempt of every task fails;
//! - `panic N`: every attempt panics;
//! - `flaky N DIR`: each partition fails its first attempt (leaving a marker in DIR), then
//!   succeeds;
//! - `crash N`: each task kills its executor process (exit code 3);
//! - `sleep N MS`: each task sleeps MS milliseconds.
//!
//! With `spark.flint.test.lingerAfterJob` (a duration), the driver waits that long after
//! the job before it ends (to watch idle executors being released).

use std::process::ExitCode;
use std::time::Duration;

use flint_client::runtime::{App, Context};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Part {
    index: u32,
    arg: String,
}

fn echo(p: Part) -> Result<u32, String> {
    Ok(p.index)
}

fn fail(p: Part) -> Result<u32, String> {
    Err(format!("task failed on purpose (partition {})", p.index))
}

fn panics(p: Part) -> Result<u32, String> {
    panic!("task panicked on purpose (partition {})", p.index)
}

fn flaky(p: Part) -> Result<u32, String> {
    let marker = std::path::Path::new(&p.arg).join(format!("attempted-{}", p.index));
    if marker.exists() {
        return Ok(p.index);
    }
    std::fs::write(&marker, b"").map_err(|e| format!("{}: {e}", marker.display()))?;
    Err(format!("first attempt of partition {} fails", p.index))
}

fn crash(_: Part) -> Result<u32, String> {
    std::process::exit(3)
}

fn sleep(p: Part) -> Result<u32, String> {
    let ms: u64 = p
        .arg
        .parse()
        .map_err(|_| format!("bad sleep '{}'", p.arg))?;
    std::thread::sleep(Duration::from_millis(ms));
    Ok(p.index)
}

async fn driver(ctx: Context) -> Result<(), String> {
    let args = ctx.args();
    let mode = args.first().map(String::as_str).unwrap_or("echo");
    let n: u32 = match args.get(1) {
        None => 4,
        Some(v) => v
            .parse()
            .map_err(|_| format!("bad partition count '{v}'"))?,
    };
    let arg = args.get(2).cloned().unwrap_or_default();
    let parts: Vec<Part> = (0..n)
        .map(|index| Part {
            index,
            arg: arg.clone(),
        })
        .collect();
    let out: Vec<u32> = ctx.run_job(mode, parts).await.map_err(|e| e.to_string())?;
    println!("results: {out:?}");
    if let Some(d) = ctx.conf("spark.flint.test.lingerAfterJob") {
        let d = flint_domain::units::parse_duration(d).map_err(|e| e.to_string())?;
        tokio::time::sleep(d).await;
    }
    Ok(())
}

fn main() -> ExitCode {
    App::new("flint-test-app")
        .typed_task("echo", echo)
        .typed_task("fail", fail)
        .typed_task("panic", panics)
        .typed_task("flaky", flaky)
        .typed_task("crash", crash)
        .typed_task("sleep", sleep)
        .run(driver)
}
