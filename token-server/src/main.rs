use token_server::settings::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    auth_core::telemetry::init("info");
    let settings = Settings::from_env()?;
    let app = token_server::startup::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
