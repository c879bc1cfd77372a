//! Turns parsed arguments into a finished command: builds the client (or the in-process
//! simulator), wires Ctrl-C, runs, prints the summary, and decides the [`Exit`] once.

use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::bunq::{ApiKey, BunqClient, ClientConfig, ContextStore, Rates, RetryRules};
use crate::cli::{ApiArgs, Cli, Command, ProvisionArgs, completions, load_api_key};
use crate::exit::Exit;
use crate::provision;
use crate::report::Summary;
use crate::sim::{SimOptions, Simulator};

/// Runs the parsed command line to its end; the error case is fatal ([`Exit::Fatal`]).
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Provision(args) => provision(*args).await,
        Command::Validate(args) => crate::validate::run(args.options(), wait_for_signal).await,
        Command::Status(args) => {
            let (interrupt, connect) = connector(&args.api, (args.rates(), args.retry()));
            let summary =
                crate::status::run(args.options(), args.api.destination(), connect, interrupt)
                    .await?;
            print_summary(&summary, args.json, args.progress.quiet)
        }
        Command::Cancel(args) => {
            let (interrupt, connect) = connector(&args.api, (args.rates(), args.retry()));
            let summary =
                crate::cancel::run(args.options(), args.api.destination(), connect, interrupt)
                    .await?;
            print_summary(&summary, args.json, args.progress.quiet)
        }
        Command::Simulate(args) => {
            crate::sim::serve_until_signal(args.listen, args.options()?).await?;
            Ok(Exit::Ok)
        }
        Command::Completions(args) => {
            let mut script = Vec::new();
            completions::write_completions(args.shell, &mut script);
            write_stdout(&script)?;
            Ok(Exit::Ok)
        }
        Command::Man(args) => {
            let mut page = Vec::new();
            completions::write_man_page(args.command.as_deref(), &mut page)?;
            write_stdout(&page)?;
            Ok(Exit::Ok)
        }
    }
}

/// Prints a command's summary, the same way for every command (see [`Summary`]); closed
/// pipes drop the text instead of failing a finished run.
fn print_summary(summary: &impl Summary, json: bool, quiet: bool) -> anyhow::Result<Exit> {
    if json {
        crate::output::stdout_line(&serde_json::to_string(summary)?);
    } else if !quiet || summary.shown_when_quiet() {
        crate::output::stderr(&summary.to_text());
    }
    Ok(summary.exit_code())
}

/// Writes generated text to stdout; a reader that closed the pipe early (`| head`) is not an
/// error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// A token cancelled by the first Ctrl-C, SIGTERM or SIGHUP (the terminal closed). A second
/// one exits at once with 130: every finished row is already flushed to the results file, and
/// the next run reconciles the rows that were in flight.
pub fn interrupt_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    // Installed now, not when the task first runs: on the single-threaded runtime that is only
    // after the caller yields, and a signal during key generation would kill the process.
    let mut signals = Signals::listen();
    tokio::spawn(async move {
        signals.next().await;
        crate::output::stderr_line(
            "\ninterrupted: finishing the rows in flight and writing the results (Ctrl-C again to quit at once)",
        );
        cancel.cancel();
        signals.next().await;
        crate::output::stderr_line(
            "interrupted twice: quitting now; rerun to continue, finished rows are saved",
        );
        Exit::Interrupted.exit_now();
    });
    token
}

/// The next Ctrl-C, SIGTERM or SIGHUP from now on.
async fn wait_for_signal() {
    Signals::listen().next().await;
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed), caught from the moment they are created:
/// tokio installs the handlers when a listener is made, not when it is first awaited.
struct Signals {
    #[cfg(unix)]
    listeners: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listeners = (|| {
                Some([
                    signal(SignalKind::interrupt()).ok()?,
                    signal(SignalKind::terminate()).ok()?,
                    signal(SignalKind::hangup()).ok()?,
                ])
            })();
            Signals { listeners }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some([interrupt, terminate, hangup]) = &mut self.listeners {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                _ = hangup.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The run's interrupt (see [`interrupt_on_signals`]) and a connector to the bunq the flags
/// name, for a command that decides itself when to connect (`status`, `cancel`).
fn connector(
    api: &ApiArgs,
    requests: (Rates, RetryRules),
) -> (
    CancellationToken,
    impl AsyncFnOnce() -> anyhow::Result<Arc<BunqClient>> + use<>,
) {
    let interrupt = interrupt_on_signals();
    let (api, stop) = (api.clone(), interrupt.clone());
    let connect = async move || Ok(connect(&api, false, requests, stop).await?.0);
    (interrupt, connect)
}

/// Connects to bunq (or starts the simulator for `--simulate`) with the command's pace and
/// retry rules; `stop` (the run's interrupt) gives up a session being opened. Returns the
/// simulator too, so it lives as long as the run.
pub async fn connect(
    api: &ApiArgs,
    simulate: bool,
    (rates, retry): (Rates, RetryRules),
    stop: CancellationToken,
) -> anyhow::Result<(Arc<BunqClient>, Option<Simulator>)> {
    let (base_url, key, store, simulator) = if simulate {
        let simulator = Simulator::start(
            "127.0.0.1:0".parse().expect("address"),
            SimOptions::default(),
        )
        .await
        .context("starting the built-in simulator")?;
        // A throwaway key and an in-memory context: a rehearsal leaves nothing behind.
        let key = ApiKey::new(format!(
            "sandbox_simulated_{}",
            uuid::Uuid::new_v4().simple()
        ));
        (
            simulator.base_url(),
            key,
            ContextStore::InMemory,
            Some(simulator),
        )
    } else {
        (
            api.base_url(),
            load_api_key(api)?,
            ContextStore::File(api.context.clone()),
            None,
        )
    };
    let mut config = ClientConfig::new(base_url, key, store);
    config.body_format = api.body_format;
    config.request_timeout = api.request_timeout;
    config.session_min_interval = api.session_min_interval;
    config.rates = rates;
    config.retry = retry;
    config.stop = stop;
    let client = BunqClient::connect(config)
        .await
        .context("connecting to bunq")?;
    Ok((Arc::new(client), simulator))
}

/// `provision`: signals drain from the very start (one during registration lets the context
/// file be written whole, and the run then stops before its first row); the simulator of
/// `--simulate` lives until the run is summed up.
async fn provision(args: ProvisionArgs) -> anyhow::Result<Exit> {
    let interrupt = interrupt_on_signals();
    let results = args.results_path()?;
    // A dry run without a key still validates and builds the payloads; it just cannot look
    // anything up at bunq.
    let need_client = !args.dry_run
        || args.simulate
        || args.api.api_key_file.is_some()
        || std::env::var_os("BUNQ_API_KEY").is_some();
    let job = provision::Job {
        options: args.options(results),
        context_file: (need_client && !args.simulate).then(|| args.api.context.clone()),
        api_key_file: args.api.api_key_file.clone(),
    };
    let mut simulator = None;
    let (requests, stop) = ((args.rates(), args.retry()), interrupt.clone());
    let connect = need_client.then_some(async || {
        let (client, started) = connect(&args.api, args.simulate, requests, stop).await?;
        simulator = started;
        Ok(client)
    });
    let summary = provision::run(job, connect, interrupt).await;
    if let Some(simulator) = simulator {
        simulator.shutdown().await;
    }
    match summary? {
        Some(summary) => print_summary(&summary, args.json, args.progress.quiet),
        None => Ok(Exit::Interrupted),
    }
}
