//! Authentication on the API side: who a request comes from (its `token`
//! metadata, or the common name of its client certificate), password
//! hashing, and new simple tokens. What a user may do is decided by the
//! replicated store (`mvcc::auth`); services ask through [`Caller`].

mod caller;
mod gate;
mod password;

pub use caller::{Authenticator, Caller};
pub use gate::AuthGate;
pub use password::{hash_password, verify_password, PasswordError};
