//! PostgreSQL connection URLs: the `schema` parameter syncline adds, password redaction for
//! messages, and the test-service convention shared by every PostgreSQL-backed test.

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

/// The URL with its password (if any) replaced by `***`, safe for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_string(),
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
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://ann:s3cret@db.example:5432/w?schema=x"),
            "postgres://ann:***@db.example:5432/w?schema=x"
        );
        assert_eq!(redact_url("postgres://ann@h/db"), "postgres://ann@h/db");
        let debug = format!("{:?}", split_postgres_url("postgres://ann:s3cret@h/db").unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
