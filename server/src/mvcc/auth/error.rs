//! Auth rejections, with etcd's texts (clients match on them).

use witan_proto::raftpb::apply_error::Kind;

/// Why the auth store refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The auth store changed since the request's permissions were checked.
    #[error("revision of auth store is old")]
    OldRevision,
    /// Authenticate (or AuthDisable's root check) while auth is off.
    #[error("authentication is not enabled")]
    NotEnabled,
    /// AuthEnable without a `root` user.
    #[error("root user does not exist")]
    RootUserNotExist,
    /// AuthEnable while `root` lacks the root role.
    #[error("root user does not have root role")]
    RootRoleNotExist,
    /// A user name that is empty (or a request with no user while auth is on).
    #[error("user name is empty")]
    UserEmpty,
    /// UserAdd of a name that is taken.
    #[error("user name already exists")]
    UserAlreadyExist,
    /// A user that does not exist.
    #[error("user name not found")]
    UserNotFound,
    /// A role name that is empty.
    #[error("role name is empty")]
    RoleEmpty,
    /// RoleAdd of a name that is taken.
    #[error("role name already exists")]
    RoleAlreadyExist,
    /// A role that does not exist.
    #[error("role name not found")]
    RoleNotFound,
    /// UserRevokeRole of a role the user does not have.
    #[error("role is not granted to the user")]
    RoleNotGranted,
    /// RoleRevokePermission of a permission the role does not have.
    #[error("permission is not granted to the role")]
    PermissionNotGranted,
    /// A change that would lock everyone out (deleting root, taking its
    /// root role) while auth is on.
    #[error("invalid auth management")]
    InvalidAuthMgmt,
    /// The user may not do this.
    #[error("permission denied")]
    PermissionDenied,
    /// A token that is unknown or expired.
    #[error("invalid auth token")]
    InvalidAuthToken,
    /// Authenticate with a wrong user or password.
    #[error("authentication failed, invalid user ID or password")]
    AuthFailed,
}

impl AuthError {
    /// The replicated form of a rejection apply can produce; `None` for the
    /// ones only the API layer raises.
    pub fn to_kind(self) -> Option<Kind> {
        Some(match self {
            AuthError::OldRevision => Kind::AuthOldRevision,
            AuthError::NotEnabled => Kind::AuthNotEnabled,
            AuthError::RootUserNotExist => Kind::RootUserNotExist,
            AuthError::RootRoleNotExist => Kind::RootRoleNotExist,
            AuthError::UserEmpty => Kind::UserEmpty,
            AuthError::UserAlreadyExist => Kind::UserAlreadyExist,
            AuthError::UserNotFound => Kind::UserNotFound,
            AuthError::RoleEmpty => Kind::RoleEmpty,
            AuthError::RoleAlreadyExist => Kind::RoleAlreadyExist,
            AuthError::RoleNotFound => Kind::RoleNotFound,
            AuthError::RoleNotGranted => Kind::RoleNotGranted,
            AuthError::PermissionNotGranted => Kind::PermissionNotGranted,
            AuthError::InvalidAuthMgmt => Kind::InvalidAuthMgmt,
            AuthError::PermissionDenied => Kind::PermissionDenied,
            AuthError::AuthFailed => Kind::AuthFailed,
            AuthError::InvalidAuthToken => return None,
        })
    }

    /// The rejection a replicated kind stands for, if it is an auth one.
    pub fn from_kind(kind: Kind) -> Option<AuthError> {
        Some(match kind {
            Kind::AuthOldRevision => AuthError::OldRevision,
            Kind::AuthNotEnabled => AuthError::NotEnabled,
            Kind::RootUserNotExist => AuthError::RootUserNotExist,
            Kind::RootRoleNotExist => AuthError::RootRoleNotExist,
            Kind::UserEmpty => AuthError::UserEmpty,
            Kind::UserAlreadyExist => AuthError::UserAlreadyExist,
            Kind::UserNotFound => AuthError::UserNotFound,
            Kind::RoleEmpty => AuthError::RoleEmpty,
            Kind::RoleAlreadyExist => AuthError::RoleAlreadyExist,
            Kind::RoleNotFound => AuthError::RoleNotFound,
            Kind::RoleNotGranted => AuthError::RoleNotGranted,
            Kind::PermissionNotGranted => AuthError::PermissionNotGranted,
            Kind::InvalidAuthMgmt => AuthError::InvalidAuthMgmt,
            Kind::PermissionDenied => AuthError::PermissionDenied,
            Kind::AuthFailed => AuthError::AuthFailed,
            _ => return None,
        })
    }
}
