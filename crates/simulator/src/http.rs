//! HTTP helpers: query/form parsing and the vendors' error bodies (one place maps every
//! vendor error to its status and body).

use std::collections::HashMap;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::entity::{Connector, Entity};

/// Decodes `application/x-www-form-urlencoded` text (also query strings).
pub fn parse_urlencoded(text: &str) -> HashMap<String, String> {
    parse_urlencoded_pairs(text).into_iter().collect()
}

/// Decodes `application/x-www-form-urlencoded` text into its pairs, in order, repeats kept.
pub fn parse_urlencoded_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters with typed getters that report bad values.
#[derive(Debug, Clone, Default)]
pub struct Params(pub HashMap<String, String>);

impl Params {
    /// A raw value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// An unsigned integer, or an error message naming the parameter.
    pub fn usize(&self, name: &str) -> Result<Option<usize>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => text
                .parse::<usize>()
                .map(Some)
                .map_err(|_| format!("{name} must be a non-negative integer, got {text:?}")),
        }
    }

    /// A boolean (`true`/`false`, any case).
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).map(|text| text.eq_ignore_ascii_case("true") || text == "1")
    }
}

/// Everything a simulated vendor can answer instead of data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendorError {
    /// Missing or wrong credentials.
    Unauthorized,
    /// The access token is past its lifetime.
    TokenExpired,
    /// Zoho Desk: missing or wrong `orgId` header.
    InvalidOrg,
    /// No such record.
    NotFound(Entity),
    /// Bad parameters.
    BadRequest(String),
    /// 429 with `Retry-After` seconds.
    RateLimited(u64),
    /// A 5xx.
    ServerError(u16),
    /// The simulated outage.
    Outage,
    /// The API user may not read this record.
    Forbidden,
}

/// Renders a vendor error as that vendor does.
pub fn vendor_error(connector: Connector, error: VendorError) -> Response {
    match connector {
        Connector::Pipedrive => pipedrive_error(error),
        Connector::ZohoDesk => zoho_error(error),
        Connector::Halopsa => halo_error(error),
    }
}

const PIPEDRIVE_INFO: &str = "Please check developers.pipedrive.com for more information about Pipedrive API.";

fn capitalised(entity: Entity) -> String {
    let name = entity.name();
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn pipedrive_error(error: VendorError) -> Response {
    let body = |status: StatusCode, message: String| {
        (
            status,
            Json(json!({
                "success": false,
                "error": message,
                "errorCode": status.as_u16(),
                "error_info": PIPEDRIVE_INFO,
                "data": null,
                "additional_data": null,
            })),
        )
            .into_response()
    };
    match error {
        VendorError::Unauthorized | VendorError::TokenExpired | VendorError::InvalidOrg => {
            body(StatusCode::UNAUTHORIZED, "unauthorized access".into())
        }
        VendorError::NotFound(entity) => body(StatusCode::NOT_FOUND, format!("{} not found", capitalised(entity))),
        VendorError::BadRequest(message) => body(StatusCode::BAD_REQUEST, message),
        VendorError::RateLimited(seconds) => with_retry_after(body(StatusCode::TOO_MANY_REQUESTS, "Request over limit".into()), seconds),
        VendorError::ServerError(status) => body(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Internal server error".into(),
        ),
        VendorError::Outage => body(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable".into()),
        VendorError::Forbidden => body(StatusCode::FORBIDDEN, "You do not have permissions to access this item".into()),
    }
}

fn zoho_error(error: VendorError) -> Response {
    let body =
        |status: StatusCode, code: &str, message: String| (status, Json(json!({"errorCode": code, "message": message}))).into_response();
    match error {
        VendorError::Unauthorized | VendorError::TokenExpired => body(
            StatusCode::UNAUTHORIZED,
            "INVALID_OAUTH",
            "The OAuth Token you provided is invalid.".into(),
        ),
        VendorError::InvalidOrg => body(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_DATA",
            "The orgId header is missing or does not belong to this portal.".into(),
        ),
        VendorError::NotFound(_) => body(
            StatusCode::NOT_FOUND,
            "URL_NOT_FOUND",
            "The URL you requested could not be found on our server.".into(),
        ),
        VendorError::BadRequest(message) => body(StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY", message),
        VendorError::RateLimited(seconds) => with_retry_after(
            body(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "You have exceeded the number of API requests allowed per minute.".into(),
            ),
            seconds,
        ),
        VendorError::ServerError(status) => body(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "INTERNAL_SERVER_ERROR",
            "An internal server error occurred.".into(),
        ),
        VendorError::Outage => body(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "The service is temporarily unavailable.".into(),
        ),
        VendorError::Forbidden => body(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "You do not have sufficient permission to perform this operation.".into(),
        ),
    }
}

fn halo_error(error: VendorError) -> Response {
    match error {
        VendorError::Unauthorized | VendorError::TokenExpired | VendorError::InvalidOrg => {
            let description = if error == VendorError::TokenExpired {
                "Bearer error=\"invalid_token\", error_description=\"The token expired\""
            } else {
                "Bearer error=\"invalid_token\""
            };
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(description));
            response
        }
        VendorError::NotFound(entity) => (StatusCode::NOT_FOUND, Json(json!(format!("{} not found", capitalised(entity))))).into_response(),
        VendorError::BadRequest(message) => (StatusCode::BAD_REQUEST, Json(json!(message))).into_response(),
        VendorError::RateLimited(seconds) => {
            with_retry_after((StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response(), seconds)
        }
        VendorError::ServerError(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({"ClassName": "System.Exception", "Message": "An error has occurred."})),
        )
            .into_response(),
        VendorError::Outage => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response(),
        VendorError::Forbidden => (StatusCode::FORBIDDEN, Json(json!("You do not have permission to view this record"))).into_response(),
    }
}

/// A header as text.
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A JSON 200 response.
pub fn ok_json(value: Value) -> Response {
    Json(value).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_and_queries() {
        let params = parse_urlencoded("grant_type=refresh_token&refresh_token=1%3A1%3Aab&scope=a+b&empty=&flag");
        assert_eq!(params["grant_type"], "refresh_token");
        assert_eq!(params["refresh_token"], "1:1:ab");
        assert_eq!(params["scope"], "a b");
        assert_eq!(params["empty"], "");
        assert_eq!(params["flag"], "");
        assert_eq!(parse_urlencoded("a=%zz%4")["a"], "%zz%4");
    }

    #[test]
    fn typed_params_report_bad_values() {
        let params = Params(parse_urlencoded("limit=10&start=-1&flag=TRUE"));
        assert_eq!(params.usize("limit"), Ok(Some(10)));
        assert!(params.usize("start").expect_err("negative").contains("start"));
        assert_eq!(params.usize("missing"), Ok(None));
        assert_eq!(params.bool("flag"), Some(true));
    }
}
