//! The BigQuery destination, over the REST API (no client library, no streaming inserts).
//!
//! A batch is written in four steps: the table is created (day partitions on the profile's
//! start column, clustered by the id) or evolved (new columns through `tables.patch`, widened
//! columns through DDL); the new versions and the closes are uploaded as NDJSON through a load
//! job (multipart upload) into a staging table of their own; ONE `MERGE` inserts the versions
//! that are not there yet and closes the superseded ones; the staging table is dropped (it also
//! expires on its own after six hours). A replayed batch (after a crash between the warehouse
//! and the state store) changes nothing: the `MERGE` inserts only versions that are missing and
//! writes the same end again. Rows are never streamed: streamed rows cannot be updated for a
//! while, and the closes of the next batch would fail.
//!
//! BigQuery names allow letters, digits and underscores only (and at most 300 bytes for a
//! column); other names are mapped to a deterministic physical name ([`bigquery_identifier`])
//! and the full name is kept in the column's (or table's) description, so
//! [`Destination::table_schema`] reports the names the records use.
//!
//! Authentication: a service-account key file (a JWT signed with RS256 exchanged for an OAuth
//! token), or the GCE/GKE metadata server. An endpoint override (`?endpoint=` or
//! `SYNCLINE_BIGQUERY_ENDPOINT`) points at an emulator and sends no credentials at all.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use syncline_core::{format_timestamp, CellValue, Column, ColumnType, HistoryBatch, HistoryProfile, TableSchema};
use tokio::sync::{Mutex, OnceCell};

use crate::compare::{ActiveRows, FieldValue, HistoryReader, ReadKind, RowSelection};
use crate::{Destination, DestinationError, HistoryCheck, StoredVersion};

/// The Google API host, unless an endpoint override is given.
pub const GOOGLE_API_ENDPOINT: &str = "https://bigquery.googleapis.com";

/// The environment variable that overrides the endpoint (for emulators; no credentials are sent).
pub const ENDPOINT_VARIABLE: &str = "SYNCLINE_BIGQUERY_ENDPOINT";

/// The environment variable that points service-backed tests at a BigQuery (emulator), as a
/// `bigquery://project/dataset_prefix?endpoint=http://127.0.0.1:9050` URL.
pub const TEST_URL_VARIABLE: &str = "SYNCLINE_TEST_BIGQUERY_URL";

/// The OAuth scope syncline asks for.
const SCOPE: &str = "https://www.googleapis.com/auth/bigquery";

/// The metadata server's token endpoint path (host from `GCE_METADATA_HOST`, else the
/// well-known name).
const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// What a description starts with when it carries the full (unmapped) name.
const NAME_DESCRIPTION_PREFIX: &str = "syncline name: ";

/// Staging tables start with this; they are never reported as history tables.
const STAGING_PREFIX: &str = "syncline_staging_";

/// How long a staging table lives if syncline stops before dropping it.
const STAGING_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// The longest column name BigQuery accepts, in bytes.
pub const MAX_COLUMN_NAME_BYTES: usize = 300;

/// The longest table name BigQuery accepts, in bytes.
pub const MAX_TABLE_NAME_BYTES: usize = 1024;

/// NDJSON bytes per load job; a larger batch is uploaded in several load jobs into the same
/// staging table (multipart uploads should stay small).
const LOAD_CHUNK_BYTES: usize = 8 << 20;

/// Staging columns of their own.
const OP_COLUMN: &str = "_syncline_op";
const CLOSE_END_COLUMN: &str = "_syncline_close_end";

/// Column-name prefixes BigQuery reserves (compared case-insensitively).
const RESERVED_PREFIXES: [&str; 7] = [
    "_table_",
    "_file_",
    "_partition",
    "_row_timestamp",
    "__root__",
    "_colon_",
    "_change_",
];

/// The name BigQuery stores for a syncline identifier: the name itself when it has only ASCII
/// letters, digits and underscores, does not start with a digit or a reserved prefix and fits in
/// `max_bytes`; else the name with every other character replaced by `_`, cut to leave room,
/// followed by `_` and the first 8 hex digits of the SHA-256 of the full name. Deterministic,
/// so every batch and every reader maps a name the same way.
pub fn bigquery_identifier(name: &str, max_bytes: usize) -> String {
    let reserved = |text: &str| {
        let lower = text.to_ascii_lowercase();
        RESERVED_PREFIXES.iter().any(|prefix| lower.starts_with(prefix))
    };
    let valid = !name.is_empty()
        && name.len() <= max_bytes
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
        && !reserved(name);
    if valid {
        return name.to_string();
    }
    let mut cleaned: String = name
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '_' {
                character
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.as_bytes()[0].is_ascii_digit() || reserved(&cleaned) {
        cleaned.insert_str(0, "f_");
    }
    cleaned.truncate(max_bytes - 9);
    let digest = Sha256::digest(name.as_bytes());
    let suffix: String = digest[..4].iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{cleaned}_{suffix}")
}

fn column_identifier(name: &str) -> String {
    bigquery_identifier(name, MAX_COLUMN_NAME_BYTES)
}

fn table_identifier(name: &str) -> String {
    bigquery_identifier(name, MAX_TABLE_NAME_BYTES)
}

/// Quotes a BigQuery identifier with backticks. Physical names hold only letters, digits,
/// underscores (and, for projects, `-`, `.` and `:`), so a backtick, backslash or line break is
/// refused rather than escaped.
fn quote(name: &str) -> Result<String, DestinationError> {
    if name.is_empty() || name.contains(['`', '\\', '\n', '\r', '\0']) {
        return Err(DestinationError::BadIdentifier(name.replace('\0', "\\0")));
    }
    Ok(format!("`{name}`"))
}

/// Quotes the physical name of a column.
fn quote_column(name: &str) -> Result<String, DestinationError> {
    quote(&column_identifier(name))
}

fn bigquery_type(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Boolean => "BOOL",
        ColumnType::BigInt => "INT64",
        ColumnType::Double => "FLOAT64",
        ColumnType::Timestamp => "TIMESTAMP",
        ColumnType::Json | ColumnType::Varchar => "STRING",
    }
}

fn column_type_of(bigquery: &str) -> ColumnType {
    match bigquery.to_ascii_uppercase().as_str() {
        "BOOL" | "BOOLEAN" => ColumnType::Boolean,
        "INT64" | "INTEGER" => ColumnType::BigInt,
        "FLOAT64" | "FLOAT" | "NUMERIC" | "BIGNUMERIC" => ColumnType::Double,
        "TIMESTAMP" | "DATETIME" => ColumnType::Timestamp,
        _ => ColumnType::Varchar,
    }
}

/// Where a BigQuery destination writes and how it reaches BigQuery, from
/// `bigquery://project/dataset[?location=EU&credentials=/path/key.json&endpoint=http://host:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigQueryConfig {
    /// The Google Cloud project that owns the dataset and runs the jobs.
    pub project: String,
    /// The dataset of the history tables (created on the first write if missing).
    pub dataset: String,
    /// The dataset's location (`US`, `EU`, `europe-west3`, ...); `US` when not given.
    pub location: Option<String>,
    /// A service-account key file; without it `GOOGLE_APPLICATION_CREDENTIALS`, then the
    /// metadata server.
    pub credentials: Option<PathBuf>,
    /// An endpoint override (an emulator such as bqemulator); no credentials are sent to it.
    pub endpoint: Option<String>,
}

impl BigQueryConfig {
    /// True when the URL names BigQuery.
    pub fn is_bigquery_url(url: &str) -> bool {
        url.starts_with("bigquery://")
    }

    /// Parses a `bigquery://project/dataset` URL.
    pub fn parse(url: &str) -> Result<Self, DestinationError> {
        let bad = || DestinationError::BadUrl(url.to_string());
        let rest = url.strip_prefix("bigquery://").ok_or_else(bad)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (project, dataset) = path.trim_end_matches('/').split_once('/').ok_or_else(bad)?;
        let project_ok = !project.is_empty()
            && project
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b':' | b'_'));
        let dataset_ok =
            !dataset.is_empty() && dataset.len() <= 1024 && dataset.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !project_ok || !dataset_ok {
            return Err(bad());
        }
        let mut config = BigQueryConfig {
            project: project.to_string(),
            dataset: dataset.to_string(),
            location: None,
            credentials: None,
            endpoint: None,
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let value = percent_decode(value).filter(|value| !value.is_empty()).ok_or_else(bad)?;
            match key {
                "location" => config.location = Some(value),
                "credentials" => config.credentials = Some(PathBuf::from(value)),
                "endpoint" => config.endpoint = Some(value.trim_end_matches('/').to_string()),
                _ => return Err(bad()),
            }
        }
        Ok(config)
    }

    /// The location jobs and the dataset use.
    pub fn location(&self) -> &str {
        self.location.as_deref().unwrap_or("US")
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// A service account's key, from its JSON key file.
struct ServiceAccount {
    client_email: String,
    token_uri: String,
    key: ring::signature::RsaKeyPair,
}

/// How requests are authorized.
enum Auth {
    /// An emulator: nothing is sent.
    None,
    /// A service-account key file.
    ServiceAccount(Box<ServiceAccount>),
    /// The GCE/GKE metadata server.
    Metadata,
}

/// An OAuth access token and when to fetch a new one.
struct Token {
    value: String,
    refresh_at: Instant,
}

fn credentials_error(message: impl Into<String>) -> DestinationError {
    DestinationError::BigQueryCredentials(message.into())
}

/// Reads a service-account key file (`type: service_account`, PKCS#8 PEM private key).
fn read_service_account(path: &Path) -> Result<ServiceAccount, DestinationError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| credentials_error(format!("cannot read the key file {}: {error}", path.display())))?;
    let key: Value = serde_json::from_str(&text).map_err(|_| credentials_error(format!("the key file {} is not JSON", path.display())))?;
    let field = |name: &str| {
        key.get(name).and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
            credentials_error(format!(
                "the key file {} has no `{name}`; download a service-account key (JSON)",
                path.display()
            ))
        })
    };
    let client_email = field("client_email")?;
    let token_uri = field("token_uri").unwrap_or_else(|_| "https://oauth2.googleapis.com/token".to_string());
    let pem = field("private_key")?;
    let der =
        pem_to_der(&pem).ok_or_else(|| credentials_error(format!("the private key in {} is not a PEM PKCS#8 key", path.display())))?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|_| credentials_error(format!("the private key in {} is not an RSA PKCS#8 key", path.display())))?;
    Ok(ServiceAccount {
        client_email,
        token_uri,
        key,
    })
}

/// The DER bytes of a `-----BEGIN PRIVATE KEY-----` PEM block.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")? + "-----BEGIN PRIVATE KEY-----".len();
    let end = pem[start..].find("-----END PRIVATE KEY-----")? + start;
    let body: String = pem[start..end].chars().filter(|character| !character.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn base64_url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The signed JWT a service account exchanges for an access token (RS256).
fn jwt_assertion(account: &ServiceAccount, now_seconds: u64) -> Result<String, DestinationError> {
    let header = base64_url(json!({"alg": "RS256", "typ": "JWT"}).to_string().as_bytes());
    let claims = base64_url(
        json!({
            "iss": account.client_email,
            "scope": SCOPE,
            "aud": account.token_uri,
            "iat": now_seconds,
            "exp": now_seconds + 3600,
        })
        .to_string()
        .as_bytes(),
    );
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0; account.key.public().modulus_len()];
    account
        .key
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| credentials_error("signing the token request failed"))?;
    Ok(format!("{signing_input}.{}", base64_url(&signature)))
}

/// A unique suffix for job and staging-table names.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let seed = format!("{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    Sha256::digest(seed.as_bytes())[..10]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A request body, cheap to clone for retries.
#[derive(Clone)]
enum Body {
    Json(Value),
    Raw { content_type: String, bytes: Bytes },
}

/// One column of a table as BigQuery reports it.
#[derive(Debug, Clone)]
struct Field {
    /// The physical name.
    physical: String,
    /// The name the records use (the description's full name for mapped names).
    name: String,
    /// The type as syncline reads it.
    column_type: ColumnType,
    /// The type as BigQuery names it.
    raw_type: String,
    /// The field as BigQuery returned it (sent back unchanged by `tables.patch`).
    raw: Value,
}

/// A table's schema and description.
#[derive(Debug, Clone)]
struct TableInfo {
    fields: Vec<Field>,
    description: Option<String>,
}

impl TableInfo {
    fn from_resource(resource: &Value) -> Self {
        let fields = resource["schema"]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|field| {
                        let physical = field["name"].as_str().unwrap_or_default().to_string();
                        let raw_type = field["type"].as_str().unwrap_or("STRING").to_string();
                        let name = full_name(field["description"].as_str(), &physical, column_identifier);
                        Field {
                            column_type: column_type_of(&raw_type),
                            name,
                            physical,
                            raw_type,
                            raw: field.clone(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        TableInfo {
            fields,
            description: resource["description"].as_str().map(str::to_string),
        }
    }

    fn field(&self, name: &str) -> Option<&Field> {
        let physical = column_identifier(name);
        self.fields.iter().find(|field| field.physical == physical)
    }
}

/// The full name a description carries, if it maps to the physical name; else the physical name.
fn full_name(description: Option<&str>, physical: &str, map: fn(&str) -> String) -> String {
    description
        .and_then(|description| description.strip_prefix(NAME_DESCRIPTION_PREFIX))
        .filter(|full| map(full) == physical)
        .map_or_else(|| physical.to_string(), str::to_string)
}

/// The description that keeps a mapped name; `None` when the name is kept as it is.
fn name_description(name: &str, physical: &str) -> Option<String> {
    (name != physical).then(|| format!("{NAME_DESCRIPTION_PREFIX}{name}"))
}

/// A named query parameter.
fn parameter(name: &str, parameter_type: &str, value: Option<String>) -> Value {
    json!({
        "name": name,
        "parameterType": {"type": parameter_type},
        "parameterValue": {"value": value},
    })
}

/// History tables in one BigQuery dataset.
pub struct BigQueryDestination {
    config: BigQueryConfig,
    /// `{endpoint}/bigquery/v2/projects/{project}`.
    api: String,
    /// `{endpoint}/upload/bigquery/v2/projects/{project}`.
    upload: String,
    /// The endpoint override is in use (an emulator).
    emulator: bool,
    http: reqwest::Client,
    auth: Auth,
    token: Mutex<Option<Token>>,
    dataset_ready: OnceCell<()>,
}

impl std::fmt::Debug for BigQueryDestination {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BigQueryDestination")
            .field("config", &self.config)
            .field("emulator", &self.emulator)
            .finish()
    }
}

impl BigQueryDestination {
    /// Opens a destination: reads the credentials (no request is sent yet). With an endpoint
    /// override (`?endpoint=` or `SYNCLINE_BIGQUERY_ENDPOINT`) no credentials are used.
    pub async fn open(config: &BigQueryConfig) -> Result<Self, DestinationError> {
        let mut config = config.clone();
        if config.endpoint.is_none() {
            config.endpoint = std::env::var(ENDPOINT_VARIABLE)
                .ok()
                .filter(|endpoint| !endpoint.is_empty())
                .map(|endpoint| endpoint.trim_end_matches('/').to_string());
        }
        let emulator = config.endpoint.is_some();
        let auth = if emulator {
            Auth::None
        } else {
            let key_file = config.credentials.clone().or_else(|| {
                std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
                    .filter(|path| !path.is_empty())
                    .map(PathBuf::from)
            });
            match key_file {
                Some(path) => Auth::ServiceAccount(Box::new(
                    tokio::task::spawn_blocking(move || read_service_account(&path))
                        .await
                        .map_err(|error| DestinationError::Task(error.to_string()))??,
                )),
                None => Auth::Metadata,
            }
        };
        let endpoint = config.endpoint.clone().unwrap_or_else(|| GOOGLE_API_ENDPOINT.to_string());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|error| DestinationError::BigQueryUnreachable(error.to_string()))?;
        Ok(Self {
            api: format!("{endpoint}/bigquery/v2/projects/{}", config.project),
            upload: format!("{endpoint}/upload/bigquery/v2/projects/{}", config.project),
            emulator,
            http,
            auth,
            token: Mutex::new(None),
            dataset_ready: OnceCell::new(),
            config,
        })
    }

    /// The dataset the history tables live in.
    pub fn dataset(&self) -> &str {
        &self.config.dataset
    }

    /// `` `project`.`dataset`.`table` `` for a physical table name.
    fn qualified_physical(&self, physical: &str) -> Result<String, DestinationError> {
        Ok(format!(
            "{}.{}.{}",
            quote(&self.config.project)?,
            quote(&self.config.dataset)?,
            quote(physical)?
        ))
    }

    fn table_url(&self, physical: &str) -> String {
        format!("{}/datasets/{}/tables/{physical}", self.api, self.config.dataset)
    }

    /// The `Authorization` header value, fetching a token when needed.
    async fn authorization(&self) -> Result<Option<String>, DestinationError> {
        if matches!(self.auth, Auth::None) {
            return Ok(None);
        }
        let mut token = self.token.lock().await;
        if let Some(current) = token.as_ref().filter(|current| current.refresh_at > Instant::now()) {
            return Ok(Some(format!("Bearer {}", current.value)));
        }
        let response = match &self.auth {
            Auth::None => return Ok(None),
            Auth::ServiceAccount(account) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs());
                let assertion = jwt_assertion(account, now)?;
                self.http
                    .post(&account.token_uri)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!(
                        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
                    ))
                    .send()
                    .await
            }
            Auth::Metadata => {
                let host = std::env::var("GCE_METADATA_HOST").unwrap_or_else(|_| "metadata.google.internal".to_string());
                self.http
                    .get(format!("http://{host}{METADATA_TOKEN_PATH}"))
                    .header("Metadata-Flavor", "Google")
                    .send()
                    .await
            }
        }
        .map_err(|error| credentials_error(format!("the token endpoint is unreachable ({})", error.without_url())))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let Some(access_token) = body["access_token"].as_str().filter(|_| status.is_success()) else {
            // The error body of the token endpoint names the problem (`invalid_grant`, ...) and
            // holds no secret.
            let reason = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("no access token in the answer");
            return Err(credentials_error(format!("the token request was refused ({status}: {reason})")));
        };
        // A day at most: a huge `expires_in` must not overflow the clock.
        let lifetime = body["expires_in"].as_u64().unwrap_or(3600).min(86_400);
        let value = access_token.to_string();
        *token = Some(Token {
            value: value.clone(),
            refresh_at: Instant::now() + Duration::from_secs(lifetime.saturating_sub(120).max(30)),
        });
        Ok(Some(format!("Bearer {value}")))
    }

    /// Sends a request, retrying connection failures, 429 and 5xx answers with backoff (every
    /// call syncline makes can be repeated safely). Returns the status and the JSON body.
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<Body>) -> Result<(reqwest::StatusCode, Value), DestinationError> {
        let mut wait = Duration::from_millis(500);
        let attempts = 6;
        for attempt in 1..=attempts {
            let mut request = self.http.request(method.clone(), url);
            if let Some(authorization) = self.authorization().await? {
                request = request.header("authorization", authorization);
            }
            request = match body.clone() {
                None => request,
                Some(Body::Json(value)) => request.json(&value),
                Some(Body::Raw { content_type, bytes }) => request.header("content-type", content_type).body(bytes),
            };
            let response = match request.send().await {
                Ok(response) if (response.status().as_u16() == 429 || response.status().is_server_error()) && attempt < attempts => {
                    tracing::warn!(%method, attempt, status = %response.status(), wait_ms = wait.as_millis() as u64, "bigquery answered with a temporary error; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(16));
                    continue;
                }
                Ok(response) => response,
                Err(error) if attempt < attempts => {
                    tracing::warn!(%method, attempt, error = %error.without_url(), wait_ms = wait.as_millis() as u64, "bigquery request failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(16));
                    continue;
                }
                Err(error) => return Err(DestinationError::BigQueryUnreachable(error.without_url().to_string())),
            };
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|error| DestinationError::BigQueryUnreachable(error.without_url().to_string()))?;
            let value = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            return Ok((status, value));
        }
        unreachable!("the last attempt returns")
    }

    /// Like [`BigQueryDestination::call`], but any non-2xx answer is an error naming `operation`.
    async fn call_ok(&self, operation: &str, method: reqwest::Method, url: &str, body: Option<Body>) -> Result<Value, DestinationError> {
        let (status, value) = self.call(method, url, body).await?;
        if status.is_success() {
            return Ok(value);
        }
        Err(api_error(operation, status, &value))
    }

    /// Creates the dataset if it does not exist (once per destination).
    async fn ensure_dataset(&self) -> Result<(), DestinationError> {
        self.dataset_ready
            .get_or_try_init(|| async {
                let url = format!("{}/datasets/{}", self.api, self.config.dataset);
                let (status, value) = self.call(reqwest::Method::GET, &url, None).await?;
                if status.is_success() {
                    return Ok(());
                }
                if status != reqwest::StatusCode::NOT_FOUND {
                    return Err(api_error("reading the dataset", status, &value));
                }
                tracing::info!(dataset = %self.config.dataset, location = self.config.location(), "creating the bigquery dataset");
                let body = json!({
                    "datasetReference": {"projectId": self.config.project, "datasetId": self.config.dataset},
                    "location": self.config.location(),
                });
                let (status, value) = self
                    .call(reqwest::Method::POST, &format!("{}/datasets", self.api), Some(Body::Json(body)))
                    .await?;
                if status.is_success() || status == reqwest::StatusCode::CONFLICT {
                    return Ok(());
                }
                Err(api_error("creating the dataset", status, &value))
            })
            .await
            .map(|_| ())
    }

    /// A table's schema, or `None` when it does not exist.
    async fn table_info(&self, physical: &str) -> Result<Option<TableInfo>, DestinationError> {
        let (status, value) = self.call(reqwest::Method::GET, &self.table_url(physical), None).await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(api_error("reading the table", status, &value));
        }
        Ok(Some(TableInfo::from_resource(&value)))
    }

    /// Runs a query (or DML, DDL, script) with named parameters and returns its rows, each
    /// value as BigQuery's text (`None` for NULL).
    async fn query(&self, sql: &str, parameters: Vec<Value>) -> Result<Vec<Vec<Option<String>>>, DestinationError> {
        let body = json!({
            "query": sql,
            "useLegacySql": false,
            "parameterMode": "NAMED",
            "queryParameters": parameters,
            "location": self.config.location(),
            "timeoutMs": 60_000,
            "maxResults": 50_000,
        });
        let mut page = self
            .call_ok(
                "running a query",
                reqwest::Method::POST,
                &format!("{}/queries", self.api),
                Some(Body::Json(body)),
            )
            .await?;
        let job_id = page["jobReference"]["jobId"].as_str().unwrap_or_default().to_string();
        let location = page["jobReference"]["location"]
            .as_str()
            .unwrap_or(self.config.location())
            .to_string();
        let results_url = format!("{}/queries/{job_id}", self.api);
        while page["jobComplete"].as_bool() == Some(false) {
            page = self
                .call_ok(
                    "waiting for a query",
                    reqwest::Method::GET,
                    &format!("{results_url}?location={location}&timeoutMs=60000&maxResults=50000"),
                    None,
                )
                .await?;
        }
        if page["errors"].as_array().is_some_and(|errors| !errors.is_empty()) {
            // `errors` may hold warnings; the job's errorResult says whether it failed.
            let job = self
                .call_ok(
                    "reading a query job",
                    reqwest::Method::GET,
                    &format!("{}/jobs/{job_id}?location={location}", self.api),
                    None,
                )
                .await?;
            if let Some(error) = job["status"].get("errorResult").filter(|error| !error.is_null()) {
                return Err(job_error("running a query", error));
            }
        }
        let mut rows = Vec::new();
        loop {
            for row in page["rows"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let cells = row["f"].as_array().map(Vec::as_slice).unwrap_or_default();
                rows.push(cells.iter().map(|cell| cell["v"].as_str().map(str::to_string)).collect());
            }
            let Some(token) = page["pageToken"].as_str().filter(|token| !token.is_empty()) else {
                break;
            };
            let url = format!(
                "{results_url}?location={location}&maxResults=50000&pageToken={}",
                form_encode(token)
            );
            page = self.call_ok("reading query results", reqwest::Method::GET, &url, None).await?;
        }
        Ok(rows)
    }

    /// Waits for a job to finish and fails when it failed.
    async fn wait_for_job(&self, operation: &str, job: Value) -> Result<Value, DestinationError> {
        let mut job = job;
        let mut wait = Duration::from_millis(250);
        while job["status"]["state"].as_str() != Some("DONE") {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(4));
            let job_id = job["jobReference"]["jobId"].as_str().unwrap_or_default().to_string();
            let location = job["jobReference"]["location"]
                .as_str()
                .unwrap_or(self.config.location())
                .to_string();
            job = self
                .call_ok(
                    operation,
                    reqwest::Method::GET,
                    &format!("{}/jobs/{job_id}?location={location}", self.api),
                    None,
                )
                .await?;
        }
        if let Some(error) = job["status"].get("errorResult").filter(|error| !error.is_null()) {
            return Err(job_error(operation, error));
        }
        Ok(job)
    }

    /// Creates a history table: day partitions on the start column, clustered by the id.
    async fn create_table(&self, physical: &str, batch: &HistoryBatch) -> Result<(), DestinationError> {
        let profile = &batch.profile;
        let mut fields = Vec::with_capacity(batch.schema.columns.len() + 5);
        for column in &batch.schema.columns {
            let mode = if column.name == batch.primary_key { "REQUIRED" } else { "NULLABLE" };
            fields.push(field_json(&column.name, bigquery_type(column.column_type), mode));
        }
        fields.push(field_json(&profile.start_column, "TIMESTAMP", "REQUIRED"));
        fields.push(field_json(&profile.end_column, "TIMESTAMP", "NULLABLE"));
        fields.push(field_json(&profile.active_column, "BOOL", "REQUIRED"));
        fields.push(field_json(&profile.synced_column, "TIMESTAMP", "REQUIRED"));
        fields.push(field_json(&profile.hash_column, "STRING", "REQUIRED"));
        let mut body = json!({
            "tableReference": {"projectId": self.config.project, "datasetId": self.config.dataset, "tableId": physical},
            "schema": {"fields": fields},
            "timePartitioning": {"type": "DAY", "field": column_identifier(&profile.start_column)},
            "clustering": {"fields": [column_identifier(&batch.primary_key)]},
        });
        if let Some(description) = name_description(&batch.table, physical) {
            body["description"] = Value::String(description);
        }
        tracing::info!(table = %batch.table, "creating the bigquery table");
        let url = format!("{}/datasets/{}/tables", self.api, self.config.dataset);
        let (status, value) = self.call(reqwest::Method::POST, &url, Some(Body::Json(body))).await?;
        if status.is_success() || status == reqwest::StatusCode::CONFLICT {
            return Ok(());
        }
        Err(api_error("creating the table", status, &value))
    }

    /// Brings the table up to the batch schema: widened columns through DDL (`ALTER COLUMN SET
    /// DATA TYPE FLOAT64` for INT64 -> FLOAT64, else one `CREATE OR REPLACE TABLE ... AS SELECT`
    /// with casts that keeps the partitioning and clustering), then new columns and the
    /// descriptions of mapped names through one `tables.patch`. Idempotent: every step compares
    /// with the table first, so a replayed batch finds nothing to do.
    async fn evolve_table(&self, physical: &str, batch: &HistoryBatch, info: TableInfo) -> Result<TableInfo, DestinationError> {
        let table = self.qualified_physical(physical)?;
        let mut widened: BTreeMap<String, ColumnType> = BTreeMap::new();
        for column in &batch.schema.columns {
            if let Some(field) = info.field(&column.name) {
                let wanted = field.column_type.widen(column.column_type);
                if bigquery_type(wanted) != bigquery_type(field.column_type) {
                    tracing::info!(table = %batch.table, column = %column.name, from = field.column_type.name(), to = wanted.name(), "widening column");
                    widened.insert(field.physical.clone(), wanted);
                }
            }
        }
        let mut info = info;
        if !widened.is_empty() {
            if widened.values().all(|wanted| *wanted == ColumnType::Double) {
                // One statement per column (bqemulator parses one ALTER command per statement).
                for physical in widened.keys() {
                    self.query(
                        &format!("ALTER TABLE {table} ALTER COLUMN {} SET DATA TYPE FLOAT64", quote(physical)?),
                        Vec::new(),
                    )
                    .await?;
                }
            } else {
                let replacements = widened
                    .iter()
                    .map(|(physical, wanted)| {
                        let column = quote(physical)?;
                        Ok(format!("CAST({column} AS {}) AS {column}", bigquery_type(*wanted)))
                    })
                    .collect::<Result<Vec<_>, DestinationError>>()?;
                self.query(
                    &format!(
                        "CREATE OR REPLACE TABLE {table} PARTITION BY TIMESTAMP_TRUNC({start}, DAY) CLUSTER BY {id} AS SELECT * REPLACE ({}) FROM {table}",
                        replacements.join(", "),
                        start = quote_column(&batch.profile.start_column)?,
                        id = quote_column(&batch.primary_key)?,
                    ),
                    Vec::new(),
                )
                .await?;
            }
            info = self.table_info(physical).await?.ok_or_else(|| DestinationError::BigQuery {
                operation: "widening a column".into(),
                message: format!("the table `{}` vanished while it was widened", batch.table),
                hint: "run again",
            })?;
        }
        // The names of every column the table should describe: the batch's record columns and
        // the profile's metadata columns.
        let mut wanted_names: Vec<(String, Option<ColumnType>)> = batch
            .schema
            .columns
            .iter()
            .map(|column| (column.name.clone(), Some(column.column_type)))
            .collect();
        wanted_names.extend(batch.profile.metadata_columns().iter().map(|name| (name.to_string(), None)));
        let mut fields: Vec<Value> = Vec::with_capacity(info.fields.len() + batch.schema.columns.len());
        let mut changed = false;
        for field in &info.fields {
            let mut raw = field.raw.clone();
            if let Some(wanted) = widened.get(&field.physical) {
                // BigQuery already reports the new type after the DDL; an emulator may not.
                if column_type_of(&field.raw_type) != *wanted {
                    raw["type"] = Value::String(bigquery_type(*wanted).to_string());
                    changed = true;
                }
            }
            if let Some((name, _)) = wanted_names.iter().find(|(name, _)| column_identifier(name) == field.physical) {
                if let Some(description) = name_description(name, &field.physical) {
                    if raw["description"].as_str() != Some(description.as_str()) {
                        raw["description"] = Value::String(description);
                        changed = true;
                    }
                }
            }
            fields.push(raw);
        }
        let mut added: Vec<&Column> = Vec::new();
        for column in &batch.schema.columns {
            if info.field(&column.name).is_none() {
                tracing::info!(table = %batch.table, column = %column.name, column_type = column.column_type.name(), "adding column");
                fields.push(field_json(&column.name, bigquery_type(column.column_type), "NULLABLE"));
                added.push(column);
                changed = true;
            }
        }
        let table_description = name_description(&batch.table, physical);
        let mut patch = json!({"schema": {"fields": fields}});
        if table_description.is_some() && info.description != table_description {
            patch["description"] = json!(table_description);
            changed = true;
        }
        if !changed {
            return Ok(info);
        }
        let patched = self
            .call_ok(
                "adding columns (tables.patch)",
                reqwest::Method::PATCH,
                &self.table_url(physical),
                Some(Body::Json(patch)),
            )
            .await?;
        if self.emulator && !added.is_empty() {
            // bqemulator applies tables.patch to its catalog only, not to the table it stores,
            // so the columns are added there too. Real BigQuery never takes this path.
            for column in added {
                self.query(
                    &format!(
                        "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {}",
                        quote_column(&column.name)?,
                        bigquery_type(column.column_type)
                    ),
                    Vec::new(),
                )
                .await?;
            }
        }
        Ok(TableInfo::from_resource(&patched))
    }

    /// Uploads NDJSON into the staging table through load jobs (multipart uploads).
    async fn load(&self, staging: &str, fields: &[Value], ndjson: &[String]) -> Result<(), DestinationError> {
        let mut start = 0;
        while start < ndjson.len() {
            let mut end = start;
            let mut size = 0;
            while end < ndjson.len() && (end == start || size + ndjson[end].len() < LOAD_CHUNK_BYTES) {
                size += ndjson[end].len() + 1;
                end += 1;
            }
            let mut data = String::with_capacity(size);
            for line in &ndjson[start..end] {
                data.push_str(line);
                data.push('\n');
            }
            let job = json!({
                "jobReference": {"projectId": self.config.project, "jobId": format!("syncline_load_{}", unique_suffix()), "location": self.config.location()},
                "configuration": {"load": {
                    "destinationTable": {"projectId": self.config.project, "datasetId": self.config.dataset, "tableId": staging},
                    "sourceFormat": "NEWLINE_DELIMITED_JSON",
                    "writeDisposition": "WRITE_APPEND",
                    "createDisposition": "CREATE_NEVER",
                    "schema": {"fields": fields},
                }},
            });
            let mut boundary = format!("syncline_{}", unique_suffix());
            while data.contains(&boundary) {
                boundary = format!("syncline_{}", unique_suffix());
            }
            let mut body = Vec::with_capacity(data.len() + 1024);
            body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{job}\r\n").as_bytes());
            body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
            body.extend_from_slice(data.as_bytes());
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let url = format!("{}/jobs?uploadType=multipart", self.upload);
            let (status, value) = self
                .call(
                    reqwest::Method::POST,
                    &url,
                    Some(Body::Raw {
                        content_type: format!("multipart/related; boundary={boundary}"),
                        bytes: Bytes::from(body),
                    }),
                )
                .await?;
            let submitted = if status == reqwest::StatusCode::CONFLICT {
                // A retried upload whose first attempt got through: wait for that job.
                job
            } else if status.is_success() {
                value
            } else {
                return Err(api_error("loading the batch (load job)", status, &value));
            };
            self.wait_for_job("loading the batch (load job)", submitted).await?;
            start = end;
        }
        Ok(())
    }

    async fn apply_batch(&self, batch: &HistoryBatch) -> Result<(), DestinationError> {
        self.ensure_dataset().await?;
        let physical = table_identifier(&batch.table);
        let info = match self.table_info(&physical).await? {
            Some(info) => info,
            None => {
                self.create_table(&physical, batch).await?;
                self.table_info(&physical).await?.ok_or_else(|| DestinationError::BigQuery {
                    operation: "creating the table".into(),
                    message: format!("the table `{}` is not there after creating it", batch.table),
                    hint: "run again",
                })?
            }
        };
        let info = self.evolve_table(&physical, batch, info).await?;
        if batch.rows.is_empty() && batch.closes.is_empty() {
            return Ok(());
        }
        let profile = &batch.profile;
        // Staging columns: every column of the table, nullable, plus the operation and the new
        // end of a close.
        let mut staging_fields: Vec<Value> = info
            .fields
            .iter()
            .map(|field| json!({"name": field.physical, "type": field.raw_type, "mode": "NULLABLE"}))
            .collect();
        staging_fields.push(json!({"name": OP_COLUMN, "type": "STRING", "mode": "NULLABLE"}));
        staging_fields.push(json!({"name": CLOSE_END_COLUMN, "type": "TIMESTAMP", "mode": "NULLABLE"}));
        let ndjson = batch_ndjson(batch, &info);
        // The start range of the target rows the MERGE may touch: the new versions, and the
        // active rows the closes end (the version a close names, or a newer one that starts no
        // later than the close's new end).
        let (min_start, max_start) = batch
            .rows
            .iter()
            .map(|row| (row.start, row.start))
            .chain(batch.closes.iter().map(|close| (close.start, close.end.max(close.start))))
            .fold((i64::MAX, i64::MIN), |(low, high), (start, end)| (low.min(start), high.max(end)));

        let staging = format!(
            "{STAGING_PREFIX}{}_{}",
            &table_identifier(&format!("{}_{}", self.config.dataset, batch.table))
                .chars()
                .take(64)
                .collect::<String>(),
            unique_suffix()
        );
        let expiration = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis())
            + STAGING_LIFETIME.as_millis();
        let body = json!({
            "tableReference": {"projectId": self.config.project, "datasetId": self.config.dataset, "tableId": staging},
            "schema": {"fields": staging_fields},
            "expirationTime": expiration.to_string(),
        });
        self.call_ok(
            "creating the staging table",
            reqwest::Method::POST,
            &format!("{}/datasets/{}/tables", self.api, self.config.dataset),
            Some(Body::Json(body)),
        )
        .await?;
        let result = async {
            self.load(&staging, &staging_fields, &ndjson).await?;
            let (sql, parameters) = merge_statement(
                &self.qualified_physical(&physical)?,
                &self.qualified_physical(&staging)?,
                &info,
                profile,
                &batch.primary_key,
                min_start,
                max_start,
            )?;
            self.query(&sql, parameters).await
        }
        .await;
        let (status, value) = self.call(reqwest::Method::DELETE, &self.table_url(&staging), None).await?;
        if !status.is_success() && status != reqwest::StatusCode::NOT_FOUND {
            tracing::warn!(table = %batch.table, %status, answer = %value, "could not drop the staging table; it expires on its own");
        }
        result.map(|_| ())
    }
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A schema field for a column (physical name; the full name in the description when mapped).
fn field_json(name: &str, bigquery_type: &str, mode: &str) -> Value {
    let physical = column_identifier(name);
    let mut field = json!({"name": physical, "type": bigquery_type, "mode": mode});
    if let Some(description) = name_description(name, &physical) {
        field["description"] = Value::String(description);
    }
    field
}

/// The error of a non-2xx answer: BigQuery's own message (it holds no secret), and what to do.
fn api_error(operation: &str, status: reqwest::StatusCode, value: &Value) -> DestinationError {
    let message = value["error"]["message"]
        .as_str()
        .map(str::to_string)
        .or_else(|| value.as_str().map(|text| text.chars().take(500).collect()))
        .unwrap_or_else(|| status.to_string());
    let hint = match status.as_u16() {
        401 | 403 => "check the credentials and that the service account has roles/bigquery.dataEditor on the dataset and roles/bigquery.jobUser on the project",
        404 => "check the project, the dataset and the location in the url",
        _ => "check the project, dataset and location in the url, and the message above",
    };
    DestinationError::BigQuery {
        operation: operation.to_string(),
        message: format!("{status}: {message}"),
        hint,
    }
}

fn job_error(operation: &str, error: &Value) -> DestinationError {
    DestinationError::BigQuery {
        operation: operation.to_string(),
        message: format!(
            "{}: {}",
            error["reason"].as_str().unwrap_or("failed"),
            error["message"].as_str().unwrap_or("the job failed")
        ),
        hint: "check the message above; the batch was not applied and will be retried",
    }
}

/// A cell as JSON for a column of `column_type` (converted the way the column was widened).
fn cell_json(cell: &CellValue, column_type: ColumnType) -> Value {
    match (column_type, cell) {
        (_, CellValue::Null) => Value::Null,
        (ColumnType::Boolean, CellValue::Bool(value)) => Value::Bool(*value),
        (ColumnType::BigInt, CellValue::Int(value)) => json!(value),
        (ColumnType::Double, CellValue::Int(value)) => json!(*value as f64),
        (ColumnType::Double, CellValue::Float(value)) if value.is_finite() => json!(value),
        (ColumnType::Double, CellValue::Float(value)) if value.is_nan() => json!("NaN"),
        (ColumnType::Double, CellValue::Float(value)) => json!(if *value > 0.0 { "Infinity" } else { "-Infinity" }),
        (ColumnType::Timestamp, CellValue::Timestamp(millis)) => json!(format_timestamp(*millis)),
        (ColumnType::Json | ColumnType::Varchar, CellValue::Text(text)) => json!(text),
        (ColumnType::Json | ColumnType::Varchar, CellValue::Bool(value)) => json!(value.to_string()),
        (ColumnType::Json | ColumnType::Varchar, CellValue::Int(value)) => json!(value.to_string()),
        (ColumnType::Json | ColumnType::Varchar, CellValue::Float(value)) => json!(value.to_string()),
        (ColumnType::Json | ColumnType::Varchar, CellValue::Timestamp(millis)) => json!(format_timestamp(*millis)),
        _ => Value::Null,
    }
}

/// The NDJSON lines of a batch: one per new version (`insert`) and one per close (`close`),
/// duplicates removed (a duplicate would make the MERGE insert a row twice).
fn batch_ndjson(batch: &HistoryBatch, info: &TableInfo) -> Vec<String> {
    let profile = &batch.profile;
    let id_field = info.field(&batch.primary_key);
    let id_type = id_field.map_or(ColumnType::Varchar, |field| field.column_type);
    let id_physical = column_identifier(&batch.primary_key);
    let start_physical = column_identifier(&profile.start_column);
    let synced_physical = column_identifier(&profile.synced_column);
    // Where each table column's value comes from.
    let slots: Vec<(&Field, Option<usize>)> = info
        .fields
        .iter()
        .map(|field| (field, batch.schema.position(&field.name)))
        .collect();
    let id_position = batch.schema.position(&batch.primary_key);
    let mut seen: HashSet<(String, i64)> = HashSet::new();
    let mut lines = Vec::with_capacity(batch.rows.len() + batch.closes.len());
    let synced = json!(format_timestamp(batch.synced_at));
    for row in &batch.rows {
        let key = id_position
            .map(|position| format!("{:?}", row.values[position]))
            .unwrap_or_default();
        if !seen.insert((format!("insert {key}"), row.start)) {
            continue;
        }
        let mut object = Map::with_capacity(info.fields.len() + 1);
        for (field, position) in &slots {
            let value = match field.name.as_str() {
                name if name == profile.start_column => json!(format_timestamp(row.start)),
                name if name == profile.end_column => profile.stored_end(row.end).map_or(Value::Null, |end| json!(format_timestamp(end))),
                name if name == profile.active_column => Value::Bool(row.end.is_none()),
                name if name == profile.synced_column => synced.clone(),
                name if name == profile.hash_column => json!(row.row_hash),
                _ => match position {
                    Some(position) => cell_json(&row.values[*position], field.column_type),
                    None => Value::Null,
                },
            };
            if !value.is_null() {
                object.insert(field.physical.clone(), value);
            }
        }
        object.insert(OP_COLUMN.into(), json!("insert"));
        lines.push(Value::Object(object).to_string());
    }
    for close in &batch.closes {
        if !seen.insert((format!("close {:?}", close.id), close.start)) {
            continue;
        }
        let mut object = Map::with_capacity(4);
        object.insert(id_physical.clone(), cell_json(&close.id, id_type));
        object.insert(start_physical.clone(), json!(format_timestamp(close.start)));
        object.insert(CLOSE_END_COLUMN.into(), json!(format_timestamp(close.end)));
        object.insert(synced_physical.clone(), synced.clone());
        object.insert(OP_COLUMN.into(), json!("close"));
        lines.push(Value::Object(object).to_string());
    }
    lines
}

/// The one MERGE of a batch: a close ends the id's active version if it starts no later than
/// the close's new end, whichever version the close names (after a crash between the warehouse
/// and the state store the index can name an older version than the table's active one; a
/// version that is already closed keeps its end); versions that are missing are inserted. The
/// ON clause limits the target to the batch's start range, so BigQuery reads only the
/// partitions the batch touches. A target row is never matched by both a close and a new
/// version: the versions of an id in a batch start after the end of its close.
fn merge_statement(
    table: &str,
    staging: &str,
    info: &TableInfo,
    profile: &HistoryProfile,
    primary_key: &str,
    min_start: i64,
    max_start: i64,
) -> Result<(String, Vec<Value>), DestinationError> {
    let id = quote_column(primary_key)?;
    let start = quote_column(&profile.start_column)?;
    let end = quote_column(&profile.end_column)?;
    let active = quote_column(&profile.active_column)?;
    let synced = quote_column(&profile.synced_column)?;
    let columns = info
        .fields
        .iter()
        .map(|field| quote(&field.physical))
        .collect::<Result<Vec<_>, _>>()?;
    let values: Vec<String> = columns.iter().map(|column| format!("s.{column}")).collect();
    let sql = format!(
        "MERGE {table} AS t USING {staging} AS s
         ON t.{id} = s.{id}
            AND t.{start} BETWEEN TIMESTAMP_MILLIS(@min_start) AND TIMESTAMP_MILLIS(@max_start)
            AND ((s.{op} = @insert AND t.{start} = s.{start}) OR (s.{op} = @close AND t.{active} AND t.{start} <= s.{close_end}))
         WHEN MATCHED AND s.{op} = @close THEN UPDATE SET {end} = s.{close_end}, {active} = FALSE, {synced} = s.{synced}
         WHEN NOT MATCHED BY TARGET AND s.{op} = @insert THEN INSERT ({columns}) VALUES ({values})",
        op = quote(OP_COLUMN)?,
        close_end = quote(CLOSE_END_COLUMN)?,
        columns = columns.join(", "),
        values = values.join(", "),
    );
    let parameters = vec![
        parameter("min_start", "INT64", Some(min_start.to_string())),
        parameter("max_start", "INT64", Some(max_start.to_string())),
        parameter("close", "STRING", Some("close".into())),
        parameter("insert", "STRING", Some("insert".into())),
    ];
    Ok((sql, parameters))
}

fn parse_count(value: &Option<String>) -> u64 {
    value.as_deref().and_then(|text| text.parse::<i64>().ok()).unwrap_or(0).max(0) as u64
}

fn parse_millis(value: &Option<String>) -> Result<Option<i64>, DestinationError> {
    value
        .as_deref()
        .map(|text| {
            text.parse::<i64>().map_err(|_| DestinationError::BigQuery {
                operation: "reading versions".into(),
                message: format!("`{text}` is not a millisecond timestamp"),
                hint: "report this as a bug",
            })
        })
        .transpose()
}

#[async_trait]
impl Destination for BigQueryDestination {
    async fn table_schema(&self, table: &str, profile: &HistoryProfile) -> Result<Option<TableSchema>, DestinationError> {
        let Some(info) = self.table_info(&table_identifier(table)).await? else {
            return Ok(None);
        };
        let metadata = profile.metadata_columns();
        let columns = info
            .fields
            .into_iter()
            .filter(|field| !metadata.contains(&field.name.as_str()))
            .map(|field| Column {
                column_type: field.column_type,
                name: field.name,
            })
            .collect();
        Ok(Some(TableSchema { columns }))
    }

    async fn apply(&self, batch: Arc<HistoryBatch>) -> Result<(), DestinationError> {
        if batch.is_empty() {
            return Ok(());
        }
        let timer = std::time::Instant::now();
        self.apply_batch(&batch).await?;
        tracing::debug!(
            table = %batch.table,
            rows = batch.rows.len(),
            closes = batch.closes.len(),
            elapsed_ms = timer.elapsed().as_millis() as u64,
            "bigquery batch"
        );
        Ok(())
    }

    async fn read_versions(
        &self,
        table: &str,
        primary_key: &str,
        profile: &HistoryProfile,
    ) -> Result<Vec<StoredVersion>, DestinationError> {
        let sql = format!(
            "SELECT CAST({id} AS STRING), UNIX_MILLIS({start}), UNIX_MILLIS({end}), {active}, {hash} FROM {table}",
            id = quote_column(primary_key)?,
            start = quote_column(&profile.start_column)?,
            end = quote_column(&profile.end_column)?,
            active = quote_column(&profile.active_column)?,
            hash = quote_column(&profile.hash_column)?,
            table = self.qualified_physical(&table_identifier(table))?,
        );
        let open_end = profile.open_end;
        let mut versions = Vec::new();
        for row in self.query(&sql, Vec::new()).await? {
            let [id, start, end, active, hash] = <[Option<String>; 5]>::try_from(row).map_err(|_| DestinationError::BigQuery {
                operation: "reading versions".into(),
                message: "the answer has the wrong number of columns".into(),
                hint: "report this as a bug",
            })?;
            versions.push(StoredVersion {
                id: id.unwrap_or_default(),
                start: parse_millis(&start)?.unwrap_or_default(),
                end: parse_millis(&end)?.filter(|end| Some(*end) != open_end),
                active: active.as_deref() == Some("true"),
                row_hash: hash.unwrap_or_default(),
            });
        }
        versions.sort();
        Ok(versions)
    }

    async fn check_history(&self, table: &str, primary_key: &str, profile: &HistoryProfile) -> Result<HistoryCheck, DestinationError> {
        let id = quote_column(primary_key)?;
        let start = quote_column(&profile.start_column)?;
        let end = quote_column(&profile.end_column)?;
        let active = quote_column(&profile.active_column)?;
        let hash = quote_column(&profile.hash_column)?;
        let table = self.qualified_physical(&table_identifier(table))?;
        let mut parameters = Vec::new();
        let open = match profile.open_end {
            Some(open_end) => {
                parameters.push(parameter("open_end", "INT64", Some(open_end.to_string())));
                format!("{end} = TIMESTAMP_MILLIS(@open_end)")
            }
            None => format!("{end} IS NULL"),
        };
        let sql = format!(
            "WITH versions AS (
                SELECT {id} AS id, {start} AS s, {end} AS e, {active} AS a, {hash} AS h,
                       LEAD({start}) OVER (PARTITION BY {id} ORDER BY {start}) AS next_start,
                       LEAD({hash}) OVER (PARTITION BY {id} ORDER BY {start}) AS next_hash,
                       ({open}) AS is_open
                FROM {table})
             SELECT
                COUNT(*),
                COUNTIF(a),
                (SELECT COUNT(*) FROM (SELECT id FROM versions WHERE a GROUP BY id HAVING COUNT(*) > 1)),
                COUNTIF(a IS DISTINCT FROM is_open),
                COUNTIF((NOT is_open AND e < s) OR (next_start IS NOT NULL AND (is_open OR e >= next_start))),
                COUNTIF(next_hash = h AND e = TIMESTAMP_SUB(next_start, INTERVAL 1 MILLISECOND))
             FROM versions"
        );
        let rows = self.query(&sql, parameters).await?;
        let row = rows.first().cloned().unwrap_or_default();
        let count = |index: usize| row.get(index).map_or(0, parse_count);
        Ok(HistoryCheck {
            rows: count(0),
            active_rows: count(1),
            ids_with_several_active: count(2),
            active_flag_mismatches: count(3),
            overlapping_windows: count(4),
            phantom_duplicates: count(5),
        })
    }
}

/// The SELECT expression that reads a field as its kind.
fn read_expression(field: &Field, kind: ReadKind) -> Result<String, DestinationError> {
    let column = quote(&field.physical)?;
    let raw = field.raw_type.to_ascii_uppercase();
    Ok(match kind {
        ReadKind::Bool | ReadKind::Int => column,
        ReadKind::Float => format!("CAST({column} AS FLOAT64)"),
        ReadKind::Timestamp if raw == "DATETIME" => format!("UNIX_MILLIS(TIMESTAMP({column}))"),
        ReadKind::Timestamp => format!("UNIX_MILLIS({column})"),
        ReadKind::Text if raw == "STRING" => column,
        ReadKind::Text if matches!(raw.as_str(), "JSON" | "RECORD" | "STRUCT" | "GEOGRAPHY") || field.raw["mode"] == "REPEATED" => {
            format!("TO_JSON_STRING({column})")
        }
        ReadKind::Text => format!("CAST({column} AS STRING)"),
    })
}

fn read_value(text: Option<String>, kind: ReadKind) -> FieldValue {
    let Some(text) = text else { return FieldValue::Null };
    match kind {
        ReadKind::Bool => FieldValue::Bool(text == "true"),
        ReadKind::Int => text.parse().map_or(FieldValue::Text(text), FieldValue::Int),
        ReadKind::Float => match text.as_str() {
            "NaN" => FieldValue::Float(f64::NAN),
            "Infinity" => FieldValue::Float(f64::INFINITY),
            "-Infinity" => FieldValue::Float(f64::NEG_INFINITY),
            _ => text.parse().map_or(FieldValue::Text(text), FieldValue::Float),
        },
        ReadKind::Timestamp => text.parse().map_or(FieldValue::Text(text), FieldValue::Timestamp),
        ReadKind::Text => FieldValue::Text(text),
    }
}

#[async_trait]
impl HistoryReader for BigQueryDestination {
    async fn history_tables(&self, profile: &HistoryProfile) -> Result<Vec<String>, DestinationError> {
        let mut physical_tables = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut url = format!("{}/datasets/{}/tables?maxResults=1000", self.api, self.config.dataset);
            if let Some(token) = &page_token {
                url.push_str(&format!("&pageToken={}", form_encode(token)));
            }
            let (status, page) = self.call(reqwest::Method::GET, &url, None).await?;
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(Vec::new());
            }
            if !status.is_success() {
                return Err(api_error("listing tables", status, &page));
            }
            for table in page["tables"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(id) = table["tableReference"]["tableId"].as_str() {
                    if !id.starts_with(STAGING_PREFIX) && table["type"].as_str().is_none_or(|kind| kind == "TABLE" || kind == "VIEW") {
                        physical_tables.push(id.to_string());
                    }
                }
            }
            page_token = page["nextPageToken"].as_str().map(str::to_string);
            if page_token.is_none() {
                break;
            }
        }
        let (start, active) = (column_identifier(&profile.start_column), column_identifier(&profile.active_column));
        let mut tables = Vec::new();
        for physical in physical_tables {
            let (status, resource) = self.call(reqwest::Method::GET, &self.table_url(&physical), None).await?;
            if !status.is_success() {
                continue;
            }
            let info = TableInfo::from_resource(&resource);
            let has = |name: &str| info.fields.iter().any(|field| field.physical == name);
            if has(&start) && has(&active) {
                tables.push(full_name(info.description.as_deref(), &physical, table_identifier));
            }
        }
        tables.sort();
        Ok(tables)
    }

    async fn rows(
        &self,
        table: &str,
        primary_key: &str,
        profile: &HistoryProfile,
        selection: RowSelection,
    ) -> Result<Option<ActiveRows>, DestinationError> {
        let physical = table_identifier(table);
        let Some(info) = self.table_info(&physical).await? else {
            return Ok(None);
        };
        let Some(id_field) = info.field(primary_key) else {
            return Err(DestinationError::MissingColumn {
                table: table.to_string(),
                column: primary_key.to_string(),
            });
        };
        let metadata = profile.metadata_columns();
        let record: Vec<(&Field, ReadKind)> = info
            .fields
            .iter()
            .filter(|field| selection == RowSelection::Every || !metadata.contains(&field.name.as_str()))
            .map(|field| (field, ReadKind::from(field.column_type)))
            .collect();
        let id_kind = ReadKind::from(id_field.column_type);
        let mut select = vec![read_expression(id_field, id_kind)?];
        for (field, kind) in &record {
            select.push(read_expression(field, *kind)?);
        }
        let filter = match selection {
            RowSelection::Active => format!(" WHERE {}", quote_column(&profile.active_column)?),
            RowSelection::Every => String::new(),
        };
        let sql = format!("SELECT {} FROM {}{filter}", select.join(", "), self.qualified_physical(&physical)?);
        let mut rows = Vec::new();
        for row in self.query(&sql, Vec::new()).await? {
            let mut cells = row.into_iter();
            let id = read_value(cells.next().flatten(), id_kind).normalized().unwrap_or_default();
            let values = record.iter().map(|(_, kind)| read_value(cells.next().flatten(), *kind)).collect();
            rows.push((id, values));
        }
        Ok(Some(ActiveRows {
            columns: record.iter().map(|(field, _)| field.name.clone()).collect(),
            rows,
        }))
    }
}

#[cfg(test)]
impl BigQueryDestination {
    /// Runs a statement (tests plant differences with it).
    pub(crate) async fn execute_for_tests(&self, sql: &str) -> Result<(), DestinationError> {
        self.query(sql, Vec::new()).await.map(|_| ())
    }

    /// The project the destination writes to.
    pub(crate) fn project_for_tests(&self) -> String {
        self.config.project.clone()
    }
}

/// Test support: a destination in a fresh dataset of the test BigQuery (emulator), dropped by
/// [`TestDataset::drop_dataset`] or, when a test panics first, when the value is dropped.
/// The BigQuery URL for service-backed tests, from [`TEST_URL_VARIABLE`]. Without it the test
/// is skipped locally (returns `None`); with `CI=true` a missing URL fails the test, so CI never
/// passes by skipping.
pub fn test_service_url() -> Option<String> {
    match std::env::var(TEST_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|value| value == "true") => {
            panic!("{TEST_URL_VARIABLE} is not set but CI=true: start the BigQuery emulator and export the url (see .ci/run)")
        }
        _ => {
            eprintln!("skipping: {TEST_URL_VARIABLE} is not set");
            None
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A fresh dataset on the test service.
    pub(crate) struct TestDataset {
        pub(crate) destination: BigQueryDestination,
        dropped: bool,
    }

    impl TestDataset {
        /// `None` when no test service is configured (skipped locally; CI fails instead).
        pub(crate) async fn new(prefix: &str) -> Option<Self> {
            let url = test_service_url()?;
            let mut config = BigQueryConfig::parse(&url).unwrap_or_else(|error| panic!("{TEST_URL_VARIABLE}: {error}"));
            config.dataset = syncline_state::postgres_url::unique_test_schema(&format!("{}_{prefix}", config.dataset));
            let destination = BigQueryDestination::open(&config).await.expect("open the test destination");
            Some(Self {
                destination,
                dropped: false,
            })
        }

        fn dataset_url(&self) -> String {
            format!(
                "{}/datasets/{}?deleteContents=true",
                self.destination.api, self.destination.config.dataset
            )
        }

        /// Drops the dataset and everything in it.
        pub(crate) async fn drop_dataset(mut self) {
            let (status, _) = self
                .destination
                .call(reqwest::Method::DELETE, &self.dataset_url(), None)
                .await
                .expect("drop the test dataset");
            assert!(status.is_success() || status == reqwest::StatusCode::NOT_FOUND, "{status}");
            self.dropped = true;
        }
    }

    impl Drop for TestDataset {
        /// A test that panicked before [`TestDataset::drop_dataset`] still leaves no dataset
        /// behind (emulator only: it needs no credentials).
        fn drop(&mut self) {
            if self.dropped || !self.destination.emulator {
                return;
            }
            let url = self.dataset_url();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async move { reqwest::Client::new().delete(url).send().await.ok() })
            })
            .join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestDataset;
    use super::*;

    #[test]
    fn urls_name_the_project_and_dataset() {
        let config = BigQueryConfig::parse("bigquery://my-project/history").unwrap();
        assert_eq!(config.project, "my-project");
        assert_eq!(config.dataset, "history");
        assert_eq!(config.location(), "US");
        let config = BigQueryConfig::parse(
            "bigquery://example.com:proj/h_1?location=EU&credentials=%2Fetc%2Fkey%20file.json&endpoint=http://127.0.0.1:9050/",
        )
        .unwrap();
        assert_eq!(config.project, "example.com:proj");
        assert_eq!(config.location(), "EU");
        assert_eq!(config.credentials, Some(PathBuf::from("/etc/key file.json")));
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:9050"));
        for bad in [
            "bigquery://p",
            "bigquery://p/",
            "bigquery:///d",
            "bigquery://p/d-x",
            "bigquery://p/d?nope=1",
            "bigquery://p/d?location=",
            "bigquery://p`x/d",
        ] {
            let error = BigQueryConfig::parse(bad).unwrap_err().to_string();
            assert!(error.contains("bigquery://project/dataset"), "{bad}: {error}");
        }
    }

    #[test]
    fn names_bigquery_cannot_hold_map_deterministically() {
        assert_eq!(column_identifier("deal_id"), "deal_id");
        assert_eq!(column_identifier("_fivetran_start"), "_fivetran_start");
        let long = "l".repeat(300);
        assert_eq!(column_identifier(&long), long, "300 bytes fit");
        let longer = format!("{long}m");
        let mapped = column_identifier(&longer);
        assert_eq!(mapped.len(), 300);
        assert_ne!(mapped, column_identifier(&format!("{long}n")), "different names differ");
        assert_eq!(mapped, column_identifier(&longer), "same name, same mapping");
        let hostile = column_identifier("semi; DROP TABLE weird; --");
        assert_eq!(
            hostile, "semi__DROP_TABLE_weird_____f170c014",
            "the example in docs/destinations.md"
        );
        assert!(column_identifier("1st").starts_with("f_1st_"));
        assert!(column_identifier("_PARTITIONTIME").starts_with("f__PARTITIONTIME_"));
        assert!(column_identifier("ünïcødé ✓")
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_'));
        assert!(quote("a`b").is_err());
        assert_eq!(quote("a_b").unwrap(), "`a_b`");
    }

    #[test]
    fn cells_follow_the_column_type() {
        assert_eq!(cell_json(&CellValue::Int(5), ColumnType::Double), json!(5.0));
        assert_eq!(cell_json(&CellValue::Int(5), ColumnType::Varchar), json!("5"));
        assert_eq!(cell_json(&CellValue::Float(f64::NAN), ColumnType::Double), json!("NaN"));
        assert_eq!(
            cell_json(&CellValue::Timestamp(1_000), ColumnType::Timestamp),
            json!("1970-01-01T00:00:01.000Z")
        );
        assert_eq!(cell_json(&CellValue::Text("x".into()), ColumnType::BigInt), Value::Null);
    }

    /// A throwaway 2048-bit RSA key made for this test with `openssl genpkey`; it guards
    /// nothing.
    const TEST_KEY: &str = include_str!("../tests/data/test_rsa_key.pem");
    const TEST_PUBLIC_KEY_DER: &[u8] = include_bytes!("../tests/data/test_rsa_public.der");

    #[test]
    fn the_token_request_is_a_verifiable_rs256_jwt() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("key.json");
        std::fs::write(
            &path,
            json!({
                "type": "service_account",
                "client_email": "syncline@p.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.example/token",
                "private_key": TEST_KEY,
            })
            .to_string(),
        )
        .unwrap();
        let account = read_service_account(&path).unwrap();
        let jwt = jwt_assertion(&account, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |part: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap();
        let header: Value = serde_json::from_slice(&decode(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(claims["iss"], "syncline@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "https://oauth2.example/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"], 1_700_003_600);
        let public = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, TEST_PUBLIC_KEY_DER);
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &decode(parts[2]))
            .expect("the signature verifies with the public key");
    }

    #[test]
    fn a_bad_key_file_is_explained_without_its_content() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("key.json");
        std::fs::write(
            &path,
            r#"{"client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"}"#,
        )
        .unwrap();
        let error = read_service_account(&path).err().expect("not a key").to_string();
        assert!(error.contains("not an RSA PKCS#8 key") && !error.contains("c2VjcmV0"), "{error}");
        assert!(read_service_account(&directory.path().join("missing.json")).is_err());
    }

    #[tokio::test]
    async fn bigquery_passes_the_destination_conformance_suite() {
        let Some(test) = TestDataset::new("conformance").await else {
            return;
        };
        crate::conformance::run(&test.destination).await;
        test.drop_dataset().await;
    }

    #[tokio::test]
    async fn bigquery_tables_are_day_partitioned_on_start_and_clustered_by_id() {
        let Some(test) = TestDataset::new("layout").await else {
            return;
        };
        crate::conformance::write_sample(&test.destination, "deal_history").await;
        let resource = test
            .destination
            .call_ok(
                "reading the table",
                reqwest::Method::GET,
                &test.destination.table_url("deal_history"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(resource["timePartitioning"]["type"], "DAY");
        assert_eq!(resource["timePartitioning"]["field"], "_fivetran_start");
        assert_eq!(resource["clustering"]["fields"], json!(["id"]));
        // no staging table is left behind
        let tables = test
            .destination
            .call_ok(
                "listing tables",
                reqwest::Method::GET,
                &format!("{}/datasets/{}/tables", test.destination.api, test.destination.dataset()),
                None,
            )
            .await
            .unwrap();
        let names: Vec<&str> = tables["tables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|table| table["tableReference"]["tableId"].as_str())
            .collect();
        assert_eq!(names, ["deal_history"]);
        test.drop_dataset().await;
    }

    #[tokio::test]
    async fn a_replayed_batch_changes_nothing_on_bigquery() {
        let Some(test) = TestDataset::new("replay").await else {
            return;
        };
        let batch = Arc::new(crate::conformance::sample_batch("replay_history"));
        test.destination.apply(Arc::clone(&batch)).await.unwrap();
        let before = test
            .destination
            .read_versions("replay_history", "id", &batch.profile)
            .await
            .unwrap();
        test.destination.apply(Arc::clone(&batch)).await.unwrap();
        let after = test
            .destination
            .read_versions("replay_history", "id", &batch.profile)
            .await
            .unwrap();
        assert_eq!(before, after);
        assert_eq!(after.len(), batch.rows.len());
        test.drop_dataset().await;
    }
}
