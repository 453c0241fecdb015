//! Endpoint strings as users give them (`http://127.0.0.1:2379`,
//! `https://...` or scheme-less `127.0.0.1:2379`), turned into the URIs
//! channels dial. The scheme must agree with whether TLS is configured:
//! a client never silently talks plain text to an endpoint it was told to
//! secure, nor the other way round.

use crate::error::Error;

/// The dialable form of an endpoint: `http://host:port`, or
/// `https://host:port` when `tls` is configured.
pub(crate) fn normalize(endpoint: &str, tls: bool) -> Result<String, Error> {
    let invalid = |reason| Error::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason,
    };
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let host_port = match (trimmed.split_once("://"), tls) {
        (Some(("http", rest)), false) | (Some(("https", rest)), true) => rest,
        (Some(("https", _)), false) => {
            return Err(invalid(
                "https:// needs ClientOptions::tls (the CA to trust)",
            ));
        }
        (Some(("http", _)), true) => {
            return Err(invalid("TLS is configured: use https://"));
        }
        (Some(_), _) => return Err(invalid("the scheme must be http:// or https://")),
        (None, _) => trimmed,
    };
    if host_port.contains('/') {
        return Err(invalid("an endpoint has no path: give host:port"));
    }
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return Err(invalid("missing the port: give host:port"));
    };
    if host.is_empty() {
        return Err(invalid("missing the host: give host:port"));
    }
    if port.parse::<u16>().is_err() {
        return Err(invalid("the port is not a number from 0 to 65535"));
    }
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{host_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_added_and_trailing_slashes_dropped() {
        assert_eq!(
            normalize("127.0.0.1:2379", false).unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            normalize("http://localhost:2379/", false).unwrap(),
            "http://localhost:2379"
        );
        assert_eq!(
            normalize(" [::1]:2379 ", false).unwrap(),
            "http://[::1]:2379"
        );
    }

    #[test]
    fn tls_takes_https_and_refuses_http() {
        assert_eq!(
            normalize("127.0.0.1:2379", true).unwrap(),
            "https://127.0.0.1:2379"
        );
        assert_eq!(
            normalize("https://localhost:2379", true).unwrap(),
            "https://localhost:2379"
        );
        assert!(matches!(
            normalize("http://127.0.0.1:2379", true),
            Err(Error::InvalidEndpoint { .. })
        ));
    }

    #[test]
    fn unusable_endpoints_are_explained() {
        for bad in [
            "",
            "https://127.0.0.1:2379",
            "grpc://127.0.0.1:2379",
            "127.0.0.1",
            ":2379",
            "127.0.0.1:port",
            "http://127.0.0.1:2379/v3",
        ] {
            assert!(
                matches!(normalize(bad, false), Err(Error::InvalidEndpoint { .. })),
                "{bad:?} was accepted"
            );
        }
    }
}
