//! `eddy fuzz`: runs the fuzz targets of [`crate::fuzz`] for as long as asked.

use std::time::Duration;

use clap::Args;

use super::{CliError, print_line};
use crate::fuzz::{Budget, Target, run};

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// What to fuzz; all of them when left out.
    target: Option<Target>,
    /// Seconds per target.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// At most this many inputs per target (by default, as many as the time allows).
    #[arg(long)]
    inputs: Option<u64>,
    /// The generator's seed (the same seed runs the same inputs); by default the time.
    #[arg(long)]
    seed: Option<u64>,
}

pub async fn fuzz(args: FuzzArgs) -> Result<(), CliError> {
    let seed = args.seed.unwrap_or_else(|| crate::log::record::now_ms() as u64);
    let targets = args.target.map_or(Target::ALL.to_vec(), |t| vec![t]);
    let budget = Budget { inputs: args.inputs.unwrap_or(u64::MAX), time: Duration::from_secs(args.seconds) };
    // Panics are reported as failures, with their input; the default hook would print
    // every one caught on the way (decoders catch some of their own) as well.
    std::panic::set_hook(Box::new(|_| {}));
    for target in targets {
        // Off the async runtime: the segment target runs one of its own.
        // Quietly: the segment target's damaged segments would each log a repair.
        let quiet = tracing::subscriber::NoSubscriber::default();
        let report =
            tokio::task::spawn_blocking(move || tracing::subscriber::with_default(quiet, || run(target, seed, budget)))
                .await
                .map_err(|e| CliError::Internal(e.to_string()))?;
        let rate = report.inputs as f64 / report.elapsed.as_secs_f64().max(1e-9);
        match report.failure {
            None => print_line(format_args!(
                "fuzz {}: {} inputs in {:.1} s ({rate:.0}/s), seed {seed}: no failure",
                target.name(),
                report.inputs,
                report.elapsed.as_secs_f64()
            ))?,
            Some((input, problem)) => {
                let path = format!("fuzz-failure-{}-{seed}.bin", target.name());
                std::fs::write(&path, &input).map_err(|e| CliError::Internal(format!("cannot write {path}: {e}")))?;
                return Err(CliError::Internal(format!(
                    "fuzz {}: input {} of seed {seed} failed: {problem}\nthe input is in {path}",
                    target.name(),
                    report.inputs
                )));
            }
        }
    }
    Ok(())
}
