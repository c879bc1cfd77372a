//! Turns parsed arguments into a finished command: builds the client (or the in-process
//! simulator), wires Ctrl-C, runs, prints the summary, and decides the [`Exit`] once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::bunq::{ApiKey, BunqClient, ClientConfig, ContextStore, Rates, RetryRules};
use crate::cli::{ApiArgs, Cli, Command, ProvisionArgs, completions, load_api_key};
use crate::exit::Exit;
use crate::input::ERROR_FILE_COLUMNS;
use crate::lock::{lock_input, lock_results};
use crate::paths::{PathUse, check_distinct, check_ours_or_absent};
use crate::provision::{self, ProvisionOptions};
use crate::report::{Summary, shell_quote};
use crate::sim::{SimOptions, Simulator};
use crate::spool::{self, InputKind, SpoolError};

/// Runs the parsed command line to its end; the error case is fatal ([`Exit::Fatal`]).
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Provision(args) => provision(*args).await,
        Command::Validate(args) => validate(args).await,
        Command::Status(args) => {
            let (api, rates, retry) = (args.api.clone(), args.rates(), args.retry());
            let connect = async move || Ok(connect(&api, false, rates, retry).await?.0);
            let interrupt = interrupt_on_signals();
            let options = args.options();
            let summary =
                crate::status::run(options, args.api.destination(), connect, interrupt).await?;
            print_summary(&summary, args.json, args.progress.quiet)
        }
        Command::Cancel(args) => {
            let (api, rates, retry) = (args.api.clone(), args.rates(), args.retry());
            let connect = async move || Ok(connect(&api, false, rates, retry).await?.0);
            let interrupt = interrupt_on_signals();
            let options = args.options();
            let summary =
                crate::cancel::run(options, args.api.destination(), connect, interrupt).await?;
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

/// Connects to bunq (or starts the simulator for `--simulate`). Returns the simulator too, so
/// it lives as long as the run.
pub async fn connect(
    api: &ApiArgs,
    simulate: bool,
    rates: Rates,
    retry: RetryRules,
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
    let client = BunqClient::connect(config)
        .await
        .context("connecting to bunq")?;
    Ok((Arc::new(client), simulator))
}

/// An existing `--errors` file is replaced only when it is an error file (ours), never, say,
/// another users CSV.
fn check_error_file_target(errors: Option<&Path>) -> Result<(), crate::paths::ForeignFile> {
    match errors {
        Some(errors) => {
            check_ours_or_absent("--errors", errors, "an error file", &ERROR_FILE_COLUMNS)
        }
        None => Ok(()),
    }
}

/// `<input stem>.results.csv` beside the input.
pub fn default_results_path(input: &Path) -> PathBuf {
    crate::paths::beside(input, "results.csv")
}

/// `validate`: the check runs on a blocking thread. Standard input or a FIFO is copied first;
/// only then are signals taken over, so Ctrl-C on a plain file stops it as it always did.
async fn validate(args: crate::cli::ValidateArgs) -> anyhow::Result<Exit> {
    let mut args = args.options();
    let mut uses = vec![PathUse::read("the input", &args.input)];
    if let Some(errors) = &args.errors {
        uses.push(PathUse::write("--errors", errors));
    }
    check_distinct(&uses)?;
    check_error_file_target(args.errors.as_deref())?;
    let input = match spool::prepare(&args.input, wait_for_signal()).await {
        Ok(input) => input,
        Err(stopped @ SpoolError::Interrupted { .. }) => {
            crate::output::stderr_line(&stopped.to_string());
            return Ok(Exit::Interrupted);
        }
        Err(e) => return Err(e.into()),
    };
    args.input = input.path.clone();
    args.input_options.shown_as = Some(input.shown_as.clone());
    let check = tokio::task::spawn_blocking(move || crate::validate::run_validate(&args));
    let summary = if input.kind.is_read_once() {
        // The copy must not outlive the command, even when a signal ends it.
        tokio::select! {
            summary = check => summary??,
            () = wait_for_signal() => {
                drop(input);
                crate::output::stderr_line("interrupted");
                Exit::Interrupted.exit_now();
            }
        }
    } else {
        check.await??
    };
    Ok(if summary.invalid == 0 {
        Exit::Ok
    } else {
        Exit::RowsFailed
    })
}

async fn provision(args: ProvisionArgs) -> anyhow::Result<Exit> {
    // Signals drain from the very start: one during registration lets the context file be
    // written whole, and the engine then stops before its first row.
    let interrupt = interrupt_on_signals();
    let input_kind = InputKind::of(&args.input);
    if input_kind.is_read_once() && args.results.is_none() {
        anyhow::bail!(
            "{} can be read only once, so there is no file to put the results beside: pass --results PATH (and the same --results when you feed the input again to continue)",
            match input_kind {
                InputKind::StandardInput => "standard input (-)".to_string(),
                _ => format!("{} (not a regular file)", args.input.display()),
            }
        );
    }
    let results = args
        .results
        .clone()
        .unwrap_or_else(|| default_results_path(&args.input));
    // A dry run without a key still validates and builds the payloads; it just cannot look
    // anything up at bunq.
    let need_client = !args.dry_run
        || args.simulate
        || args.api.api_key_file.is_some()
        || std::env::var_os("BUNQ_API_KEY").is_some();
    // A dry run reads the results file and writes its own file beside it.
    let dry_run_file = args.dry_run.then(|| provision::dry_run_path(&results));
    // Defaults first: when two writes clash, the message blames the later one.
    let mut uses = vec![PathUse::read("the input", &args.input)];
    if need_client && !args.simulate {
        uses.push(PathUse::write("--context", &args.api.context));
    }
    match &dry_run_file {
        Some(dry_run_file) => {
            uses.push(PathUse::read("--results", &results));
            uses.push(PathUse::write("the dry-run file", dry_run_file));
        }
        None => uses.push(PathUse::write("--results", &results)),
    }
    if let Some(errors) = &args.errors {
        uses.push(PathUse::write("--errors", errors));
    }
    if let Some(key_file) = &args.api.api_key_file {
        uses.push(PathUse::read("--api-key-file", key_file));
    }
    check_distinct(&uses)?;
    check_error_file_target(args.errors.as_deref())?;
    if let Some(dry_run_file) = &dry_run_file {
        check_ours_or_absent(
            "the dry-run file",
            dry_run_file,
            "a dry-run results file",
            &crate::ledger::HEADER,
        )?;
    }
    // Held until this function returns: the run, compaction and the summary included.
    let _lock = lock_results(dry_run_file.as_deref().unwrap_or(&results))?;
    let input = match spool::prepare(&args.input, interrupt.cancelled()).await {
        Ok(input) => input,
        Err(stopped @ SpoolError::Interrupted { .. }) => {
            crate::output::stderr_line(&stopped.to_string());
            return Ok(Exit::Interrupted);
        }
        Err(e) => return Err(e.into()),
    };
    // A dry run sends nothing; a real one is the only run over this input (a spooled copy is
    // private to this run anyway).
    let _input_lock = if args.dry_run || input.kind.is_read_once() {
        None
    } else {
        lock_input(&input.path)?
    };
    let mut input_options = args.input_options.options();
    input_options.shown_as = Some(input.shown_as.clone());
    let (client, simulator) = if need_client {
        let rates = Rates {
            posts: args.rate,
            gets: args.lookup_rate,
            puts: None,
        };
        let retry = RetryRules {
            max_attempts: args.max_attempts,
            backoff: args.backoff.backoff(),
        };
        let (client, simulator) = connect(&args.api, args.simulate, rates, retry).await?;
        (Some(client), simulator)
    } else {
        (None, None)
    };
    let options = ProvisionOptions {
        input: input.path.clone(),
        input_options,
        results: results.clone(),
        errors: args.errors.clone(),
        excel_safe: args.excel_safe,
        body_format: args.api.body_format,
        concurrency: usize::from(args.concurrency.concurrency),
        max_errors: args.max_errors,
        quiet: args.progress.quiet,
        dry_run: args.dry_run,
        show_payloads: args.show_payloads,
        rerun_command: rerun_command(&results, input.kind),
    };
    let summary = provision::run(client, options, interrupt).await?;
    drop(input);
    if let Some(simulator) = simulator {
        simulator.shutdown().await;
    }
    print_summary(&summary, args.json, args.progress.quiet)
}

/// The same command line with `--results` spelled out, so a rerun always finds the file.
/// The API key is never on the command line, so echoing it is safe. An input that could be
/// read only once gets a shell comment saying it must be given again.
fn rerun_command(results: &Path, input: InputKind) -> String {
    let mut words = vec!["bunq-onboard".to_string()];
    let args = std::env::args().skip(1);
    let mut has_results = false;
    for arg in args {
        if arg == "--results" || arg.starts_with("--results=") {
            has_results = true;
        }
        words.push(shell_quote(&arg));
    }
    if !has_results {
        words.push("--results".into());
        words.push(shell_quote(&results.to_string_lossy()));
    }
    match input {
        InputKind::RegularFile => {}
        InputKind::StandardInput => {
            words.push("# feed the same users on standard input again".into());
        }
        InputKind::Stream => words.push("# give the same input again: it was a pipe".into()),
    }
    words.join(" ")
}
