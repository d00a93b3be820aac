//! Who may call the RPC, and from where: a bearer token for write methods, a Host-header check
//! against DNS rebinding, and CORS only for origins that were configured.
//!
//! - **Loopback by default.** [`check_bind`] refuses to serve on a non-loopback address
//!   without a token.
//! - **Token.** When one is set, a request that calls any write method (sending transactions,
//!   deploying, submitting, every `dev_*` control) needs `Authorization: Bearer TOKEN`;
//!   otherwise it is answered with HTTP 401 and nothing runs. Reads stay open.
//! - **Host.** A browser tricked into calling `http://evil.example:8645` that resolves to
//!   127.0.0.1 sends `Host: evil.example`: refused (403) unless the name was allowed. IP
//!   literals and `localhost` always pass.
//! - **Origin.** A request with an `Origin` header (a browser's) is refused (403) unless the
//!   origin was configured; configured origins get CORS headers and preflight answers.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::error::DevnetError;

/// The RPC's access rules.
#[derive(Clone, Debug, Default)]
pub struct RpcAccess {
    /// Write methods need `Authorization: Bearer TOKEN` when set.
    pub token: Option<String>,
    /// Origins allowed to call from a browser (`*` for any); none by default.
    pub cors_origins: Vec<String>,
    /// Host names accepted in the Host header besides IP literals and `localhost`.
    pub allowed_hosts: Vec<String>,
}

/// Whether a method changes the chain or the node (and so needs the token).
pub fn is_write(method: &str) -> bool {
    matches!(
        method,
        "lc_sendTransaction" | "lc_deployModel" | "lc_submitTask"
    ) || method.starts_with("dev_")
}

/// Refuses to serve on a non-loopback address without a token.
pub fn check_bind(host: IpAddr, access: &RpcAccess) -> Result<(), DevnetError> {
    if host.is_loopback() || access.token.as_deref().is_some_and(|t| !t.is_empty()) {
        return Ok(());
    }
    Err(DevnetError::Config(format!(
        "refusing to serve JSON-RPC on {host}, which is not a loopback address, without a token: \
         anyone who reaches it could deploy and submit; set --rpc-token (or LIGHTCHAIN_RPC_TOKEN), \
         or serve on 127.0.0.1"
    )))
}

/// Why a request is refused before it runs: the HTTP status and the message.
#[derive(Debug)]
pub struct Denied(pub StatusCode, pub String);

impl RpcAccess {
    /// Checks the Host and Origin headers (before the body is read).
    pub fn check_headers(&self, headers: &HeaderMap) -> Result<(), Denied> {
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or_default();
            if !self.host_allowed(host) {
                return Err(Denied(
                    StatusCode::FORBIDDEN,
                    "this Host header is not allowed (DNS rebinding guard); allow the name with --rpc-allow-host"
                        .into(),
                ));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN)
            && self.cors_origin(origin).is_none()
        {
            return Err(Denied(
                StatusCode::FORBIDDEN,
                "browser requests from this origin are not allowed; allow it with --rpc-cors"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks the token when the request calls a write method.
    pub fn check_token(&self, headers: &HeaderMap, request: &Value) -> Result<(), Denied> {
        let Some(token) = self.token.as_deref() else {
            return Ok(());
        };
        let writes = match request {
            Value::Array(items) => items.iter().any(calls_write),
            one => calls_write(one),
        };
        if !writes {
            return Ok(());
        }
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            // Compared as hashes: blake3's equality is constant-time.
            Some(g) if blake3::hash(g.trim().as_bytes()) == blake3::hash(token.as_bytes()) => {
                Ok(())
            }
            Some(_) => Err(Denied(
                StatusCode::UNAUTHORIZED,
                "the bearer token is not this node's".into(),
            )),
            None => Err(Denied(
                StatusCode::UNAUTHORIZED,
                "this method needs the node's token: Authorization: Bearer TOKEN (lightchain: --token or LIGHTCHAIN_RPC_TOKEN)"
                    .into(),
            )),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = strip_port(host);
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<IpAddr>().is_ok()
            || self
                .allowed_hosts
                .iter()
                .any(|h| h == "*" || h.eq_ignore_ascii_case(name))
    }

    /// The value of `Access-Control-Allow-Origin` for an allowed origin.
    pub fn cors_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        let o = origin.to_str().ok()?;
        self.cors_origins
            .iter()
            .any(|c| c == "*" || c == o)
            .then(|| origin.clone())
    }
}

fn calls_write(request: &Value) -> bool {
    request
        .get("method")
        .and_then(Value::as_str)
        .is_some_and(is_write)
}

/// `name:port`, `[v6]:port`, `name` → the name (brackets removed).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.parse::<u16>().is_ok() => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_without_ports_and_ipv6() {
        assert_eq!(strip_port("localhost:8645"), "localhost");
        assert_eq!(strip_port("[::1]:8645"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("node.example"), "node.example");
        let a = RpcAccess {
            allowed_hosts: vec!["node.example".into()],
            ..Default::default()
        };
        assert!(a.host_allowed("127.0.0.1:8645"));
        assert!(a.host_allowed("[::1]:1"));
        assert!(a.host_allowed("LOCALHOST"));
        assert!(a.host_allowed("node.example:80"));
        assert!(!a.host_allowed("evil.example:8645"));
        assert!(!a.host_allowed("localhost.evil.example"));
    }

    #[test]
    fn non_loopback_needs_a_token() {
        let open = RpcAccess::default();
        assert!(check_bind("127.0.0.1".parse().unwrap(), &open).is_ok());
        assert!(check_bind("::1".parse().unwrap(), &open).is_ok());
        let e = check_bind("0.0.0.0".parse().unwrap(), &open).unwrap_err();
        assert!(e.to_string().contains("without a token"), "{e}");
        let empty = RpcAccess {
            token: Some(String::new()),
            ..Default::default()
        };
        assert!(check_bind("0.0.0.0".parse().unwrap(), &empty).is_err());
        let tok = RpcAccess {
            token: Some("s3cret".into()),
            ..Default::default()
        };
        assert!(check_bind("0.0.0.0".parse().unwrap(), &tok).is_ok());
    }

    #[test]
    fn writes_and_reads() {
        for m in [
            "lc_sendTransaction",
            "lc_deployModel",
            "lc_submitTask",
            "dev_kill",
        ] {
            assert!(is_write(m), "{m}");
        }
        for m in ["lc_status", "lc_getTask", "lc_getReceipt", "lc_getModel"] {
            assert!(!is_write(m), "{m}");
        }
    }
}
