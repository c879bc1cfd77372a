//! Following provisions to the finish (placeholder until the status command lands).

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    pub results: std::path::PathBuf,
}

pub async fn run(
    _args: StatusArgs,
    _interrupt: tokio_util::sync::CancellationToken,
) -> anyhow::Result<u8> {
    anyhow::bail!("the status command is not available yet")
}
