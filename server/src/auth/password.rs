//! Password hashes: bcrypt (etcd's choice, with its `--bcrypt-cost`), run
//! on the blocking pool because a hash takes tens of milliseconds by
//! design.

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// bcrypt refused the input (for example a password over 72 bytes).
    #[error("cannot hash the password: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    /// The blocking task did not finish (the runtime is shutting down).
    #[error("password hashing was interrupted")]
    Interrupted,
}

/// The bcrypt hash of `password` at `cost`.
pub async fn hash_password(password: String, cost: u32) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || bcrypt::non_truncating_hash(password, cost))
        .await
        .map_err(|_| PasswordError::Interrupted)?
        .map_err(PasswordError::Hash)
}

/// Whether `password` matches `hash`. A hash that is not bcrypt (or a user
/// added without a password) matches nothing.
pub async fn verify_password(password: String, hash: Vec<u8>) -> bool {
    tokio::task::spawn_blocking(move || {
        let Ok(hash) = String::from_utf8(hash) else {
            return false;
        };
        !hash.is_empty() && bcrypt::verify(password, &hash).unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("s3cret".into(), 4).await.unwrap();
        assert!(hash.starts_with("$2"));
        assert!(verify_password("s3cret".into(), hash.clone().into_bytes()).await);
        assert!(!verify_password("S3cret".into(), hash.into_bytes()).await);
        assert!(!verify_password(String::new(), Vec::new()).await);
        assert!(!verify_password("x".into(), b"not a hash".to_vec()).await);
    }

    #[tokio::test]
    async fn a_password_bcrypt_would_truncate_is_refused() {
        assert!(hash_password("x".repeat(73), 4).await.is_err());
    }
}
