//! Endpoint strings as users give them (`http://127.0.0.1:2379` or
//! scheme-less `127.0.0.1:2379`), turned into the URIs channels dial.

use crate::error::Error;

/// The dialable form of an endpoint: `http://host:port`.
pub(crate) fn normalize(endpoint: &str) -> Result<String, Error> {
    let invalid = |reason| Error::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason,
    };
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let host_port = match trimmed.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => return Err(invalid("TLS is not supported yet: use http://")),
        Some(_) => return Err(invalid("the scheme must be http://")),
        None => trimmed,
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
    Ok(format!("http://{host_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_added_and_trailing_slashes_dropped() {
        assert_eq!(
            normalize("127.0.0.1:2379").unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            normalize("http://localhost:2379/").unwrap(),
            "http://localhost:2379"
        );
        assert_eq!(normalize(" [::1]:2379 ").unwrap(), "http://[::1]:2379");
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
                matches!(normalize(bad), Err(Error::InvalidEndpoint { .. })),
                "{bad:?} was accepted"
            );
        }
    }
}
