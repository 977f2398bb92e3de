//! `chat-server`: start chatd, or apply its migrations.

use std::process::ExitCode;

use chat_server::{
    AdminAction, Application, Cli, Command, backup_database, migrate_database, telemetry,
};
use clap::Parser;

/// jemalloc, configured in `.cargo/config.toml`, returns the memory of closed connections to
/// the OS; glibc's allocator kept nearly all of it after a burst of connections. It replaces
/// `malloc` for the whole process (see `Cargo.toml`), so SQLite's allocations on the blocking
/// threads come from the same arenas and are returned the same way.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    // A `.env` in the working directory fills in variables that are not set already.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format);
    if let Ok(path) = dotenv {
        tracing::info!(path = %path.display(), "read environment from .env");
    }
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate(cli.config).await,
        Command::Backup { path } => backup(cli.config, path).await,
        Command::Admin { action } => admin(cli.config, action).await,
        Command::Serve => serve(cli.config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "chat-server failed");
            // Also plainly on stderr, whatever the log filter and format: this is what an
            // operator starting the server by hand needs to read.
            eprintln!("chat-server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: chat_server::Config) -> Result<(), String> {
    let applied = tokio::task::spawn_blocking(move || migrate_database(&config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    tracing::info!(applied, "database is up to date");
    Ok(())
}

async fn backup(config: chat_server::Config, path: std::path::PathBuf) -> Result<(), String> {
    let target = path.clone();
    tokio::task::spawn_blocking(move || backup_database(&config, &target))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    tracing::info!(path = %path.display(), "backup written");
    Ok(())
}

async fn admin(config: chat_server::Config, action: AdminAction) -> Result<(), String> {
    let (username, grant) = match action {
        AdminAction::Grant { username } => (username, true),
        AdminAction::Revoke { username } => (username, false),
    };
    let name = username.clone();
    let granted =
        tokio::task::spawn_blocking(move || chat_server::admin::set_admin(&config, &name, grant))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    let user = granted.user.username.as_str();
    // Plainly on stdout: the operator ran this by hand.
    println!(
        "{user} {} a server admin{}",
        if grant { "is" } else { "is not" },
        if granted.changed { "" } else { " (unchanged)" }
    );
    Ok(())
}

async fn serve(config: chat_server::Config) -> Result<(), String> {
    let app = Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());
    wait_for_signal().await;
    tracing::info!("shutting down: closing connections and finishing requests");
    shutdown.stop().await;
    server
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
