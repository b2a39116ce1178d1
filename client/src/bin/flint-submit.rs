//! `flint-submit`: spark-submit for a Flint cluster. See `flint-submit --help`.

use std::collections::HashMap;
use std::process::ExitCode;

use flint_client::submit;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("{}", submit::HELP);
        return ExitCode::from(2);
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let s = match submit::parse(&args, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("flint-submit: {e}");
            return ExitCode::from(2);
        }
    };
    match submit::run(s).await {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("flint-submit: {e}");
            ExitCode::from(1)
        }
    }
}
