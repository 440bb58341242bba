//! Thin entry point: parse the command line, load the configuration before
//! binding anything, run, and map failures to exit codes
//! (0 ok, 1 runtime failure, 2 invalid configuration or arguments).

// The library forbids unsafe code; the binary allows exactly one call
// (`collect_freed_memory_when_idle`), measured there.
#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use otel_sidecar::cli::{Cli, Command, ConfigArg};
use otel_sidecar::config::{self, Config};
use otel_sidecar::signals::Signals;
use otel_sidecar::{demo, telemetry, Extras, Sidecar};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc returns freed pages to the OS `purge_delay` (1 s) after they
/// empty, but only from inside an allocation or a collection: a sidecar that
/// went idle after a burst of 2,000 streams kept 30 MiB for good. Purging at
/// every free (`purge_delay = 0`) returned it but cost ~11 % more CPU per
/// small request (bench/run); instead a worker thread about to sleep
/// collects, at most once a second. The runtime wakes for its timers (the
/// readiness probe: every `probe_interval`), so an idle process keeps
/// collecting until nothing is left to return.
#[cfg(feature = "mimalloc")]
fn collect_freed_memory_when_idle() {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    LAST.with(|last| {
        let now = Instant::now();
        if last
            .get()
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        last.set(Some(now));
        // SAFETY: mi_collect(false) frees this thread's empty pages and runs
        // the arenas' due purges; it takes no pointer and is meant to be
        // called from any thread at any time.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_collect(false)
        };
    });
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;
/// What the runtime gives abandoned tasks at exit.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_millis(500);
/// A second signal ends the process as the signal itself would have: 128 + its number.
const EXIT_SIGNAL_BASE: u8 = 128;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => run(&cli.config),
        Some(Command::Run(arg)) => run(&merge(&cli.config, &arg)),
        Some(Command::Check(arg)) => check(&merge(&cli.config, &arg)),
        Some(Command::Healthcheck(arg)) => healthcheck(&merge(&cli.config, &arg)),
        Some(Command::Demo) => match runtime(0).and_then(|rt| rt.block_on(demo::run())) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(EXIT_RUNTIME, &format!("demo failed: {e:#}")),
        },
    }
}

/// `--config` may be given before or after the subcommand.
fn merge(top: &ConfigArg, sub: &ConfigArg) -> ConfigArg {
    ConfigArg {
        config: sub.config.clone().or_else(|| top.config.clone()),
    }
}

fn load(arg: &ConfigArg) -> Result<Config, ExitCode> {
    let path = arg.resolve(|name| std::env::var(name).ok());
    config::load_file(&path).map_err(|e| fail(EXIT_CONFIG, &format!("invalid configuration: {e}")))
}

fn check(arg: &ConfigArg) -> ExitCode {
    let path = arg.resolve(|name| std::env::var(name).ok());
    let (config, origins) = match config::load_file_explained(&path) {
        Ok(loaded) => loaded,
        Err(e) => return fail(EXIT_CONFIG, &format!("invalid configuration: {e}")),
    };
    match toml::to_string_pretty(&config) {
        Ok(text) => {
            println!(
                "# {} is valid. Effective settings, secrets masked; after each value, where it\n\
                 # came from: file:line (and the ${{VARIABLES}} it uses), $VARIABLE, or default.\n{}",
                path.display(),
                origins.annotate(&text)
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(EXIT_RUNTIME, &format!("cannot print configuration: {e}")),
    }
}

fn healthcheck(arg: &ConfigArg) -> ExitCode {
    let config = match load(arg) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let probe = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(otel_sidecar::healthcheck::probe(config.admin.address)));
    match probe {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(EXIT_RUNTIME, &format!("unhealthy: {e}")),
    }
}

fn run(arg: &ConfigArg) -> ExitCode {
    let path = arg.resolve(|name| std::env::var(name).ok());
    let config = match config::load_file(&path) {
        Ok(config) => config,
        Err(e) => return fail(EXIT_CONFIG, &format!("invalid configuration: {e}")),
    };
    let mut logs = match telemetry::init_logging(&config.logging) {
        Ok(guards) => guards,
        Err(e) => return fail(EXIT_RUNTIME, &format!("cannot set up logging: {e}")),
    };
    otel_sidecar::fd_limit::raise_to_hard_limit();
    let otlp_logs = logs.take_otlp_export();
    let extras = Extras {
        traces: None,
        log_drops: Some(logs.drops()),
        access: logs.access_outputs(),
        config_path: Some(path),
        log_control: Some(logs.control()),
    };
    let rt = match runtime(config.runtime.worker_threads) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "otel-sidecar failed");
            return fail(EXIT_RUNTIME, &format!("{e:#}"));
        }
    };
    let result = rt.block_on(async {
        // Started first, so that even a failure to start is exported.
        let log_export = match otlp_logs.map(|pending| pending.start(&config)).transpose() {
            Ok(export) => export,
            Err(e) => {
                tracing::error!(error = %e, "otel-sidecar failed");
                return Err(anyhow::Error::from(e));
            }
        };
        let result = serve(config, extras).await;
        if let Err(e) = &result {
            tracing::error!(error = %format!("{e:#}"), "otel-sidecar failed");
        }
        // What was logged up to here, "stopped" included, is sent; after a
        // second signal the process exits now.
        if !matches!(result, Ok(Stopped::Abandoned(_))) {
            if let Some(export) = &log_export {
                export.shutdown().await;
            }
        }
        result
    });
    // After a second signal, tasks still draining are abandoned, not awaited.
    rt.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(Stopped::Drained) => ExitCode::SUCCESS,
        Ok(Stopped::Abandoned(number)) => ExitCode::from(EXIT_SIGNAL_BASE + number),
        Err(e) => fail(EXIT_RUNTIME, &format!("{e:#}")),
    }
}

/// How the proxy stopped.
enum Stopped {
    /// Every in-flight exchange finished (or the drain timed out).
    Drained,
    /// A second signal: exiting without waiting, as the signal (its number) would.
    Abandoned(u8),
}

async fn serve(config: Config, mut extras: Extras) -> anyhow::Result<Stopped> {
    let mut signals = Signals::new()?;
    let (delay, drain_timeout) = (
        config.listener.shutdown_delay,
        config.listener.drain_timeout,
    );
    extras.traces = telemetry::TracePipeline::start(&config)?;
    let sidecar = Sidecar::start_with(config, extras).await?;
    let (signal, _) = signals
        .next_stop(|| async {
            sidecar.reload().await;
        })
        .await;
    tracing::info!(
        signal,
        shutdown_delay = ?delay,
        drain_timeout = ?drain_timeout,
        "shutdown signal received: /readyz answers 503; accepting until the delay ends, then draining"
    );
    sidecar.shutdown();
    tokio::select! {
        () = sidecar.wait() => {
            tracing::info!("stopped");
            Ok(Stopped::Drained)
        }
        (second, number) = signals.next_stop(|| async {}) => {
            tracing::warn!(signal = second, "second shutdown signal: exiting without waiting for the drain");
            Ok(Stopped::Abandoned(number))
        }
    }
}

fn runtime(worker_threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = if worker_threads > 0 {
        worker_threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    // On one CPU (a sidecar's usual limit) the work-stealing scheduler only adds
    // cross-thread wake-ups: the current-thread scheduler measured ~5% less CPU
    // per request on the small-request benchmark.
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    #[cfg(feature = "mimalloc")]
    builder.on_thread_park(collect_freed_memory_when_idle);
    Ok(builder.enable_all().build()?)
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("otel-sidecar: {message}");
    ExitCode::from(code)
}
