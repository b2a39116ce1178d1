//! `pi [slices]`: Spark's SparkPi on Flint. Throws 100,000 random points per slice into
//! the square [-1, 1]², one task per slice spread over the executors, and estimates π from
//! the share that lands in the unit circle.
//!
//! Testing aid: the property `spark.flint.pi.sliceDelay` (a duration such as `200ms`, from
//! `--conf` or `FLINT_CONF`) makes every slice sleep that long, so tests can act while a job
//! runs (e.g. kill a worker mid-job).

use std::process::ExitCode;
use std::time::Duration;

use flint_client::runtime::{App, Context};
use serde::{Deserialize, Serialize};

const POINTS_PER_SLICE: u64 = 100_000;

#[derive(Serialize, Deserialize)]
struct Slice {
    index: u64,
    points: u64,
    delay_ms: u64,
}

/// Points of `slice` inside the unit circle. Seeded by the slice's index, so a retried
/// slice gives the same answer.
fn inside(slice: Slice) -> Result<u64, String> {
    if slice.delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(slice.delay_ms));
    }
    let mut rng = fastrand::Rng::with_seed(0x5eed_0000 + slice.index);
    let mut count = 0;
    for _ in 0..slice.points {
        let x = rng.f64() * 2.0 - 1.0;
        let y = rng.f64() * 2.0 - 1.0;
        if x * x + y * y <= 1.0 {
            count += 1;
        }
    }
    Ok(count)
}

async fn driver(ctx: Context) -> Result<(), String> {
    let slices: u64 = match ctx.args().first() {
        None => 2,
        Some(a) => match a.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "usage: pi [slices]: '{a}' is not a positive number"
                ));
            }
        },
    };
    let delay_ms = match ctx.conf("spark.flint.pi.sliceDelay") {
        None => 0,
        Some(d) => flint_domain::units::parse_duration(d)
            .map_err(|e| format!("spark.flint.pi.sliceDelay: {e}"))?
            .as_millis() as u64,
    };
    let parts: Vec<Slice> = (0..slices)
        .map(|index| Slice {
            index,
            points: POINTS_PER_SLICE,
            delay_ms,
        })
        .collect();
    let counts: Vec<u64> = ctx
        .run_job("pi_slice", parts)
        .await
        .map_err(|e| e.to_string())?;
    let n = POINTS_PER_SLICE * slices;
    let count: u64 = counts.iter().sum();
    tracing::info!("pi: {slices} slices, {count} of {n} points inside the circle");
    println!("Pi is roughly {}", 4.0 * count as f64 / n as f64);
    Ok(())
}

fn main() -> ExitCode {
    App::new("pi").typed_task("pi_slice", inside).run(driver)
}
