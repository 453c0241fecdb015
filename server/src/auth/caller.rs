//! [`Authenticator`] finds who a request comes from; [`Caller`] carries
//! that identity, with the auth revision it was found at, to the
//! permission checks and into the proposed command.

use std::time::Duration;

use rand::distributions::{Alphanumeric, DistString};
use tonic::metadata::MetadataMap;

use crate::mvcc::{Access, AuthError, AuthStore, KvState};
use crate::tls::ConnInfo;

/// How this member authenticates requests (from the config).
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// How long an issued simple token stays valid.
    pub token_ttl: Duration,
    /// bcrypt cost for new password hashes.
    pub bcrypt_cost: u32,
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator {
            token_ttl: Duration::from_secs(300),
            bcrypt_cost: 10,
        }
    }
}

impl Authenticator {
    /// Who a request (its metadata and connection) comes from, judged on
    /// `kv` (the member's applied state): while auth is off, anyone; else
    /// the holder of its `token` (or `authorization`, as the gateway sends
    /// it) or, without one, the common name of its verified client
    /// certificate (etcd's CN auth). An unknown or expired token is
    /// refused with etcd's "invalid auth token".
    pub fn caller_of(
        &self,
        metadata: &MetadataMap,
        conn: Option<&ConnInfo>,
        kv: &KvState,
    ) -> Result<Caller, AuthError> {
        let auth = kv.auth();
        let revision = auth.revision();
        if !auth.enabled() {
            return Ok(Caller {
                user: None,
                revision,
            });
        }
        let token = metadata
            .get("token")
            .or_else(|| metadata.get("authorization"))
            .and_then(|value| value.to_str().ok());
        let user = match token {
            Some(token) => Some(
                auth.token_user(token, kv.leases().clock_ms())
                    .ok_or(AuthError::InvalidAuthToken)?
                    .to_string(),
            ),
            None => conn.and_then(|conn| conn.common_name.clone()),
        };
        Ok(Caller { user, revision })
    }

    /// A new simple token: 32 random characters (etcd's are shorter), so
    /// guessing one is hopeless.
    pub fn new_token(&self) -> String {
        Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
    }

    /// The token TTL in milliseconds of the lease clock.
    pub fn token_ttl_ms(&self) -> i64 {
        i64::try_from(self.token_ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// The identity of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user; `None` without credentials (or while auth is off).
    pub user: Option<String>,
    /// The auth revision the identity was established at; commands carry
    /// it so apply can refuse them if the auth store changed since.
    pub revision: u64,
}

impl Caller {
    /// The member itself (internal requests: never refused).
    pub fn member() -> Caller {
        Caller {
            user: None,
            revision: 0,
        }
    }

    /// The user, required while auth is on (etcd's "user name is empty").
    fn user<'a>(&'a self, auth: &AuthStore) -> Result<Option<&'a str>, AuthError> {
        match (&self.user, auth.enabled()) {
            (_, false) => Ok(None),
            (Some(user), true) => Ok(Some(user)),
            (None, true) => Err(AuthError::UserEmpty),
        }
    }

    /// Checks that the caller may do `access` on `[key, range_end)`.
    pub fn check(
        &self,
        auth: &AuthStore,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<(), AuthError> {
        if self.revision == 0 {
            return Ok(());
        }
        match self.user(auth)? {
            Some(user) => auth.check(user, key, range_end, access),
            None => Ok(()),
        }
    }

    /// Checks that the caller holds the root role.
    pub fn check_admin(&self, auth: &AuthStore) -> Result<(), AuthError> {
        if self.revision == 0 {
            return Ok(());
        }
        match self.user(auth)? {
            Some(user) => auth.check_admin(user),
            None => Ok(()),
        }
    }

    /// Checks that the request names a user at all (requests etcd lets any
    /// authenticated user make: lease grants, keepalives, compaction).
    pub fn check_authenticated(&self, auth: &AuthStore) -> Result<(), AuthError> {
        if self.revision == 0 {
            return Ok(());
        }
        self.user(auth).map(|_| ())
    }

    /// The caller's name, if any.
    pub fn name(&self) -> Option<&str> {
        self.user.as_deref()
    }
}
