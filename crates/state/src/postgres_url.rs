//! PostgreSQL connection URLs: the `schema` parameter syncline adds, TLS from `sslmode` (libpq's
//! modes, on rustls with the ring provider), password redaction for messages, and the
//! test-service convention shared by every PostgreSQL-backed test.

use std::sync::Arc;

use tokio_postgres::config::SslMode;

/// A PostgreSQL URL split into what the driver understands and syncline's own `schema`
/// parameter.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// The URL without syncline's parameters, as the driver parses it.
    pub connection: String,
    /// The schema (`?schema=name`); `None` uses the server's default search path.
    pub schema: Option<String>,
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PostgresUrl")
            .field("connection", &redact_url(&self.connection))
            .field("schema", &self.schema)
            .finish()
    }
}

/// True when the URL names a PostgreSQL server (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Splits `?schema=name` (percent-decoded) off a PostgreSQL URL; other parameters stay for the
/// driver. Returns `None` when the schema parameter is present but empty.
pub fn split_postgres_url(url: &str) -> Option<PostgresUrl> {
    let Some((base, query)) = url.split_once('?') else {
        return Some(PostgresUrl {
            connection: url.to_string(),
            schema: None,
        });
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", value)) => {
                let value = percent_decode(value)?;
                if value.is_empty() {
                    return None;
                }
                schema = Some(value);
            }
            _ => kept.push(pair),
        }
    }
    let connection = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Some(PostgresUrl { connection, schema })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = text.get(index + 1..index + 3)?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            b'+' => {
                decoded.push(b' ');
                index += 1;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// How a connection uses TLS: libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not verified (libpq's
    /// default, and syncline's when the URL names no `sslmode`).
    Prefer,
    /// TLS or no connection; the certificate is not verified (unless `sslrootcert` is given,
    /// then as `verify-ca`).
    Require,
    /// TLS; the certificate chain is verified against `sslrootcert` (or the public web roots),
    /// the host name is not.
    VerifyCa,
    /// TLS; the chain and the host name are verified.
    VerifyFull,
}

/// A PostgreSQL URL's TLS settings are not usable.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The URL cannot be parsed.
    #[error("the url cannot be parsed; write postgres://user@host:5432/database?sslmode=require")]
    BadUrl,
    /// The `sslmode` value is unknown.
    #[error("sslmode `{0}` is not supported; write disable, prefer, require, verify-ca or verify-full")]
    BadSslMode(String),
    /// The `sslrootcert` file cannot be read.
    #[error("sslrootcert {path}: {reason}; point sslrootcert at a PEM file of CA certificates")]
    RootCert {
        /// The file.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Tls(String),
}

/// The TLS connector of every syncline PostgreSQL connection.
pub type TlsConnector = tokio_postgres_rustls::MakeRustlsConnect;

/// The driver configuration and the TLS connector for a connection URL (syncline's `schema`
/// parameter already split off). `sslmode` (`disable`, `prefer` (default), `require`,
/// `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file of CA certificates; default: the
/// public web roots) are read here; every other parameter goes to the driver.
pub fn connection_config(connection_url: &str) -> Result<(tokio_postgres::Config, TlsConnector), TlsSetupError> {
    let (base, query) = connection_url.split_once('?').unwrap_or((connection_url, ""));
    let mut mode_text = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode_text = Some(percent_decode(value).ok_or(TlsSetupError::BadUrl)?),
            Some(("sslrootcert", value)) => root_cert = Some(percent_decode(value).ok_or(TlsSetupError::BadUrl)?),
            _ => kept.push(pair),
        }
    }
    let mode = match mode_text.as_deref() {
        None | Some("prefer") => TlsMode::Prefer,
        Some("disable") => TlsMode::Disable,
        Some("require") if root_cert.is_some() => TlsMode::VerifyCa,
        Some("require") => TlsMode::Require,
        Some("verify-ca") => TlsMode::VerifyCa,
        Some("verify-full") => TlsMode::VerifyFull,
        Some(other) => return Err(TlsSetupError::BadSslMode(other.to_string())),
    };
    let driver_url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = driver_url.parse().map_err(|_| TlsSetupError::BadUrl)?;
    config.ssl_mode(match mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    Ok((config, tls_connector(mode, root_cert.as_deref())?))
}

fn tls_connector(mode: TlsMode, root_cert: Option<&str>) -> Result<TlsConnector, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsSetupError::Tls(error.to_string()))?;
    let config = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedCertificate { provider }))
            .with_no_client_auth(),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            match root_cert {
                Some(path) => {
                    use rustls::pki_types::pem::PemObject;
                    let certificates = rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|error| TlsSetupError::RootCert {
                        path: path.to_string(),
                        reason: error.to_string(),
                    })?;
                    for certificate in certificates {
                        let certificate = certificate.map_err(|error| TlsSetupError::RootCert {
                            path: path.to_string(),
                            reason: error.to_string(),
                        })?;
                        roots.add(certificate).map_err(|error| TlsSetupError::RootCert {
                            path: path.to_string(),
                            reason: error.to_string(),
                        })?;
                    }
                    if roots.is_empty() {
                        return Err(TlsSetupError::RootCert {
                            path: path.to_string(),
                            reason: "no certificate in the file".into(),
                        });
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| TlsSetupError::Tls(error.to_string()))?;
            if mode == TlsMode::VerifyFull {
                builder.with_webpki_verifier(verifier).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { inner: verifier }))
                    .with_no_client_auth()
            }
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `prefer` and `require`: encryption without certificate checks (libpq's meaning of the
/// modes); the handshake signatures are still verified.
#[derive(Debug)]
struct UnverifiedCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for UnverifiedCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &rustls::pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &rustls::pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name may differ.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &rustls::pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &rustls::pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Query parameters whose values are credentials: shown as `***` by [`redact_url`].
const SECRET_PARAMETERS: &[&str] = &[
    "password",
    "sslpassword",
    "pass",
    "token",
    "api_token",
    "access_token",
    "refresh_token",
    "client_secret",
    "secret",
    "key",
];

/// The URL with its password (if any) and every credential query parameter (`password=`,
/// `sslpassword=`, `token=`, ...) replaced by `***`, safe for messages and logs.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => head.to_string(),
                },
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if SECRET_PARAMETERS.iter().any(|secret| name.eq_ignore_ascii_case(secret)) => format!("{name}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// True when the connection URL asks for `sslmode=prefer`, written or by default.
pub fn prefers_tls(connection_url: &str) -> bool {
    let query = connection_url.split_once('?').map_or("", |(_, query)| query);
    !query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .any(|(name, value)| name == "sslmode" && value != "prefer")
}

/// After connecting with `sslmode=prefer`: says in the log when the server refused TLS and the
/// connection fell back to plain text (credentials and data then cross the network readable).
/// `what` names the connection (`state store`, `destination`).
pub async fn log_plaintext_fallback(client: &tokio_postgres::Client, connection_url: &str, what: &str) {
    if !prefers_tls(connection_url) {
        return;
    }
    match client
        .query_opt("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
    {
        Ok(Some(row)) if !row.get::<_, bool>(0) => tracing::warn!(
            url = %redact_url(connection_url),
            connection = what,
            "postgres connection fell back to plain text (sslmode=prefer and the server offers no TLS); write sslmode=verify-full for any non-local host"
        ),
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, connection = what, "cannot tell whether the postgres connection is encrypted"),
    }
}

/// The environment variable that points service-backed tests at a PostgreSQL server.
pub const TEST_URL_VARIABLE: &str = "SYNCLINE_TEST_POSTGRES_URL";

/// The PostgreSQL URL for service-backed tests, from [`TEST_URL_VARIABLE`]. Without it the
/// test is skipped locally (returns `None`); with `CI=true` a missing URL fails the test, so CI
/// never passes by skipping.
pub fn test_service_url() -> Option<String> {
    match std::env::var(TEST_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|value| value == "true") => {
            panic!("{TEST_URL_VARIABLE} is not set but CI=true: start PostgreSQL and export the url (see .ci/run)")
        }
        _ => {
            eprintln!("skipping: {TEST_URL_VARIABLE} is not set");
            None
        }
    }
}

/// A schema name unique to this process and moment, for tests that need an empty database.
pub fn unique_test_schema(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_split_off() {
        let url = split_postgres_url("postgres://u@h:5432/db?schema=my%20s&sslmode=disable").unwrap();
        assert_eq!(url.connection, "postgres://u@h:5432/db?sslmode=disable");
        assert_eq!(url.schema.as_deref(), Some("my s"));
        let plain = split_postgres_url("postgresql://u@h/db").unwrap();
        assert_eq!(plain.connection, "postgresql://u@h/db");
        assert_eq!(plain.schema, None);
        assert!(split_postgres_url("postgres://u@h/db?schema=").is_none());
        assert!(split_postgres_url("postgres://u@h/db?schema=%zz").is_none());
    }

    #[test]
    fn sslmode_is_read_by_syncline_and_the_rest_goes_to_the_driver() {
        let (config, _) = connection_config("postgres://u@h/db?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(config.get_application_name(), Some("x"));
        let (config, _) = connection_config("postgres://u@h/db").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer, "libpq's default");
        let (config, _) = connection_config("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        assert!(matches!(
            connection_config("postgres://u@h/db?sslmode=allow"),
            Err(TlsSetupError::BadSslMode(_))
        ));
        let error = connection_config("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent.pem")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("sslrootcert /nonexistent.pem"), "{error}");
    }

    /// TLS against the test server, when it has TLS switched on (Debian's default, with its
    /// self-signed `localhost` certificate); a server without TLS skips the checks.
    #[tokio::test]
    async fn tls_modes_connect_or_refuse_as_libpq_does() {
        let Some(base) = test_service_url() else { return };
        let with = |parameters: &str| {
            let separator = if base.contains('?') { '&' } else { '?' };
            format!("{base}{separator}{parameters}")
        };
        async fn ssl_in_use(url: &str) -> Result<bool, String> {
            let (config, tls) = connection_config(url).map_err(|error| error.to_string())?;
            let (client, connection) = config.connect(tls).await.map_err(|error| {
                // the driver's message, then its causes (the certificate problem)
                let mut text = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                text
            })?;
            tokio::spawn(connection);
            let row = client
                .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
                .await
                .map_err(|error| error.to_string())?;
            Ok(row.get(0))
        }
        assert!(!ssl_in_use(&with("sslmode=disable")).await.unwrap());
        let server_has_tls = ssl_in_use(&with("sslmode=prefer")).await.unwrap();
        if !server_has_tls {
            eprintln!("skipping the TLS checks: the test server does not offer TLS");
            assert!(ssl_in_use(&with("sslmode=require")).await.is_err());
            return;
        }
        assert!(ssl_in_use(&with("sslmode=require")).await.unwrap(), "require encrypts");
        let refused = ssl_in_use(&with("sslmode=verify-full")).await.unwrap_err();
        assert!(
            refused.to_lowercase().contains("certificate"),
            "a self-signed certificate is refused: {refused}"
        );
        let snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
        if std::path::Path::new(snakeoil).exists() && base.contains("127.0.0.1") {
            let root = format!("sslrootcert={snakeoil}");
            assert!(
                ssl_in_use(&with(&format!("sslmode=verify-ca&{root}"))).await.unwrap(),
                "the chain is trusted"
            );
            assert!(
                ssl_in_use(&with(&format!("sslmode=verify-full&{root}"))).await.is_err(),
                "the certificate names localhost, not 127.0.0.1"
            );
            let localhost = with(&format!("sslmode=verify-full&{root}")).replace("127.0.0.1", "localhost");
            assert!(ssl_in_use(&localhost).await.unwrap(), "verify-full with the right name");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://ann:s3cret@db.example:5432/w?schema=x"),
            "postgres://ann:***@db.example:5432/w?schema=x"
        );
        assert_eq!(redact_url("postgres://ann@h/db"), "postgres://ann@h/db");
        let debug = format!("{:?}", split_postgres_url("postgres://ann:s3cret@h/db").unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
        assert_eq!(
            redact_url("postgres://ann@h/db?password=s3cret&sslmode=verify-full&sslpassword=k3y"),
            "postgres://ann@h/db?password=***&sslmode=verify-full&sslpassword=***"
        );
        assert_eq!(
            redact_url("postgres://ann:p@ss:word@h/db?Password=x"),
            "postgres://ann:***@h/db?Password=***"
        );
        assert_eq!(redact_url("duckdb://w.duckdb"), "duckdb://w.duckdb");
        assert_eq!(redact_url("state.db"), "state.db");
        assert!(prefers_tls("postgres://h/db") && prefers_tls("postgres://h/db?sslmode=prefer"));
        assert!(!prefers_tls("postgres://h/db?sslmode=verify-full"));
    }
}
