//! The `greenlight` binary: parse the command line and run it.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match greenlight::cli::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
