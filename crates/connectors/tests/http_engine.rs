//! The HTTP engine against the simulator: concurrent refreshes with rotation, request budget.

use std::sync::Arc;

use syncline_connectors::http::{HttpEngine, REFRESH_TOKEN_NAME};
use syncline_connectors::{ConnectorError, SynclineConfig};
use syncline_simulator::{Connector, Simulator, SimulatorConfig};
use syncline_state::{open_state_store, StateStore};

fn source_config(text_auth: &str, base: &str, extra: &str) -> SynclineConfig {
    let text = format!(
        r#"
[destination]
url = "duckdb://unused.duckdb"
[state]
url = "sqlite://unused.db"
[sources.pd]
connector = "pipedrive"
base_url = "{base}"
{text_auth}
{extra}
"#
    );
    SynclineConfig::parse_with_env(&text, |_| None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_refresh_and_persist_the_rotated_token() {
    let mut config = SimulatorConfig::for_connector(Connector::Pipedrive);
    config.auth.rotate_refresh_tokens = true;
    let simulator = Simulator::start(config).await.unwrap();
    let credentials = simulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::from(
        open_state_store(&format!("sqlite://{}/s.db", dir.path().display()).parse().unwrap())
            .await
            .unwrap(),
    );
    let auth = format!(
        "auth = {{ type = \"oauth2_refresh\", token_url = \"{}\", client_id = \"{}\", client_secret = \"{}\", refresh_token = \"{}\" }}",
        credentials.token_url,
        credentials.client_id,
        credentials.client_secret,
        credentials.refresh_token.clone().unwrap()
    );
    let config = source_config(&auth, &credentials.api_base_url, "");
    let engine = Arc::new(HttpEngine::new("pd", &config.sources["pd"], Arc::clone(&state)).unwrap());

    let run_many = |engine: Arc<HttpEngine>| async move {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move { engine.get("/v2/deals", &[("limit".to_string(), "5".to_string())], false).await })
            })
            .collect();
        for task in tasks {
            let body = task.await.unwrap().expect("request succeeds").unwrap();
            assert_eq!(body["data"].as_array().unwrap().len(), 5);
        }
    };
    run_many(Arc::clone(&engine)).await;
    let first = state.token("pd", REFRESH_TOKEN_NAME).await.unwrap().expect("rotated token stored");
    assert_ne!(first, credentials.refresh_token.clone().unwrap());

    // Every access token revoked: eight requests fail with 401 at once and one refresh heals
    // them all (a second refresh with the rotated-out token would be refused by the server).
    simulator.revoke_tokens(false);
    run_many(Arc::clone(&engine)).await;
    let second = state.token("pd", REFRESH_TOKEN_NAME).await.unwrap().unwrap();
    assert_ne!(second, first);
    let token_calls = simulator.stats().api.endpoints["POST /oauth/token"].calls;
    assert_eq!(token_calls, 2, "one refresh per expiry, not one per request");

    // A new engine (a new run) starts from the stored token, not the rotated-out configured one.
    let fresh = HttpEngine::new("pd", &config.sources["pd"], Arc::clone(&state)).unwrap();
    fresh.get("/v2/deals", &[], false).await.expect("stored refresh token is used");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_budget_stops_a_run_and_costs_are_counted() {
    let simulator = Simulator::start(SimulatorConfig::for_connector(Connector::Pipedrive))
        .await
        .unwrap();
    let credentials = simulator.credentials();
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::from(
        open_state_store(&format!("sqlite://{}/s.db", dir.path().display()).parse().unwrap())
            .await
            .unwrap(),
    );
    let auth = format!(
        "auth = {{ type = \"api_token\", token = \"{}\" }}",
        credentials.api_token.clone().unwrap()
    );
    let config = source_config(&auth, &credentials.api_base_url, "request_budget = 3");
    let engine = HttpEngine::new("pd", &config.sources["pd"], state).unwrap();
    engine.get("/v2/deals", &[], false).await.unwrap();
    engine.get("/v2/deals/1", &[], true).await.unwrap();
    engine.get("/v1/users", &[], false).await.unwrap();
    let error = engine.get("/v2/deals", &[], false).await.unwrap_err();
    assert!(matches!(error, ConnectorError::BudgetExhausted { .. }), "{error}");
    assert!(error.to_string().contains("request_budget"));
    let stats = engine.stats();
    assert_eq!((stats.calls, stats.cost), (3, 31));
    assert_eq!(simulator.stats().api.cost, 31, "the engine's cost matches the vendor's accounting");
    simulator.shutdown().await;
}
